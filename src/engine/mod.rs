//! The event loop: one thread, one `mio::Poll`, every stream and server.
//!
//! An [`Engine`] owns the streams and servers registered with it and calls
//! their handlers when something happens. It is single-threaded: an `Engine`
//! is a cheap, cloneable handle (`Rc`) that handlers reach through
//! [`Stream::engine`](crate::Stream::engine), and other threads talk to it
//! through a [`Remote`].
//!
//! ```
//! use pants::Engine;
//! use std::{cell::Cell, rc::Rc, time::Duration};
//!
//! let engine = Engine::new()?;
//! let fired = Rc::new(Cell::new(Vec::new()));
//! let log = fired.clone();
//! engine.defer(Duration::from_millis(20), move |engine| {
//!     log.set([log.take(), vec!["later"]].concat());
//!     engine.stop();
//! });
//! let log = fired.clone();
//! engine.callback(move |_| log.set([log.take(), vec!["next iteration"]].concat()));
//! engine.run()?;
//! assert_eq!(fired.take(), ["next iteration", "later"]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Timers
//!
//! [`callback`](Engine::callback) runs a function on the next iteration,
//! [`defer`](Engine::defer) after a delay, [`cycle`](Engine::cycle) every
//! interval. Each returns a [`TimerId`] for [`cancel`](Engine::cancel). Timers
//! fire in deadline order (creation order for equal deadlines), never early;
//! a cycle whose callback overran its interval is not fired in a burst to
//! catch up: it skips to the next interval from now. A cycle can cancel
//! itself from inside its own function.
//!
//! Timers, [`now`](Engine::now) and streams' timeouts read the engine's
//! clock: the system's, or for tests a [`ManualClock`] that moves only when
//! told to ([`Engine::with_clock`], and [`testing`](crate::testing)).
//!
//! # Panics in handlers
//!
//! A handler callback that panics takes down its own stream only: the panic
//! is caught, logged, the stream is closed without calling the handler again,
//! and every other stream and the engine go on (Pants' `_safely_call`). A
//! timer function that panics is logged and dropped. This needs the default
//! `panic = "unwind"`.

mod clock;
mod id;
mod remote;
mod resolver;
mod shutdown;
mod slab;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

pub(crate) use clock::Clock;
pub use clock::ManualClock;
pub use id::StreamId;
pub use remote::Remote;
pub use shutdown::ShutdownSummary;
pub(crate) use slab::{Channel, Slab};
pub use timers::TimerId;
use timers::{Task, Timers};

use crate::error::StreamError;

/// An operation waiting for a busy channel.
type ChannelOp = Box<dyn FnOnce(&mut dyn Channel, &Engine)>;

/// Token of the engine's waker.
const WAKER: Token = Token(usize::MAX);

/// The single-threaded event loop; see the [module docs](self).
///
/// # Dropping
///
/// Dropping the last handle made from [`Engine::new`] (or a clone of one)
/// tears the engine down: every socket is closed and every handler, timer
/// and posted closure is dropped, at once. `on_close` is **not** called
/// then: a handler that must see the end of its stream runs
/// [`shutdown`](Engine::shutdown) first. The handles that streams and
/// servers hand out ([`Stream::engine`](crate::Stream::engine),
/// [`Server::engine`](crate::Server::engine), the `&Engine` given to timers
/// and posted closures), and clones of them, do not keep the engine alive:
/// a handler may keep one without making a cycle. After the teardown such a
/// handle still works, on an engine with nothing in it, and starting a
/// stream or server on it fails with [`StreamError::EngineDropped`].
///
/// ```
/// use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
///
/// struct Echo;
/// impl Handler for Echo {}
/// impl Read<Raw> for Echo {
///     fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
///         let _ = stream.write(data);
///     }
/// }
///
/// let engine = Engine::new()?;
/// Server::from_fn(|_| Some(Stream::new(Echo))).listen(&engine, "127.0.0.1:0")?;
/// assert_eq!(engine.channel_count(), 1);
/// drop(engine); // the listening socket is closed, the server's handler dropped
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Engine {
    inner: Rc<Inner>,
    /// Made by `Engine::new` or cloned from such a handle: counted in
    /// `Inner::owners`, and the last one to go tears the engine down.
    owner: bool,
}

