//! Testing handlers without sockets: an in-memory transport and a manual
//! clock (in the spirit of Twisted's `StringTransport` and `Clock`).
//!
//! [`StreamBuilder::attach_memory`] runs a stream, built as for a real
//! connection (the same handler, delimiter, limits and timeouts), on one end
//! of an in-memory pair, on a real [`Engine`]; the test holds the other end,
//! a [`Peer`]. Everything between the two is the code that runs over TCP:
//! framing, `on_read`, writes and their batching, `close()` and its flush,
//! delimiter switches, the end of stream and its partial frame, errors,
//! timeouts, `on_close`. Only the socket is replaced, and with it the
//! kernel's readiness: the peer tells the engine itself when there is
//! something to read or room to write.
//!
//! A test then reads as a conversation:
//!
//! 1. [`Peer::send`] bytes to the stream, in any split (a byte at a time,
//!    several frames at once);
//! 2. [`settle`](TestEngine::settle) the engine: it runs, without waiting,
//!    until it has nothing left to do;
//! 3. assert on what the handler wrote ([`Peer::take_written`]), on
//!    whether it closed ([`Peer::is_closed`]), or on the handler's own state
//!    (through [`Engine::with_stream`]).
//!
//! Time is a [`ManualClock`]: a [`TestEngine`] is an engine whose timers
//! and stream timeouts follow that clock only, and
//! [`advance`](TestEngine::advance) moves it forward, firing every timer on
//! the way at its own deadline, in order. A 30-second idle timeout is tested
//! in microseconds, and exactly: at 29.999 s nothing has happened.
//!
//! ```
//! use std::time::Duration;
//!
//! use pants::delimiter::Until;
//! use pants::testing::TestEngine;
//! use pants::{Handler, Read, Stream, StreamError};
//!
//! /// Echoes lines; says goodbye when the peer has been silent too long.
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
//!         if let StreamError::Timeout(_) = error {
//!             let _ = stream.send_with(&Until::lf(), b"bye");
//!         }
//!         stream.close(); // after "bye\n" has gone out
//!     }
//! }
//!
//! impl Read<Until> for Echo {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         let _ = stream.send(line); // the line and its "\n"
//!     }
//! }
//!
//! let test = TestEngine::new()?;
//! let peer = Stream::new(Echo)
//!     .read_delimiter(Until::lf())
//!     .idle_timeout(Duration::from_secs(30))
//!     .attach_memory(&test)?;
//!
//! // One byte at a time: each line comes back whole, once complete.
//! for byte in b"hello\nworld\n" {
//!     peer.send([*byte]);
//!     test.settle()?;
//! }
//! assert_eq!(peer.take_written(), b"hello\nworld\n");
//!
//! // The idle timeout counts from the last traffic, on the test's clock.
//! test.advance(Duration::from_millis(29_999))?;
//! assert!(!peer.is_closed());
//! test.advance(Duration::from_millis(1))?;
//! assert_eq!(peer.take_written(), b"bye\n");
//! assert!(peer.is_closed()); // the peer would read its end of stream now
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An in-memory stream has no addresses
//! ([`Stream::remote_address`](crate::Stream::remote_address) is `None`
//! unless set with [`Stream::set_remote_address`](crate::Stream::set_remote_address)),
//! and [`Stream::write_file`](crate::Stream::write_file) copies instead of
//! using `sendfile`. Everything else behaves as over a socket whose peer
//! reads everything at once, unless [`Peer::set_capacity`] says otherwise.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::time::Duration;

use crate::delimiter::Delimiter;
pub use crate::engine::ManualClock;
use crate::engine::{Engine, Readiness};
use crate::error::StreamError;
use crate::stream::{Handler, MemorySocket, Read, SharedPipe, Socket, StreamBuilder};
use crate::StreamId;

/// How many iterations [`settle`] runs before it gives up on an engine that
/// never runs out of work.
pub const SETTLE_LIMIT: usize = 10_000;

/// Why the engine could not be settled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The engine still had work after [`SETTLE_LIMIT`] iterations (or
    /// `advance` met that many deadlines): a handler that never stops
    /// producing, a cycle with a zero interval, two streams writing to each
    /// other forever.
    #[error("the engine still had work after {iterations} iterations")]
    Busy {
        /// How many iterations (or deadlines) were run.
        iterations: usize,
    },
    /// Polling failed (called from inside the engine, say).
    #[error("polling the engine failed: {0}")]
    Poll(#[from] io::Error),
}

