//! Streams over real loopback sockets: reading (end of stream, resets,
//! delimiter switches inside and outside `on_read`, overflow) and the
//! lifecycle (addresses, closing, panics, typed access through the engine,
//! per-stream timers, idle and read timeouts).
//!
//! Peers are plain `std` sockets, on helper threads or written to before
//! the stream is attached; every wait is bounded (see `common::WAIT`). The
//! tests of per-stream timers and timeouts, whose point is timing, run on
//! the in-memory transport instead (`pants::testing`), on a manual clock:
//! exact, and without waiting.

mod common;

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{kind, Log};
use pants::delimiter::{Array, Count, Raw, Until};
use pants::testing::TestEngine;
use pants::{Address, Engine, FrameError, Handler, Read, Stream, StreamError, StreamId, TimerId};

/// Makes the reply to a line.
type Reply = fn(&[u8]) -> Vec<u8>;

/// Records lines, errors and the close; replies to each line with
/// `reply(line)` if set.
#[derive(Default)]
struct Lines {
    log: Log,
    reply: Option<Reply>,
    close_on: Option<&'static [u8]>,
}

impl Lines {
    fn new(log: &Log) -> Self {
        Lines { log: log.clone(), ..Lines::default() }
    }
}

impl Handler for Lines {
    fn on_connect(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("connect");
    }
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {error:?}"));
        stream.close();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Lines {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        if let Some(reply) = self.reply {
            stream.write(reply(line)).unwrap();
        }
        if self.close_on == Some(line) {
            stream.write(b"bye").unwrap();
            stream.close();
        }
    }
}

/// Attaches `handler` to a TCP connection whose peer has already written
/// `data` (so that it is all buffered by the first read), and returns the
/// peer's end.
fn attach_with<H: Handler + Read<Until>>(engine: &Engine, handler: H, data: &[u8]) -> (StreamId, std::net::TcpStream) {
    let (ours, mut theirs) = common::tcp_pair();
    theirs.write_all(data).unwrap();
    let id = Stream::new(handler).read_delimiter(Until::lf()).attach_tcp(engine, ours).unwrap();
    (id, theirs)
}

// ---------------------------------------------------------------------------
// 3. Reading
// ---------------------------------------------------------------------------

#[test]
fn buffered_frames_are_delivered_when_the_peer_half_closes() {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = common::peer(move || {
        let s = common::accept(&listener);
        common::send_and_shutdown(&s, b"a\nb\n\nc\n");
        common::read_all(&s)
    });
    let log = Log::new();
    Stream::new(Lines::new(&log)).read_delimiter(Until::lf()).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    let (rest, end) = common::join(&engine, peer);
    assert!(rest.is_empty() && end.is_ok(), "{rest:?} {end:?}");
    assert_eq!(log.events(), ["connect", "line a", "line b", "line ", "line c", "close"]);
}

#[test]
fn a_partial_frame_at_end_of_stream_is_reported_truncated() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let (_, theirs) = attach_with(&engine, Lines::new(&log), b"a\nbcd");
    theirs.shutdown(Shutdown::Write).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.events(), ["connect", "line a", "error Frame(Truncated { buffered: 3 })", "close"]);
    assert_eq!(common::read_all(&theirs).0, b"");
}

/// Writes to a peer that never reads, and records how the reset ends it.
struct Resettable {
    log: Log,
}

impl Handler for Resettable {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write(b"you will never read this").unwrap();
    }
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        let shown = match &error {
            StreamError::Frame(e) => format!("Frame {e:?}"),
            other => kind(other).to_string(),
        };
        self.log.push(format!("error {shown}"));
        stream.close_now();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Resettable {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
    }
}

#[test]
fn a_peer_reset_in_the_middle_of_a_frame_closes_once() {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = common::peer(move || {
        let mut s = common::accept(&listener);
        s.write_all(b"half a fra").unwrap();
        // Wait until our bytes sit unread in the peer's receive buffer:
        // closing then makes the kernel send a reset instead of a FIN.
        let mut probe = [0u8; 1];
        assert_eq!(s.peek(&mut probe).unwrap(), 1);
        drop(s);
    });
    let log = Log::new();
    Stream::new(Resettable { log: log.clone() }).read_delimiter(Until::lf()).connect(&engine, addr).unwrap();
    common::join(&engine, peer);
    common::wait(&engine, "on_close", || log.contains("close"));
    common::run_for(&engine, Duration::from_millis(20));
    let events = log.events();
    eprintln!("after the reset: {events:?}");
    assert_eq!(log.count("close"), 1, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("close"));
    // Depending on timing the reset is seen while reading, or the bytes and
    // an end of stream are seen first: never a frame, never anything else.
    for event in &events[..events.len() - 1] {
        assert!(
            ["error Read", "error Write", "error Frame Truncated { buffered: 10 }"].contains(&event.as_str()),
            "{events:?}"
        );
    }
    // A reset seen while reading reports the partial frame first, then the
    // read error: at most those two, and the close.
    assert!(events.len() <= 3, "{events:?}");
    if events.len() == 3 {
        assert_eq!(events[..2], ["error Frame Truncated { buffered: 10 }", "error Read"], "{events:?}");
    }
    assert_eq!(engine.channel_count(), 0);
}

