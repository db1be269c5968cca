//! Helpers shared by the loopback integration tests (`stream_client`,
//! `stream_lifecycle`, `engine_timers`): an event log, bounded waits, and
//! blocking peers on helper threads whose every call has a timeout.
//!
//! Nothing here asserts on how long something took: waits are bounded
//! (generously) only so that a broken test fails instead of hanging.
#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pants::{Engine, StreamError};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);
/// The timeout of every blocking call a peer thread makes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// What a handler saw, in order. Cloned into handlers (`Rc`), read by the test.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn new() -> Self {
        Log::default()
    }

    pub fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// How many events are exactly `event`.
    pub fn count(&self, event: &str) -> usize {
        self.0.borrow().iter().filter(|e| *e == event).count()
    }

    /// How many events start with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.0.borrow().iter().filter(|e| e.starts_with(prefix)).count()
    }

    pub fn contains(&self, event: &str) -> bool {
        self.count(event) > 0
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

impl Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.borrow().fmt(f)
    }
}

/// The variant of a [`StreamError`], for exact assertions in logs.
pub fn kind(error: &StreamError) -> &'static str {
    match error {
        StreamError::Resolve { .. } => "Resolve",
        StreamError::Connect { .. } => "Connect",
        StreamError::Listen { .. } => "Listen",
        StreamError::Accept(_) => "Accept",
        StreamError::Read(_) => "Read",
        StreamError::Write(_) => "Write",
        StreamError::File(_) => "File",
        StreamError::Frame(_) => "Frame",
        StreamError::Pack(_) => "Pack",
        StreamError::Closed(_) => "Closed",
        StreamError::NotConnected(_) => "NotConnected",
        StreamError::AlreadyActive => "AlreadyActive",
        StreamError::NoSuchStream(_) => "NoSuchStream",
        StreamError::WrongHandler(_) => "WrongHandler",
        StreamError::Busy(_) => "Busy",
        StreamError::Timeout(_) => "Timeout",
        StreamError::Panicked(_) => "Panicked",
        _ => "other",
    }
}

/// Runs `engine` until `done`, failing the test after [`WAIT`].
#[track_caller]
pub fn wait(engine: &Engine, what: &str, done: impl FnMut() -> bool) {
    let ok = engine.run_until(WAIT, done).expect("engine poll failed");
    assert!(ok, "timed out waiting for {what}");
}

/// Runs `engine` for `duration` (for "nothing more happens" checks).
pub fn run_for(engine: &Engine, duration: Duration) {
    let _ = engine.run_until(duration, || false).expect("engine poll failed");
}

/// Runs `engine` until the peer thread has finished, then joins it.
#[track_caller]
pub fn join<T>(engine: &Engine, peer: JoinHandle<T>) -> T {
    wait(engine, "the peer thread", || peer.is_finished());
    match peer.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A listener on 127.0.0.1 with a port chosen by the system.
pub fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A port on 127.0.0.1 where connecting is refused: a socket is bound to
/// it but does not listen, and holds it, so that no other test (or process)
/// can start listening there while this is alive.
pub struct ClosedPort {
    _socket: rustix::fd::OwnedFd,
    port: u16,
}

impl ClosedPort {
    pub fn port(&self) -> u16 {
        self.port
    }
}

pub fn closed_port() -> ClosedPort {
    use rustix::net::{AddressFamily, SocketType};
    let socket = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    rustix::net::bind(&socket, &SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
    let bound = SocketAddr::try_from(rustix::net::getsockname(&socket).expect("getsockname")).expect("an IP address");
    ClosedPort { _socket: socket, port: bound.port() }
}

fn with_timeouts(stream: TcpStream) -> TcpStream {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Accepts one connection, giving up after [`IO_TIMEOUT`]. The accepted
/// socket is blocking, with read and write timeouts.
pub fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return with_timeouts(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

/// A connected loopback TCP pair: (ours, the peer's), both blocking with
/// timeouts (`attach_tcp` makes ours non-blocking).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let (listener, addr) = listener();
    let ours = TcpStream::connect(addr).unwrap();
    let theirs = accept(&listener);
    (with_timeouts(ours), theirs)
}

/// A connected UNIX socket pair with timeouts on the peer's end.
pub fn unix_pair() -> (std::os::unix::net::UnixStream, std::os::unix::net::UnixStream) {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    theirs.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    theirs.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    (ours, theirs)
}

/// Spawns a peer thread.
pub fn peer<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::Builder::new().name("test-peer".into()).spawn(f).unwrap()
}

/// Reads until end of stream (or an error, such as a reset), returning what
/// arrived and how it ended.
pub fn read_all(mut stream: impl Read) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
}

/// Reads exactly `n` bytes.
pub fn read_n(mut stream: impl Read, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    stream.read_exact(&mut got).expect("peer read_exact");
    got
}

/// Writes `data`, then half-closes.
pub fn send_and_shutdown(mut stream: &TcpStream, data: &[u8]) {
    stream.write_all(data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
}

/// A deterministic pseudo-random byte pattern.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A scratch directory, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pants-h4-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file holding `data`, opened for reading (and writing, so tests can
/// truncate it).
pub fn file_with(scratch: &Scratch, name: &str, data: &[u8]) -> std::fs::File {
    let path = scratch.path(name);
    std::fs::write(&path, data).unwrap();
    std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap()
}