/// Runs `engine` without waiting until it has nothing left to do: no
/// stream with bytes to read or write, no timer due on its clock, no
/// posted closure. Works on any engine (on the system clock, timers that
/// are not due yet are not waited for either); OS events are collected
/// once per iteration, without blocking.
///
/// ```
/// use pants::{testing, Engine};
/// use std::{cell::Cell, rc::Rc};
///
/// let engine = Engine::new()?;
/// let ran = Rc::new(Cell::new(0));
/// let count = ran.clone();
/// engine.callback(move |engine| {
///     count.set(count.get() + 1);
///     let count = count.clone();
///     engine.callback(move |_| count.set(count.get() + 1)); // the next iteration
/// });
/// testing::settle(&engine)?;
/// assert_eq!(ran.get(), 2);
/// # Ok::<(), testing::SettleError>(())
/// ```
pub fn settle(engine: &Engine) -> Result<(), SettleError> {
    for _ in 0..SETTLE_LIMIT {
        engine.poll(Some(Duration::ZERO))?;
        if engine.is_idle() {
            return Ok(());
        }
    }
    Err(SettleError::Busy { iterations: SETTLE_LIMIT })
}

/// An [`Engine`] on a [`ManualClock`], for tests: it dereferences to the
/// engine (start streams on it, set timers, `with_stream`), and
/// [`settle`](TestEngine::settle) and [`advance`](TestEngine::advance)
/// drive it. See the [module docs](self).
///
/// ```
/// use pants::testing::TestEngine;
/// use std::{cell::RefCell, rc::Rc, time::Duration};
///
/// let test = TestEngine::new()?;
/// let ticks = Rc::new(RefCell::new(Vec::new()));
/// let log = ticks.clone();
/// let start = test.now();
/// test.cycle(Duration::from_secs(10), move |engine| log.borrow_mut().push(engine.now() - start));
/// test.advance(Duration::from_secs(35))?;
/// // Every run at its own deadline, not three at 35 s.
/// let secs: Vec<u64> = ticks.borrow().iter().map(|d| d.as_secs()).collect();
/// assert_eq!(secs, [10, 20, 30]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TestEngine {
    engine: Engine,
    clock: ManualClock,
}

impl TestEngine {
    /// A new engine on a new manual clock.
    pub fn new() -> io::Result<TestEngine> {
        let clock = ManualClock::new();
        Ok(TestEngine { engine: Engine::with_clock(clock.clone())?, clock })
    }

    /// The engine (also reached through `Deref`).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine's clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Runs the engine until it has nothing left to do; see [`settle`].
    pub fn settle(&self) -> Result<(), SettleError> {
        settle(&self.engine)
    }

    /// Settles, then moves the clock forward by `by`, stopping at each
    /// timer's deadline on the way to fire it (and what it starts: the
    /// engine is settled at every stop), as if that much time had passed.
    /// Timers armed on the way (a cycle's next run, a timeout re-armed by
    /// traffic) fire too, if they fall within `by`.
    pub fn advance(&self, by: Duration) -> Result<(), SettleError> {
        let target = self.clock.now() + by;
        self.settle()?;
        for _ in 0..SETTLE_LIMIT {
            match self.engine.next_deadline() {
                Some(deadline) if deadline <= target => {
                    self.clock.advance_to(deadline);
                    self.settle()?;
                }
                _ => {
                    self.clock.advance_to(target);
                    return self.settle();
                }
            }
        }
        Err(SettleError::Busy { iterations: SETTLE_LIMIT })
    }
}

impl Deref for TestEngine {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEngine").field("engine", &self.engine).field("clock", &self.clock).finish()
    }
}

/// The test's end of an in-memory pair whose other end runs a stream; made
/// by [`StreamBuilder::attach_memory`]. See the [module docs](self).
///
/// What the peer does reaches the stream on the engine's next iteration
/// (a [`settle`](TestEngine::settle) runs it); nothing runs inside these
/// methods. Dropping the peer closes its end ([`close`](Peer::close)).
pub struct Peer {
    pipe: SharedPipe,
    /// A handle that does not keep the engine alive.
    engine: Engine,
    id: StreamId,
}

impl Peer {
    /// The id of the stream at the other end (for
    /// [`Engine::with_stream`], [`Engine::write_to`]...).
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Sends bytes to the stream, as one arrival: the stream reads them on
    /// the engine's next iteration, cutting frames as they complete. Split a
    /// message over several calls (settling between them, or not) to test
    /// partial frames. After [`close`](Peer::close) or [`reset`](Peer::reset)
    /// the bytes are dropped: the peer said it sends no more.
    pub fn send(&self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        let mut pipe = self.pipe.lock();
        if pipe.peer_closed || pipe.reset || data.is_empty() {
            return;
        }
        pipe.inbound.extend(data);
        drop(pipe);
        self.signal(Readiness { readable: true, read_closed: false, writable: false });
    }