#[test]
fn a_half_closing_peer_receives_every_reply() {
    // Pants bug 13: replies queued for the data that came with the FIN
    // were dropped. Here each reply is large, so they cannot all be
    // written before the end of stream is seen.
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    fn reply(line: &[u8]) -> Vec<u8> {
        line.repeat(200_000)
    }
    let expected = [reply(b"q1"), reply(b"q2"), reply(b"q3")].concat();
    let peer = common::peer(move || {
        let s = common::accept(&listener);
        common::send_and_shutdown(&s, b"q1\nq2\nq3\n");
        std::thread::sleep(Duration::from_millis(50));
        common::read_all(&s)
    });
    let log = Log::new();
    let lines = Lines { reply: Some(reply), ..Lines::new(&log) };
    Stream::new(lines).read_delimiter(Until::lf()).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    let (got, end) = common::join(&engine, peer);
    end.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "replies damaged");
    assert_eq!(log.events(), ["connect", "line q1", "line q2", "line q3", "close"]);
}

/// Answers each line later, from a timer (as if the reply were made on
/// another worker), and keeps the stream open past the peer's end of
/// stream until every reply is written. With a `bound`, owes at most that
/// many replies: it pauses reading at the bound and resumes as replies are
/// written.
#[derive(Default)]
struct Deferred {
    log: Log,
    owed: usize,
    most_owed: usize,
    bound: Option<usize>,
    ended: bool,
}

impl Handler for Deferred {
    fn on_end(&mut self, stream: &mut Stream<Self>) {
        self.log.push(format!("end, {} owed", self.owed));
        self.ended = true;
        if self.owed == 0 {
            stream.close();
        }
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Deferred {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        assert!(!stream.is_reading_paused(), "a frame delivered while paused");
        self.owed += 1;
        self.most_owed = self.most_owed.max(self.owed);
        if Some(self.owed) == self.bound {
            stream.pause_reading();
        }
        let (id, reply) = (stream.id(), [b"re ", line, b"\n"].concat());
        let delay = Duration::from_millis(if self.bound.is_some() { 1 } else { 20 });
        stream.engine().defer(delay, move |engine| {
            let _ = engine.with_stream::<Deferred, _>(id, |handler, stream| {
                stream.write(&reply).unwrap();
                handler.owed -= 1;
                if handler.bound.is_some_and(|bound| handler.owed < bound) {
                    stream.resume_reading();
                }
                if handler.ended && handler.owed == 0 {
                    stream.close();
                }
            });
        });
    }
}

#[test]
fn on_end_can_keep_the_stream_open_for_replies_made_later() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let handler = Deferred { log: log.clone(), ..Deferred::default() };
    let (_, theirs) = attach_with(&engine, handler, b"a\nb\n");
    theirs.shutdown(Shutdown::Write).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(common::read_all(&theirs).0, b"re a\nre b\n");
    // Once, though the stream stayed open (and was driven again) after it.
    assert_eq!(log.events(), ["end, 2 owed", "close"]);
}

#[test]
fn pause_reading_bounds_what_a_pipelining_peer_makes_a_handler_owe() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let handler = Deferred { log: log.clone(), bound: Some(4), ..Deferred::default() };
    // 100 lines and the end of stream in one go: all buffered at once.
    let lines: Vec<u8> = (0..100).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    let (id, theirs) = attach_with(&engine, handler, &lines);
    theirs.shutdown(Shutdown::Write).unwrap();
    let mut most_owed = 0;
    common::wait(&engine, "on_close", || {
        if let Ok(most) = engine.with_stream::<Deferred, _>(id, |handler, _| handler.most_owed) {
            most_owed = most;
        }
        log.contains("close")
    });
    let expected: Vec<u8> = (0..100).flat_map(|i| format!("re {i}\n").into_bytes()).collect();
    assert_eq!(common::read_all(&theirs).0, expected);
    assert_eq!(most_owed, 4, "never more than the bound owed");
    // The end of stream waited for the paused reads: seen once, after the
    // last line.
    assert_eq!(log.events().len(), 2);
    assert!(log.events()[0].starts_with("end, "));
}

#[test]
fn a_paused_stream_reads_nothing_until_resumed() {
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let handler = Lines::new(&log);
    let peer = Stream::new(handler).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
    test.with_stream::<Lines, _>(peer.id(), |_, stream| stream.pause_reading()).unwrap();
    peer.send(b"one\ntwo\n");
    peer.close();
    test.settle().unwrap();
    assert_eq!(log.events(), ["connect"], "nothing read, and no end of stream, while paused");
    assert!(!peer.is_closed());
    test.with_stream::<Lines, _>(peer.id(), |_, stream| {
        assert!(stream.is_reading_paused());
        stream.resume_reading();
    })
    .unwrap();
    test.settle().unwrap();
    assert_eq!(log.events(), ["connect", "line one", "line two", "close"]);
}

/// A peer end that can write and half-close (TCP or UNIX).
trait PeerEnd: std::io::Write + Send + 'static {
    fn half_close(&self);
}

impl PeerEnd for std::net::TcpStream {
    fn half_close(&self) {
        self.shutdown(Shutdown::Write).unwrap();
    }
}

