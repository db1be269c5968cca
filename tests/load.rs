//! Load over loopback: a million length-prefixed frames through 100 streams,
//! fairness between a flooding and a chatty client, and backpressure against
//! a peer that stops reading. Every load is bounded in count and time.

use std::cell::{Cell, RefCell};
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pants::delimiter::{Packed, Until};
use pants::{Address, Engine, Handler, NetStruct, Read, Server, Stream, StreamError, StreamId};

/// Upper bound on any single wait; never reached when things work.
const WAIT: Duration = Duration::from_secs(30);

fn tcp_address(engine: &Engine, id: StreamId) -> SocketAddr {
    match engine.local_address(id).unwrap() {
        Address::Ip(addr) => addr,
        other => panic!("server {id} has no IP address: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// A million frames.

/// One request or reply: who sent it, its sequence number, and a body whose
/// length and bytes follow from both (netstruct `"!IIH$"`).
#[derive(NetStruct, Debug)]
struct Msg<'a> {
    client: u32,
    seq: u32,
    #[netstruct(len = u16)]
    body: &'a [u8],
}

fn body_len(client: u32, seq: u32) -> usize {
    ((client.wrapping_mul(7) ^ seq) % 23) as usize
}

fn body_byte(client: u32, seq: u32, i: usize) -> u8 {
    (client as u8).wrapping_mul(31) ^ (seq as u8).wrapping_add(i as u8)
}

const CLIENTS: u32 = 100;
const FRAMES_PER_CLIENT: u32 = 10_000;
/// Frames a client keeps in flight.
const WINDOW: u32 = 256;

/// The server side: echoes every frame, counting them.
struct Echo {
    frames: Rc<Cell<u64>>,
}

impl Handler for Echo {}

impl Read<Packed<Msg<'static>>> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Msg<'static>>>, frame: Msg<'_>) {
        self.frames.set(self.frames.get() + 1);
        stream.write_packed(&frame).unwrap();
    }
}

#[derive(Default)]
struct Totals {
    done: usize,
    replies: u64,
    errors: Vec<String>,
}

/// A client: sends its frames with a window, checks every reply in order.
struct Client {
    id: u32,
    sent: u32,
    received: u32,
    totals: Rc<RefCell<Totals>>,
    body: Vec<u8>,
}

impl Client {
    fn send_more(&mut self, stream: &mut Stream<Self, impl Sized>) {
        while self.sent < FRAMES_PER_CLIENT && self.sent - self.received < WINDOW {
            let (client, seq) = (self.id, self.sent);
            self.body.clear();
            self.body.extend((0..body_len(client, seq)).map(|i| body_byte(client, seq, i)));
            stream.write_packed(&Msg { client, seq, body: &self.body }).unwrap();
            self.sent += 1;
        }
    }

    fn fail(&mut self, stream: &mut Stream<Self, impl Sized>, what: String) {
        self.totals.borrow_mut().errors.push(format!("client {}: {what}", self.id));
        stream.close_now();
    }
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.send_more(stream);
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.fail(stream, error.to_string());
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        if self.received != FRAMES_PER_CLIENT {
            let message = format!("client {}: closed after {} replies", self.id, self.received);
            self.totals.borrow_mut().errors.push(message);
        }
    }
}

impl Read<Packed<Msg<'static>>> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Msg<'static>>>, frame: Msg<'_>) {
        let (client, seq) = (self.id, self.received);
        let body_ok = frame.body.len() == body_len(client, seq)
            && frame.body.iter().enumerate().all(|(i, b)| *b == body_byte(client, seq, i));
        if frame.client != client || frame.seq != seq || !body_ok {
            return self.fail(stream, format!("expected ({client}, {seq}), got {frame:?}"));
        }
        self.received += 1;
        self.totals.borrow_mut().replies += 1;
        if self.received == FRAMES_PER_CLIENT {
            self.totals.borrow_mut().done += 1;
            stream.close();
        } else {
            self.send_more(stream);
        }
    }
}

