//! The engine's shared resolver: host-name connects run on a few bounded,
//! idle-exiting `pants-resolve` threads, not one thread per connect.
//!
//! Loopback only: the one name resolved successfully is `localhost` (from
//! `/etc/hosts`, no network). Threads are counted from
//! `/proc/self/task/*/comm`, so every test here holds [`SERIAL`]: tests of
//! one binary run on parallel threads, and another test's resolver threads
//! would be counted too.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{kind, Log};
use pants::delimiter::Until;
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError};

/// The resolver's thread limit: `pants::engine::resolver::MAX_THREADS`
/// (crate-private), repeated here. Keep the two equal.
const MAX_THREADS: usize = 4;
/// Longer than the resolver's idle exit (1 s), with some slack.
const IDLE: Duration = Duration::from_millis(1500);

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the serial lock and waits (bounded) for resolver threads left by
/// an earlier test to exit, so that counts start from zero.
fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let deadline = Instant::now() + common::WAIT;
    while resolver_threads() > 0 {
        assert!(Instant::now() < deadline, "resolver threads of an earlier test never exited");
        std::thread::sleep(Duration::from_millis(10));
    }
    guard
}

/// How many threads of this process are named `pants-resolve`.
fn resolver_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.trim_end() == "pants-resolve")
        })
        .count()
}

/// Samples [`resolver_threads`] every millisecond on its own thread, keeping
/// the maximum, until dropped.
struct Sampler {
    max: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Self {
        let max = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        let thread = common::peer(move || {
            while !s.load(Ordering::Acquire) {
                m.fetch_max(resolver_threads(), Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Sampler { max, stop, thread: Some(thread) }
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::Acquire)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Echoes each line back (the server side).
struct Echo;

impl Handler for Echo {}

impl Read<Until> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let _ = stream.write([line, b"\n"].concat());
    }
}

/// Sends one line on connect, closes when it comes back.
struct Client {
    line: String,
    log: Log,
    echoed: Rc<Cell<usize>>,
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write(format!("{}\n", self.line)).unwrap();
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("connect_error {} {error}", kind(&error)));
        stream.close();
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {} {error}", kind(&error)));
        stream.close();
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        assert_eq!(line, self.line.as_bytes());
        self.echoed.set(self.echoed.get() + 1);
        stream.close();
    }
}

/// An echo server on 127.0.0.1 (should `localhost` resolve to ::1 first,
/// that attempt is refused and the stream goes on to 127.0.0.1); its port.
fn echo_server(engine: &Engine) -> u16 {
    let id =
        Server::from_fn(|_| Some(Stream::new(Echo).read_delimiter(Until::lf()))).listen(engine, "127.0.0.1:0").unwrap();
    match engine.local_address(id).unwrap() {
        Address::Ip(addr) => addr.port(),
        other => panic!("unexpected local address {other:?}"),
    }
}

#[test]
fn many_host_name_connects_share_a_few_threads_that_exit_when_idle() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let port = echo_server(&engine);
    let sampler = Sampler::start();
    let log = Log::new();
    let echoed = Rc::new(Cell::new(0));
    const STREAMS: usize = 200;
    for i in 0..STREAMS {
        let client = Client { line: format!("hello {i}"), log: log.clone(), echoed: echoed.clone() };
        Stream::new(client).read_delimiter(Until::lf()).connect(&engine, ("localhost", port)).unwrap();
    }
    // One thread per connect would show about STREAMS threads here.
    let right_after = resolver_threads();
    assert!(right_after <= MAX_THREADS, "{right_after} resolver threads right after {STREAMS} connects");

    // The loop also counts, while the lookups are answered.
    let in_loop = Rc::new(Cell::new(0));
    let seen = in_loop.clone();
    let cycle = engine.cycle(Duration::from_millis(1), move |_| seen.set(seen.get().max(resolver_threads())));
    common::wait(&engine, "every echo", || echoed.get() == STREAMS);
    common::wait(&engine, "every close", || log.count("close") == STREAMS);
    engine.cancel(cycle);
    assert_eq!(log.len(), STREAMS, "only closes expected: {log:?}");
    let max = sampler.max().max(in_loop.get());
    assert!(max >= 1, "no resolver thread was ever seen");
    assert!(max <= MAX_THREADS, "{max} resolver threads at once (limit {MAX_THREADS})");

