//! Delimiter switches allocate nothing in steady state.
//!
//! A RESP server built from the built-in delimiters switches four times
//! per pipelined `GET key` request: `Until` for the `*2` and `$3` header
//! lines, `Count` for each bulk body (with its CRLF), and back. Each reply
//! goes out through the typed write side. A counting global allocator
//! counts the allocations the engine's thread makes: after a warm-up
//! (every delimiter type used once, the buffers pooled), serving thousands
//! more requests, over a real loopback socket, must allocate nothing. So
//! must a length-prefixed protocol switching between two `Count`s (a
//! same-type switch, made in place).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::{Count, Until};
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamBuilder};

/// The system allocator, counting the allocations made on each thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: a thread being torn down no longer has the counter.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments,
// which upholds `GlobalAlloc`'s contract; counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 2_000;
const MEASURED: u64 = 20_000;
/// Requests the client sends before reading their replies (`-P 16`).
const PIPELINE: usize = 16;

/// The engine thread's allocation count when the warm-up ended and when the
/// measured requests were served, shared by the handler and the test.
#[derive(Clone, Default)]
struct Marks(Rc<RefCell<(Option<u64>, Option<u64>)>>);

impl Marks {
    /// Called by the handler after its `served`-th request: marks the end
    /// of the warm-up and of the measurement (then stops the engine).
    fn served(&self, served: u64, engine: &Engine) {
        let mut marks = self.0.borrow_mut();
        if served == WARM_UP {
            marks.0 = Some(allocations());
        } else if served == WARM_UP + MEASURED {
            marks.1 = Some(allocations());
            engine.stop();
        }
    }
}

/// Serves one client with the streams `accept` builds: it sends `batch`
/// (PIPELINE requests) and reads `replies` back until WARM_UP + MEASURED
/// requests were answered. Returns the allocations the engine thread made
/// for the measured ones. Bounded: the client's reads time out, and the
/// engine stops once the last measured request is served.
fn allocations_serving<H, D>(
    accept: impl Fn(Marks) -> StreamBuilder<H, D> + 'static,
    batch: Vec<u8>,
    replies: Vec<u8>,
) -> u64
where
    H: Read<D>,
    D: pants::ReadBy<H>,
{
    let marks = Marks::default();
    let engine = Engine::new().unwrap();
    let for_server = marks.clone();
    let server = Server::from_fn(move |_peer| Some(accept(for_server.clone()))).listen(&engine, "127.0.0.1:0").unwrap();
    let Address::Ip(address) = engine.local_address(server).unwrap() else { panic!("not an IP address") };
    let client = std::thread::spawn(move || {
        let mut peer = TcpStream::connect(address).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        peer.set_nodelay(true).unwrap();
        let mut got = vec![0; replies.len()];
        let mut sent = 0;
        while sent < WARM_UP + MEASURED {
            peer.write_all(&batch).unwrap();
            peer.read_exact(&mut got).unwrap();
            assert_eq!(got, replies, "wrong replies");
            sent += PIPELINE as u64;
        }
    });
    engine.run().unwrap();
    client.join().unwrap();
    let marks = marks.0.borrow();
    let (Some(start), Some(end)) = *marks else { panic!("the server did not serve every request") };
    end - start
}

/// Serves `GET` requests in RESP: `*<n>` header, then `$<len>` and a body
/// for each argument; replies `$5\r\nvalue\r\n`.
struct Resp {
    args_left: usize,
    served: u64,
    crlf: Until,
    marks: Marks,
}

impl Handler for Resp {}

impl Read<Until> for Resp {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let number = |digits: &[u8]| std::str::from_utf8(digits).ok()?.parse::<usize>().ok();
        match line.split_first() {
            Some((b'*', digits)) => self.args_left = number(digits).expect("array length"),
            Some((b'$', digits)) => {
                let len = number(digits).expect("bulk length");
                stream.read_delimiter(Count::new(len + 2).expect("not zero"));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
}

impl Read<Count> for Resp {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
        assert!(body.ends_with(b"\r\n"));
        self.args_left -= 1;
        if self.args_left == 0 {
            stream.send_with(&self.crlf, b"$5").unwrap();
            stream.send_with(&self.crlf, b"value").unwrap();
            self.served += 1;
            self.marks.served(self.served, stream.engine());
        }
        stream.read_delimiter(self.crlf.clone());
    }
}

#[test]
fn pipelined_resp_requests_allocate_nothing_after_warm_up() {
    let accept = |marks| {
        let handler = Resp { args_left: 0, served: 0, crlf: Until::crlf(), marks };
        Stream::new(handler).read_delimiter(Until::crlf())
    };
    let request = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    let allocated = allocations_serving(accept, request.repeat(PIPELINE), b"$5\r\nvalue\r\n".repeat(PIPELINE));
    assert_eq!(
        allocated,
        0,
        "{allocated} allocations for {MEASURED} requests ({:.3} per request)",
        allocated as f64 / MEASURED as f64
    );
}

/// Reads `u16` length-prefixed messages with two `Count`s per message (a
/// same-type switch each time, made in place) and echoes each body back
/// with its prefix.
struct Prefixed {
    /// Whether the next frame is a prefix (else a body).
    at_prefix: bool,
    bodies: u64,
    marks: Marks,
}

impl Handler for Prefixed {}

impl Read<Count> for Prefixed {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, frame: &[u8]) {
        self.at_prefix = !self.at_prefix;
        if !self.at_prefix {
            let len = usize::from(u16::from_be_bytes([frame[0], frame[1]]));
            stream.read_delimiter(Count::new(len).unwrap());
            return;
        }
        let prefix = (frame.len() as u16).to_be_bytes();
        stream.write(prefix).unwrap();
        stream.send(frame).unwrap();
        self.bodies += 1;
        self.marks.served(self.bodies, stream.engine());
        stream.read_delimiter(Count::new(2).unwrap());
    }
}

#[test]
fn same_type_switches_deliver_the_right_frames_and_allocate_nothing() {
    let accept = |marks| {
        let handler = Prefixed { at_prefix: true, bodies: 0, marks };
        Stream::new(handler).read_delimiter(Count::new(2).unwrap())
    };
    let mut batch = Vec::new();
    for i in 0..PIPELINE {
        let body: Vec<u8> = (0..3 + i % 7).map(|b| b as u8 + i as u8).collect();
        batch.extend_from_slice(&(body.len() as u16).to_be_bytes());
        batch.extend_from_slice(&body);
    }
    let allocated = allocations_serving(accept, batch.clone(), batch);
    assert_eq!(allocated, 0, "{allocated} allocations for {MEASURED} bodies");
}