impl Clone for Engine {
    fn clone(&self) -> Self {
        if self.owner {
            self.inner.owners.set(self.inner.owners.get() + 1);
        }
        Engine { inner: self.inner.clone(), owner: self.owner }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.owner {
            let owners = self.inner.owners.get() - 1;
            self.inner.owners.set(owners);
            if owners == 0 {
                self.tear_down();
            }
        }
    }
}

struct Inner {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    registry: Registry,
    channels: RefCell<Slab>,
    timers: RefCell<Timers>,
    /// Channels with work that no OS event will announce (more to read after
    /// their fair share, a delimiter switched outside `on_read`, a new
    /// connection to announce, queued bytes to flush).
    ready: RefCell<VecDeque<StreamId>>,
    /// Readiness raised without the OS (in-memory test transports): handed
    /// out on the next iteration like the events of a poll.
    signalled: RefCell<Vec<(StreamId, Readiness)>>,
    /// Where the engine reads the time.
    clock: Clock,
    /// Operations on channels that were busy when asked for.
    deferred: RefCell<Vec<(StreamId, ChannelOp)>>,
    stopped: Cell<bool>,
    running: Cell<bool>,
    remote: Remote,
    /// Resolves host names for connects, on a few shared threads.
    resolver: resolver::Resolver,
    /// Spare receive buffers, lent to streams while they read, so that an
    /// idle stream holds none. Kept at full length (initialised), so lending
    /// one costs no zeroing.
    recv_pool: RefCell<Vec<Vec<u8>>>,
    /// Spare send buffers (empty, with capacity).
    send_pool: RefCell<Vec<Vec<u8>>>,
    /// Scratch kept between iterations so the loop does not allocate: the
    /// events of one poll, and the ready batch with its dedup set.
    fired: Cell<Vec<(Token, Readiness)>>,
    batch: Cell<Vec<StreamId>>,
    batched: Cell<std::collections::HashSet<StreamId>>,
    /// How many owning handles exist (see [`Engine`]'s drop rule).
    owners: Cell<usize>,
    /// The last owning handle is gone: nothing new may be registered.
    torn_down: Cell<bool>,
    /// Streams closed after flushing, and closed without (for
    /// [`Engine::shutdown`]'s summary).
    closed_graceful: Cell<u64>,
    closed_abrupt: Cell<u64>,
    /// This engine's index in its [`Workers`](crate::Workers) group, if any.
    worker: Cell<Option<usize>>,
    /// Every worker's `Remote` in that group, this one's included.
    peers: RefCell<Option<Arc<[Remote]>>>,
}

/// How many spare buffers the pool keeps, and the largest it keeps.
const POOL_COUNT: usize = 64;
const POOL_MAX_CAPACITY: usize = 256 * 1024;

impl Engine {
    /// A new engine with its own `mio::Poll`.
    pub fn new() -> io::Result<Engine> {
        Engine::with(Clock::System)
    }

