//! The in-memory test transport (`pants::testing`): handlers run on a real
//! engine over a `Peer` instead of a socket, with a manual clock. Frames
//! must not depend on how the input was split, `close()` must flush before
//! the peer sees the end of stream, switches apply mid-buffer, timeouts
//! follow the test's clock exactly, `on_close` runs once, and a peer's end
//! of stream inside a frame is reported as `Truncated`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::{Count, Until};
use pants::testing::{Peer, TestEngine};
use pants::{FrameError, Handler, Read, Stream, StreamError};
use proptest::prelude::*;

/// What a handler saw, in order.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }
    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
    fn count(&self, event: &str) -> usize {
        self.0.borrow().iter().filter(|e| *e == event).count()
    }
}

/// A small protocol: lines; `LEN n` switches to an n-byte body, then back
/// to lines. Every frame is echoed tagged with its kind.
struct Proto {
    log: Log,
}

impl Handler for Proto {
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        match &error {
            StreamError::Frame(FrameError::Truncated { buffered }) => self.log.push(format!("truncated {buffered}")),
            StreamError::Timeout(which) => self.log.push(format!("timeout {which}")),
            other => self.log.push(format!("error {other}")),
        }
        stream.close();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Proto {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        if let Some(n) = line.strip_prefix(b"LEN ").and_then(|n| std::str::from_utf8(n).ok()?.parse().ok()) {
            stream.read_delimiter(Count::new(n).unwrap());
        }
        let _ = stream.write([b"L:", line, b"\n"].concat());
    }
}

impl Read<Count> for Proto {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
        self.log.push(format!("body {}", String::from_utf8_lossy(body)));
        let _ = stream.write([b"B:", body, b"\n"].concat());
        stream.read_delimiter(Until::lf());
    }
}

fn start(test: &TestEngine, log: &Log) -> Peer {
    Stream::new(Proto { log: log.clone() }).read_delimiter(Until::lf()).attach_memory(test).unwrap()
}

const INPUT: &[u8] = b"hello\nLEN 5\nab\ncdLEN 2\nxy\nbye\n";
const FRAMES: [&str; 7] = ["line hello", "line LEN 5", "body ab\ncd", "line LEN 2", "body xy", "line ", "line bye"];
const REPLY: &[u8] = b"L:hello\nL:LEN 5\nB:ab\ncd\nL:LEN 2\nB:xy\nL:\nL:bye\n";

/// Sends `INPUT` cut at `cuts`, settling after each piece or not.
fn run_split(cuts: &[usize], settle_each: bool) -> (Vec<String>, Vec<u8>) {
    let test = TestEngine::new().unwrap();
    let log = Log::default();
    let peer = start(&test, &log);
    let mut at = 0;
    for &cut in cuts.iter().chain([&INPUT.len()]) {
        let cut = cut.clamp(at, INPUT.len());
        peer.send(&INPUT[at..cut]);
        at = cut;
        if settle_each {
            test.settle().unwrap();
        }
    }
    test.settle().unwrap();
    (log.events(), peer.take_written())
}

#[test]
fn every_split_of_the_input_gives_the_same_frames() {
    let whole = run_split(&[], true);
    assert_eq!(whole.0, FRAMES);
    assert_eq!(whole.1, REPLY);
    // Every single cut, and a byte at a time.
    for cut in 0..=INPUT.len() {
        assert_eq!(run_split(&[cut], true), whole, "cut at {cut}");
    }
    let bytes: Vec<usize> = (1..INPUT.len()).collect();
    assert_eq!(run_split(&bytes, true), whole, "a byte at a time");
    assert_eq!(run_split(&bytes, false), whole, "a byte at a time, read together");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn any_random_split_gives_the_same_frames(mut cuts in proptest::collection::vec(0..=INPUT.len(), 0..12), settle_each: bool) {
        cuts.sort_unstable();
        let (events, written) = run_split(&cuts, settle_each);
        prop_assert_eq!(events, FRAMES);
        prop_assert_eq!(written, REPLY);
    }
}

#[test]
fn a_switch_applies_to_the_bytes_already_buffered() {
    // Everything in one arrival: the body and the lines after it are in
    // the buffer when `LEN 4` switches to Count.
    let test = TestEngine::new().unwrap();
    let log = Log::default();
    let peer = start(&test, &log);
    peer.send("LEN 4\n1\n2\nafter\n");
    test.settle().unwrap();
    assert_eq!(log.events(), ["line LEN 4", "body 1\n2\n", "line after"]);
    assert_eq!(peer.take_written(), b"L:LEN 4\nB:1\n2\n\nL:after\n");
}

/// Writes `total` bytes on connect and closes at once.
struct Burst {
    total: usize,
    log: Log,
}