#[test]
fn a_million_frames_through_a_hundred_streams() {
    let started = Instant::now();
    let engine = Engine::new().unwrap();
    let frames = Rc::new(Cell::new(0u64));
    let counter = frames.clone();
    let server = Server::from_fn(move |_| {
        Some(Stream::new(Echo { frames: counter.clone() }).read_delimiter(Packed::<Msg>::new()))
    })
    .listen(&engine, "127.0.0.1:0")
    .unwrap();
    let addr = tcp_address(&engine, server);

    // The clients run on their own engine on another thread (both cores work).
    let clients = std::thread::spawn(move || -> Result<u64, Vec<String>> {
        let engine = Engine::new().unwrap();
        let totals = Rc::new(RefCell::new(Totals::default()));
        for id in 0..CLIENTS {
            let client = Client { id, sent: 0, received: 0, totals: totals.clone(), body: Vec::new() };
            Stream::new(client).read_delimiter(Packed::<Msg>::new()).connect(&engine, addr).unwrap();
        }
        let finished = engine
            .run_until(Duration::from_secs(240), || {
                let totals = totals.borrow();
                totals.done == CLIENTS as usize || !totals.errors.is_empty()
            })
            .unwrap();
        // Let the streams finish closing.
        engine.run_until(WAIT, || engine.channel_count() == 0).unwrap();
        let totals = totals.borrow();
        if !finished || !totals.errors.is_empty() {
            return Err(totals.errors.iter().take(10).cloned().chain([format!("{} done", totals.done)]).collect());
        }
        Ok(totals.replies)
    });
    let joined = engine.run_until(Duration::from_secs(300), || clients.is_finished()).unwrap();
    assert!(joined, "the clients did not finish");
    let replies = clients.join().unwrap().unwrap();
    let total = u64::from(CLIENTS) * u64::from(FRAMES_PER_CLIENT);
    assert_eq!(replies, total, "every reply checked");
    // Every connection closes on the server side too; no frame was echoed twice.
    engine.run_until(WAIT, || engine.connections(server).unwrap().is_empty()).unwrap();
    assert_eq!(engine.connections(server).unwrap(), []);
    assert_eq!(frames.get(), total);
    println!("{total} frames echoed in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Fairness: a flood does not starve a request/response client.

/// `ping N` lines are answered with `pong N`; everything else is counted and
/// dropped.
struct Sink {
    flood: Rc<Cell<u64>>,
    /// Flood bytes received when each pong was queued.
    at_pong: Rc<RefCell<Vec<u64>>>,
}

impl Handler for Sink {}

impl Read<Until> for Sink {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        if let Some(n) = line.strip_prefix(b"ping ") {
            self.at_pong.borrow_mut().push(self.flood.get());
            stream.write([b"pong ", n, b"\n"].concat()).unwrap();
        } else {
            self.flood.set(self.flood.get() + line.len() as u64 + 1);
        }
    }
}

const PINGS: usize = 50;

/// Request/response on the server's own engine: its round trips depend on
/// the loop's fairness, not on how the OS schedules a thread.
struct Pinger {
    next: usize,
    flood_sent: Arc<AtomicU64>,
    /// How much flood was out when the last pong arrived.
    flood_at_end: Rc<Cell<Option<u64>>>,
}

impl Handler for Pinger {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write(b"ping 0\n").unwrap();
    }
}

impl Read<Until> for Pinger {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        assert_eq!(line, format!("pong {}", self.next).as_bytes());
        self.next += 1;
        if self.next == PINGS {
            self.flood_at_end.set(Some(self.flood_sent.load(Ordering::SeqCst)));
            stream.close();
        } else {
            stream.write(format!("ping {}\n", self.next)).unwrap();
        }
    }
}

#[test]
fn a_flooding_client_does_not_starve_a_chatty_one() {
    /// The flood stops on its own after this much: the pings must all be
    /// answered before.
    const FLOOD_CAP: u64 = 256 << 20;
    /// The pings start once this much flood is out: more than the kernel
    /// buffers hold, so the server is busy reading it all along.
    const FLOOD_HEAD_START: u64 = 16 << 20;

    let engine = Engine::new().unwrap();
    let flood = Rc::new(Cell::new(0));
    let at_pong = Rc::new(RefCell::new(Vec::new()));
    let (f, p) = (flood.clone(), at_pong.clone());
    let server = Server::from_fn(move |_| {
        Some(Stream::new(Sink { flood: f.clone(), at_pong: p.clone() }).read_delimiter(Until::lf()))
    })
    .listen(&engine, "127.0.0.1:0")
    .unwrap();
    let addr = tcp_address(&engine, server);

    // The flood comes from another thread, as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || -> io::Result<()> {
            let mut s = TcpStream::connect(addr)?;
            s.set_write_timeout(Some(WAIT))?;
            let line: Vec<u8> = [vec![b'x'; 1023], vec![b'\n']].concat();
            let chunk = line.repeat(64);
            while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < FLOOD_CAP {
                s.write_all(&chunk)?;
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            Ok(())
        })
    };
    let started = engine.run_until(WAIT, || sent.load(Ordering::SeqCst) >= FLOOD_HEAD_START).unwrap();
    assert!(started, "the flood did not start");

    let flood_at_end = Rc::new(Cell::new(None));
    let pinger = Pinger { next: 0, flood_sent: sent.clone(), flood_at_end: flood_at_end.clone() };
    Stream::new(pinger).read_delimiter(Until::lf()).connect(&engine, addr).unwrap();
    let answered =
        engine.run_until(Duration::from_secs(120), || flood_at_end.get().is_some() || flooder.is_finished()).unwrap();
    // Stop the flood; keep reading so that its last write completes.
    stop.store(true, Ordering::SeqCst);
    assert!(engine.run_until(WAIT, || flooder.is_finished()).unwrap());
    flooder.join().unwrap().unwrap();
    assert!(answered, "neither the pings nor the flood finished");
    let flood_sent = flood_at_end.get().expect("the flood reached its cap before every ping was answered");
    assert!(flood_sent < FLOOD_CAP, "every ping was answered while the flood went on");
    let at_pong = at_pong.borrow();
    assert_eq!(at_pong.len(), PINGS);
    assert!(
        at_pong[PINGS - 1] > at_pong[0],
        "the server read the flood between the pings: {} then {}",
        at_pong[0],
        at_pong[PINGS - 1]
    );
    println!(
        "flood: {} MiB sent when the last pong arrived; the server read {} MiB of it between the first and last ping",
        flood_sent >> 20,
        (at_pong[PINGS - 1] - at_pong[0]) >> 20
    );
}

