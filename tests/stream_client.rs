//! The client side of streams over real loopback sockets: connecting (every
//! address form, failures, retries, attaching existing sockets) and writing
//! (state errors, `on_write`, packed values, files, ordering of one batch).
//!
//! Peers are plain `std` sockets on helper threads; the engine runs on the
//! test thread. Every wait is bounded (see `common::WAIT`).

mod common;

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{kind, Log, Scratch};
use pants::delimiter::{Packed, Raw, Until};
use pants::pack::Zerocopy;
use pants::{Address, Engine, Handler, NetStruct, PackError, Read, Stream, StreamError, StreamId};

// ---------------------------------------------------------------------------
// A recording client
// ---------------------------------------------------------------------------

/// Records every callback. On connect it writes `greeting`; on a connect
/// error it connects to `retry` (once) instead of closing.
#[derive(Default)]
struct Client {
    log: Log,
    greeting: Vec<u8>,
    retry: Option<Address>,
    /// The full text of each error, for checks beyond its variant.
    errors: Rc<RefCell<Vec<String>>>,
}

impl Client {
    fn new(log: &Log) -> Self {
        Client { log: log.clone(), ..Client::default() }
    }
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.log.push("connect");
        if !self.greeting.is_empty() {
            stream.write(&self.greeting).unwrap();
        }
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("connect_error {}", kind(&error)));
        self.errors.borrow_mut().push(format!("{error:?}"));
        match self.retry.take() {
            Some(address) => stream.connect(address).expect("connect again after a failed attempt"),
            None => stream.close(),
        }
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {}", kind(&error)));
        self.errors.borrow_mut().push(format!("{error:?}"));
        stream.close();
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Client {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.log.push(format!("read {}", String::from_utf8_lossy(data)));
    }
}

impl Read<Until> for Client {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
    }
}

/// A peer that accepts one connection, reads `expect.len()` bytes, answers
/// `reply`, then waits for our end of stream. Returns what it read.
fn answering_peer(
    listener: TcpListener,
    expect: &'static [u8],
    reply: &'static [u8],
) -> std::thread::JoinHandle<Vec<u8>> {
    common::peer(move || {
        let mut s = common::accept(&listener);
        let got = common::read_n(&s, expect.len());
        s.write_all(reply).unwrap();
        let (rest, _) = common::read_all(&s);
        assert!(rest.is_empty(), "unexpected bytes after the greeting: {rest:?}");
        got
    })
}

/// Connects a `Client` that greets, waits for the reply, closes, and
/// returns the stream's view of the addresses.
fn greet_via(engine: &Engine, address: impl Into<Address>, listener: TcpListener) -> (Log, Vec<u8>) {
    let peer = answering_peer(listener, b"hello", b"welcome");
    let log = Log::new();
    let client = Client { greeting: b"hello".to_vec(), ..Client::new(&log) };
    let id = Stream::new(client).connect(engine, address).unwrap();
    common::wait(engine, "the reply", || log.contains("read welcome"));
    engine.close_stream(id, true).unwrap();
    common::wait(engine, "on_close", || log.contains("close"));
    let got = common::join(engine, peer);
    (log, got)
}

// ---------------------------------------------------------------------------
// 1. Connecting
// ---------------------------------------------------------------------------

#[test]
fn refused_connect_reports_connect_error_then_closes_once() {
    let engine = Engine::new().unwrap();
    let closed = common::closed_port();
    let port = closed.port();
    let log = Log::new();
    let client = Client::new(&log);
    let errors = client.errors.clone();
    let id = Stream::new(client).connect(&engine, (Ipv4Addr::LOCALHOST, port)).unwrap();
    // Nothing is reported from inside connect(): only from the loop.
    assert!(log.events().is_empty(), "{log:?}");
    common::wait(&engine, "on_close", || log.contains("close"));
    common::run_for(&engine, Duration::from_millis(50));
    assert_eq!(log.events(), ["connect_error Connect", "close"]);
    let error = &errors.borrow()[0];
    assert!(error.contains("ConnectionRefused"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert_eq!(
        engine.with_stream::<Client, _>(id, |_, _| ()).unwrap_err().to_string(),
        StreamError::NoSuchStream(id).to_string()
    );
    assert_eq!(engine.channel_count(), 0);
}

#[test]
fn unresolvable_host_reports_resolve_error() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let client = Client::new(&log);
    let errors = client.errors.clone();
    // `.invalid` never resolves (RFC 6761); the lookup runs on a helper
    // thread, so a slow resolver can only delay the answer (bounded by the
    // wait below), never block the loop. Nothing is reported from connect().
    Stream::new(client).connect(&engine, "nonexistent.invalid:80").unwrap();
    assert!(log.events().is_empty());
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.events(), ["connect_error Resolve", "close"]);
    assert!(errors.borrow()[0].contains("nonexistent.invalid"), "{:?}", errors.borrow());
}

