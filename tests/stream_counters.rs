//! Per-stream counters over real loopback sockets: exact byte and frame
//! counts for known exchanges (every write path, a delimiter switch, TLS),
//! queued bytes while the peer does not read, the engine's view by id, and
//! a server's accepted and refused totals.
//!
//! Peers are plain `std` sockets on helper threads; the engine runs on the
//! test thread. Every wait is bounded (see `common::WAIT`).

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use common::{accept, join, listener, peer, read_all, wait, IO_TIMEOUT};
use pants::delimiter::{Count, Until};
use pants::stream::StreamCounters;
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError, StreamId};

type Seen = Rc<RefCell<Vec<StreamCounters>>>;

/// Answers each line with "ok:" and the line; records its counters in
/// `on_read` (each frame) and in `on_close` (the last entry).
struct Replier {
    seen: Seen,
    closed: Seen,
}

impl Handler for Replier {
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.closed.borrow_mut().push(stream.counters());
    }
}

impl Read<Until> for Replier {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.seen.borrow_mut().push(stream.counters());
        stream.send([&b"ok:"[..], line].concat()).unwrap();
    }
}

fn counters(bytes_read: u64, bytes_written: u64, frames_read: u64, queued: u64) -> (u64, u64, u64, u64) {
    (bytes_read, bytes_written, frames_read, queued)
}

fn tuple(c: StreamCounters) -> (u64, u64, u64, u64) {
    (c.bytes_read, c.bytes_written, c.frames_read, c.queued)
}

fn address_of(engine: &Engine, server: StreamId) -> std::net::SocketAddr {
    match engine.local_address(server).unwrap() {
        Address::Ip(address) => address,
        other => panic!("not an IP address: {other}"),
    }
}

#[test]
fn exact_counts_for_a_known_exchange_from_the_handler_and_the_engine() {
    let engine = Engine::new().unwrap();
    let (seen, closed) = (Seen::default(), Seen::default());
    let (s, c) = (seen.clone(), closed.clone());
    let server = Server::from_fn(move |_| {
        Some(Stream::new(Replier { seen: s.clone(), closed: c.clone() }).read_delimiter(Until::lf()))
    })
    .listen(&engine, "127.0.0.1:0")
    .unwrap();
    let address = address_of(&engine, server);

    let (done_tx, done_rx) = mpsc::channel();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let client = peer(move || {
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        socket.write_all(b"a\nbb\nccc\n").unwrap();
        let mut replies = BufReader::new(socket.try_clone().unwrap());
        let mut got = String::new();
        for _ in 0..3 {
            replies.read_line(&mut got).unwrap();
        }
        done_tx.send(got).unwrap();
        // Open until the test has looked at the counters.
        close_rx.recv_timeout(IO_TIMEOUT).unwrap();
    });

    let mut replies = None;
    wait(&engine, "the replies", || {
        replies = replies.take().or_else(|| done_rx.try_recv().ok());
        replies.is_some()
    });
    assert_eq!(replies.unwrap(), "ok:a\nok:bb\nok:ccc\n");

    // 2 + 3 + 4 bytes read in 3 frames; 5 + 6 + 7 bytes written.
    let ids = engine.connections(server).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(tuple(engine.counters(ids[0]).unwrap()), counters(9, 18, 3, 0));
    // Frames are counted before on_read sees them; the bytes of all three
    // lines arrived in one read.
    let frames: Vec<u64> = seen.borrow().iter().map(|c| c.frames_read).collect();
    assert_eq!(frames, [1, 2, 3]);

    close_tx.send(()).unwrap();
    join(&engine, client);
    wait(&engine, "on_close", || !closed.borrow().is_empty());
    assert_eq!(tuple(closed.borrow()[0]), counters(9, 18, 3, 0));
    // Gone once closed (the totals are read in on_close).
    wait(&engine, "the stream to be dropped", || engine.connections(server).unwrap().is_empty());
    assert!(matches!(engine.counters(ids[0]), Err(StreamError::NoSuchStream(_))));
    // A server has counters of its own.
    assert!(matches!(engine.counters(server), Err(StreamError::WrongHandler(_))));
    let totals = engine.server_counters(server).unwrap();
    assert_eq!((totals.accepted, totals.refused, totals.open), (1, 0, 0));
}

/// Writes through every write path once connected, then closes.
struct Sender {
    file: std::fs::File,
    closed: Seen,
}

impl Handler for Sender {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_now(b"hello").unwrap(); // straight to the socket
        stream.write_vec(vec![7; 20_000]).unwrap(); // its own chunk
        stream.write(b"tail").unwrap(); // coalesced
        stream.write_file(&self.file, 0, 0).unwrap(); // sendfile
        stream.close();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.closed.borrow_mut().push(stream.counters());
    }
}

