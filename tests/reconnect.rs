//! Reconnecting clients over real loopback sockets: retrying a refused
//! connect with backoff until a server comes up, replacing a connection the
//! server dropped, and giving up when the backoff is exhausted.
//!
//! The client uses `pants::reconnect::{retry_connect, connect_after}` and a
//! `Backoff` without jitter, so the delays are exact. Every wait is bounded;
//! timing checks only ever say "not earlier than" (timers never fire early).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pants::delimiter::Until;
use pants::reconnect::{self, Backoff};
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError, StreamId};

/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the clients saw, in order, with when.
#[derive(Clone, Default)]
struct Events(Rc<RefCell<Vec<(Instant, String)>>>);

impl Events {
    fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push((Instant::now(), event.into()));
    }

    fn names(&self) -> Vec<String> {
        self.0.borrow().iter().map(|(_, e)| e.clone()).collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.0.borrow().iter().filter(|(_, e)| e.starts_with(prefix)).count()
    }

    /// When each event starting with `prefix` happened.
    fn times(&self, prefix: &str) -> Vec<Instant> {
        self.0.borrow().iter().filter(|(_, e)| e.starts_with(prefix)).map(|(t, _)| *t).collect()
    }
}

#[track_caller]
fn wait(engine: &Engine, what: &str, done: impl FnMut() -> bool) {
    assert!(engine.run_until(WAIT, done).expect("engine poll failed"), "timed out waiting for {what}");
}

/// A port on 127.0.0.1 where nothing listens: a socket is bound to it (with
/// `SO_REUSEADDR`) without listening, so that no one else takes the port,
/// while a listener with `SO_REUSEADDR` (as pants servers set) can still
/// start listening there later. Connecting is refused until one does.
struct ReservedPort {
    _socket: rustix::fd::OwnedFd,
    port: u16,
}

fn reserved_port() -> ReservedPort {
    use rustix::net::{AddressFamily, SocketType};
    let socket = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true).expect("SO_REUSEADDR");
    rustix::net::bind(&socket, &SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
    let bound = SocketAddr::try_from(rustix::net::getsockname(&socket).expect("getsockname")).expect("an IP address");
    ReservedPort { _socket: socket, port: bound.port() }
}