impl PeerEnd for std::os::unix::net::UnixStream {
    fn half_close(&self) {
        self.shutdown(Shutdown::Write).unwrap();
    }
}

/// Delivers `lines` then sees the end of stream, for each way the last
/// bytes and the end of stream can meet the stream's reads: both before
/// the first event, the end right after the last write (racing the reads),
/// and the end long after the last bytes were read. A read that returns
/// less than asked ends a wake-up's reading; the end of stream must still be
/// seen in each case (no further event comes for it once reported).
fn end_of_stream_in_every_order<P: PeerEnd>(attach: impl Fn(&Engine, Lines) -> P) {
    const LINES: usize = 200;
    let expected: Vec<String> = ["connect".to_string()]
        .into_iter()
        .chain((0..LINES).map(|i| format!("line {i}")))
        .chain(["close".to_string()])
        .collect();
    for order in ["racing", "after a pause"] {
        for round in 0..10 {
            let engine = Engine::new().unwrap();
            let log = Log::new();
            let mut theirs = attach(&engine, Lines::new(&log));
            let all: Vec<u8> = (0..LINES).flat_map(|i| format!("{i}\n").into_bytes()).collect();
            match order {
                "racing" => {
                    let peer = common::peer(move || {
                        for chunk in all.chunks(7 + round) {
                            theirs.write_all(chunk).unwrap();
                        }
                        theirs.half_close();
                        theirs
                    });
                    common::wait(&engine, "on_close", || log.contains("close"));
                    drop(common::join(&engine, peer));
                }
                _ => {
                    theirs.write_all(&all).unwrap();
                    let last = format!("line {}", LINES - 1);
                    common::wait(&engine, "the last line", || log.contains(&last));
                    common::run_for(&engine, Duration::from_millis(2));
                    theirs.half_close();
                    common::wait(&engine, "on_close", || log.contains("close"));
                }
            }
            assert_eq!(log.events(), expected, "{order}, round {round}");
        }
    }
}

#[test]
fn the_end_of_stream_is_seen_however_it_meets_the_reads_tcp() {
    end_of_stream_in_every_order(|engine, lines| {
        let (ours, theirs) = common::tcp_pair();
        Stream::new(lines).read_delimiter(Until::lf()).attach_tcp(engine, ours).unwrap();
        theirs
    });
}

#[test]
fn the_end_of_stream_is_seen_however_it_meets_the_reads_unix() {
    end_of_stream_in_every_order(|engine, lines| {
        let (ours, theirs) = common::unix_pair();
        Stream::new(lines).read_delimiter(Until::lf()).attach_unix(engine, ours).unwrap();
        theirs
    });
}

#[test]
fn the_last_bytes_and_the_end_of_stream_before_the_first_event() {
    // Data and FIN both pending when the stream is registered: one event
    // says readable and read-closed at once.
    for unix in [false, true] {
        let engine = Engine::new().unwrap();
        let log = Log::new();
        let builder = Stream::new(Lines::new(&log)).read_delimiter(Until::lf());
        let _peer: Box<dyn PeerEnd> = if unix {
            let (ours, mut theirs) = common::unix_pair();
            theirs.write_all(b"a\nb\n").unwrap();
            theirs.half_close();
            builder.attach_unix(&engine, ours).unwrap();
            Box::new(theirs)
        } else {
            let (ours, mut theirs) = common::tcp_pair();
            theirs.write_all(b"a\nb\n").unwrap();
            theirs.half_close();
            builder.attach_tcp(&engine, ours).unwrap();
            Box::new(theirs)
        };
        common::wait(&engine, "on_close", || log.contains("close"));
        assert_eq!(log.events(), ["connect", "line a", "line b", "close"], "unix: {unix}");
    }
}

/// "n" lines announce an n-byte body; "A" a 4-byte array.
struct Switcher {
    log: Log,
}

impl Handler for Switcher {
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Switcher {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        if line == b"A" {
            stream.read_delimiter(Array::<4>);
        } else if let Some(Ok(count)) = std::str::from_utf8(line).ok().and_then(|l| l.parse().ok()).map(Count::new) {
            // ("0" parses, but is no valid count: it stays a line.)
            stream.read_delimiter(count);
        }
    }
}

impl Read<Count> for Switcher {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
        self.log.push(format!("body {}", String::from_utf8_lossy(body)));
        stream.read_delimiter(Until::lf());
    }
}

impl Read<Array<4>> for Switcher {
    fn on_read(&mut self, stream: &mut Stream<Self, Array<4>>, frame: &[u8; 4]) {
        self.log.push(format!("array {}", u32::from_be_bytes(*frame)));
        stream.read_delimiter(Until::lf());
    }
}