#[test]
fn missing_unix_path_reports_connect_error() {
    let engine = Engine::new().unwrap();
    let scratch = Scratch::new("missing");
    let log = Log::new();
    let client = Client::new(&log);
    let errors = client.errors.clone();
    Stream::new(client).connect(&engine, scratch.path("nobody.sock")).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.events(), ["connect_error Connect", "close"]);
    assert!(errors.borrow()[0].contains("NotFound"), "{:?}", errors.borrow());
}

#[test]
fn host_name_connects_trying_every_resolved_address() {
    use std::net::ToSocketAddrs;
    let engine = Engine::new().unwrap();
    // Listen on IPv4 only: if `localhost` resolves to ::1 first, that
    // attempt is refused and the stream must fall back to 127.0.0.1.
    let (listener, addr) = common::listener();
    let resolved: Vec<SocketAddr> = ("localhost", addr.port()).to_socket_addrs().unwrap().collect();
    if resolved.first().is_some_and(SocketAddr::is_ipv6) {
        eprintln!("localhost resolves to {resolved:?}: exercising the fallback from ::1 to 127.0.0.1");
    } else {
        eprintln!("localhost resolves to {resolved:?} only: the fallback path is not exercised here");
    }
    let (log, got) = greet_via(&engine, ("localhost", addr.port()), listener);
    assert_eq!(got, b"hello");
    assert_eq!(log.events(), ["connect", "read welcome", "close"]);
}

#[test]
fn every_ipv4_address_form_connects() {
    let engine = Engine::new().unwrap();
    type Form = fn(u16) -> Address;
    let forms: [(&str, Form); 6] = [
        ("Address::Port", Address::Port),
        ("\"127.0.0.1:port\"", |p| Address::from(format!("127.0.0.1:{p}").as_str())),
        ("(Ipv4Addr, port)", |p| Address::from((Ipv4Addr::LOCALHOST, p))),
        ("(\"127.0.0.1\", port)", |p| Address::from(("127.0.0.1", p))),
        ("SocketAddr", |p| Address::from(SocketAddr::from((Ipv4Addr::LOCALHOST, p)))),
        ("\"localhost:port\"", |p| Address::from(format!("localhost:{p}"))),
    ];
    for (name, form) in forms {
        let (listener, addr) = common::listener();
        let address = form(addr.port());
        let (log, got) = greet_via(&engine, address, listener);
        assert_eq!(got, b"hello", "{name}");
        assert_eq!(log.events(), ["connect", "read welcome", "close"], "{name}");
    }
    assert_eq!(engine.channel_count(), 0);
}

#[test]
fn ipv6_loopback_connects() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let engine = Engine::new().unwrap();
    let (log, got) = greet_via(&engine, Address::ipv6(Ipv6Addr::LOCALHOST, port, 0, 0), listener);
    assert_eq!(
        (got.as_slice(), log.events()),
        (&b"hello"[..], vec!["connect".to_string(), "read welcome".into(), "close".into()])
    );

    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (log, got) = greet_via(&engine, format!("[::1]:{port}"), listener);
    assert_eq!(got, b"hello");
    assert_eq!(log.events(), ["connect", "read welcome", "close"]);

    // Flow info is carried through to connect(); without IPV6_FLOWINFO_SEND
    // the kernel ignores it, so the connection is the same.
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (log, got) = greet_via(&engine, Address::ipv6(Ipv6Addr::LOCALHOST, port, 5, 0), listener);
    assert_eq!(got, b"hello");
    assert_eq!(log.events(), ["connect", "read welcome", "close"]);
}

/// The (local, remote) addresses a stream saw.
type Seen = Rc<RefCell<Option<(Option<Address>, Option<Address>)>>>;

/// Reports its addresses when connected.
struct Where {
    log: Log,
    seen: Seen,
}

impl Handler for Where {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.log.push("connect");
        *self.seen.borrow_mut() = Some((stream.local_address(), stream.remote_address()));
        stream.write(b"ping").unwrap();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Where {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.log.push(format!("read {}", String::from_utf8_lossy(data)));
        stream.close();
    }
}