    // Idle: the workers exit (after 1 s; a loaded machine may take longer
    // to schedule them, so this waits for it, boundedly).
    common::run_for(&engine, IDLE);
    let exited = engine.run_until(Duration::from_secs(10), || resolver_threads() == 0).unwrap();
    assert!(exited, "{} resolver threads still alive long after going idle", resolver_threads());
    drop(sampler);
    // The resolver starts again on demand.
    let client = Client { line: "again".into(), log: log.clone(), echoed: echoed.clone() };
    Stream::new(client).read_delimiter(Until::lf()).connect(&engine, ("localhost", port)).unwrap();
    common::wait(&engine, "the echo after idling", || echoed.get() == STREAMS + 1);
}

#[test]
fn unresolvable_name_reports_a_resolve_error() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let client = Client { line: String::new(), log: log.clone(), echoed: Rc::default() };
    // `.invalid` never resolves (RFC 6761).
    Stream::new(client).read_delimiter(Until::lf()).connect(&engine, "does-not-exist.invalid:80").unwrap();
    assert!(log.events().is_empty(), "reported from inside connect: {log:?}");
    common::wait(&engine, "on_close", || log.contains("close"));
    let events = log.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("connect_error Resolve "), "{events:?}");
    assert!(events[0].contains("does-not-exist.invalid"), "{events:?}");
    assert_eq!(events[1], "close");
}

#[test]
fn resolution_never_blocks_the_loop() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let port = echo_server(&engine);
    let log = Log::new();
    let echoed = Rc::new(Cell::new(0));
    // Timers keep firing while lookups are queued and answered.
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    engine.cycle(Duration::from_millis(1), move |_| t.set(t.get() + 1));
    for i in 0..20 {
        let client = Client { line: format!("x{i}"), log: log.clone(), echoed: echoed.clone() };
        Stream::new(client).read_delimiter(Until::lf()).connect(&engine, ("localhost", port)).unwrap();
    }
    common::wait(&engine, "every echo", || echoed.get() == 20);
    common::wait(&engine, "a few ticks", || ticks.get() >= 3);
}

/// Counts its drops.
struct Dropped(Arc<AtomicUsize>, Log);

impl Handler for Dropped {
    fn on_connect(&mut self, _stream: &mut Stream<Self>) {
        self.1.push("connect");
    }
    fn on_connect_error(&mut self, _stream: &mut Stream<Self>, _error: StreamError) {
        self.1.push("connect_error");
    }
}

impl Read<Until> for Dropped {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

#[test]
fn dropping_the_engine_with_queued_lookups_leaves_no_threads() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let port = echo_server(&engine);
    // A handle that outlives the engine (as one a handler's `Drop` could
    // leak would): the engine's state is not freed with the last owner, so
    // only the teardown itself can stop the resolver.
    let _handle = handle_of(&engine);
    let dropped = Arc::new(AtomicUsize::new(0));
    let log = Log::new();
    for _ in 0..50 {
        let handler = Dropped(dropped.clone(), log.clone());
        Stream::new(handler).read_delimiter(Until::lf()).connect(&engine, ("localhost", port)).unwrap();
    }
    assert!(resolver_threads() <= MAX_THREADS);
    let started = Instant::now();
    drop(engine);
    assert!(started.elapsed() < Duration::from_secs(5), "teardown took {:?}", started.elapsed());
    assert_eq!(dropped.load(Ordering::Acquire), 50, "every handler dropped with the engine");
    assert!(log.events().is_empty(), "no callback after the teardown: {log:?}");

    // The workers exit at once (after the lookup each is running), well
    // before their idle exit (1 s): the queued lookups were dropped.
    while resolver_threads() > 0 && started.elapsed() < IDLE {
        std::thread::sleep(Duration::from_millis(5));
    }
    let gone = started.elapsed();
    assert!(gone < Duration::from_millis(900), "resolver threads took {gone:?} to exit after the teardown");
    std::thread::sleep(IDLE.saturating_sub(gone));
    assert_eq!(resolver_threads(), 0, "resolver threads still alive {IDLE:?} after the engine was dropped");
}

/// A non-owning handle to `engine`, as callbacks get.
fn handle_of(engine: &Engine) -> Engine {
    let keep = Rc::new(Cell::new(None));
    let k = keep.clone();
    engine.callback(move |engine| k.set(Some(engine.clone())));
    common::run_for(engine, Duration::from_millis(20));
    keep.take().expect("the callback ran")
}

#[test]
fn a_handle_kept_after_teardown_does_not_resolve() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let handle = handle_of(&engine);
    drop(engine);
    let handler = Client { line: String::new(), log: Log::new(), echoed: Rc::default() };
    let result = Stream::new(handler).read_delimiter(Until::lf()).connect(&handle, ("localhost", 1));
    assert!(matches!(result, Err(StreamError::EngineDropped)), "{result:?}");
    assert_eq!(resolver_threads(), 0);
}