#[test]
fn switching_inside_on_read_applies_to_bytes_already_buffered() {
    let data = b"5\nhello3\nabc\n0\nA\n\x00\x00\x01\x00END\n";
    let expected = ["line 5", "body hello", "line 3", "body abc", "line ", "line 0", "line A", "array 256", "line END"];

    // Over TCP, everything written before the stream starts, so that it is
    // all buffered by the first read.
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let (_, theirs) = attach_with(&engine, Switcher { log: log.clone() }, data);
    common::wait(&engine, "every frame", || log.len() == expected.len());
    assert_eq!(log.events(), expected);
    drop(theirs);
    common::wait(&engine, "on_close", || log.contains("close"));

    // Over a UNIX socket pair, the same.
    let log = Log::new();
    let (ours, mut theirs) = common::unix_pair();
    theirs.write_all(data).unwrap();
    theirs.shutdown(Shutdown::Write).unwrap();
    Stream::new(Switcher { log: log.clone() }).read_delimiter(Until::lf()).attach_unix(&engine, ours).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    let mut with_close: Vec<&str> = expected.to_vec();
    with_close.push("close");
    assert_eq!(log.events(), with_close);
}

/// Reads `;`-separated words once switched to them.
struct Words {
    log: Log,
}

impl Handler for Words {
    fn on_connect(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("connect");
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Words {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, frame: &[u8]) {
        self.log.push(format!("frame {}", String::from_utf8_lossy(frame)));
    }
}

impl Read<Count> for Words {
    fn on_read(&mut self, _stream: &mut Stream<Self, Count>, frame: &[u8]) {
        self.log.push(format!("count {}", String::from_utf8_lossy(frame)));
    }
}

#[test]
fn switching_outside_on_read_delivers_buffered_frames_at_once() {
    // Pants bug 9: buffered frames waited for more data to arrive.
    let engine = Engine::new().unwrap();
    let log = Log::new();
    // No line feed: nothing is a frame under the first delimiter.
    let (id, theirs) = attach_with(&engine, Words { log: log.clone() }, b"one;two;three;abcdefgh");
    // The first service announces the connection and reads what is there.
    common::wait(&engine, "on_connect", || log.contains("connect"));
    assert_eq!(log.events(), ["connect"]);

    // From outside any callback: the frames come out within this call,
    // with no new data and no further loop iteration.
    engine.with_stream::<Words, _>(id, |_, stream| stream.read_delimiter(Until::new(";").unwrap())).unwrap();
    assert_eq!(log.events(), ["connect", "frame one", "frame two", "frame three"]);

    // From a per-stream timer: what is left ("abcdefgh", no `;`) is cut by
    // the new delimiter, still with no new data.
    engine
        .with_stream::<Words, _>(id, |_, stream| {
            stream.defer(Duration::from_millis(10), |_, stream| stream.read_delimiter(Count::new(4).unwrap()));
        })
        .unwrap();
    common::wait(&engine, "the counted frames", || log.len() == 6);
    assert_eq!(log.events()[4..], ["count abcd", "count efgh"]);
    drop(theirs);
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.len(), 7);
}

/// Records overflow errors; raises the limit if `grow_to` is set.
struct Overflowing {
    log: Log,
    grow_to: Option<usize>,
}

impl Handler for Overflowing {
    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, error: FrameError) {
        self.log.push(format!("overflow {error:?}"));
        match self.grow_to {
            Some(size) => stream.set_buffer_size(size),
            None => stream.close_now(),
        }
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Overflowing {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", line.len()));
    }
}

/// No error callbacks overridden: the defaults apply.
struct Defaults {
    log: Log,
}

impl Handler for Defaults {
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Defaults {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", line.len()));
    }
}

#[test]
fn overflow_with_the_default_handler_closes_the_stream() {
    let engine = Engine::new().unwrap();
    let (ours, mut theirs) = common::tcp_pair();
    theirs.write_all(&[b'x'; 100]).unwrap();
    let log = Log::new();
    Stream::new(Defaults { log: log.clone() })
        .read_delimiter(Until::lf())
        .buffer_size(16)
        .attach_tcp(&engine, ours)
        .unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.events(), ["close"]);
    // The peer sees the connection end (a reset, as unread bytes were left).
    let (got, _) = common::read_all(&theirs);
    assert!(got.is_empty());
}

#[test]
fn overflow_reported_once_then_a_larger_limit_goes_on() {
    let engine = Engine::new().unwrap();
    let (ours, mut theirs) = common::tcp_pair();
    theirs.write_all(&[b'x'; 20]).unwrap();
    theirs.write_all(b"\nshort\n").unwrap();
    let log = Log::new();
    let id = Stream::new(Overflowing { log: log.clone(), grow_to: Some(1024) })
        .read_delimiter(Until::lf())
        .buffer_size(16)
        .attach_tcp(&engine, ours)
        .unwrap();
    common::wait(&engine, "both lines", || log.len() == 3);
    assert_eq!(log.events(), ["overflow Overflow { limit: 16, needed: 17 }", "line 20", "line 5"]);
    assert_eq!(engine.with_stream::<Overflowing, _>(id, |_, s| s.buffer_size()).unwrap(), 1024);

    // Without growing: reported, closed by the handler.
    let (ours, mut theirs) = common::tcp_pair();
    theirs.write_all(&[b'y'; 40]).unwrap();
    let log = Log::new();
    Stream::new(Overflowing { log: log.clone(), grow_to: None })
        .read_delimiter(Until::lf())
        .buffer_size(16)
        .attach_tcp(&engine, ours)
        .unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.events(), ["overflow Overflow { limit: 16, needed: 17 }", "close"]);
}