#[test]
fn ipv6_remote_address_is_reported() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let addr = listener.local_addr().unwrap();
    let engine = Engine::new().unwrap();
    let peer = common::peer(move || {
        let mut s = common::accept(&listener);
        assert_eq!(common::read_n(&s, 4), b"ping");
        s.write_all(b"pong").unwrap();
        common::read_all(&s).0
    });
    let log = Log::new();
    let seen = Rc::new(RefCell::new(None));
    Stream::new(Where { log: log.clone(), seen: seen.clone() }).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert!(common::join(&engine, peer).is_empty());
    let (local, remote) = seen.borrow().clone().unwrap();
    assert_eq!(remote, Some(Address::Ip(addr)));
    assert!(matches!(local, Some(Address::Ip(SocketAddr::V6(a))) if *a.ip() == Ipv6Addr::LOCALHOST), "{local:?}");
}

fn accept_unix(listener: &UnixListener) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + common::IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(common::IO_TIMEOUT)).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

#[test]
fn unix_path_connects_and_reports_addresses() {
    let engine = Engine::new().unwrap();
    let scratch = Scratch::new("unix-connect");
    let path = scratch.path("server.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let peer = common::peer(move || {
        let mut s = accept_unix(&listener);
        assert_eq!(common::read_n(&s, 4), b"ping");
        s.write_all(b"pong").unwrap();
        common::read_all(&s).0
    });
    let log = Log::new();
    let seen = Rc::new(RefCell::new(None));
    Stream::new(Where { log: log.clone(), seen: seen.clone() }).connect(&engine, path.as_path()).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert!(common::join(&engine, peer).is_empty());
    assert_eq!(log.events(), ["connect", "read pong", "close"]);
    let (local, remote) = seen.borrow().clone().unwrap();
    assert_eq!(remote, Some(Address::Unix(path)));
    // Our end is unnamed.
    assert_eq!(local, Some(Address::Unix(Default::default())));
}

#[test]
fn attach_tcp_and_unix_announce_connect_from_the_loop_before_reading() {
    let engine = Engine::new().unwrap();

    let (ours, mut theirs) = common::tcp_pair();
    // Bytes already waiting when the socket is attached.
    theirs.write_all(b"early\n").unwrap();
    let log = Log::new();
    let tcp = Stream::new(Client::new(&log)).read_delimiter(Until::lf()).attach_tcp(&engine, ours).unwrap();
    assert!(log.events().is_empty(), "on_connect must not run inside attach_tcp: {log:?}");

    let (ours, mut theirs_unix) = common::unix_pair();
    theirs_unix.write_all(b"early too\n").unwrap();
    let log_unix = Log::new();
    let unix = Stream::new(Client::new(&log_unix)).read_delimiter(Until::lf()).attach_unix(&engine, ours).unwrap();
    assert!(log_unix.events().is_empty(), "{log_unix:?}");

    common::wait(&engine, "both reads", || log.len() == 2 && log_unix.len() == 2);
    assert_eq!(log.events(), ["connect", "line early"]);
    assert_eq!(log_unix.events(), ["connect", "line early too"]);

    // The attached streams are fully working: they write, and close.
    engine.write_to(tcp, b"bye").unwrap();
    engine.write_to(unix, b"bye").unwrap();
    engine.close_stream(tcp, true).unwrap();
    engine.close_stream(unix, true).unwrap();
    common::wait(&engine, "on_close", || log.contains("close") && log_unix.contains("close"));
    theirs.shutdown(Shutdown::Write).unwrap();
    theirs_unix.shutdown(Shutdown::Write).unwrap();
    assert_eq!(common::read_all(&theirs).0, b"bye");
    assert_eq!(common::read_all(&theirs_unix).0, b"bye");
}

#[test]
fn data_arriving_with_the_connection_comes_after_on_connect_every_frame() {
    // Pants bug 8: on_read for one frame ran before on_connect, and the
    // other frames waited for more data.
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = common::peer(move || {
        let s = common::accept(&listener);
        common::send_and_shutdown(&s, b"one\ntwo\nthree\n");
        common::read_all(&s).0
    });
    let log = Log::new();
    Stream::new(Client::new(&log)).read_delimiter(Until::lf()).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert!(common::join(&engine, peer).is_empty());
    assert_eq!(log.events(), ["connect", "line one", "line two", "line three", "close"]);
}

/// Calls `connect` from inside its own callbacks and records the result.
struct Reconnector {
    log: Log,
    target: Address,
}

impl Reconnector {
    fn record(&self, when: &str, result: Result<(), StreamError>) {
        self.log.push(format!("{when}: {}", result.map_or_else(|e| kind(&e).to_string(), |()| "ok".into())));
    }
}

impl Handler for Reconnector {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let result = stream.connect(self.target.clone());
        self.record("in on_connect", result);
        stream.write(b"x").unwrap();
    }
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        let result = stream.connect(self.target.clone());
        self.record("in on_close", result);
    }
}