impl Read<pants::delimiter::Raw> for Sender {
    fn on_read(&mut self, _stream: &mut Stream<Self, pants::delimiter::Raw>, _chunk: &[u8]) {}
}

#[test]
fn every_write_path_counts_the_bytes_the_socket_took() {
    let path = std::env::temp_dir().join(format!("pants-counters-{}", std::process::id()));
    std::fs::write(&path, vec![1u8; 1000]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let engine = Engine::new().unwrap();
    let (listener, address) = listener();
    let got = peer(move || read_all(accept(&listener)).0.len());
    let closed = Seen::default();
    Stream::new(Sender { file, closed: closed.clone() }).connect(&engine, address).unwrap();
    let received = join(&engine, got);
    wait(&engine, "on_close", || !closed.borrow().is_empty());
    assert_eq!(received, 5 + 20_000 + 4 + 1000);
    assert_eq!(tuple(closed.borrow()[0]), counters(0, 5 + 20_000 + 4 + 1000, 0, 0));
}

/// Queues `total` bytes once connected.
struct Flood {
    total: usize,
}

impl Handler for Flood {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_vec(vec![b'x'; self.total]).unwrap();
    }
}

impl Read<pants::delimiter::Raw> for Flood {
    fn on_read(&mut self, _stream: &mut Stream<Self, pants::delimiter::Raw>, _chunk: &[u8]) {}
}

#[test]
fn queued_bytes_while_the_peer_does_not_read() {
    // More than loopback's socket buffers hold on both sides.
    const TOTAL: usize = 48 << 20;
    let engine = Engine::new().unwrap();
    let (listener, address) = listener();
    let (read_tx, read_rx) = mpsc::channel::<()>();
    let reader = peer(move || {
        let socket = accept(&listener);
        // Not a byte read until told.
        read_rx.recv_timeout(IO_TIMEOUT).unwrap();
        let mut socket = socket;
        let mut left = TOTAL;
        let mut chunk = vec![0; 1 << 20];
        while left > 0 {
            let n = socket.read(&mut chunk).unwrap();
            assert!(n > 0, "end of stream with {left} bytes to go");
            left -= n;
        }
    });
    let id = Stream::new(Flood { total: TOTAL }).connect(&engine, address).unwrap();
    wait(&engine, "the first bytes sent", || engine.counters(id).is_ok_and(|c| c.bytes_written > 0));
    // Until the socket is full: nothing more goes out for a while.
    let mut last = 0;
    let full = (0..400).any(|_| {
        common::run_for(&engine, Duration::from_millis(50));
        let written = engine.counters(id).unwrap().bytes_written;
        std::mem::replace(&mut last, written) == written
    });
    assert!(full, "the socket never filled");
    let stalled = engine.counters(id).unwrap();
    assert!(stalled.queued > 0, "{stalled:?}");
    assert!(stalled.bytes_written < TOTAL as u64, "{stalled:?}");
    assert_eq!(stalled.bytes_written + stalled.queued, TOTAL as u64, "{stalled:?}");
    assert_eq!(stalled.bytes_read, 0);
    assert_eq!(engine.with_stream::<Flood, _>(id, |_, stream| stream.queued()).unwrap(), stalled.queued);

    read_tx.send(()).unwrap();
    wait(&engine, "the queue to drain", || engine.counters(id).is_ok_and(|c| c.queued == 0));
    assert_eq!(tuple(engine.counters(id).unwrap()), counters(0, TOTAL as u64, 0, 0));
    join(&engine, reader);
}

/// "LEN n" lines, each followed by an n-byte body (a switch to `Count` and
/// back); records each frame and its count.
struct Switcher {
    frames: Rc<RefCell<Vec<(String, u64)>>>,
    closed: Seen,
}

impl Handler for Switcher {
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.closed.borrow_mut().push(stream.counters());
    }
}

impl Read<Until> for Switcher {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.frames.borrow_mut().push((String::from_utf8_lossy(line).into_owned(), stream.counters().frames_read));
        if let Some(n) = line.strip_prefix(b"LEN ") {
            let n = std::str::from_utf8(n).unwrap().parse().unwrap();
            stream.read_delimiter(Count::new(n).unwrap());
        }
    }
}

impl Read<Count> for Switcher {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
        self.frames.borrow_mut().push((String::from_utf8_lossy(body).into_owned(), stream.counters().frames_read));
        stream.write(b"ack").unwrap();
        stream.read_delimiter(Until::lf());
    }
}