#[test]
fn close_inside_on_read_stops_delivery_and_flushes_what_was_written() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let lines = Lines { close_on: Some(b"b"), ..Lines::new(&log) };
    let (_, theirs) = attach_with(&engine, lines, b"a\nb\nc\nd\n");
    common::wait(&engine, "on_close", || log.contains("close"));
    common::run_for(&engine, Duration::from_millis(20));
    assert_eq!(log.events(), ["connect", "line a", "line b", "close"]);
    // What was written before close() arrives, then the end of stream.
    theirs.shutdown(Shutdown::Write).unwrap();
    let (got, end) = common::read_all(&theirs);
    assert_eq!(got, b"bye");
    end.unwrap();
}

// ---------------------------------------------------------------------------
// 4. Lifecycle and handles
// ---------------------------------------------------------------------------

/// Checks its addresses, overriding and restoring them.
struct Addresses {
    log: Log,
    socket_local: Rc<RefCell<Option<Address>>>,
}

impl Handler for Addresses {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let (local, remote) = (stream.local_address().unwrap(), stream.remote_address().unwrap());
        *self.socket_local.borrow_mut() = Some(local.clone());
        let proxy = Address::from("203.0.113.9:4242");
        stream.set_remote_address(Some(proxy.clone()));
        stream.set_local_address(Some(Address::unix("/nowhere")));
        assert_eq!(stream.remote_address(), Some(proxy));
        assert_eq!(stream.local_address(), Some(Address::unix("/nowhere")));
        stream.set_remote_address(None);
        stream.set_local_address(None);
        assert_eq!(stream.remote_address(), Some(remote.clone()));
        assert_eq!(stream.local_address(), Some(local));
        self.log.push(format!("remote {remote}"));
    }
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        // Still readable in on_close.
        self.log.push(format!("close remote {}", stream.remote_address().map(|a| a.to_string()).unwrap_or_default()));
    }
}

impl Read<Raw> for Addresses {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn addresses_overrides_and_reset() {
    let engine = Engine::new().unwrap();
    let (listener, addr) = common::listener();
    let peer = common::peer(move || {
        let s = common::accept(&listener);
        let ours = s.peer_addr().unwrap();
        common::send_and_shutdown(&s, b"");
        ours
    });
    let log = Log::new();
    let socket_local = Rc::new(RefCell::new(None));
    Stream::new(Addresses { log: log.clone(), socket_local: socket_local.clone() }).connect(&engine, addr).unwrap();
    common::wait(&engine, "on_close", || log.len() == 2);
    let ours = common::join(&engine, peer);
    assert_eq!(log.events(), [format!("remote {addr}"), format!("close remote {addr}")]);
    assert_eq!(*socket_local.borrow(), Some(Address::Ip(ours)));
}

/// Closes in every way it can, counting on_close.
struct Closer {
    log: Log,
}

impl Handler for Closer {
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.log.push("close");
        stream.close();
        stream.close_now();
    }
}

impl Read<Until> for Closer {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        stream.write(b"reply").unwrap();
        stream.close();
        stream.close();
        assert!(stream.is_closed() && !stream.is_connected());
    }
}

#[test]
fn close_is_idempotent() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let (ours, mut theirs) = common::tcp_pair();
    theirs.write_all(b"x\n").unwrap();
    theirs.shutdown(Shutdown::Write).unwrap();
    let id = Stream::new(Closer { log: log.clone() }).read_delimiter(Until::lf()).attach_tcp(&engine, ours).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    // Closing from outside afterwards is harmless.
    let again = engine.close_stream(id, true);
    assert!(matches!(again, Ok(()) | Err(StreamError::NoSuchStream(_))), "{again:?}");
    let _ = engine.close_stream(id, false);
    common::run_for(&engine, Duration::from_millis(20));
    assert_eq!(log.events(), ["line x", "close"]);
    assert_eq!(common::read_all(&theirs).0, b"reply");
}

/// Queues a lot, then closes without flushing.
struct Dropper {
    log: Log,
}

impl Handler for Dropper {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write(vec![b'z'; 1 << 20]).unwrap();
        assert_eq!(stream.queued(), 1 << 20);
        stream.close_now();
        assert!(stream.is_closed());
    }
    fn on_write(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("write");
    }
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        assert_eq!(stream.queued(), 0);
        self.log.push("close");
    }
}