impl Read<Raw> for Reconnector {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, _data: &[u8]) {
        stream.close();
        let result = stream.connect(self.target.clone());
        self.record("after close()", result);
    }
}

#[test]
fn connect_on_an_active_or_closed_stream_is_an_error() {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = common::peer(move || {
        let mut s = common::accept(&listener);
        assert_eq!(common::read_n(&s, 1), b"x");
        s.write_all(b"y").unwrap();
        common::read_all(&s).0
    });
    let log = Log::new();
    let id = Stream::new(Reconnector { log: log.clone(), target: Address::Ip(addr) }).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.len() == 3);
    assert!(common::join(&engine, peer).is_empty());
    assert_eq!(log.events(), ["in on_connect: AlreadyActive", "after close(): Closed", "in on_close: Closed"]);
    // Only one connection was ever made (the peer thread accepted one).
    assert!(matches!(engine.with_stream::<Reconnector, _>(id, |_, _| ()), Err(StreamError::NoSuchStream(_))));
}

#[test]
fn retry_after_connect_error_from_inside_the_callback() {
    // Pants bug 24: a reconnect after a non-closing on_connect_error raised
    // "Cannot replace existing socket".
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = answering_peer(listener, b"hello", b"welcome");
    let log = Log::new();
    let client = Client { greeting: b"hello".to_vec(), retry: Some(Address::Ip(addr)), ..Client::new(&log) };
    let closed = common::closed_port();
    let id = Stream::new(client).connect(&engine, ("127.0.0.1", closed.port())).unwrap();
    common::wait(&engine, "the reply", || log.contains("read welcome"));
    engine.close_stream(id, true).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(common::join(&engine, peer), b"hello");
    assert_eq!(log.events(), ["connect_error Connect", "connect", "read welcome", "close"]);
}

/// Keeps the stream after a connect error, so that it can be connected
/// again later from outside.
struct Patient {
    log: Log,
}

impl Handler for Patient {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.log.push("connect");
        stream.write(b"hello").unwrap();
    }
    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("connect_error {}", kind(&error)));
        // Not connected, not closed: writes are refused as "not connected".
        assert!(matches!(stream.write(b"no"), Err(StreamError::NotConnected(_))));
        assert!(!stream.is_connected() && !stream.is_closed());
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Patient {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.log.push(format!("read {}", String::from_utf8_lossy(data)));
    }
}

#[test]
fn retry_after_connect_error_from_outside() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let id = Stream::new(Patient { log: log.clone() }).connect(&engine, "nonexistent.invalid:80").unwrap();
    common::wait(&engine, "the connect error", || log.contains("connect_error Resolve"));
    common::run_for(&engine, Duration::from_millis(20));
    assert_eq!(log.events(), ["connect_error Resolve"], "the stream stays, idle");

    // A second failure, then success: the same stream each time.
    let closed = common::closed_port();
    engine.with_stream::<Patient, _>(id, |_, s| s.connect(Address::Port(closed.port()))).unwrap().unwrap();
    common::wait(&engine, "the second connect error", || log.len() == 2);
    let (listener, addr) = common::listener();
    let peer = answering_peer(listener, b"hello", b"welcome");
    engine.with_stream::<Patient, _>(id, |_, s| s.connect(addr)).unwrap().unwrap();
    // Connecting again while connecting is refused.
    let again = engine.with_stream::<Patient, _>(id, |_, s| s.connect(addr)).unwrap();
    assert!(matches!(again, Err(StreamError::AlreadyActive)), "{again:?}");
    common::wait(&engine, "the reply", || log.contains("read welcome"));
    engine.close_stream(id, true).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(common::join(&engine, peer), b"hello");
    assert_eq!(log.events(), ["connect_error Resolve", "connect_error Connect", "connect", "read welcome", "close"]);
}

// ---------------------------------------------------------------------------
// 2. Writing
// ---------------------------------------------------------------------------

#[derive(NetStruct, Debug, PartialEq)]
struct Hello<'a> {
    id: u32,
    #[netstruct(len = u16)]
    name: &'a str,
    flags: [u8; 2],
}

#[derive(NetStruct, Debug, PartialEq)]
struct Tiny<'a> {
    #[netstruct(len = u8)]
    name: &'a str,
}

#[derive(zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
struct Header {
    kind: u8,
    len: zerocopy::big_endian::U16,
}

/// Checks each write method in each state it refuses.
struct WrongState {
    log: Log,
    file: std::fs::File,
}