// ---------------------------------------------------------------------------
// Backpressure: a peer that asks and never reads.

const REPLY: usize = 64 * 1024;
const LIMIT: usize = 256 * 1024;
const REQUESTS: usize = 1000;

fn reply(n: usize) -> Vec<u8> {
    let mut r = vec![n as u8; REPLY];
    r[..8].copy_from_slice(&(n as u64).to_be_bytes());
    r
}

#[derive(Default)]
struct Pressure {
    answered: usize,
    max_queued: u64,
    backpressure: usize,
    queued_at_backpressure: Vec<u64>,
}

/// Answers every `GET n` with a 64 KiB reply.
struct Replier {
    stats: Rc<RefCell<Pressure>>,
}

impl Handler for Replier {
    fn on_backpressure(&mut self, stream: &mut Stream<Self>) {
        let mut stats = self.stats.borrow_mut();
        stats.backpressure += 1;
        stats.queued_at_backpressure.push(stream.queued());
    }
}

impl Read<Until> for Replier {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let n: usize = std::str::from_utf8(line).unwrap().strip_prefix("GET ").unwrap().parse().unwrap();
        stream.write_vec(reply(n)).unwrap();
        let mut stats = self.stats.borrow_mut();
        assert_eq!(n, stats.answered, "requests answered in order");
        stats.answered += 1;
        stats.max_queued = stats.max_queued.max(stream.queued());
    }
}

#[test]
fn backpressure_bounds_the_queue_and_reading_resumes() {
    let engine = Engine::new().unwrap();
    let stats = Rc::new(RefCell::new(Pressure::default()));
    let s = stats.clone();
    let server = Server::from_fn(move |_| {
        Some(Stream::new(Replier { stats: s.clone() }).read_delimiter(Until::lf()).write_limit(LIMIT))
    })
    .listen(&engine, "127.0.0.1:0")
    .unwrap();
    let addr = tcp_address(&engine, server);

    // Ask for 64 MiB and read nothing: far more than kernel buffers hold.
    let mut peer = TcpStream::connect(addr).unwrap();
    let requests: String = (0..REQUESTS).map(|n| format!("GET {n}\n")).collect();
    peer.write_all(requests.as_bytes()).unwrap();
    // Half-closing too: the answers still come, before the end of stream.
    peer.shutdown(std::net::Shutdown::Write).unwrap();

    assert!(engine.run_until(WAIT, || stats.borrow().backpressure > 0).unwrap(), "on_backpressure was never called");
    // Keep the loop running a while: with the peer not reading, nothing more
    // is answered and the queue stays where it is.
    engine.run_until(Duration::from_millis(200), || false).unwrap();
    let paused_at = stats.borrow().answered;
    engine.run_until(Duration::from_millis(200), || false).unwrap();
    {
        let stats = stats.borrow();
        assert_eq!(stats.answered, paused_at, "reading is paused while the queue is full");
        assert!(stats.answered < REQUESTS, "the server paused before answering everything");
        assert!(
            stats.max_queued <= (LIMIT + REPLY) as u64,
            "queued bytes stay near the write limit: {} > {} + {}",
            stats.max_queued,
            LIMIT,
            REPLY
        );
    }

    // The peer starts reading: every request is answered, in order.
    let reader = std::thread::spawn(move || -> io::Result<()> {
        peer.set_read_timeout(Some(WAIT))?;
        let mut got = vec![0; REPLY];
        for n in 0..REQUESTS {
            peer.read_exact(&mut got)?;
            assert!(got == reply(n), "reply {n} intact");
        }
        assert_eq!(peer.read(&mut got)?, 0, "the end of stream follows the last answer");
        Ok(())
    });
    assert!(engine.run_until(Duration::from_secs(120), || reader.is_finished()).unwrap());
    reader.join().unwrap().unwrap();
    let stats = stats.borrow();
    assert_eq!(stats.answered, REQUESTS);
    assert!(stats.max_queued <= (LIMIT + REPLY) as u64, "max queued {}", stats.max_queued);
    assert!(stats.queued_at_backpressure.iter().all(|q| *q > LIMIT as u64));
    println!(
        "backpressure: {} times, max queued {} KiB, paused after {paused_at} answers",
        stats.backpressure,
        stats.max_queued >> 10
    );
}
