//! Bytes left in the receive buffer when the peer closes are reported to the
//! handler with their length, never dropped silently. The end of stream is
//! tested over the in-memory transport (`pants::testing`), byte by byte and
//! behind backpressure; a reset, which only a real socket gives, over TCP.

mod common;

use std::io::Write as _;

use common::{tcp_pair, wait, Log};
use pants::delimiter::Until;
use pants::testing::TestEngine;
use pants::{Engine, FrameError, Handler, Read, Stream, StreamError};

/// Logs frames, errors (with a partial frame's length) and the close.
struct Lines {
    log: Log,
    write_limit: Option<usize>,
}

impl Handler for Lines {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        if let Some(limit) = self.write_limit {
            stream.set_write_limit(limit);
        }
    }
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        match &error {
            StreamError::Frame(FrameError::Truncated { buffered }) => self.log.push(format!("truncated {buffered}")),
            StreamError::Read(e) => self.log.push(format!("read error {:?}", e.kind())),
            other => self.log.push(format!("error {other}")),
        }
        stream.close();
    }
    fn on_close(&mut self, _: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Until> for Lines {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.push(format!("line {}", String::from_utf8_lossy(line)));
        // A large reply: with a small write limit, delivery pauses.
        let _ = stream.write(vec![b'x'; 4096]);
    }
}

/// Attaches to a TCP connection whose peer sends `peer_sends`, then resets.
fn run_reset(peer_sends: &[u8]) -> Log {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let (ours, mut theirs) = tcp_pair();
    Stream::new(Lines { log: log.clone(), write_limit: None })
        .read_delimiter(Until::lf())
        .attach_tcp(&engine, ours)
        .unwrap();
    theirs.write_all(peer_sends).unwrap();
    // SO_LINGER 0: close sends a reset, not an end of stream.
    rustix::net::sockopt::set_socket_linger(&theirs, Some(std::time::Duration::ZERO)).unwrap();
    common::run_for(&engine, std::time::Duration::from_millis(50));
    drop(theirs);
    wait(&engine, "the close", || log.contains("close"));
    log
}

/// Sends `peer_sends` a byte at a time over the in-memory transport, then
/// the end of stream; the peer reads `capacity` bytes of replies at a time.
/// Returns the log and how many bytes of replies the peer got.
fn run_memory(peer_sends: &[u8], write_limit: Option<usize>, capacity: Option<usize>) -> (Log, usize) {
    let test = TestEngine::new().unwrap();
    let log = Log::new();
    let peer =
        Stream::new(Lines { log: log.clone(), write_limit }).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
    peer.set_capacity(capacity);
    for byte in peer_sends {
        peer.send([*byte]);
        test.settle().unwrap();
    }
    peer.close();
    test.settle().unwrap();
    let mut replies = 0;
    while !log.contains("close") {
        let taken = peer.take_written().len();
        assert!(taken > 0, "stuck before the close: {log:?}");
        replies += taken;
        test.settle().unwrap();
    }
    (log, replies + peer.take_written().len())
}

#[test]
fn a_partial_frame_at_the_end_of_stream_is_reported_with_its_length() {
    let (log, replies) = run_memory(b"one\ntwo\nthr", None, None);
    assert_eq!(log.events(), ["line one", "line two", "truncated 3", "close"]);
    assert_eq!(replies, 2 * 4096);
}

#[test]
fn a_partial_frame_when_the_peer_resets_is_reported_with_its_length() {
    let log = run_reset(b"one\nthr");
    let events = log.events();
    assert_eq!(events[0], "line one");
    assert!(events.contains(&"truncated 3".to_string()), "the partial frame is reported: {events:?}");
    assert_eq!(events.last().map(String::as_str), Some("close"));
}

#[test]
fn a_partial_frame_behind_paused_frames_is_reported_after_them() {
    // Every reply crosses the write limit, so delivery pauses after each
    // frame until the peer has read the reply (2 KiB at a time).
    let (log, replies) = run_memory(b"a\nb\nc\nd\npartial", Some(1024), Some(2048));
    assert_eq!(log.events(), ["line a", "line b", "line c", "line d", "truncated 7", "close"]);
    assert_eq!(replies, 4 * 4096);
}