impl ReservedPort {
    fn address(&self) -> Address {
        Address::from(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// Says "hello" once connected and reads "welcome <n>" lines; done (and
/// closes) at "welcome <last>". A refused connect is retried on the same
/// stream with `retry_connect`; a connection closed before it is done is
/// replaced with a new stream by `connect_after`, carrying this state.
struct Client {
    address: Address,
    backoff: Backoff,
    last: u32,
    done: bool,
    /// Moved from each handler to the next, to show the state survives.
    lines: Vec<String>,
    /// Which handler this is: 1 for the first, +1 per reconnect.
    generation: u32,
    events: Events,
    /// Every delay `retry_connect` or the reconnect used.
    delays: Rc<RefCell<Vec<Duration>>>,
    /// Every stream id this client ran on.
    ids: Rc<RefCell<Vec<StreamId>>>,
}

impl Client {
    fn new(address: Address, backoff: Backoff, last: u32, events: &Events) -> Client {
        Client {
            address,
            backoff,
            last,
            done: false,
            lines: Vec::new(),
            generation: 1,
            events: events.clone(),
            delays: Rc::default(),
            ids: Rc::default(),
        }
    }

    fn start(self, engine: &Engine) -> StreamId {
        let address = self.address.clone();
        Stream::new(self).read_delimiter(Until::lf()).connect(engine, address).expect("connect")
    }
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.events.push(format!("connect after {} retries", self.backoff.attempts()));
        self.ids.borrow_mut().push(stream.id());
        self.backoff.reset();
        stream.write(b"hello\n").unwrap();
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        assert!(matches!(error, StreamError::Connect { .. }), "{error:?}");
        self.events.push("connect_error");
        match reconnect::retry_connect(stream, &mut self.backoff, self.address.clone()) {
            Some(delay) => {
                self.delays.borrow_mut().push(delay);
                assert!(!stream.is_closed(), "retry_connect keeps the stream");
            }
            None => {
                self.events.push("gave up");
                assert!(stream.is_closed(), "retry_connect closes the stream when it gives up");
            }
        }
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.events.push(format!("error {error}"));
        stream.close();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.events.push("close");
        if self.done || self.backoff.is_exhausted() {
            self.events.push(format!("final: generation {} lines {:?}", self.generation, self.lines));
            return;
        }
        let Some(delay) = self.backoff.next_delay() else { unreachable!("not exhausted") };
        self.delays.borrow_mut().push(delay);
        let next = Client {
            address: self.address.clone(),
            backoff: std::mem::take(&mut self.backoff),
            last: self.last,
            done: false,
            lines: std::mem::take(&mut self.lines),
            generation: self.generation + 1,
            events: self.events.clone(),
            delays: self.delays.clone(),
            ids: self.ids.clone(),
        };
        let builder = Stream::new(next).read_delimiter(Until::lf());
        reconnect::connect_after(stream.engine(), delay, builder, self.address.clone());
    }
}

impl Read<Until> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        self.events.push(format!("line {line}"));
        self.lines.push(line.clone());
        if line == format!("welcome {}", self.last) {
            self.done = true;
            stream.close();
        }
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// Answers "hello" with "welcome <its connection's number>", and hangs up
/// after that on the first `drops` connections.
struct Greeter {
    number: u32,
    drops: u32,
}

impl Handler for Greeter {}

impl Read<Until> for Greeter {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        if line == b"hello" {
            stream.write(format!("welcome {}\n", self.number)).unwrap();
            if self.number <= self.drops {
                stream.close();
            }
        }
    }
}

/// Listens on `address`; returns how many connections it accepted.
fn greeter(engine: &Engine, address: Address, drops: u32) -> Rc<Cell<u32>> {
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    Server::from_fn(move |_peer| {
        count.set(count.get() + 1);
        Some(Stream::new(Greeter { number: count.get(), drops }).read_delimiter(Until::lf()))
    })
    .listen(engine, address)
    .expect("listen");
    accepted
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn retries_with_growing_delays_until_the_server_listens() {
    let engine = Engine::new().unwrap();
    let port = reserved_port();
    let events = Events::default();
    let client = Client::new(port.address(), Backoff::new(ms(25), ms(400)), 1, &events);
    let delays = client.delays.clone();
    let started = Instant::now();
    client.start(&engine);

    // Nothing listens for ~200 ms, and at least 3 attempts fail.
    wait(&engine, "three refused attempts and 200 ms", || {
        events.count("connect_error") >= 3 && started.elapsed() >= ms(200)
    });
    let accepted = greeter(&engine, port.address(), 0);
    wait(&engine, "the client's end", || events.count("final") == 1);

    let failures = events.count("connect_error");
    assert!(failures >= 3, "{:?}", events.names());
    let mut expected = vec!["connect_error".to_string(); failures];
    expected.extend([
        format!("connect after {failures} retries"),
        "line welcome 1".into(),
        "close".into(),
        "final: generation 1 lines [\"welcome 1\"]".into(),
    ]);
    assert_eq!(events.names(), expected);
    assert_eq!(accepted.get(), 1);

    // One retry per failure, each delay twice the one before (up to 400 ms).
    let delays = delays.borrow().clone();
    let want: Vec<Duration> = (0..failures as u32).map(|i| (ms(25) * 2u32.pow(i.min(8))).min(ms(400))).collect();
    assert_eq!(delays, want);
    assert!(delays.windows(2).all(|w| w[0] < w[1] || w[1] == ms(400)), "{delays:?}");
    // Each attempt came no earlier than its delay after the failure before.
    let mut attempts = events.times("connect_error");
    attempts.extend(events.times("connect after"));
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(gap >= delays[i], "attempt {} came {gap:?} after the one before, not {:?}", i + 2, delays[i]);
    }
}

#[test]
fn reconnects_after_the_server_drops_the_connection() {
    let engine = Engine::new().unwrap();
    let port = reserved_port();
    let accepted = greeter(&engine, port.address(), 1);
    let events = Events::default();
    let client = Client::new(port.address(), Backoff::new(ms(50), ms(400)), 2, &events);
    let (delays, ids) = (client.delays.clone(), client.ids.clone());
    client.start(&engine);

    wait(&engine, "the client's end", || events.count("final") == 1);
    assert_eq!(
        events.names(),
        [
            "connect after 0 retries",
            "line welcome 1",
            "close",
            // The reconnect counts as a retry: one delay taken from the backoff.
            "connect after 1 retries",
            "line welcome 2",
            "close",
            // The second handler holds the first one's state.
            "final: generation 2 lines [\"welcome 1\", \"welcome 2\"]",
        ]
    );
    assert_eq!(accepted.get(), 2);
    assert_eq!(*delays.borrow(), [ms(50)]);
    let ids = ids.borrow().clone();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "the second connection is a new stream");
    let closed = events.times("close")[0];
    let reconnected = events.times("connect after 1")[0];
    assert!(reconnected - closed >= ms(50), "reconnected {:?} after the drop", reconnected - closed);

    // Nothing more happens: no third connection.
    let _ = engine.run_until(ms(200), || false).unwrap();
    assert_eq!(accepted.get(), 2);
    assert_eq!(events.count("connect after"), 2);
}

#[test]
fn gives_up_after_max_attempts_and_closes_once() {
    let engine = Engine::new().unwrap();
    let port = reserved_port();
    let events = Events::default();
    let client = Client::new(port.address(), Backoff::new(ms(10), ms(30)).max_attempts(3), 1, &events);
    let delays = client.delays.clone();
    let id = client.start(&engine);

    wait(&engine, "on_close", || events.count("close") == 1);
    // Nothing follows: no further attempt, no second on_close.
    let _ = engine.run_until(ms(200), || false).unwrap();
    assert_eq!(
        events.names(),
        [
            "connect_error", // the first attempt
            "connect_error", // retry 1
            "connect_error", // retry 2
            "connect_error", // retry 3
            "gave up",
            "close",
            "final: generation 1 lines []",
        ]
    );
    assert_eq!(*delays.borrow(), [ms(10), ms(20), ms(30)]);
    assert!(matches!(engine.with_stream::<Client, _>(id, |_, _| ()), Err(StreamError::NoSuchStream(_))));
    assert_eq!(engine.channel_count(), 0);
}