impl WrongState {
    fn try_all(&self, stream: &mut Stream<Self>, when: &str) {
        let results = [
            ("write", stream.write(b"x")),
            ("write_now", stream.write_now(b"x")),
            ("write_vec", stream.write_vec(vec![1; 10])),
            ("write_packed", stream.write_packed(&Tiny { name: "x" })),
            ("write_file", stream.write_file(&self.file, 0, 0)),
            ("flush", stream.flush()),
        ];
        for (what, result) in results {
            let shown = match result {
                Ok(()) => "ok".to_string(),
                Err(StreamError::NotConnected(name)) | Err(StreamError::Closed(name)) if name != what => {
                    format!("wrong name {name}")
                }
                Err(e) => kind(&e).to_string(),
            };
            self.log.push(format!("{when} {what}: {shown}"));
        }
        assert_eq!(stream.queued(), 0);
    }
}

impl Handler for WrongState {
    fn on_connect_error(&mut self, stream: &mut Stream<Self>, _error: StreamError) {
        self.try_all(stream, "not connected");
        stream.close();
        self.try_all(stream, "closing");
    }
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.try_all(stream, "closed");
    }
}

impl Read<Raw> for WrongState {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn writes_on_unconnected_or_closed_streams_are_refused() {
    let engine = Engine::new().unwrap();
    let scratch = Scratch::new("wrong-state");
    let file = common::file_with(&scratch, "f", b"0123456789");
    let log = Log::new();
    let closed = common::closed_port();
    Stream::new(WrongState { log: log.clone(), file }).connect(&engine, Address::Port(closed.port())).unwrap();
    common::wait(&engine, "on_close", || log.len() == 18);
    let mut expected = Vec::new();
    for (when, error) in [("not connected", "NotConnected"), ("closing", "Closed"), ("closed", "Closed")] {
        for what in ["write", "write_now", "write_vec", "write_packed", "write_file", "flush"] {
            expected.push(format!("{when} {what}: {error}"));
        }
    }
    assert_eq!(log.events(), expected);
}

/// Writes `total` bytes in `batches` batches, one per `on_write`.
struct Bulk {
    log: Log,
    data: Rc<Vec<u8>>,
    batches: usize,
    sent: usize,
}

impl Bulk {
    fn next_batch(&mut self, stream: &mut Stream<Self>) {
        let size = self.data.len() / self.batches;
        let from = self.sent * size;
        stream.write(&self.data[from..from + size]).unwrap();
        self.sent += 1;
        // Queued, not sent yet: everything goes out after the callback.
        assert_eq!(stream.queued(), size as u64);
    }
}

impl Handler for Bulk {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.log.push("connect");
        self.next_batch(stream);
    }
    fn on_write(&mut self, stream: &mut Stream<Self>) {
        assert_eq!(stream.queued(), 0, "on_write with bytes still queued");
        self.log.push("write");
        if self.sent < self.batches {
            self.next_batch(stream);
        } else {
            stream.close();
        }
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Bulk {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn on_write_fires_once_per_drained_batch() {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let data = Rc::new(common::pattern(3 * 4 * 1024 * 1024, 7));
    let expected = data.as_ref().clone();
    // A slow reader, so that the 4 MiB batches cannot go out in one go.
    let peer = common::peer(move || {
        let s = common::accept(&listener);
        std::thread::sleep(Duration::from_millis(50));
        common::read_all(&s)
    });
    let log = Log::new();
    Stream::new(Bulk { log: log.clone(), data, batches: 3, sent: 0 }).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    let (got, end) = common::join(&engine, peer);
    end.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ");
    assert_eq!(log.events(), ["connect", "write", "write", "write", "close"]);
}

/// Sends packed values when connected, then reads the echo back typed.
struct Packer {
    log: Log,
}

impl Handler for Packer {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_packed(&Hello { id: 0x0102_0304, name: "pants", flags: [0xAA, 0x55] }).unwrap();
        stream.write_packed(&Zerocopy(&Header { kind: 9, len: zerocopy::big_endian::U16::new(0x0203) })).unwrap();
        let before = stream.queued();
        // A value that cannot be packed queues nothing.
        let long = "x".repeat(300);
        let error = stream.write_packed(&Tiny { name: &long }).unwrap_err();
        assert!(
            matches!(error, StreamError::Pack(PackError::TooLong { field: "name", len: 300, max: 255 })),
            "{error:?}"
        );
        assert_eq!(stream.queued(), before);
        stream.write_packed(&Hello { id: 7, name: "", flags: [0, 1] }).unwrap();
        // Sent now rather than after the callback: a few bytes fit at once.
        stream.flush().unwrap();
        assert_eq!(stream.queued(), 0);
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Packed<Hello<'static>>> for Packer {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Hello<'static>>>, hello: Hello<'_>) {
        self.log.push(format!("{hello:?}"));
        if hello.id == 7 {
            stream.close();
        }
    }
}

#[test]
fn write_packed_netstruct_and_zerocopy() {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let hello1: &[u8] = b"\x01\x02\x03\x04\x00\x05pants\xAA\x55";
    let header: &[u8] = b"\x09\x02\x03";
    let hello2: &[u8] = b"\x00\x00\x00\x07\x00\x00\x00\x01";
    let expected = [hello1, header, hello2].concat();
    let peer = common::peer(move || {
        let mut s = common::accept(&listener);
        let got = common::read_n(&s, expected.len());
        assert_eq!(got, expected);
        // Echo the two Hello messages back for typed reading.
        s.write_all(&[&got[..hello1.len()], &got[hello1.len() + header.len()..]].concat()).unwrap();
        common::read_all(&s).0
    });
    let log = Log::new();
    Stream::new(Packer { log: log.clone() }).read_delimiter(Packed::<Hello>::new()).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert!(common::join(&engine, peer).is_empty());
    assert_eq!(
        log.events(),
        [
            r#"Hello { id: 16909060, name: "pants", flags: [170, 85] }"#,
            r#"Hello { id: 7, name: "", flags: [0, 1] }"#,
            "close"
        ]
    );
}

/// Queues `plan` (files and byte strings) when connected, then closes.
struct FileSender {
    log: Log,
    plan: Vec<Piece>,
}

enum Piece {
    File(std::fs::File, u64, u64),
    Bytes(&'static [u8]),
    /// Truncates the file after it was queued, before it is sent.
    Truncate(std::fs::File),
}

impl Handler for FileSender {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        for piece in self.plan.drain(..) {
            match piece {
                Piece::File(file, offset, len) => {
                    let before = stream.queued();
                    stream.write_file(&file, offset, len).unwrap();
                    self.log.push(format!("queued {}", stream.queued() - before));
                    // The caller's handle may go: the stream keeps its own.
                    drop(file);
                }
                Piece::Bytes(bytes) => stream.write(bytes).unwrap(),
                Piece::Truncate(file) => file.set_len(0).unwrap(),
            }
        }
        stream.close();
    }
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {error}"));
        stream.close_now();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for FileSender {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

fn send_plan(plan: Vec<Piece>) -> (Vec<u8>, Log) {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = common::peer(move || {
        let s = common::accept(&listener);
        let (got, end) = common::read_all(&s);
        end.unwrap();
        got
    });
    let log = Log::new();
    Stream::new(FileSender { log: log.clone(), plan }).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    (common::join(&engine, peer), log)
}

#[test]
fn write_file_offsets_and_lengths() {
    let scratch = Scratch::new("file-ranges");
    let open = || common::file_with(&scratch, "digits", b"0123456789");
    let plan = vec![
        Piece::File(open(), 3, 0), // offset 3, to the end
        Piece::Bytes(b"|"),
        Piece::File(open(), 0, 4), // the first 4 bytes
        Piece::Bytes(b"|"),
        Piece::File(open(), 3, 4), // bytes 3..7
        Piece::Bytes(b"|"),
        Piece::File(open(), 0, 100), // longer than the file: the whole file
        Piece::Bytes(b"|"),
        Piece::File(open(), 20, 0), // beyond the end: nothing
        Piece::File(open(), 10, 5), // at the end: nothing
        Piece::Bytes(b"|end"),      // ...and the queue does not stall (Pants bug 14)
    ];
    let (got, log) = send_plan(plan);
    assert_eq!(String::from_utf8(got).unwrap(), "3456789|0123|3456|0123456789||end");
    assert_eq!(log.events(), ["queued 7", "queued 4", "queued 4", "queued 10", "queued 0", "queued 0", "close"]);
}

#[test]
fn write_file_of_a_file_that_shrank_skips_it_and_goes_on() {
    let scratch = Scratch::new("file-shrank");
    let file = common::file_with(&scratch, "big", &common::pattern(256 * 1024, 1));
    let handle = file.try_clone().unwrap();
    let plan = vec![Piece::Bytes(b"before|"), Piece::File(file, 0, 0), Piece::Truncate(handle), Piece::Bytes(b"after")];
    let (got, log) = send_plan(plan);
    assert_eq!(String::from_utf8(got).unwrap(), "before|after");
    assert_eq!(log.events(), ["queued 262144", "close"]);
}

#[test]
fn write_file_multi_mebibyte_byte_for_byte() {
    let scratch = Scratch::new("file-big");
    let data = common::pattern(6 * 1024 * 1024 + 12345, 3);
    let open = || common::file_with(&scratch, "big", &data);
    let plan = vec![
        Piece::File(open(), 0, 0),
        Piece::Bytes(b"--"),
        Piece::File(open(), 1_000_001, 3_000_000),
        Piece::Bytes(b"--"),
    ];
    let (got, log) = send_plan(plan);
    let expected = [&data[..], b"--", &data[1_000_001..4_000_001], b"--"].concat();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "file bytes differ");
    assert_eq!(log.events(), [format!("queued {}", data.len()).as_str(), "queued 3000000", "close"]);
}

#[test]
fn write_file_over_a_unix_socket() {
    let engine = Engine::new().unwrap();
    let scratch = Scratch::new("file-unix");
    let data = common::pattern(3 * 1024 * 1024 + 7, 11);
    let file = common::file_with(&scratch, "big", &data);
    let (ours, theirs) = common::unix_pair();
    let peer = common::peer(move || common::read_all(&theirs));
    let log = Log::new();
    let sender = FileSender { log: log.clone(), plan: vec![Piece::File(file, 5, 0), Piece::Bytes(b"!")] };
    // attach_unix: on_connect queues the file and closes.
    Stream::new(sender).attach_unix(&engine, ours).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    let (got, end) = common::join(&engine, peer);
    end.unwrap();
    assert!(got == [&data[5..], b"!"].concat(), "file bytes differ ({} bytes)", got.len());
}

/// One batch of mixed writes to itself and to another stream.
struct Batcher {
    log: Log,
    other: Rc<Cell<Option<StreamId>>>,
    file: Option<std::fs::File>,
    big: Vec<u8>,
}

impl Handler for Batcher {
    fn on_connect(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("connect");
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Batcher {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        if line != b"go" {
            return;
        }
        let engine = stream.engine().clone();
        let me = stream.id();
        let other = self.other.get().expect("the other stream's id");
        stream.write(b"<a1>").unwrap();
        engine.write_to(other, b"<to-b-1>").unwrap();
        stream.write_vec(std::mem::take(&mut self.big)).unwrap();
        // To itself through the engine: queued after this callback's writes.
        engine.write_to(me, b"<self-via-engine>").unwrap();
        stream.write_packed(&Tiny { name: "packed" }).unwrap();
        engine.write_to(other, b"<to-b-2>").unwrap();
        stream.write_file(self.file.as_ref().unwrap(), 0, 0).unwrap();
        stream.write(b"<a2>").unwrap();
        engine.write_to(other, b"<to-b-3>").unwrap();
    }
}

#[test]
fn one_batch_of_mixed_writes_arrives_in_order_with_cross_stream_writes() {
    let engine = Engine::new().unwrap();
    let scratch = Scratch::new("batch");
    let file_data = common::pattern(200_000, 5);
    let file = common::file_with(&scratch, "f", &file_data);
    let big = common::pattern(100_000, 6);
    let expected_a = [&b"<a1>"[..], &big, b"\x06packed", &file_data, b"<a2>", b"<self-via-engine>"].concat();
    let expected_b = b"<to-b-1><to-b-2><to-b-3>".to_vec();

    let (listener, addr) = common::listener();
    let (len_a, len_b) = (expected_a.len(), expected_b.len());
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer = common::peer(move || {
        let mut a = common::accept(&listener);
        let b = common::accept(&listener);
        // Once both streams are connected, a starts its batch.
        go_rx.recv_timeout(common::IO_TIMEOUT).unwrap();
        a.write_all(b"go\n").unwrap();
        let got_a = common::read_n(&a, len_a);
        let got_b = common::read_n(&b, len_b);
        // The sockets stay open: the streams must not see an end of stream.
        (got_a, got_b, a, b)
    });
    let other = Rc::new(Cell::new(None));
    let log_a = Log::new();
    let log_b = Log::new();
    Stream::new(Batcher { log: log_a.clone(), other: other.clone(), file: Some(file), big: big.clone() })
        .read_delimiter(Until::lf())
        .connect(&engine, addr)
        .unwrap();
    // Wait until a is connected, so that the peer accepts a first.
    common::wait(&engine, "a connected", || log_a.contains("connect"));
    let b = Stream::new(Batcher { log: log_b.clone(), other: Rc::default(), file: None, big: Vec::new() })
        .read_delimiter(Until::lf())
        .connect(&engine, addr)
        .unwrap();
    other.set(Some(b));
    common::wait(&engine, "b connected", || log_b.contains("connect"));
    go_tx.send(()).unwrap();
    let (got_a, got_b, _a, _b) = common::join(&engine, peer);
    assert_eq!(got_a.len(), expected_a.len());
    assert!(got_a == expected_a, "stream a's bytes are out of order or damaged");
    assert_eq!(String::from_utf8(got_b).unwrap(), String::from_utf8(expected_b).unwrap());
    assert_eq!(log_a.events(), ["connect", "line go"]);
    assert_eq!(engine.channel_count(), 2);
}

/// Writes to itself through the engine from its own callback, then closes
/// (in the same callback, or in the on_write that follows).
struct SelfWriter {
    log: Log,
    close_in_on_read: bool,
}

impl Handler for SelfWriter {
    fn on_write(&mut self, stream: &mut Stream<Self>) {
        self.log.push("write");
        stream.close();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for SelfWriter {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, _data: &[u8]) {
        let engine = stream.engine().clone();
        stream.write(b"<direct>").unwrap();
        engine.write_to(stream.id(), b"<via engine>").unwrap();
        if self.close_in_on_read {
            stream.close();
        }
    }
}

#[test]
fn write_to_itself_from_a_callback_goes_out_before_on_write_and_close() {
    // write_to on the stream whose callback is running is queued after
    // that callback's writes; it returned Ok, so it must not be lost to an
    // on_write (which said everything was sent) or a close that follows.
    let engine = Engine::new().unwrap();
    for close_in_on_read in [false, true] {
        let (ours, mut theirs) = common::tcp_pair();
        theirs.write_all(b"go").unwrap();
        let log = Log::new();
        Stream::new(SelfWriter { log: log.clone(), close_in_on_read }).attach_tcp(&engine, ours).unwrap();
        common::wait(&engine, "on_close", || log.contains("close"));
        theirs.shutdown(Shutdown::Write).unwrap();
        let got = String::from_utf8(common::read_all(&theirs).0).unwrap();
        assert_eq!(got, "<direct><via engine>", "closing in on_read: {close_in_on_read}");
        let expected: &[&str] = if close_in_on_read { &["close"] } else { &["write", "close"] };
        assert_eq!(log.events(), expected);
    }
}

#[test]
fn a_file_that_cannot_be_read_is_a_file_error() {
    // Opened for writing only: sendfile and the read fallback both fail on
    // the file, which is reported as such (not as a socket write error).
    let scratch = Scratch::new("write-only");
    let path = scratch.path("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let (got, log) = send_plan(vec![Piece::Bytes(b"before|"), Piece::File(file, 0, 0), Piece::Bytes(b"after")]);
    let events = log.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], "queued 10");
    assert!(events[1].starts_with("error could not send the file: "), "{events:?}");
    assert_eq!(events[2], "close");
    // What came before the file may have gone out; nothing after it did.
    assert!(got.is_empty() || got == b"before|", "{got:?}");
}

/// On connect: `write` of `before` (queued), then `write_now` of `now`,
/// then `write` of `after`; records what was queued after each.
struct Now {
    log: Log,
    before: Vec<u8>,
    now: Vec<u8>,
    after: Vec<u8>,
}

impl Handler for Now {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        if !self.before.is_empty() {
            stream.write(&self.before).unwrap();
        }
        stream.write_now(&self.now).unwrap();
        self.log.push(format!("queued after write_now {}", stream.queued()));
        stream.write(&self.after).unwrap();
        stream.close();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Now {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn write_now_sends_at_once_and_keeps_the_order() {
    for (before, now) in [(0, 1000), (0, 8 << 20), (5000, 1000), (5000, 8 << 20)] {
        let engine = Engine::new().unwrap();
        let (ours, theirs) = common::tcp_pair();
        let peer = common::peer(move || common::read_all(&theirs));
        let log = Log::new();
        let handler = Now {
            log: log.clone(),
            before: common::pattern(before, 1),
            now: common::pattern(now, 2),
            after: b"after".to_vec(),
        };
        let expected = [handler.before.clone(), handler.now.clone(), handler.after.clone()].concat();
        Stream::new(handler).attach_tcp(&engine, ours).unwrap();
        common::wait(&engine, "on_close", || log.contains("close"));
        let (got, end) = common::join(&engine, peer);
        end.unwrap();
        assert!(got == expected, "bytes differ ({before}, {now})");
        let events = log.events();
        let queued: u64 = events[0].strip_prefix("queued after write_now ").unwrap().parse().unwrap();
        // What the socket did not take at once is queued, nothing more; a
        // small write with an empty queue goes out whole.
        assert!(queued < (before + now) as u64, "{events:?}");
        if now == 1000 {
            assert_eq!(queued, 0, "{events:?}");
        }
    }
}