    /// A new engine whose time is `clock`'s: it moves only when the test
    /// advances it (see [`ManualClock`]), for timers and stream timeouts
    /// alike. Use it to test timing without waiting;
    /// [`testing::TestEngine`](crate::testing::TestEngine) pairs the two.
    /// Bounds given to the loop itself stay in real time: the timeouts of
    /// [`poll`](Engine::poll) and [`run_until`](Engine::run_until), the
    /// deadline of [`shutdown`](Engine::shutdown).
    ///
    /// ```
    /// use pants::{engine::ManualClock, Engine};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let engine = Engine::with_clock(clock.clone())?;
    /// let start = engine.now();
    /// clock.advance(Duration::from_secs(3600));
    /// assert_eq!(engine.now() - start, Duration::from_secs(3600));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_clock(clock: ManualClock) -> io::Result<Engine> {
        Engine::with(Clock::Manual(clock))
    }

    fn with(clock: Clock) -> io::Result<Engine> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let remote = Remote::new(mio::Waker::new(poll.registry(), WAKER)?);
        Ok(Engine {
            inner: Rc::new(Inner {
                poll: RefCell::new(poll),
                events: RefCell::new(Events::with_capacity(1024)),
                registry,
                channels: RefCell::new(Slab::default()),
                timers: RefCell::new(Timers::default()),
                ready: RefCell::new(VecDeque::new()),
                signalled: RefCell::new(Vec::new()),
                clock,
                deferred: RefCell::new(Vec::new()),
                stopped: Cell::new(false),
                running: Cell::new(false),
                resolver: resolver::Resolver::new(remote.clone()),
                remote,
                recv_pool: RefCell::new(Vec::new()),
                send_pool: RefCell::new(Vec::new()),
                fired: Cell::default(),
                batch: Cell::default(),
                batched: Cell::default(),
                owners: Cell::new(1),
                torn_down: Cell::new(false),
                closed_graceful: Cell::new(0),
                closed_abrupt: Cell::new(0),
                worker: Cell::new(None),
                peers: RefCell::new(None),
            }),
            owner: true,
        })
    }

    /// A handle for the engine's own use (kept by streams, servers and
    /// timers) that does not keep the engine alive.
    pub(crate) fn handle(&self) -> Engine {
        Engine { inner: self.inner.clone(), owner: false }
    }

    /// Drops everything the engine holds: channels (closing their sockets,
    /// dropping their handlers), timers, deferred and posted closures, and
    /// the buffer pools. Handlers' `Drop` may add work (a timer, say); it is
    /// dropped too, in a bounded number of rounds.
    fn tear_down(&self) {
        let inner = &self.inner;
        inner.torn_down.set(true);
        inner.stopped.set(true);
        inner.remote.close();
        inner.resolver.close();
        self.clear();
    }

    /// Drops every channel, timer, deferred and posted closure and pooled
    /// buffer (the end of a teardown or a shutdown). Handlers' `Drop` may
    /// add work (a timer, say); it is dropped too, in a bounded number of
    /// rounds.
    fn clear(&self) {
        let inner = &self.inner;
        for _ in 0..16 {
            let channels = inner.channels.borrow_mut().drain();
            let timers = inner.timers.borrow_mut().drain();
            let deferred = std::mem::take(&mut *inner.deferred.borrow_mut());
            let jobs = inner.remote.take_jobs();
            inner.ready.borrow_mut().clear();
            inner.signalled.borrow_mut().clear();
            if channels.is_empty() && timers.is_empty() && deferred.is_empty() && jobs.is_empty() {
                break;
            }
            // Outside every borrow: dropping runs user code.
            self.guard("dropping a handler", move || drop((channels, timers, deferred, jobs)));
        }
        inner.recv_pool.borrow_mut().clear();
        inner.send_pool.borrow_mut().clear();
    }

    /// Counts a stream's close, for [`Engine::shutdown`]'s summary.
    pub(crate) fn note_closed(&self, graceful: bool) {
        let counter = if graceful { &self.inner.closed_graceful } else { &self.inner.closed_abrupt };
        counter.set(counter.get() + 1);
    }

    /// Whether the engine has been torn down (its last owning handle dropped).
    pub(crate) fn is_torn_down(&self) -> bool {
        self.inner.torn_down.get()
    }

    /// Runs the loop until [`stop`](Engine::stop) is called (from a handler,
    /// a timer, or another thread through a [`Remote`]).
    pub fn run(&self) -> io::Result<()> {
        self.inner.stopped.set(false);
        while !self.inner.stopped.get() {
            self.poll(None)?;
        }
        Ok(())
    }

    /// Runs until `done` returns true, [`stop`](Engine::stop) is called, or
    /// `timeout` passes; returns whether `done` became true. `done` is checked
    /// after every iteration, and at least every 10 ms. Handy in tests and
    /// for driving the engine from another loop.
    pub fn run_until(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        self.inner.stopped.set(false);
        loop {
            if done() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline || self.inner.stopped.get() {
                return Ok(done());
            }
            // `done` may depend on other threads: look again at least every
            // 10 ms even when no event arrives.
            self.poll(Some((deadline - now).min(Duration::from_millis(10))))?;
        }
    }

    /// Stops [`run`](Engine::run) after the current iteration.
    pub fn stop(&self) {
        self.inner.stopped.set(true);
    }

    /// Whether [`stop`](Engine::stop) was called since `run` started.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.get()
    }

    /// This engine's index in its [`Workers`](crate::Workers) group (the
    /// index of its [`Remote`] in [`WorkerGroup::remotes`](crate::WorkerGroup::remotes)),
    /// or `None` for an engine of its own. With the stream's id, it names a
    /// stream across the group.
    ///
    /// ```
    /// let engine = pants::Engine::new()?;
    /// assert_eq!(engine.worker(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker(&self) -> Option<usize> {
        self.inner.worker.get()
    }

    /// Records the engine's index in its group, and every worker's `Remote`.
    pub(crate) fn set_worker(&self, worker: usize, peers: Arc<[Remote]>) {
        self.inner.worker.set(Some(worker));
        *self.inner.peers.borrow_mut() = Some(peers);
    }

    /// Every worker's `Remote` in this engine's group, if it is in one.
    pub(crate) fn peers(&self) -> Option<Arc<[Remote]>> {
        self.inner.peers.borrow().clone()
    }

    /// A `Send + Clone` handle for other threads: post closures into the loop
    /// or stop it.
    pub fn remote(&self) -> Remote {
        self.inner.remote.clone()
    }

    /// Resolves `host:port` off the loop, on the engine's shared resolver
    /// threads (see `resolver`); `done` then runs on the engine's thread
    /// with the addresses. Returns at once. After the teardown, `done` is
    /// dropped without being called.
    pub(crate) fn resolve(
        &self,
        host: String,
        port: u16,
        done: impl FnOnce(&Engine, io::Result<Vec<std::net::SocketAddr>>) + Send + 'static,
    ) {
        self.inner.resolver.resolve(host, port, Box::new(done));
    }

    /// The engine's notion of now: the system's clock, or the
    /// [`ManualClock`] the engine was made [`with`](Engine::with_clock).
    #[inline]
    pub fn now(&self) -> Instant {
        self.inner.clock.now()
    }

    /// Runs `f` on the next iteration of the loop.
    pub fn callback(&self, f: impl FnOnce(&Engine) + 'static) -> TimerId {
        self.inner.timers.borrow_mut().add(self.now(), Task::Once(Box::new(f)))
    }

    /// Runs `f` once, `delay` from now (never earlier).
    pub fn defer(&self, delay: Duration, f: impl FnOnce(&Engine) + 'static) -> TimerId {
        self.inner.timers.borrow_mut().add(self.now() + delay, Task::Once(Box::new(f)))
    }

    /// Runs `f` every `interval`, first `interval` from now, until cancelled.
    pub fn cycle(&self, interval: Duration, f: impl FnMut(&Engine) + 'static) -> TimerId {
        self.inner.timers.borrow_mut().add(self.now() + interval, Task::Cycle(interval, Box::new(f)))
    }

    /// Cancels a timer; returns whether it was still pending. Cancelling a
    /// cycle from inside its own function works.
    pub fn cancel(&self, id: TimerId) -> bool {
        self.inner.timers.borrow_mut().cancel(id)
    }

    /// Whether a timer is still pending (not fired, not cancelled).
    pub fn is_pending(&self, id: TimerId) -> bool {
        self.inner.timers.borrow().is_live(id)
    }

    /// Runs one iteration: waits for events (at most `timeout`, or until the
    /// next timer; `None` waits as long as needed), then dispatches them, runs
    /// due timers and posted closures. On a [`ManualClock`], a timer that is
    /// not due does not shorten the wait (real time passing does not bring
    /// it closer): the test advances the clock.
    pub fn poll(&self, timeout: Option<Duration>) -> io::Result<()> {
        let inner = &self.inner;
        if inner.running.replace(true) {
            return Err(io::Error::other("Engine::poll called from inside the engine"));
        }
        // Callbacks get a handle that does not keep the engine alive (see
        // `Engine`'s drop rule), whichever handle runs the loop.
        let result = self.handle().iterate(timeout);
        inner.running.set(false);
        result
    }

    fn iterate(&self, timeout: Option<Duration>) -> io::Result<()> {
        let inner = &self.inner;
        let mut timeout = timeout;
        if !inner.ready.borrow().is_empty() || inner.remote.has_jobs() || !inner.signalled.borrow().is_empty() {
            timeout = Some(Duration::ZERO);
        } else if let Some(deadline) = inner.timers.borrow().next_deadline() {
            let until = deadline.saturating_duration_since(self.now());
            if !inner.clock.is_manual() || until.is_zero() {
                timeout = Some(timeout.map_or(until, |t| t.min(until)));
            }
        }

        let mut events = inner.events.borrow_mut();
        match inner.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // Copy out, so handlers can use the engine freely while we dispatch.
        let mut fired = inner.fired.take();
        fired.extend(events.iter().map(|e| {
            (
                e.token(),
                Readiness {
                    readable: e.is_readable() || e.is_read_closed() || e.is_error(),
                    read_closed: e.is_read_closed() || e.is_error(),
                    writable: e.is_writable() || e.is_write_closed() || e.is_error(),
                },
            )
        }));
        drop(events);
        if !inner.signalled.borrow().is_empty() {
            fired.extend(inner.signalled.borrow_mut().drain(..).map(|(id, readiness)| (id.token(), readiness)));
        }

        for (token, readiness) in fired.drain(..) {
            if token == WAKER {
                continue;
            }
            // A token carries the slot's generation: events for a channel that
            // closed earlier in this iteration never reach its successor.
            let _ = self.with_channel(StreamId::from_token(token), |channel, engine| channel.event(engine, readiness));
        }
        inner.fired.set(fired);

        self.run_timers();
        for job in inner.remote.take_jobs() {
            self.guard("a posted closure", || job(self));
        }
        if inner.remote.take_stop() {
            self.stop();
        }
        self.run_ready();
        Ok(())
    }

    fn run_timers(&self) {
        let now = self.now();
        let limit = self.inner.timers.borrow().limit();
        // Cycles go back in the queue after this iteration's timers have
        // run: one due again at once (a zero interval, or a manual clock
        // that has not moved) waits for the next iteration.
        let mut again = Vec::new();
        loop {
            let due = self.inner.timers.borrow_mut().pop_due(now, limit);
            let Some((id, task)) = due else { break };
            match task {
                Task::Once(f) => {
                    self.inner.timers.borrow_mut().fired(id);
                    self.guard("a timer", || f(self));
                }
                Task::Cycle(interval, mut f) => {
                    let ok = self.guard("a cycle", || f(self));
                    if ok {
                        let after = self.now();
                        let mut next = now + interval;
                        if next <= after {
                            next = after + interval;
                        }
                        again.push((id, next, Task::Cycle(interval, f)));
                    } else {
                        self.inner.timers.borrow_mut().fired(id);
                    }
                }
            }
        }
        let mut timers = self.inner.timers.borrow_mut();
        for (id, next, task) in again {
            timers.requeue(id, next, task);
        }
    }

    fn run_ready(&self) {
        // Only what is queued now: work queued while serving waits for the
        // next iteration (which then polls without blocking). Each channel
        // is serviced once per batch, however often it was marked: a stream
        // with more to read than its budget marks itself on every service,
        // and duplicates would otherwise pile up, one more each iteration,
        // until it starved every other stream.
        let mut seen = self.inner.batched.take();
        let mut batch = self.inner.batch.take();
        batch.extend(self.inner.ready.borrow_mut().drain(..).filter(|id| seen.insert(*id)));
        seen.clear();
        self.inner.batched.set(seen);
        for id in batch.drain(..) {
            let _ = self.with_channel(id, |channel, engine| channel.service(engine));
        }
        self.inner.batch.set(batch);
    }

    /// Runs `f`, catching a panic; returns false if it panicked.
    fn guard(&self, what: &str, f: impl FnOnce()) -> bool {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => true,
            Err(panic) => {
                log::error!("{what} panicked: {}", panic_message(&*panic));
                false
            }
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Raises readiness on `id` without the OS (an in-memory transport):
    /// dispatched on the next iteration as an event would be.
    pub(crate) fn signal(&self, id: StreamId, readiness: Readiness) {
        self.inner.signalled.borrow_mut().push((id, readiness));
    }

    /// Whether an iteration now would find nothing to do: nothing ready,
    /// signalled or posted, and no timer due (OS events aside).
    pub(crate) fn is_idle(&self) -> bool {
        let inner = &self.inner;
        inner.ready.borrow().is_empty()
            && inner.signalled.borrow().is_empty()
            && !inner.remote.has_jobs()
            && inner.timers.borrow().next_deadline().map_or(true, |deadline| deadline > self.now())
    }

    /// When the next timer is due, if any is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.inner.timers.borrow().next_deadline()
    }

    /// Asks for `id` to be serviced this iteration or the next, without an
    /// OS event.
    pub(crate) fn mark_ready(&self, id: StreamId) {
        self.inner.ready.borrow_mut().push_back(id);
    }

    /// Registers a new channel, made by `make` with its id. An error once
    /// the engine has been torn down (`make` is dropped, not called).
    pub(crate) fn insert(&self, make: impl FnOnce(StreamId) -> Box<dyn Channel>) -> Result<StreamId, StreamError> {
        if self.is_torn_down() {
            return Err(StreamError::EngineDropped);
        }
        Ok(self.inner.channels.borrow_mut().insert(make))
    }

    /// Lends the channel `id` to `f`. While lent, the channel's slot is busy:
    /// operations on it from other channels are deferred until it is back.
    /// A channel that is closed when `f` returns is dropped.
    pub(crate) fn with_channel<R>(
        &self,
        id: StreamId,
        f: impl FnOnce(&mut dyn Channel, &Engine) -> R,
    ) -> Result<R, StreamError> {
        let mut channel = self.inner.channels.borrow_mut().take(id)?;
        // The channel's span (feature `tracing`) is entered around all of it.
        #[cfg(feature = "tracing")]
        let entered = channel.enter_span();
        #[cfg(not(feature = "tracing"))]
        let entered = false;
        let result = f(&mut *channel, self);
        self.put_back(id, channel, entered);
        Ok(result)
    }

    /// Runs what was deferred for `id`, exits its span (if `entered`), and
    /// returns it to its slot, or drops it once done.
    fn put_back(&self, id: StreamId, mut channel: Box<dyn Channel>, entered: bool) {
        loop {
            let ops = self.take_deferred(id);
            if ops.is_empty() {
                break;
            }
            for op in ops {
                op(&mut *channel, self);
            }
        }
        #[cfg(feature = "tracing")]
        channel.exit_span(entered);
        #[cfg(not(feature = "tracing"))]
        let _ = entered;
        if channel.is_done() || self.is_torn_down() {
            self.inner.channels.borrow_mut().remove(id);
            // Dropping may run user code (a handler's Drop): outside borrows.
            drop(channel);
        } else {
            self.inner.channels.borrow_mut().restore(id, channel);
        }
    }

    /// Takes the operations deferred for channel `id` while it was busy, for
    /// the channel to run itself before it flushes: `write_to` a stream from
    /// its own callback is then queued before its `on_write` and its close.
    pub(crate) fn take_deferred(&self, id: StreamId) -> Vec<ChannelOp> {
        let mut deferred = self.inner.deferred.borrow_mut();
        if !deferred.iter().any(|(target, _)| *target == id) {
            return Vec::new();
        }
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut *deferred).into_iter().partition(|(t, _)| *t == id);
        *deferred = others;
        mine.into_iter().map(|(_, op)| op).collect()
    }

    /// Runs `op` on channel `id` now, or when it is no longer busy.
    pub(crate) fn on_channel(
        &self,
        id: StreamId,
        op: impl FnOnce(&mut dyn Channel, &Engine) + 'static,
    ) -> Result<(), StreamError> {
        let state = self.inner.channels.borrow().check(id);
        match state {
            Ok(()) => self.with_channel(id, op),
            Err(StreamError::Busy(_)) => {
                self.inner.deferred.borrow_mut().push((id, Box::new(op)));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A spare receive buffer (initialised storage; its contents are stale).
    pub(crate) fn take_recv_buffer(&self) -> Vec<u8> {
        self.inner.recv_pool.borrow_mut().pop().unwrap_or_default()
    }

    /// Returns a receive buffer to the pool, contents and length as they are.
    pub(crate) fn give_recv_buffer(&self, buffer: Vec<u8>) {
        Self::keep(&self.inner.recv_pool, buffer);
    }

    /// A spare send buffer (empty, maybe with capacity).
    pub(crate) fn take_send_buffer(&self) -> Vec<u8> {
        self.inner.send_pool.borrow_mut().pop().unwrap_or_default()
    }

    /// Returns a send buffer to the pool.
    pub(crate) fn give_send_buffer(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        Self::keep(&self.inner.send_pool, buffer);
    }

    fn keep(pool: &RefCell<Vec<Vec<u8>>>, buffer: Vec<u8>) {
        if buffer.capacity() == 0 || buffer.capacity() > POOL_MAX_CAPACITY {
            return;
        }
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_COUNT {
            pool.push(buffer);
        }
    }

    /// Queues bytes on stream `id`, whatever its handler type: how one
    /// stream's handler writes to another (a chat server broadcasting). They
    /// are sent at the end of this loop iteration. If `id` is the stream whose
    /// callback is running, they are queued after what that callback writes.
    pub fn write_to(&self, id: StreamId, data: impl AsRef<[u8]>) -> Result<(), StreamError> {
        let data = data.as_ref();
        let state = self.inner.channels.borrow().check(id);
        match state {
            Ok(()) => self.with_channel(id, |channel, engine| channel.write_bytes(engine, data))?,
            Err(StreamError::Busy(_)) => {
                let data = data.to_vec();
                self.inner.deferred.borrow_mut().push((
                    id,
                    Box::new(move |channel, engine| {
                        if let Err(e) = channel.write_bytes(engine, &data) {
                            log::debug!("deferred write to {id} dropped: {e}");
                        }
                    }),
                ));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Closes stream `id` after flushing what it has queued (or at once,
    /// dropping it, if `flush` is false).
    pub fn close_stream(&self, id: StreamId, flush: bool) -> Result<(), StreamError> {
        self.on_channel(id, move |channel, engine| channel.close(engine, flush))
    }

    /// Closes stream or server `id` gently: a server stops listening and
    /// closes once its connections have closed by themselves
    /// ([`Server::drain`](crate::Server::drain)); a stream closes after
    /// flushing what it has queued.
    pub fn drain(&self, id: StreamId) -> Result<(), StreamError> {
        self.on_channel(id, |channel, engine| channel.drain(engine))
    }

    /// The local address of server or stream `id`: for a server listening
    /// on port 0, the port it got. A listening server always has one; a
    /// stream has one once connected ([`StreamError::NotConnected`] before,
    /// [`StreamError::NoSuchStream`] once closed).
    ///
    /// ```
    /// use pants::{delimiter::Raw, Address, Engine, Handler, Read, Server, Stream};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    /// impl Read<Raw> for Quiet {
    ///     fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _chunk: &[u8]) {}
    /// }
    ///
    /// let engine = Engine::new()?;
    /// let server = Server::from_fn(|_peer| Some(Stream::new(Quiet))).listen(&engine, "127.0.0.1:0")?;
    /// let Address::Ip(address) = engine.local_address(server)? else { unreachable!() };
    /// assert_ne!(address.port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_address(&self, id: StreamId) -> Result<crate::Address, StreamError> {
        self.with_channel(id, |channel, _| channel.local_address())?.ok_or(StreamError::NotConnected("local_address"))
    }

    /// The open connections of server `id`.
    pub fn connections(&self, id: StreamId) -> Result<Vec<StreamId>, StreamError> {
        self.with_channel(id, |channel, _| channel.connections())?.ok_or(StreamError::WrongHandler(id))
    }

    /// The ids of every open stream and server.
    pub fn ids(&self) -> Vec<StreamId> {
        self.inner.channels.borrow().ids()
    }

    /// How many streams and servers are open.
    pub fn channel_count(&self) -> usize {
        self.inner.channels.borrow().len()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("channels", &self.channel_count()).finish()
    }
}

/// What the OS said about a channel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    /// The peer's end of stream or an error is pending: reads must go on
    /// until they show it, as no further event will come.
    pub(crate) read_closed: bool,
    pub(crate) writable: bool,
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_string()
    }
}