impl Handler for Burst {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let data: Vec<u8> = (0..self.total).map(|i| (i % 251) as u8).collect();
        stream.write(data).unwrap();
        stream.close();
        // Closing: no write is accepted any more.
        assert!(stream.write(b"late").is_err());
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Burst {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

#[test]
fn close_flushes_everything_written_before_the_peer_sees_the_end() {
    let test = TestEngine::new().unwrap();
    let log = Log::default();
    let total = 100_000;
    let peer = Stream::new(Burst { total, log: log.clone() }).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
    // The peer reads 4 KiB at a time: close() must wait for the rest.
    peer.set_capacity(Some(4096));
    test.settle().unwrap();
    let mut got = Vec::new();
    let mut rounds = 0;
    while !peer.is_closed() {
        assert!(log.events().is_empty(), "on_close before the queue was flushed");
        let chunk = peer.take_written();
        assert!(!chunk.is_empty(), "closing with nothing more written after {} bytes", got.len());
        got.extend(chunk);
        test.settle().unwrap();
        rounds += 1;
    }
    got.extend(peer.take_written());
    assert!(rounds >= total / 4096, "{rounds} rounds");
    assert_eq!(got.len(), total, "every byte before the end of stream");
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    assert_eq!(log.events(), ["close"]);
    // Half-closed, the stream lingers for the peer's end of stream; then it
    // is gone, and on_close ran once.
    peer.close();
    test.settle().unwrap();
    assert_eq!(test.channel_count(), 0);
    assert_eq!(log.count("close"), 1);
}

#[test]
fn an_idle_timeout_fires_on_the_manual_clock_exactly() {
    let test = TestEngine::new().unwrap();
    let log = Log::default();
    let peer = Stream::new(Proto { log: log.clone() })
        .read_delimiter(Until::lf())
        .idle_timeout(Duration::from_secs(30))
        .attach_memory(&test)
        .unwrap();
    test.settle().unwrap();
    // Traffic at 20 s pushes the deadline to 50 s.
    test.advance(Duration::from_secs(20)).unwrap();
    peer.send("ping\n");
    test.advance(Duration::from_millis(29_999)).unwrap();
    assert_eq!(log.events(), ["line ping"]);
    assert!(!peer.is_closed());
    test.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(log.events(), ["line ping", "timeout idle", "close"]);
    assert!(peer.is_closed());
    assert_eq!(test.clock().elapsed(), Duration::from_secs(50));
}

#[test]
fn on_close_runs_once_however_the_stream_is_ended() {
    // The handler closes on a timeout, the peer closes and resets, and
    // the engine is asked to close it: one on_close.
    let test = TestEngine::new().unwrap();
    let log = Log::default();
    let peer = Stream::new(Proto { log: log.clone() })
        .read_delimiter(Until::lf())
        .read_timeout(Duration::from_secs(1))
        .attach_memory(&test)
        .unwrap();
    peer.send("a\n");
    test.advance(Duration::from_secs(2)).unwrap();
    peer.close();
    peer.reset();
    let _ = test.close_stream(peer.id(), false);
    test.settle().unwrap();
    test.advance(Duration::from_secs(10)).unwrap();
    assert_eq!(log.count("close"), 1, "{:?}", log.events());
    assert_eq!(test.channel_count(), 0);
}

#[test]
fn the_end_of_stream_inside_a_frame_is_reported_truncated() {
    for (input, expect) in [
        (&b"one\ntw"[..], &["line one", "truncated 2", "close"][..]),
        (b"LEN 9\nabc", &["line LEN 9", "truncated 3", "close"]),
        (b"one\n", &["line one", "close"]),
    ] {
        let test = TestEngine::new().unwrap();
        let log = Log::default();
        let peer = start(&test, &log);
        for byte in input {
            peer.send([*byte]);
            test.settle().unwrap();
        }
        peer.close();
        test.settle().unwrap();
        assert_eq!(log.events(), expect, "input {:?}", String::from_utf8_lossy(input));
        // The replies to the whole frames were flushed before the close.
        assert!(peer.is_closed());
        assert!(peer.take_written().starts_with(b"L:"));
        assert_eq!(test.channel_count(), 0);
    }
}

#[test]
fn a_memory_stream_runs_beside_real_sockets_on_the_system_clock() {
    // Any engine takes an in-memory stream.
    let engine = pants::Engine::new().unwrap();
    let log = Log::default();
    let peer = Stream::new(Proto { log: log.clone() }).read_delimiter(Until::lf()).attach_memory(&engine).unwrap();
    peer.send("x\n");
    peer.settle().unwrap();
    assert_eq!(peer.take_written(), b"L:x\n");
    drop(peer); // the peer's end closes
    pants::testing::settle(&engine).unwrap();
    assert_eq!(log.events(), ["line x", "close"]);
}

/// Sends a file and a direct write on connect.
struct Files {
    file: std::fs::File,
}

impl Handler for Files {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_now(b"head:").unwrap();
        stream.write_file(&self.file, 2, 0).unwrap();
        stream.write(b":tail").unwrap();
        stream.close();
    }
}

impl Read<Until> for Files {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

#[test]
fn write_now_and_write_file_go_through_the_memory_transport() {
    // No socket to `sendfile` to: the file is copied, in order with the rest.
    let path = std::env::temp_dir().join(format!("pants-test-transport-{}", std::process::id()));
    std::fs::write(&path, b"0123456789").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let test = TestEngine::new().unwrap();
    let peer = Stream::new(Files { file }).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
    peer.set_capacity(Some(3)); // a slow reader: every part is cut
    let mut got = Vec::new();
    test.settle().unwrap();
    while !peer.is_closed() {
        got.extend(peer.take_written());
        test.settle().unwrap();
    }
    got.extend(peer.take_written());
    assert_eq!(got, b"head:23456789:tail");
}