    /// Ends the peer's side (a half-close: TCP's `FIN`). The stream reads
    /// what was sent before, then its end of stream: frames buffered are
    /// delivered, a partial frame is reported
    /// ([`FrameError::Truncated`](crate::FrameError)), then `on_end`, whose
    /// default flushes the replies and closes the stream. What it writes
    /// meanwhile can still be taken.
    pub fn close(&self) {
        let mut pipe = self.pipe.lock();
        if pipe.peer_closed {
            return;
        }
        pipe.peer_closed = true;
        drop(pipe);
        self.signal(Readiness { readable: true, read_closed: true, writable: false });
    }

    /// Resets the connection (TCP's `RST`): the stream's next read or write
    /// fails with [`io::ErrorKind::ConnectionReset`], bytes not read yet are
    /// lost, and it reports the error (after any partial frame).
    pub fn reset(&self) {
        let mut pipe = self.pipe.lock();
        if pipe.reset {
            return;
        }
        pipe.reset = true;
        pipe.inbound.clear();
        drop(pipe);
        self.signal(Readiness { readable: true, read_closed: true, writable: true });
    }

    /// A copy of what the stream has written and the peer has not taken.
    pub fn written(&self) -> Vec<u8> {
        self.pipe.lock().outbound.clone()
    }

    /// Takes what the stream has written so far (the peer reads it); with
    /// a [`capacity`](Peer::set_capacity), that makes room for more.
    pub fn take_written(&self) -> Vec<u8> {
        let mut pipe = self.pipe.lock();
        let taken = std::mem::take(&mut pipe.outbound);
        drop(pipe);
        self.unblock();
        taken
    }

    /// Limits how many bytes the stream may have written and the peer not
    /// taken: beyond it, the stream's writes block as a socket's do when the
    /// peer does not read, and what is left stays queued in the stream
    /// (for its write limit, `on_backpressure` and `close()`'s flush to
    /// act on). `None` (the default) takes everything.
    pub fn set_capacity(&self, capacity: Option<usize>) {
        self.pipe.lock().capacity = capacity;
        self.unblock();
    }

    /// Bytes sent to the stream that it has not read yet (it may have read
    /// none while paused by backpressure, say).
    pub fn unread(&self) -> usize {
        self.pipe.lock().inbound.len()
    }

    /// Whether the stream's end is closed: it has shut down its writing
    /// side, or the stream is gone. Reading, a real peer would now see its
    /// end of stream (once it has taken what was written).
    pub fn is_closed(&self) -> bool {
        let pipe = self.pipe.lock();
        pipe.write_shutdown || pipe.dropped
    }

    /// Runs the engine until it has nothing left to do; see [`settle`]
    /// (the clock does not move).
    pub fn settle(&self) -> Result<(), SettleError> {
        settle(&self.engine)
    }

    /// A write waited for room, and now there may be some.
    fn unblock(&self) {
        let mut pipe = self.pipe.lock();
        if std::mem::take(&mut pipe.write_blocked) {
            drop(pipe);
            self.signal(Readiness { readable: false, read_closed: false, writable: true });
        }
    }

    fn signal(&self, readiness: Readiness) {
        if !self.pipe.lock().dropped && !self.engine.is_torn_down() {
            self.engine.signal(self.id, readiness);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pipe = self.pipe.lock();
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("unread", &pipe.inbound.len())
            .field("written", &pipe.outbound.len())
            .field("closed", &(pipe.write_shutdown || pipe.dropped))
            .finish()
    }
}

impl<H: Handler, D: Delimiter + 'static> StreamBuilder<H, D> {
    /// Runs the stream on one end of an in-memory pair, on `engine`, and
    /// returns the other end (see the [`testing`](crate::testing) module).
    /// The stream starts as an attached socket does: `on_connect` on the
    /// engine's next iteration.
    ///
    /// ```
    /// use pants::{delimiter::Raw, testing, Engine, Handler, Read, Stream};
    ///
    /// struct Shout;
    /// impl Handler for Shout {}
    /// impl Read<Raw> for Shout {
    ///     fn on_read(&mut self, stream: &mut Stream<Self, Raw>, chunk: &[u8]) {
    ///         let _ = stream.write(chunk.to_ascii_uppercase());
    ///     }
    /// }
    ///
    /// let engine = Engine::new()?; // any engine: its own clock, real sockets beside
    /// let peer = Stream::new(Shout).attach_memory(&engine)?;
    /// peer.send("hey");
    /// peer.settle()?;
    /// assert_eq!(peer.take_written(), b"HEY");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_memory(self, engine: &Engine) -> Result<Peer, StreamError>
    where
        H: Read<D>,
    {
        let pipe = SharedPipe::default();
        let id = self.attach(engine, Socket::Memory(MemorySocket::new(pipe.clone())), None)?;
        Ok(Peer { pipe, engine: engine.handle(), id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delimiter::{Count, Until};
    use crate::Stream;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Default)]
    struct Seen {
        events: Rc<RefCell<Vec<String>>>,
    }

    impl Handler for Seen {
        fn on_connect(&mut self, _stream: &mut Stream<Self>) {
            self.events.borrow_mut().push("connect".into());
        }
        fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
            self.events.borrow_mut().push(format!("error {error}"));
            stream.close();
        }
        fn on_close(&mut self, _stream: &mut Stream<Self>) {
            self.events.borrow_mut().push("close".into());
        }
    }

