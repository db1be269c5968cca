//! Reliability over loopback: a close that delivers everything queued before
//! it, idle connections that hold no buffers, and peers that reset in the
//! middle of a frame without disturbing anyone else.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use pants::delimiter::{Packed, Until};
use pants::{Address, Engine, FrameError, Handler, NetStruct, Read, Server, Stream, StreamError, StreamId};

/// Upper bound on any single wait; never reached when things work.
const WAIT: Duration = Duration::from_secs(30);

/// Counts the bytes live on the heap, so that what idle connections hold can
/// be measured exactly (in a child process, where nothing else runs).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn tcp_address(engine: &Engine, id: StreamId) -> SocketAddr {
    match engine.local_address(id).unwrap() {
        Address::Ip(addr) => addr,
        other => panic!("server {id} has no IP address: {other:?}"),
    }
}

/// Runs this test binary's test `name` alone in a child process with `env`
/// set; returns its output after checking that it passed.
fn run_child(name: &str, env: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child {name} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

// ---------------------------------------------------------------------------
// close() after a large write delivers every byte, then the end of stream.

const CHUNK: usize = 1 << 20;

/// One MiB of noise, the same for every chunk...
fn noise() -> Vec<u8> {
    common::pattern(CHUNK, 0x2545_f491)
}

/// ...stamped with its number, so that a lost, repeated or reordered chunk
/// shows as well as a lost or changed byte.
fn chunk(noise: &[u8], k: usize) -> Vec<u8> {
    let mut c = noise.to_vec();
    c[..8].copy_from_slice(&(k as u64).to_be_bytes());
    c
}

/// Queues `chunks` MiB as soon as it connects, then closes.
struct Bulk {
    chunks: usize,
    noise: Rc<Vec<u8>>,
    closed: Rc<Cell<usize>>,
}

impl Handler for Bulk {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        for k in 0..self.chunks {
            stream.write_vec(chunk(&self.noise, k)).unwrap();
        }
        assert!(stream.queued() >= ((self.chunks - 1) * CHUNK) as u64, "most of it is still queued");
        stream.close();
        assert!(matches!(stream.write(b"late"), Err(StreamError::Closed(_))), "nothing is queued after close");
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.closed.set(self.closed.get() + 1);
    }
}