impl Read<Raw> for Dropper {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn close_now_drops_what_is_queued() {
    let engine = Engine::new().unwrap();
    let (ours, theirs) = common::tcp_pair();
    let log = Log::new();
    Stream::new(Dropper { log: log.clone() }).attach_tcp(&engine, ours).unwrap();
    common::wait(&engine, "on_close", || log.contains("close"));
    assert_eq!(log.events(), ["close"], "no on_write after close_now");
    let (got, _) = common::read_all(&theirs);
    assert!(got.is_empty(), "{} bytes were sent after close_now", got.len());
}

/// Panics on the line "boom"; echoes other lines.
struct Fragile {
    log: Log,
}

impl Handler for Fragile {
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Fragile {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        if line == b"boom" {
            panic!("handler blew up (this panic is expected by the test)");
        }
        stream.write([line, b"\n"].concat()).unwrap();
    }
}

#[test]
fn a_panicking_handler_takes_down_only_its_own_stream() {
    let engine = Engine::new().unwrap();
    let fragile_log = Log::new();
    let (ours, mut fragile_peer) = common::tcp_pair();
    let fragile = Stream::new(Fragile { log: fragile_log.clone() })
        .read_delimiter(Until::lf())
        .attach_tcp(&engine, ours)
        .unwrap();
    let steady_log = Log::new();
    let (ours, mut steady_peer) = common::tcp_pair();
    let steady =
        Stream::new(Fragile { log: steady_log.clone() }).read_delimiter(Until::lf()).attach_tcp(&engine, ours).unwrap();

    // The frame after "boom" is never delivered: the handler is not called
    // again, not even on_close.
    fragile_peer.write_all(b"ok\nboom\nafter\n").unwrap();
    common::wait(&engine, "the fragile stream to go", || {
        matches!(engine.with_stream::<Fragile, _>(fragile, |_, _| ()), Err(StreamError::NoSuchStream(_)))
    });
    assert_eq!(fragile_log.events(), ["line ok", "line boom"]);
    // Its peer sees the connection end. The echo of "ok" was queued in the
    // same batch as the panic: a panicked stream closes at once, dropping it.
    let (got, _) = common::read_all(&fragile_peer);
    assert_eq!(got, b"");

    // The other stream and the engine go on.
    steady_peer.write_all(b"still here\n").unwrap();
    common::wait(&engine, "the echo", || steady_log.len() == 1);
    assert_eq!(common::read_n(&steady_peer, 11), b"still here\n");
    assert_eq!(engine.ids(), [steady]);
    drop(steady_peer);
    common::wait(&engine, "on_close", || steady_log.contains("close"));
}

/// Tries typed access to itself from its own callback.
struct SelfAccess {
    log: Log,
}

impl Handler for SelfAccess {}

impl Read<Raw> for SelfAccess {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, _data: &[u8]) {
        let engine = stream.engine().clone();
        let busy = engine.with_stream::<SelfAccess, _>(stream.id(), |_, _| ());
        self.log.push(format!("self: {}", busy.map_or_else(|e| format!("{e:?}"), |()| "ok".into())));
    }
}

/// Another handler type, for `WrongHandler`.
struct Counter {
    seen: usize,
}

impl Handler for Counter {}

impl Read<Raw> for Counter {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.seen += data.len();
    }
}

#[test]
fn typed_access_and_cross_stream_writes_through_the_engine() {
    let engine = Engine::new().unwrap();
    let (ours, mut counter_peer) = common::tcp_pair();
    let counter = Stream::new(Counter { seen: 0 }).attach_tcp(&engine, ours).unwrap();
    let log = Log::new();
    let (ours, mut self_peer) = common::tcp_pair();
    let selfish = Stream::new(SelfAccess { log: log.clone() }).attach_tcp(&engine, ours).unwrap();

    counter_peer.write_all(b"12345").unwrap();
    common::wait(&engine, "the count", || engine.with_stream::<Counter, _>(counter, |c, _| c.seen).unwrap() == 5);

    // The wrong handler type.
    let wrong = engine.with_stream::<SelfAccess, _>(counter, |_, _| ());
    assert!(matches!(wrong, Err(StreamError::WrongHandler(id)) if id == counter), "{wrong:?}");

    // Busy: from its own callback.
    self_peer.write_all(b"x").unwrap();
    common::wait(&engine, "the self access", || log.len() == 1);
    assert_eq!(log.events(), [format!("self: Busy({selfish:?})")]);

    // Cross-stream writes, from outside and from a stream's typed access.
    engine.write_to(counter, b"to counter").unwrap();
    engine
        .with_stream::<SelfAccess, _>(selfish, |_, stream| {
            stream.engine().write_to(counter, b", and more").unwrap();
            stream.write(b"direct").unwrap();
        })
        .unwrap();
    // Flushed by the typed access itself, before it returned.
    assert_eq!(common::read_n(&self_peer, 6), b"direct");
    let peer = common::peer(move || (common::read_n(&counter_peer, 20), counter_peer));
    let (got, _counter_peer) = common::join(&engine, peer);
    assert_eq!(got, b"to counter, and more");

    // A closed stream's id names nothing any more (the peer closed first,
    // so the stream is gone at once).
    drop(self_peer);
    common::wait(&engine, "the stream to go", || !engine.ids().contains(&selfish));
    assert_eq!(engine.ids(), [counter]);
    assert!(
        matches!(engine.with_stream::<SelfAccess, _>(selfish, |_, _| ()), Err(StreamError::NoSuchStream(id)) if id == selfish)
    );
    assert!(matches!(engine.write_to(selfish, b"x"), Err(StreamError::NoSuchStream(_))));
    assert!(matches!(engine.close_stream(selfish, true), Err(StreamError::NoSuchStream(_))));
    // A new stream may reuse the slot: the old id still names nothing.
    let (ours, _peer) = common::tcp_pair();
    let newer = Stream::new(Counter { seen: 0 }).attach_tcp(&engine, ours).unwrap();
    assert_ne!(newer, selfish);
    assert!(matches!(engine.with_stream::<Counter, _>(selfish, |_, _| ()), Err(StreamError::NoSuchStream(_))));
}