    impl Read<Until> for Seen {
        fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
            self.events.borrow_mut().push(format!("line {}", String::from_utf8_lossy(line)));
            if line == b"BODY" {
                stream.read_delimiter(Count::new(3).unwrap());
            }
            let _ = stream.send(line);
        }
    }

    impl Read<Count> for Seen {
        fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
            self.events.borrow_mut().push(format!("body {}", String::from_utf8_lossy(body)));
            stream.read_delimiter(Until::lf());
        }
    }

    #[test]
    fn nothing_runs_until_the_engine_is_polled() {
        let test = TestEngine::new().unwrap();
        let seen = Seen::default();
        let events = seen.events.clone();
        let peer = Stream::new(seen).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
        peer.send("a\n");
        assert!(events.borrow().is_empty());
        assert_eq!(peer.unread(), 2);
        test.settle().unwrap();
        assert_eq!(*events.borrow(), ["connect", "line a"]);
        assert_eq!(peer.unread(), 0);
        assert_eq!(peer.written(), b"a\n");
        assert_eq!(peer.written(), b"a\n", "written() does not take");
        assert_eq!(peer.take_written(), b"a\n");
        assert!(peer.written().is_empty());
    }

    #[test]
    fn a_switch_and_the_end_of_stream_go_through_the_real_stream_code() {
        let test = TestEngine::new().unwrap();
        let seen = Seen::default();
        let events = seen.events.clone();
        let peer = Stream::new(seen).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
        peer.send("BODY\nxyzafter\npart");
        peer.close();
        peer.send("dropped: sent after close");
        test.settle().unwrap();
        let events = events.borrow();
        assert_eq!(events[..4], ["connect", "line BODY", "body xyz", "line after"]);
        assert!(events[4].starts_with("error") && events[4].contains("4 bytes"), "{events:?}");
        assert_eq!(events[5..], ["close"]);
        assert!(peer.is_closed());
        assert_eq!(peer.take_written(), b"BODY\nafter\n");
        assert_eq!(test.channel_count(), 0);
    }

    #[test]
    fn a_reset_is_a_read_error() {
        let test = TestEngine::new().unwrap();
        let seen = Seen::default();
        let events = seen.events.clone();
        let peer = Stream::new(seen).read_delimiter(Until::lf()).attach_memory(&test).unwrap();
        peer.send("par");
        test.settle().unwrap();
        peer.reset();
        test.settle().unwrap();
        let events = events.borrow();
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(events[1].contains("3 bytes") && events[2].contains("reset"), "{events:?}");
        assert_eq!(events[3], "close");
        assert!(peer.is_closed());
    }

    #[test]
    fn settle_gives_up_on_an_engine_that_never_idles() {
        let test = TestEngine::new().unwrap();
        let cycle = test.cycle(Duration::ZERO, |_| {});
        assert!(matches!(test.settle(), Err(SettleError::Busy { iterations: SETTLE_LIMIT })));
        test.cancel(cycle);
        test.settle().unwrap();
    }

    #[test]
    fn advance_fires_each_timer_at_its_own_deadline() {
        let test = TestEngine::new().unwrap();
        let start = test.now();
        let at: Rc<RefCell<Vec<(u64, &str)>>> = Rc::default();
        for (secs, name) in [(30, "c"), (10, "a"), (20, "b"), (99, "never")] {
            let at = at.clone();
            test.defer(Duration::from_secs(secs), move |engine| {
                at.borrow_mut().push(((engine.now() - start).as_secs(), name));
                if name == "a" {
                    // Armed on the way, due within the advance: fires too.
                    let at = at.clone();
                    engine.defer(Duration::from_secs(5), move |engine| {
                        at.borrow_mut().push(((engine.now() - start).as_secs(), "a+5"))
                    });
                }
            });
        }
        test.advance(Duration::from_secs(30)).unwrap();
        assert_eq!(*at.borrow(), [(10, "a"), (15, "a+5"), (20, "b"), (30, "c")]);
        assert_eq!(test.clock().elapsed(), Duration::from_secs(30));
    }
}