impl Read<Until> for Bulk {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

/// Reads everything, checking every chunk; then expects the end of stream.
fn drain(mut peer: impl io::Read, chunks: usize) -> io::Result<()> {
    let noise = noise();
    let mut got = vec![0; CHUNK];
    for k in 0..chunks {
        peer.read_exact(&mut got)?;
        assert!(got == chunk(&noise, k), "chunk {k} arrived intact and in order");
    }
    assert_eq!(peer.read(&mut got)?, 0, "the end of stream follows the last byte");
    Ok(())
}

fn bulk_server(engine: &Engine, address: impl Into<Address>, chunks: usize) -> (StreamId, Rc<Cell<usize>>) {
    let closed = Rc::new(Cell::new(0));
    let (c, n) = (closed.clone(), Rc::new(noise()));
    let server = Server::from_fn(move |_| {
        Some(Stream::new(Bulk { chunks, noise: n.clone(), closed: c.clone() }).read_delimiter(Until::lf()))
    })
    .listen(engine, address)
    .unwrap();
    (server, closed)
}

#[test]
fn close_delivers_64_mib_queued_before_it() {
    const CHUNKS: usize = 64;
    let engine = Engine::new().unwrap();
    let (server, closed) = bulk_server(&engine, "127.0.0.1:0", CHUNKS);
    let addr = tcp_address(&engine, server);
    let reader = std::thread::spawn(move || -> io::Result<()> {
        let peer = TcpStream::connect(addr)?;
        peer.set_read_timeout(Some(WAIT))?;
        drain(peer, CHUNKS)
    });
    assert!(engine.run_until(Duration::from_secs(120), || reader.is_finished()).unwrap(), "the reader never finished");
    reader.join().unwrap().unwrap();
    assert!(engine.run_until(WAIT, || closed.get() == 1).unwrap(), "on_close");
    // The peer hung up: the stream is gone, only the server is left.
    assert!(engine.run_until(WAIT, || engine.channel_count() == 1).unwrap());
}

#[test]
fn close_delivers_everything_over_unix_sockets_too() {
    const CHUNKS: usize = 16;
    let engine = Engine::new().unwrap();
    let path = std::env::temp_dir().join(format!("pants-reliability-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (_server, closed) = bulk_server(&engine, path.as_path(), CHUNKS);
    let connect = path.clone();
    let reader = std::thread::spawn(move || -> io::Result<()> {
        let peer = UnixStream::connect(connect)?;
        peer.set_read_timeout(Some(WAIT))?;
        drain(peer, CHUNKS)
    });
    assert!(engine.run_until(Duration::from_secs(120), || reader.is_finished()).unwrap(), "the reader never finished");
    reader.join().unwrap().unwrap();
    assert!(engine.run_until(WAIT, || closed.get() == 1).unwrap(), "on_close");
    drop(engine);
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------
// Idle connections hold no buffers.

const IDLE_CHILD: &str = "PANTS_TEST_IDLE_MEMORY_CHILD";

/// Answers `hello` with `hi`.
struct Greeter;

impl Handler for Greeter {}

impl Read<Until> for Greeter {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        assert_eq!(line, b"hello");
        stream.write(b"hi\n").unwrap();
    }
}

/// Says `hello`, counts the `hi`.
struct Caller {
    answers: Rc<Cell<usize>>,
}

impl Handler for Caller {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write(b"hello\n").unwrap();
    }
}

impl Read<Until> for Caller {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
        assert_eq!(line, b"hi");
        self.answers.set(self.answers.get() + 1);
    }
}

/// The soft limit on open files, as the shell reports it.
fn fd_limit() -> usize {
    let out = std::process::Command::new("sh").args(["-c", "ulimit -n"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if text == "unlimited" {
        usize::MAX
    } else {
        text.parse().unwrap()
    }
}

/// Connects `n` callers (on the same engine) and waits for every answer;
/// returns their ids.
fn call(engine: &Engine, addr: SocketAddr, n: usize) -> Vec<StreamId> {
    let answers = Rc::new(Cell::new(0));
    let ids = (0..n)
        .map(|_| {
            let caller = Caller { answers: answers.clone() };
            Stream::new(caller).read_delimiter(Until::lf()).connect(engine, addr).unwrap()
        })
        .collect();
    assert!(engine.run_until(WAIT, || answers.get() == n).unwrap(), "{} of {n} answers", answers.get());
    ids
}

fn hang_up(engine: &Engine, ids: &[StreamId], left: usize) {
    for id in ids {
        engine.close_stream(*id, true).unwrap();
    }
    assert!(engine.run_until(WAIT, || engine.channel_count() == left).unwrap(), "every stream closed");
}

fn idle_memory_child() {
    // Two descriptors per connection (both ends live here), with room to spare.
    let n = 1000.min(fd_limit().saturating_sub(100) / 2);
    assert!(n >= 100, "too few file descriptors for the test: {}", fd_limit());
    let engine = Engine::new().unwrap();
    let server = Server::from_fn(|_| Some(Stream::new(Greeter).read_delimiter(Until::lf())))
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
    let addr = tcp_address(&engine, server);

    // Warm up the engine's buffer pool, slab and event storage, then measure.
    let warm = call(&engine, addr, n);
    hang_up(&engine, &warm, 1);
    let before = LIVE.load(Ordering::SeqCst);

    let ids = call(&engine, addr, n);
    // Give every stream a few more iterations to settle.
    engine.run_until(Duration::from_millis(100), || false).unwrap();
    assert_eq!(engine.channel_count(), 1 + 2 * n);
    let idle = LIVE.load(Ordering::SeqCst);
    let per_pair = (idle - before) / n as isize;

    hang_up(&engine, &ids, 1);
    let after = LIVE.load(Ordering::SeqCst);
    let leaked = (after - before) / n as isize;
    println!("CHILD {n} idle connection pairs: {per_pair} bytes per pair (both ends); {leaked} bytes per pair left after closing");

    // A stream holding its receive buffer alone would cost 64 KiB; the
    // stream's own state is well under 2 KiB a side.
    assert!(per_pair < 8 * 1024, "{per_pair} bytes per idle connection pair");
    // Nothing per connection outlives it (not even a linger timer): only
    // the engine's tables keep their capacity.
    assert!(leaked < 64, "{leaked} bytes per connection left after closing");
}

#[test]
fn idle_connections_hold_no_buffers() {
    if std::env::var_os(IDLE_CHILD).is_some() {
        return idle_memory_child();
    }
    let out = run_child("idle_connections_hold_no_buffers", IDLE_CHILD);
    let report = out.lines().find_map(|l| l.split_once("CHILD ").map(|(_, r)| r.to_owned()));
    println!("{}", report.expect("the child reported"));
}

// ---------------------------------------------------------------------------
// Peers that reset in the middle of a frame.

/// netstruct `"!IH$"`: a sequence number and a body.
#[derive(NetStruct, Debug)]
struct Frame<'a> {
    seq: u32,
    #[netstruct(len = u16)]
    body: &'a [u8],
}

#[derive(Default)]
struct Outcomes {
    /// Server streams that ended with an error, and the errors.
    errors: Vec<String>,
    /// Server streams closed cleanly.
    clean: usize,
    accept_errors: usize,
}

/// Echoes frames; records how it ended.
struct Mirror {
    outcomes: Rc<RefCell<Outcomes>>,
    failed: bool,
    /// This stream's errors, recorded as one outcome when it closes (a reset
    /// mid-frame reports the partial frame, then the reset).
    seen: Vec<String>,
}

impl Handler for Mirror {
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        use io::ErrorKind::{BrokenPipe, ConnectionReset};
        self.failed = true;
        let what = match &error {
            StreamError::Read(e) | StreamError::Write(e) if matches!(e.kind(), ConnectionReset | BrokenPipe) => {
                "reset".to_owned()
            }
            StreamError::Frame(FrameError::Truncated { .. }) => "truncated".to_owned(),
            other => format!("{other:?}"),
        };
        self.seen.push(what);
        stream.close_now();
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        if self.failed {
            self.outcomes.borrow_mut().errors.push(self.seen.join(", "));
        } else {
            self.outcomes.borrow_mut().clean += 1;
        }
    }
}

impl Read<Packed<Frame<'static>>> for Mirror {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Frame<'static>>>, frame: Frame<'_>) {
        stream.write_packed(&frame).unwrap();
    }
}