#[test]
fn counters_run_on_across_delimiter_switches() {
    let engine = Engine::new().unwrap();
    let (frames, closed) = (Rc::new(RefCell::new(Vec::new())), Seen::default());
    let (f, c) = (frames.clone(), closed.clone());
    let server = Server::from_fn(move |_| {
        Some(Stream::new(Switcher { frames: f.clone(), closed: c.clone() }).read_delimiter(Until::lf()))
    })
    .listen(&engine, "127.0.0.1:0")
    .unwrap();
    let address = address_of(&engine, server);
    let client = peer(move || {
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        // One write: every switch cuts bytes already buffered.
        socket.write_all(b"LEN 5\nhelloLEN 3\nabcbye\n").unwrap();
        socket.shutdown(std::net::Shutdown::Write).unwrap();
        read_all(socket).0
    });
    let replies = join(&engine, client);
    wait(&engine, "on_close", || !closed.borrow().is_empty());
    assert_eq!(replies, b"ackack");
    let expected: Vec<(String, u64)> =
        ["LEN 5", "hello", "LEN 3", "abc", "bye"].iter().zip(1..).map(|(s, n)| (s.to_string(), n)).collect();
    assert_eq!(*frames.borrow(), expected);
    assert_eq!(tuple(closed.borrow()[0]), counters(24, 6, 5, 0));
}

#[test]
fn a_server_counts_what_it_accepted_and_refused() {
    let engine = Engine::new().unwrap();
    let mut peers = 0;
    let (seen, closed) = (Seen::default(), Seen::default());
    let server = Server::from_fn(move |_| {
        peers += 1;
        // Every second peer is refused.
        (peers % 2 == 1)
            .then(|| Stream::new(Replier { seen: seen.clone(), closed: closed.clone() }).read_delimiter(Until::lf()))
    })
    .listen(&engine, "127.0.0.1:0")
    .unwrap();
    let address = address_of(&engine, server);
    let mut sockets = Vec::new();
    for expected in 1..=3u64 {
        sockets.push(std::net::TcpStream::connect(address).unwrap());
        wait(&engine, "the peer to be accepted or refused", || {
            engine.server_counters(server).is_ok_and(|c| c.accepted + c.refused == expected)
        });
    }
    let totals = engine.server_counters(server).unwrap();
    assert_eq!((totals.accepted, totals.refused, totals.open), (2, 1, 2));
    assert!(matches!(
        engine.server_counters(engine.connections(server).unwrap()[0]),
        Err(StreamError::WrongHandler(_))
    ));
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use pants::tls::{TlsClient, TlsServer};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    /// A throw-away CA and a leaf for `localhost`/127.0.0.1 signed by it.
    fn pki() -> (TlsServer, TlsClient) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let server =
            TlsServer::builder().certificate(leaf.pem().as_bytes(), key.serialize_pem().as_bytes()).build().unwrap();
        let client = TlsClient::builder().root_certificates(ca.pem().as_bytes()).build().unwrap();
        (server, client)
    }

    /// Sends three lines once the handshake is done; closes after the
    /// third reply.
    struct Pinger {
        replies: usize,
        closed: Seen,
    }

    impl Handler for Pinger {
        fn on_ssl_handshake(&mut self, stream: &mut Stream<Self>) {
            for _ in 0..3 {
                stream.write(b"ping\n").unwrap();
            }
        }

        fn on_close(&mut self, stream: &mut Stream<Self>) {
            self.closed.borrow_mut().push(stream.counters());
        }
    }

    impl Read<Until> for Pinger {
        fn on_read(&mut self, stream: &mut Stream<Self, Until>, _line: &[u8]) {
            self.replies += 1;
            if self.replies == 3 {
                stream.close();
            }
        }
    }

    #[test]
    fn tls_streams_count_plaintext() {
        let (tls_server, tls_client) = pki();
        let engine = Engine::new().unwrap();
        let (seen, server_closed) = (Seen::default(), Seen::default());
        let c = server_closed.clone();
        let server = Server::from_fn(move |_| {
            Some(Stream::new(Replier { seen: seen.clone(), closed: c.clone() }).read_delimiter(Until::lf()))
        })
        .tls(tls_server)
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
        let address = address_of(&engine, server);
        let client_closed = Seen::default();
        Stream::new(Pinger { replies: 0, closed: client_closed.clone() })
            .read_delimiter(Until::lf())
            .tls(tls_client)
            .connect(&engine, address)
            .unwrap();
        wait(&engine, "both ends to close", || {
            !client_closed.borrow().is_empty() && !server_closed.borrow().is_empty()
        });
        // "ping\n" x 3 one way, "ok:ping\n" x 3 the other, without the
        // records' framing or the handshake.
        assert_eq!(tuple(client_closed.borrow()[0]), counters(24, 15, 3, 0));
        assert_eq!(tuple(server_closed.borrow()[0]), counters(15, 24, 3, 0));
    }
}
