//! Dropping an engine closes every socket and drops every handler, timer and
//! posted closure (no `Rc` cycle between the engine and its streams).
//!
//! These tests count the process's open file descriptors, so they run one
//! at a time (`SERIAL`) and this file holds nothing else.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::wait;
use pants::delimiter::Raw;
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError};

static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Counts its drops; optionally keeps the engine handle its stream gives.
struct Counted {
    drops: Rc<AtomicUsize>,
    connected: Rc<AtomicUsize>,
    kept: Option<Engine>,
    keep_engine: bool,
}

impl Counted {
    fn new(drops: &Rc<AtomicUsize>, connected: &Rc<AtomicUsize>, keep_engine: bool) -> Self {
        Counted { drops: drops.clone(), connected: connected.clone(), kept: None, keep_engine }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

impl Handler for Counted {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.connected.fetch_add(1, Ordering::SeqCst);
        if self.keep_engine {
            self.kept = Some(stream.engine().clone());
        }
        let _ = stream.write(b"hello");
    }
}

impl Read<Raw> for Counted {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

/// One engine with a listening server and a connected client (both ends
/// pants streams, with timers and a posted closure pending), dropped.
fn cycle(drops: &Rc<AtomicUsize>, keep_engine: bool) {
    let connected = Rc::new(AtomicUsize::new(0));
    let engine = Engine::new().unwrap();
    let (d, c) = (drops.clone(), connected.clone());
    let server = Server::from_fn(move |_| Some(Stream::new(Counted::new(&d, &c, keep_engine))))
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
    let address = engine.local_address(server).unwrap();
    Stream::new(Counted::new(drops, &connected, keep_engine)).connect(&engine, address).unwrap();
    wait(&engine, "both ends connected", || connected.load(Ordering::SeqCst) == 2);
    // Pending work that holds user state: dropped with the engine too.
    let timer_state = Rc::new(());
    let held = timer_state.clone();
    engine.defer(Duration::from_secs(3600), move |_| drop(held));
    engine.remote().post(|_| {});
    assert_eq!(Rc::strong_count(&timer_state), 2);
    drop(engine);
    assert_eq!(Rc::strong_count(&timer_state), 1, "the timer's closure was dropped");
}

#[test]
fn dropping_the_engine_closes_every_socket_and_drops_every_handler() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let drops = Rc::new(AtomicUsize::new(0));
    cycle(&drops, false); // warm up (lazily opened descriptors, if any)
    let before = open_fds();
    drops.store(0, Ordering::SeqCst);
    for _ in 0..20 {
        cycle(&drops, false);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 40, "two stream handlers dropped per cycle");
    assert_eq!(open_fds(), before, "every socket, poll and waker descriptor closed");
}

#[test]
fn a_handler_keeping_its_engine_handle_does_not_keep_the_engine_alive() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let drops = Rc::new(AtomicUsize::new(0));
    cycle(&drops, true);
    let before = open_fds();
    drops.store(0, Ordering::SeqCst);
    for _ in 0..5 {
        cycle(&drops, true);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    assert_eq!(open_fds(), before);
}

#[test]
fn a_clone_of_the_engine_keeps_it_running() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::new().unwrap();
    let server = Server::from_fn(|_| Some(Stream::new(Echo))).listen(&engine, "127.0.0.1:0").unwrap();
    let clone = engine.clone();
    drop(engine);
    assert_eq!(clone.channel_count(), 1, "one owning handle is left: nothing was torn down");
    assert!(clone.local_address(server).is_ok());
}

#[test]
fn an_engine_handle_outliving_the_engine_refuses_new_streams() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::new().unwrap();
    let kept: Rc<RefCell<Option<Engine>>> = Rc::default();
    let slot = kept.clone();
    engine.callback(move |engine| *slot.borrow_mut() = Some(engine.clone()));
    engine.run_until(Duration::from_secs(5), || kept.borrow().is_some()).unwrap();
    drop(engine);
    let handle = kept.borrow_mut().take().unwrap();
    assert_eq!(handle.channel_count(), 0);
    let error = Stream::new(Echo).connect(&handle, "127.0.0.1:9").unwrap_err();
    assert!(matches!(error, StreamError::EngineDropped), "{error:?}");
    let error = Server::from_fn(|_| Some(Stream::new(Echo))).listen(&handle, "127.0.0.1:0").unwrap_err();
    assert!(matches!(error, StreamError::EngineDropped), "{error:?}");
}

#[test]
fn dropping_the_engine_removes_a_unix_servers_socket_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = common::Scratch::new("teardown-unix");
    let path = scratch.path("server.sock");
    let engine = Engine::new().unwrap();
    Server::from_fn(|_| Some(Stream::new(Echo))).listen(&engine, Address::unix(&path)).unwrap();
    assert!(path.exists());
    drop(engine);
    assert!(!path.exists(), "the socket file went with the listener");
}

#[test]
fn a_closure_posted_after_the_engine_is_dropped_is_dropped() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::new().unwrap();
    let remote = engine.remote();
    drop(engine);
    let state = std::sync::Arc::new(());
    let held = state.clone();
    remote.post(move |_| drop(held));
    assert_eq!(std::sync::Arc::strong_count(&state), 1, "not kept by a remote whose engine is gone");
}

struct Echo;
impl Handler for Echo {}
impl Read<Raw> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        let _ = stream.write(data);
    }
}