struct MirrorServer {
    outcomes: Rc<RefCell<Outcomes>>,
}

impl pants::ServerHandler for MirrorServer {
    type Handler = Mirror;
    type Delimiter = Packed<Frame<'static>>;

    fn on_accept(
        &mut self,
        _server: &mut Server,
        _peer: &Address,
    ) -> Option<pants::StreamBuilder<Mirror, Packed<Frame<'static>>>> {
        let mirror = Mirror { outcomes: self.outcomes.clone(), failed: false, seen: Vec::new() };
        Some(Stream::new(mirror).read_delimiter(Packed::<Frame>::new()))
    }

    fn on_error(&mut self, _server: &mut Server, _error: StreamError) {
        self.outcomes.borrow_mut().accept_errors += 1;
    }
}

const ROUND_TRIPS: u32 = 600;

fn body(seq: u32) -> Vec<u8> {
    (0..seq % 40).map(|i| (seq.wrapping_add(i) % 251) as u8).collect()
}

/// Ping-pongs `ROUND_TRIPS` frames, one at a time, checking each echo.
struct Talker {
    index: usize,
    next: u32,
    done: Rc<Cell<usize>>,
    progress: Rc<RefCell<Vec<u32>>>,
    errors: Rc<RefCell<Vec<String>>>,
}

impl Handler for Talker {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_packed(&Frame { seq: 0, body: &body(0) }).unwrap();
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.errors.borrow_mut().push(format!("talker at {}: {error}", self.next));
        stream.close_now();
    }
}