/// Per-stream timers.
struct Timed {
    log: Log,
    timers: Rc<RefCell<Vec<TimerId>>>,
}

impl Handler for Timed {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let started = stream.engine().now();
        let t = stream.defer(Duration::from_millis(30), move |h, s| {
            assert_eq!(s.engine().now() - started, Duration::from_millis(30));
            h.log.push(format!("fired connected={}", s.is_connected()));
            // One that will still be pending when the stream closes.
            let t = s.defer(Duration::from_secs(3600), |h, _| h.log.push("never (long)"));
            h.timers.borrow_mut().push(t);
            s.write(b"closing").unwrap();
            s.close();
        });
        self.timers.borrow_mut().push(t);
    }
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.log.push("close");
        // Made after close: must never run either.
        let t = stream.defer(Duration::from_millis(1), |h, _| h.log.push("never (after close)"));
        self.timers.borrow_mut().push(t);
    }
}

impl Read<Raw> for Timed {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn per_stream_timers_fire_and_are_cancelled_on_close() {
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let timers = Rc::new(RefCell::new(Vec::new()));
    let peer = Stream::new(Timed { log: log.clone(), timers: timers.clone() }).attach_memory(&test).unwrap();
    let id = peer.id();
    test.advance(Duration::from_millis(29)).unwrap();
    assert_eq!(log.len(), 0, "fired early: {log:?}");
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["fired connected=true", "close"]);
    for timer in timers.borrow().iter() {
        assert!(!test.is_pending(*timer), "{timer:?} still pending after the stream closed");
    }
    // The stream lingers (waiting for the peer's end of stream) but is
    // closed: writes are refused and no timer of it runs, not even one
    // made through typed access now.
    assert!(matches!(test.write_to(id, b"late"), Err(StreamError::Closed(_))));
    if let Ok(timer) =
        test.with_stream::<Timed, _>(id, |_, s| s.defer(Duration::ZERO, |h, _| h.log.push("never (late)")))
    {
        assert!(!test.is_pending(timer));
    }
    test.advance(Duration::from_secs(7200)).unwrap();
    assert_eq!(log.events(), ["fired connected=true", "close"]);
    assert!(peer.is_closed());
    assert_eq!(peer.take_written(), b"closing");
}

/// Records timeouts; closes as the default does.
struct Sleepy {
    log: Log,
    connected_at: Rc<Cell<Option<Instant>>>,
    /// Keep writing every 10 ms (a read timeout must still fire).
    chatty: bool,
}

impl Sleepy {
    fn chatter(stream: &mut Stream<Self>) {
        stream.defer(Duration::from_millis(10), |_, s| {
            if s.write(b".").is_ok() {
                Sleepy::chatter(s);
            }
        });
    }
}

impl Handler for Sleepy {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.connected_at.set(Some(stream.engine().now()));
        if self.chatty {
            Sleepy::chatter(stream);
        }
    }
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {error:?}"));
        stream.close();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Sleepy {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn idle_timeout_closes_a_silent_connection() {
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let connected_at = Rc::new(Cell::new(None));
    let sleepy = Sleepy { log: log.clone(), connected_at: connected_at.clone(), chatty: false };
    let peer = Stream::new(sleepy).idle_timeout(Duration::from_millis(100)).attach_memory(&test).unwrap();
    test.advance(Duration::from_millis(99)).unwrap();
    assert_eq!(log.len(), 0, "timed out early: {log:?}");
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["error Timeout(\"idle\")", "close"]);
    assert_eq!(test.now() - connected_at.get().unwrap(), Duration::from_millis(100));
    assert!(peer.is_closed());
    assert_eq!(peer.take_written(), b"");
}

#[test]
fn a_timeout_set_later_counts_from_when_it_is_set() {
    // Without a timeout, activity is not timestamped; one set later must
    // count from then, not from the connection's start.
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let sleepy = Sleepy { log: log.clone(), connected_at: Rc::new(Cell::new(None)), chatty: false };
    let peer = Stream::new(sleepy).attach_memory(&test).unwrap();
    test.advance(Duration::from_millis(150)).unwrap();
    for read_timeout in [false, true] {
        test.with_stream::<Sleepy, _>(peer.id(), |_, stream| {
            if read_timeout {
                stream.set_read_timeout(Some(Duration::from_millis(100)));
            } else {
                stream.set_idle_timeout(Some(Duration::from_millis(150)));
            }
        })
        .unwrap();
    }
    test.advance(Duration::from_millis(99)).unwrap();
    assert_eq!(log.len(), 0, "timed out early: {log:?}");
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["error Timeout(\"read\")", "close"]);
}

#[test]
fn read_timeout_fires_while_we_keep_writing() {
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let connected_at = Rc::new(Cell::new(None));
    let sleepy = Sleepy { log: log.clone(), connected_at: connected_at.clone(), chatty: true };
    // An idle timeout of the same length never fires: we keep writing.
    let peer = Stream::new(sleepy)
        .read_timeout(Duration::from_millis(150))
        .idle_timeout(Duration::from_secs(3600))
        .attach_memory(&test)
        .unwrap();
    test.advance(Duration::from_millis(149)).unwrap();
    assert_eq!(log.len(), 0, "timed out early: {log:?}");
    assert_eq!(peer.take_written(), b"..............", "a write every 10 ms");
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["error Timeout(\"read\")", "close"]);
    assert_eq!(test.now() - connected_at.get().unwrap(), Duration::from_millis(150));
    assert!(peer.is_closed());
    assert!(peer.take_written().iter().all(|&b| b == b'.'));
}

