//! The tokio adapters (`pants::io::tokio`) over loopback TCP and
//! `tokio::io::duplex`: typed borrowed frames, any split of the input, the
//! buffer limit, truncated input, delimiter switches, write batching, and
//! tokio-util `Framed` with pants' `Codec`.
//!
//! Every test runs on a current-thread runtime in a helper thread and fails
//! if it takes longer than `WAIT` (nothing here should take more than a few
//! milliseconds).
#![cfg(feature = "tokio")]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use pants::delimiter::{Count, Packed, Raw, Until};
use pants::io::tokio::{Codec, Reader, Writer};
use pants::io::{ReadError, WriteError};
use pants::{FrameError, NetStruct, PackError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, FramedRead};

/// How long a test may run before it fails.
const WAIT: Duration = Duration::from_secs(20);

/// Runs `test` on a current-thread runtime; panics if it does not finish
/// within `WAIT`.
fn run<F: Future<Output = ()> + Send + 'static>(test: impl FnOnce() -> F + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        runtime.block_on(test());
        let _ = done.send(());
    });
    match finished.recv_timeout(WAIT) {
        Ok(()) => thread.join().unwrap(),
        // The thread panicked: join shows why.
        Err(mpsc::RecvTimeoutError::Disconnected) => thread.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test still running after {WAIT:?}"),
    }
}

/// A connected loopback TCP pair.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[derive(NetStruct, Debug, PartialEq)]
struct Note<'a> {
    id: u32,
    #[netstruct(len = u16)]
    text: &'a str,
    #[netstruct(len = u8)]
    tag: &'a [u8],
}

/// A NetStruct with no borrowed field, for `Codec`.
#[derive(NetStruct, Debug, PartialEq, Clone)]
struct Score {
    player: u8,
    points: u32,
}

/// A message whose body may be long: its length prefix alone can overflow.
#[derive(NetStruct, Debug, PartialEq)]
struct Blob<'a> {
    #[netstruct(len = u32)]
    body: &'a [u8],
}

fn notes() -> Vec<(u32, String, Vec<u8>)> {
    (0..50).map(|i| (i, format!("note number {i} ✓"), vec![i as u8; (i % 7) as usize])).collect()
}

fn encoded_notes() -> Vec<u8> {
    let mut wire = Vec::new();
    for (id, text, tag) in notes() {
        pants::Pack::pack(&Note { id, text: &text, tag: &tag }, &mut wire).unwrap();
    }
    wire
}

#[test]
fn borrowed_lines_over_tcp() {
    run(|| async {
        let (mut client, server) = tcp_pair().await;
        let writer = tokio::spawn(async move {
            client.write_all(b"HELLO there\r\nsecond line\r\nthird\r\n").await.unwrap();
        });
        let mut reader = Reader::new(server, Until::crlf());
        let mut lines = Vec::new();
        loop {
            let Some(line) = reader.next_frame().await.unwrap() else { break };
            let (at, len) = (line.as_ptr() as usize, line.len());
            lines.push(line.to_vec());
            // Borrowed: the frame lay in the buffer just before what is left.
            if !reader.buffered().is_empty() {
                assert_eq!(reader.buffered().as_ptr() as usize, at + len + 2);
            }
        }
        assert_eq!(lines, [&b"HELLO there"[..], b"second line", b"third"]);
        writer.await.unwrap();
    });
}

#[test]
fn borrowed_netstructs_over_tcp_written_by_the_writer() {
    run(|| async {
        let (client, server) = tcp_pair().await;
        let writer = tokio::spawn(async move {
            let mut writer = Writer::new(client, Packed::<Note>::new());
            for (id, text, tag) in notes() {
                writer.feed(&Note { id, text: &text, tag: &tag }).await.unwrap();
            }
            writer.shutdown().await.unwrap();
        });
        let mut reader = Reader::new(server, Packed::<Note>::new());
        let expected = notes();
        let mut seen = 0;
        while let Some(note) = reader.next_frame().await.unwrap() {
            let (id, text, tag) = &expected[seen];
            assert_eq!(note, Note { id: *id, text, tag });
            seen += 1;
        }
        assert_eq!(seen, expected.len());
        writer.await.unwrap();
    });
}