impl Read<Packed<Frame<'static>>> for Talker {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Frame<'static>>>, frame: Frame<'_>) {
        if frame.seq != self.next || frame.body != body(self.next) {
            self.errors.borrow_mut().push(format!("expected {}, got {frame:?}", self.next));
            return stream.close_now();
        }
        self.next += 1;
        self.progress.borrow_mut()[self.index] = self.next;
        if self.next == ROUND_TRIPS {
            self.done.set(self.done.get() + 1);
            stream.close();
        } else {
            stream.write_packed(&Frame { seq: self.next, body: &body(self.next) }).unwrap();
        }
    }
}

/// Connects, sends whole frames then part of one, and resets the connection
/// (SO_LINGER 0: an RST, not a FIN).
fn reset_mid_frame(addr: SocketAddr, whole: u32) -> io::Result<()> {
    let mut peer = TcpStream::connect(addr)?;
    let mut bytes = Vec::new();
    for seq in 0..whole {
        Frame { seq, body: &body(seq) }.encode(&mut bytes).unwrap();
    }
    // A header announcing 300 body bytes, and 10 of them.
    bytes.extend_from_slice(&7u32.to_be_bytes());
    bytes.extend_from_slice(&300u16.to_be_bytes());
    bytes.extend_from_slice(&[0xAB; 10]);
    peer.write_all(&bytes)?;
    rustix::net::sockopt::set_socket_linger(&peer, Some(Duration::ZERO))?;
    drop(peer);
    Ok(())
}

#[test]
fn a_peer_resetting_mid_frame_does_not_disturb_other_streams() {
    const TALKERS: usize = 8;
    const RESETS: u32 = 20;
    let engine = Engine::new().unwrap();
    let outcomes = Rc::new(RefCell::new(Outcomes::default()));
    let server = Server::new(MirrorServer { outcomes: outcomes.clone() }).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);

    let done = Rc::new(Cell::new(0));
    let errors = Rc::new(RefCell::new(Vec::new()));
    let progress = Rc::new(RefCell::new(vec![0; TALKERS]));
    for index in 0..TALKERS {
        let talker = Talker { index, next: 0, done: done.clone(), progress: progress.clone(), errors: errors.clone() };
        Stream::new(talker).read_delimiter(Packed::<Frame>::new()).connect(&engine, addr).unwrap();
    }
    // Every talker is well into its conversation...
    assert!(engine.run_until(WAIT, || progress.borrow().iter().all(|p| *p >= 100)).unwrap(), "talkers stuck");

    // ...when the resets come, from another thread, while the talk goes on.
    let resetter = std::thread::spawn(move || -> io::Result<()> {
        for i in 0..RESETS {
            reset_mid_frame(addr, i % 4)?;
        }
        Ok(())
    });
    let settled = engine
        .run_until(Duration::from_secs(60), || {
            let o = outcomes.borrow();
            resetter.is_finished() && o.errors.len() + o.accept_errors >= RESETS as usize && done.get() == TALKERS
        })
        .unwrap();
    resetter.join().unwrap().unwrap();
    let o = outcomes.borrow();
    assert!(errors.borrow().is_empty(), "talkers disturbed: {:?}", errors.borrow());
    assert!(
        settled,
        "done {}/{TALKERS}, reset streams {} + {} accept errors",
        done.get(),
        o.errors.len(),
        o.accept_errors
    );
    assert_eq!(o.errors.len() + o.accept_errors, RESETS as usize, "{:?}", o.errors);
    assert!(
        o.errors.iter().all(|e| ["reset", "truncated", "truncated, reset"].contains(&e.as_str())),
        "{:?}",
        o.errors
    );
    let resets = o.errors.iter().filter(|e| e.ends_with("reset")).count();
    println!("{resets} resets, {} truncated frames, {} accept errors", o.errors.len() - resets, o.accept_errors);
    drop(o);
    // The talkers' server streams close cleanly once the talkers hang up.
    assert!(engine.run_until(WAIT, || outcomes.borrow().clean == TALKERS).unwrap());
    assert_eq!(engine.connections(server).unwrap(), []);
}
