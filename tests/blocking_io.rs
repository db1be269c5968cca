//! The blocking adapters (`pants::io::blocking`) over a loopback
//! `std::net::TcpStream` pair and in-memory bytes. Every socket has a read
//! and write timeout, so a broken test fails instead of hanging.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use pants::delimiter::{Count, Packed, Until};
use pants::io::blocking::{Reader, Writer};
use pants::io::{ReadError, WriteError};
use pants::{FrameError, NetStruct, PackError};

const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A connected loopback pair, both ends with timeouts.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    for socket in [&client, &server] {
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        socket.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    (client, server)
}

#[derive(NetStruct, Debug, PartialEq)]
struct Login<'a> {
    #[netstruct(len = u8)]
    user: &'a str,
    #[netstruct(len = u8)]
    password: &'a [u8],
}

/// Hands out one byte per read, and an `Interrupted` error before each.
struct Trickle<'a> {
    data: &'a [u8],
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let Some((&first, rest)) = self.data.split_first() else { return Ok(0) };
        if buf.is_empty() {
            return Ok(0);
        }
        buf[0] = first;
        self.data = rest;
        Ok(1)
    }
}

#[test]
fn lines_and_netstructs_over_tcp() {
    let (client, server) = tcp_pair();
    let peer = std::thread::spawn(move || {
        let mut writer = Writer::new(client, Until::crlf());
        writer.feed("LOGIN").unwrap();
        let mut writer = writer.with_encoder(Packed::<Login>::new());
        writer.feed(&Login { user: "anna", password: b"secret" }).unwrap();
        writer.send(&Login { user: "bob", password: b"" }).unwrap();
    });
    let mut reader = Reader::new(server, Until::crlf());
    assert_eq!(reader.next_frame().unwrap(), Some(&b"LOGIN"[..]));
    let mut reader = reader.read_delimiter(Packed::<Login>::new());
    assert_eq!(reader.next_frame().unwrap(), Some(Login { user: "anna", password: b"secret" }));
    assert_eq!(reader.next_frame().unwrap(), Some(Login { user: "bob", password: b"" }));
    peer.join().unwrap();
    assert_eq!(reader.next_frame().unwrap(), None);
}

#[test]
fn one_byte_reads_and_interrupted_reads() {
    let mut wire = Vec::new();
    for i in 0..20 {
        pants::Pack::pack(&Login { user: &format!("user{i}"), password: &[i; 3] }, &mut wire).unwrap();
    }
    let mut reader = Reader::new(Trickle { data: &wire, interrupt: false }, Packed::<Login>::new());
    for i in 0..20 {
        let login = reader.next_frame().unwrap().unwrap();
        assert_eq!((login.user, login.password), (&*format!("user{i}"), &[i; 3][..]));
    }
    assert_eq!(reader.next_frame().unwrap(), None);

    let mut reader = Reader::new(Trickle { data: b"a\nbb\n\nccc\n", interrupt: false }, Until::lf());
    let mut lines = Vec::new();
    while reader.for_each_frame(|line| lines.push(line.to_vec())).unwrap() > 0 {}
    assert_eq!(lines, [&b"a"[..], b"bb", b"", b"ccc"]);
}

#[test]
fn overflow_reads_no_more_than_the_limit() {
    let input = vec![b'x'; 5000];
    let mut source = &input[..];
    let mut reader = Reader::new(&mut source, Until::lf()).with_buffer_size(100);
    let error = reader.next_frame().unwrap_err();
    assert!(matches!(error, ReadError::Frame(FrameError::Overflow { limit: 100, needed: 101 })), "{error:?}");
    assert_eq!(reader.buffered().len(), 100);
    drop(reader);
    assert_eq!(source.len(), 4900, "the reader read past its limit");
}

#[test]
fn overflow_over_tcp() {
    let (mut client, server) = tcp_pair();
    let peer = std::thread::spawn(move || {
        // The reader drops its socket after the overflow: the write may fail.
        let _ = client.write_all(&[b'y'; 50_000]);
    });
    let mut reader = Reader::new(server, Until::lf()).with_buffer_size(2000);
    let error = reader.next_frame().unwrap_err();
    assert!(matches!(error, ReadError::Frame(FrameError::Overflow { limit: 2000, .. })), "{error:?}");
    assert_eq!(reader.buffered().len(), 2000);
    drop(reader);
    peer.join().unwrap();
}

#[test]
fn truncated_input() {
    let (mut client, server) = tcp_pair();
    client.write_all(b"done\r\nhalf a li").unwrap();
    drop(client);
    let mut reader = Reader::new(server, Until::crlf());
    assert_eq!(reader.next_frame().unwrap(), Some(&b"done"[..]));
    let error = reader.next_frame().unwrap_err();
    assert!(matches!(error, ReadError::Frame(FrameError::Truncated { buffered: 9 })), "{error:?}");
    // Sticky, and the bytes are still there.
    assert!(matches!(reader.next_frame(), Err(ReadError::Frame(FrameError::Truncated { .. }))));
    assert_eq!(reader.take_buffered(), b"half a li");
    assert_eq!(reader.next_frame().unwrap(), None);
}

#[test]
fn header_then_count_body_in_one_read() {
    let mut reader = Reader::new(&b"LEN 6\nabc\ndeTAIL\n"[..], Until::lf());
    let header = reader.next_frame().unwrap().unwrap();
    let size: usize = std::str::from_utf8(&header[4..]).unwrap().parse().unwrap();
    let mut body = reader.read_delimiter(Count::new(size).unwrap());
    assert_eq!(body.next_frame().unwrap(), Some(&b"abc\nde"[..]));
    let mut rest = body.read_delimiter(Until::lf());
    assert_eq!(rest.next_frame().unwrap(), Some(&b"TAIL"[..]));
    assert_eq!(rest.next_frame().unwrap(), None);
}

/// Counts write calls.
#[derive(Default)]
struct CountingSink {
    writes: usize,
    flushes: usize,
    data: Vec<u8>,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

#[test]
fn writer_batches() {
    let mut writer = Writer::new(CountingSink::default(), Until::lf());
    for i in 0..200 {
        writer.feed(format!("{i}")).unwrap();
    }
    assert_eq!(writer.get_ref().writes, 0);
    writer.flush().unwrap();
    assert_eq!((writer.get_ref().writes, writer.get_ref().flushes), (1, 1));

    // Past the threshold, the writer writes by itself (without flushing).
    let mut writer = Writer::new(CountingSink::default(), Count::new(4).unwrap()).with_flush_threshold(16);
    for _ in 0..12 {
        writer.feed(*b"abcd").unwrap();
    }
    assert_eq!((writer.get_ref().writes, writer.get_ref().flushes), (3, 0));

    // A refused item buffers nothing; what is buffered can be taken back.
    writer.feed(*b"wxyz").unwrap();
    assert!(matches!(writer.feed(b"abc"), Err(WriteError::Pack(PackError::WrongLength { expected: 4, len: 3 }))));
    let (sink, pending) = writer.into_parts();
    assert_eq!(pending, b"wxyz");
    assert_eq!(sink.data.len(), 48);
}

#[test]
fn writer_over_tcp_one_write() {
    let (client, mut server) = tcp_pair();
    let mut writer = Writer::new(client, Until::lf());
    for i in 0..1000 {
        writer.feed(format!("line {i}")).unwrap();
    }
    let client = writer.into_inner().unwrap();
    drop(client);
    let mut received = String::new();
    server.read_to_string(&mut received).unwrap();
    let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(received, expected);
}