/// The input written one byte at a time through a one-byte duplex: every
/// read returns one byte, so every frame is split at every byte.
#[test]
fn any_split_byte_by_byte() {
    run(|| async {
        let wire = encoded_notes();
        let (mut client, server) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            for byte in wire {
                client.write_all(&[byte]).await.unwrap();
            }
        });
        let mut reader = Reader::new(server, Packed::<Note>::new());
        let expected = notes();
        let mut seen = 0;
        while let Some(note) = reader.next_frame().await.unwrap() {
            let (id, text, tag) = &expected[seen];
            assert_eq!(note, Note { id: *id, text, tag });
            seen += 1;
        }
        assert_eq!(seen, expected.len());
        writer.await.unwrap();

        // Lines too, through for_each_frame.
        let (mut client, server) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            for byte in b"one\ntwo\n\nfour\n" {
                client.write_all(&[*byte]).await.unwrap();
            }
        });
        let mut reader = Reader::new(server, Until::lf());
        let mut lines = Vec::new();
        while reader.for_each_frame(|line| lines.push(line.to_vec())).await.unwrap() > 0 {}
        assert_eq!(lines, [&b"one"[..], b"two", b"", b"four"]);
        writer.await.unwrap();
    });
}

/// An `AsyncRead` over bytes that counts what it hands out and offers at
/// most `chunk` bytes per read.
struct CountingSource {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
    handed: Arc<AtomicUsize>,
}