/// Writes far more than a non-reading peer takes, then closes.
struct Stuck {
    log: Log,
}

impl Handler for Stuck {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_vec(vec![0; 1 << 20]).unwrap();
        stream.close();
    }
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {error:?}"));
        stream.close();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Stuck {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn a_timeout_ends_a_close_that_waits_for_a_peer_that_never_reads() {
    // Pants bug 17: close() with data queued for a peer that never reads
    // waited forever. With a read timeout set, the stream gives up.
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let peer =
        Stream::new(Stuck { log: log.clone() }).read_timeout(Duration::from_millis(100)).attach_memory(&test).unwrap();
    peer.set_capacity(Some(64 * 1024)); // what the peer's kernel would take
                                        // `advance` fails if the engine spins (never settles).
    test.advance(Duration::from_millis(99)).unwrap();
    assert_eq!(log.len(), 0, "gave up early: {log:?}");
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["error Timeout(\"read\")", "close"]);
    assert_eq!(peer.take_written().len(), 64 * 1024);
    assert!(peer.is_closed());
    assert_eq!(test.channel_count(), 0, "given up: the socket is dropped");
}

/// Keeps the stream after a connect error and sets a timeout then.
struct IdleAfterError {
    log: Log,
}

impl Handler for IdleAfterError {
    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("connect_error {}", kind(&error)));
        stream.set_idle_timeout(Some(Duration::from_millis(5)));
        stream.set_read_timeout(Some(Duration::from_millis(5)));
    }
    fn on_error(&mut self, _stream: &mut Stream<Self>, error: StreamError) {
        self.log.push(format!("error {error:?}"));
    }
}

impl Read<Raw> for IdleAfterError {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

#[test]
fn timeouts_on_a_stream_that_is_not_connected_do_not_spin() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let closed = common::closed_port();
    let id = Stream::new(IdleAfterError { log: log.clone() }).connect(&engine, Address::Port(closed.port())).unwrap();
    common::wait(&engine, "the connect error", || log.len() == 1);
    // An idle engine looks at `done` about every 10 ms: over 300 ms, a few
    // dozen iterations. A timer re-armed in the past would make thousands.
    let mut iterations = 0u32;
    let _ = engine.run_until(Duration::from_millis(300), || {
        iterations += 1;
        false
    });
    assert!(iterations < 1_000, "the engine spun: {iterations} iterations in 300 ms");
    assert_eq!(log.events(), ["connect_error Connect"], "nothing to time out before connecting");
    engine.close_stream(id, true).unwrap();
    assert_eq!(engine.channel_count(), 0);
}

#[test]
fn an_idle_timeout_ends_a_close_stuck_behind_a_peer_that_talks_but_never_reads() {
    // Failed flush attempts are not activity: the peer's bytes wake the
    // stream up (and are not read, as it is closing), but nothing of the
    // queue goes out, so the idle timeout still expires.
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let peer =
        Stream::new(Stuck { log: log.clone() }).idle_timeout(Duration::from_millis(100)).attach_memory(&test).unwrap();
    peer.set_capacity(Some(64 * 1024));
    test.settle().unwrap();
    assert_eq!(peer.take_written().len(), 64 * 1024, "the peer's buffer filled at once");
    peer.set_capacity(Some(0)); // and it never reads again
    for _ in 0..19 {
        peer.send(b"chatter");
        test.advance(Duration::from_millis(5)).unwrap();
    }
    peer.send(b"chatter");
    test.advance(Duration::from_millis(4)).unwrap();
    assert_eq!(log.len(), 0, "timed out early: {log:?}");
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["error Timeout(\"idle\")", "close"]);
    assert!(peer.is_closed());
}

/// Picks its protocol in `on_connect`: bodies of 3 bytes, not lines.
struct Picker {
    log: Log,
}

impl Handler for Picker {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.read_delimiter(Count::new(3).unwrap());
    }
}

impl Read<Until> for Picker {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
    }
}

impl Read<Count> for Picker {
    fn on_read(&mut self, _stream: &mut Stream<Self, Count>, body: &[u8]) {
        self.log.push(format!("count {:?}", String::from_utf8_lossy(body)));
    }
}

#[test]
fn a_switch_in_on_connect_cuts_the_first_bytes_with_the_new_delimiter() {
    // The peer's bytes are there before the stream is attached: they are
    // read together with the connect, and must be cut with the delimiter
    // on_connect chose, not the one the stream started with.
    let engine = Engine::new().unwrap();
    let (ours, mut theirs) = common::tcp_pair();
    theirs.write_all(b"ab\ncdef").unwrap();
    let log = Log::new();
    Stream::new(Picker { log: log.clone() }).read_delimiter(Until::lf()).attach_tcp(&engine, ours).unwrap();
    common::wait(&engine, "two frames", || log.len() == 2);
    assert_eq!(log.events(), ["count \"ab\\n\"", "count \"cde\""]);
}