impl AsyncRead for CountingSource {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = (self.data.len() - self.at).min(buf.remaining()).min(self.chunk);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        self.handed.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

#[test]
fn overflow_at_the_limit_without_reading_past_it() {
    run(|| async {
        // No terminator in 10 000 bytes, a 64-byte limit.
        let handed = Arc::new(AtomicUsize::new(0));
        let source = CountingSource { data: vec![b'x'; 10_000], at: 0, chunk: 1000, handed: handed.clone() };
        let mut reader = Reader::new(source, Until::lf()).with_buffer_size(64);
        let error = reader.next_frame().await.unwrap_err();
        assert!(matches!(error, ReadError::Frame(FrameError::Overflow { limit: 64, needed: 65 })), "{error:?}");
        assert_eq!(reader.buffered().len(), 64);
        assert_eq!(handed.load(Ordering::Relaxed), 64, "read past the limit");
        // Sticky, and still nothing more read.
        assert!(matches!(reader.next_frame().await, Err(ReadError::Frame(FrameError::Overflow { .. }))));
        assert_eq!(handed.load(Ordering::Relaxed), 64);

        // A length prefix announcing more than the limit: an overflow as
        // soon as the prefix is read, before the body is buffered.
        let mut wire = Vec::new();
        pants::Pack::pack(&Blob { body: &[7; 5000] }, &mut wire).unwrap();
        let handed = Arc::new(AtomicUsize::new(0));
        let source = CountingSource { data: wire, at: 0, chunk: 4, handed: handed.clone() };
        let mut reader = Reader::new(source, Packed::<Blob>::new()).with_buffer_size(100);
        let error = reader.next_frame().await.unwrap_err();
        assert!(matches!(error, ReadError::Frame(FrameError::Overflow { limit: 100, needed: 5004 })), "{error:?}");
        assert_eq!(handed.load(Ordering::Relaxed), 4);
        // Raising the limit goes on.
        reader.set_buffer_size(8192);
        assert_eq!(reader.next_frame().await.unwrap().unwrap().body, &[7; 5000][..]);
    });
}

#[test]
fn overflow_over_tcp() {
    run(|| async {
        let (mut client, server) = tcp_pair().await;
        let writer = tokio::spawn(async move {
            // Whatever the reader does, the writer must not block forever:
            // the reader drops its socket after the overflow.
            let _ = client.write_all(&[b'y'; 100_000]).await;
        });
        let mut reader = Reader::new(server, Until::lf()).with_buffer_size(1000);
        let error = reader.next_frame().await.unwrap_err();
        assert!(matches!(error, ReadError::Frame(FrameError::Overflow { limit: 1000, .. })), "{error:?}");
        assert_eq!(reader.buffered().len(), 1000);
        drop(reader);
        writer.await.unwrap();
    });
}

#[test]
fn truncated_at_end_of_input() {
    run(|| async {
        let (mut client, server) = tcp_pair().await;
        client.write_all(b"whole\npart").await.unwrap();
        drop(client);
        let mut reader = Reader::new(server, Until::lf());
        assert_eq!(reader.next_frame().await.unwrap(), Some(&b"whole"[..]));
        let error = reader.next_frame().await.unwrap_err();
        assert!(matches!(error, ReadError::Frame(FrameError::Truncated { buffered: 4 })), "{error:?}");
        assert!(reader.is_eof());
        assert_eq!(reader.buffered(), b"part");

        // A clean end, and again after it.
        let mut reader = Reader::new(&b"a\n"[..], Until::lf());
        assert_eq!(reader.next_frame().await.unwrap(), Some(&b"a"[..]));
        assert_eq!(reader.next_frame().await.unwrap(), None);
        assert_eq!(reader.next_frame().await.unwrap(), None);
        assert_eq!(reader.for_each_frame(|_| panic!("no frame")).await.unwrap(), 0);
    });
}

/// A line header, then a `Count` body: all sent in one write, so the body
/// is already buffered when the reader switches; then lines again.
#[test]
fn delimiter_switch_keeps_buffered_bytes() {
    run(|| async {
        let (mut client, server) = tcp_pair().await;
        client.write_all(b"SIZE 11\r\nhello\r\nworldNEXT\r\n").await.unwrap();
        drop(client);
        let mut reader = Reader::new(server, Until::crlf());
        let header = reader.next_frame().await.unwrap().unwrap();
        let size: usize = std::str::from_utf8(header).unwrap().strip_prefix("SIZE ").unwrap().parse().unwrap();
        assert!(!reader.buffered().is_empty(), "the body was read with the header");
        let mut body = reader.read_delimiter(Count::new(size).unwrap());
        // The terminator inside the body is just bytes to `Count`.
        assert_eq!(body.next_frame().await.unwrap(), Some(&b"hello\r\nworld"[..11]));
        let mut lines = body.read_delimiter(Until::crlf());
        assert_eq!(lines.next_frame().await.unwrap(), Some(&b"dNEXT"[..]));
        assert_eq!(lines.next_frame().await.unwrap(), None);
    });
}

#[test]
fn cancelled_next_frame_loses_nothing() {
    run(|| async {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = Reader::new(server, Until::lf());
        client.write_all(b"par").await.unwrap();
        // Polled once: reads "par", finds no frame, waits; then dropped.
        assert!(reader.next_frame().now_or_never().is_none());
        assert_eq!(reader.buffered(), b"par");
        client.write_all(b"tial\n").await.unwrap();
        assert_eq!(reader.next_frame().await.unwrap(), Some(&b"partial"[..]));
    });
}

/// An `AsyncWrite` that counts write calls and keeps what it was given,
/// taking at most `max` bytes per call.
#[derive(Default)]
struct CountingSink {
    writes: usize,
    flushes: usize,
    max: usize,
    data: Vec<u8>,
}

impl AsyncWrite for CountingSink {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.max);
        self.writes += 1;
        self.data.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushes += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn writer_batches_small_frames_into_one_write() {
    run(|| async {
        let mut writer = Writer::new(CountingSink { max: usize::MAX, ..Default::default() }, Until::lf());
        for i in 0..100 {
            writer.feed(format!("line {i}")).await.unwrap();
        }
        assert_eq!(writer.get_ref().writes, 0, "feed wrote before the threshold");
        writer.flush().await.unwrap();
        assert_eq!((writer.get_ref().writes, writer.get_ref().flushes), (1, 1));
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(writer.get_ref().data, expected.as_bytes());

        // send = feed + flush; feed_with and feed_packed share the batch.
        writer.feed_with(&Count::new(3).unwrap(), b"abc").await.unwrap();
        writer.feed_packed(&Score { player: 1, points: 2 }).await.unwrap();
        writer.send("end").await.unwrap();
        assert_eq!(writer.get_ref().writes, 2);
        assert!(writer.get_ref().data.ends_with(b"abc\x01\x00\x00\x00\x02end\n"));

        // A refused frame buffers nothing.
        let refused = writer.feed("two\nlines").await.unwrap_err();
        assert!(matches!(refused, WriteError::Pack(PackError::TerminatorInFrame { at: 3 })), "{refused:?}");
        assert!(writer.buffered().is_empty());
    });
}

#[test]
fn writer_writes_out_past_the_threshold_and_resumes_partial_writes() {
    run(|| async {
        // 10-byte frames, a 64-byte threshold: written out every 7 frames.
        let sink = CountingSink { max: usize::MAX, ..Default::default() };
        let mut writer = Writer::new(sink, Count::new(10).unwrap()).with_flush_threshold(64);
        for _ in 0..70 {
            writer.feed([b'z'; 10]).await.unwrap();
        }
        assert_eq!(writer.get_ref().writes, 10);
        assert_eq!(writer.get_ref().flushes, 0, "the threshold writes, it does not flush");
        assert!(writer.buffered().is_empty());

        // A sink taking 3 bytes a call gets everything, in order.
        let sink = CountingSink { max: 3, ..Default::default() };
        let mut writer = Writer::new(sink, Until::lf());
        writer.feed("0123456789").await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(writer.get_ref().data, b"0123456789\n");
        assert_eq!(writer.get_ref().writes, 4);
    });
}

#[test]
fn framed_with_codec_both_ways_over_tcp() {
    run(|| async {
        let (client, server) = tcp_pair().await;
        let echo = tokio::spawn(async move {
            let mut server = Framed::new(server, Codec::new(Until::crlf()));
            while let Some(line) = server.next().await {
                let line = line.unwrap();
                let mut reply = b"echo: ".to_vec();
                reply.extend_from_slice(&line);
                server.send(reply).await.unwrap();
            }
        });
        let mut client = Framed::new(client, Codec::new(Until::crlf()));
        for i in 0..20 {
            client.feed(format!("message {i}")).await.unwrap();
        }
        SinkExt::<String>::flush(&mut client).await.unwrap();
        for i in 0..20 {
            let reply = client.next().await.unwrap().unwrap();
            assert_eq!(reply, format!("echo: message {i}").as_bytes());
        }
        // An item the peer could not cut back out is refused.
        assert!(matches!(client.send("a\r\nb").await, Err(WriteError::Pack(PackError::TerminatorInFrame { .. }))));
        drop(client);
        echo.await.unwrap();
    });
}

#[test]
fn framed_netstructs_both_ways() {
    run(|| async {
        let (client, server) = tokio::io::duplex(7);
        let doubler = tokio::spawn(async move {
            let mut server = Framed::new(server, Codec::new(Packed::<Score>::new()));
            while let Some(score) = server.next().await {
                let score = score.unwrap();
                server.send(&Score { points: score.points * 2, ..score }).await.unwrap();
            }
        });
        let mut client = Framed::new(client, Codec::new(Packed::<Score>::new()));
        for player in 0..30u8 {
            client.send(&Score { player, points: player.into() }).await.unwrap();
            let back = client.next().await.unwrap().unwrap();
            assert_eq!(back, Score { player, points: 2 * u32::from(player) });
        }
        drop(client);
        doubler.await.unwrap();
    });
}

#[test]
fn framed_read_overflow_and_truncation() {
    run(|| async {
        // The decoder stops at the limit with an overflow.
        let input = vec![b'q'; 100_000];
        let mut lines = FramedRead::new(&input[..], Codec::new(Until::lf()).with_buffer_size(1024));
        let error = lines.next().await.unwrap().unwrap_err();
        assert!(matches!(error, ReadError::Frame(FrameError::Overflow { limit: 1024, .. })), "{error:?}");

        // Bytes left at the end are a truncated frame.
        let mut lines = FramedRead::new(&b"ok\nrest"[..], Codec::new(Until::lf()));
        assert_eq!(&lines.next().await.unwrap().unwrap()[..], b"ok");
        let error = lines.next().await.unwrap().unwrap_err();
        assert!(matches!(error, ReadError::Frame(FrameError::Truncated { buffered: 4 })), "{error:?}");

        // Raw hands out whatever is buffered, and ends cleanly.
        let mut raw = FramedRead::new(&b"anything"[..], Codec::new(Raw));
        assert_eq!(&raw.next().await.unwrap().unwrap()[..], b"anything");
        assert!(raw.next().await.is_none());
    });
}

#[test]
fn framed_codec_switch_with_map_codec() {
    run(|| async {
        let (mut client, server) = tcp_pair().await;
        client.write_all(b"SIZE 4\nbodyAFTER\n").await.unwrap();
        drop(client);
        let mut framed = Framed::new(server, Codec::new(Until::lf()));
        assert_eq!(&framed.next().await.unwrap().unwrap()[..], b"SIZE 4");
        let mut framed = framed.map_codec(|codec| codec.read_delimiter(Count::new(4).unwrap()));
        assert_eq!(&framed.next().await.unwrap().unwrap()[..], b"body");
        let mut framed = framed.map_codec(|codec| codec.read_delimiter(Until::lf()));
        assert_eq!(&framed.next().await.unwrap().unwrap()[..], b"AFTER");
        assert!(framed.next().await.is_none());
    });
}

/// The reader goes on from a sans-IO framer's bytes.
#[test]
fn reader_from_framer() {
    run(|| async {
        let mut framer = pants::Framer::new(Until::lf()).with_buffer_size(128);
        framer.push(b"first\nsec");
        assert_eq!(framer.next_frame().unwrap(), Some(&b"first"[..]));
        let mut reader = Reader::from_framer(&b"ond\n"[..], framer, Until::lf());
        assert_eq!(reader.buffer_size(), 128);
        assert_eq!(reader.next_frame().await.unwrap(), Some(&b"second"[..]));
        assert_eq!(reader.next_frame().await.unwrap(), None);
    });
}

/// `next_frame`'s future is `Send` when the source and the delimiter are:
/// a reader can live in a task of tokio's multi-thread runtime.
#[test]
fn next_frame_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut reader = Reader::new(tokio::io::empty(), Until::lf());
    let future = reader.next_frame();
    assert_send(&future);
}
