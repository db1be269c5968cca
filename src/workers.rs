//! A group of engines, one per thread: the thread-per-core model.
//!
//! An [`Engine`] is single-threaded (handlers need not be `Send`, and the
//! hot path takes no lock), so one engine uses one core. [`Workers`] starts
//! `N` engines on `N` threads (by default one per available core), runs a
//! setup closure on each (which builds that worker's servers and state),
//! and hands back a [`WorkerGroup`] to stop, drain and join them. Each
//! worker's [`Remote`] reaches it from any thread, so a handler on one
//! worker can run code on another ([`WorkerGroup::remotes`]).
//!
//! To serve one address from every worker, listen on it from each setup
//! with [`reuse_port`](crate::server::ServerBuilder::reuse_port): the kernel
//! spreads new connections over the listeners.
//!
//! ```
//! use std::time::Duration;
//! use pants::{delimiter::Raw, Handler, Read, Server, Stream, Workers};
//!
//! struct Echo;
//! impl Handler for Echo {}
//! impl Read<Raw> for Echo {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
//!         let _ = stream.write(data);
//!     }
//! }
//!
//! // Reserve a port, then listen on it from two workers.
//! let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! let group = Workers::new().threads(2).start(move |engine, _worker| {
//!     Server::from_fn(|_| Some(Stream::new(Echo))).reuse_port(true).listen(engine, ("127.0.0.1", port))?;
//!     Ok(())
//! })?;
//!
//! use std::io::{Read as _, Write as _};
//! let mut client = std::net::TcpStream::connect(("127.0.0.1", port))?;
//! client.write_all(b"hello")?;
//! let mut reply = [0; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"hello");
//!
//! drop(client);
//! let summaries = group.shutdown(Duration::from_secs(2))?;
//! assert_eq!(summaries.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reaching other workers
//!
//! A [`StreamId`] names a stream on the engine that made
//! it; a [`WorkerStreamId`] (from [`Engine::worker_stream_id`]) names it
//! across the group, and [`Engine::write_to_worker`] writes to it from any
//! worker: at once when the stream is this engine's, otherwise through its
//! worker's [`Remote`]. Every setup runs once all the engines exist, so
//! [`Engine::worker_remote`] reaches any worker from the start.
//!
//! # Ordering
//!
//! Closures posted through one [`Remote`] from one thread run in the order
//! they were posted, on the worker's thread, between its events; closures
//! posted from different threads, or to different workers, have no order
//! between them. So writes from one worker to a stream arrive in the order
//! they were made; writes to one stream from several workers interleave in
//! the order their posts arrive, each write whole (a write is never split
//! or interleaved with another). One exception: inside a stream's own
//! callback, a `write_to_worker` to that same stream is deferred until the
//! callback returns (as [`Engine::write_to`] is), so it lands after what
//! the callback writes on its `&mut Stream`; write there instead.
//!
//! Posted closures run once the loops run: after every setup has
//! returned. A setup that posts to another worker and waits for the answer
//! would wait forever (and so would `start`); post, and let the answer come
//! back as a post.

use std::error::Error;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::delimiter::Delimiter;
use crate::engine::{panic_message, Engine, Remote, ShutdownSummary};
use crate::stream::Socket;
use crate::{Address, Handler, Read, Server, StreamBuilder, StreamError, StreamId};

/// A stream's address across a [`WorkerGroup`]: the worker whose engine
/// holds it and its [`StreamId`] there. `Copy`, `Send` and hashable: keep it
/// in state shared between workers, and write to the stream from any of
/// them with [`Engine::write_to_worker`].
///
/// ```
/// use pants::{delimiter::Raw, Engine, Handler, Server, Stream, WorkerStreamId};
/// # struct Quiet;
/// # impl Handler for Quiet {}
/// # impl pants::Read<Raw> for Quiet { fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {} }
/// let engine = Engine::new()?;
/// let id = Server::from_fn(|_| Some(Stream::new(Quiet))).listen(&engine, "127.0.0.1:0")?;
/// // An engine of its own is worker 0 of a group of one.
/// assert_eq!(engine.worker_stream_id(id), WorkerStreamId::new(0, id));
/// assert_eq!((engine.workers(), engine.worker_remote(1).is_none()), (1, true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerStreamId {
    worker: usize,
    stream: StreamId,
}

impl WorkerStreamId {
    /// The stream `stream` on worker `worker`.
    pub fn new(worker: usize, stream: StreamId) -> Self {
        WorkerStreamId { worker, stream }
    }

    /// The worker whose engine holds the stream.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The stream's id on that worker's engine.
    pub fn stream(&self) -> StreamId {
        self.stream
    }
}

impl fmt::Display for WorkerStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.stream, self.worker)
    }
}

impl Engine {
    /// The group-wide address of `stream`, one of this engine's: its
    /// [`worker`](Engine::worker) index (0 for an engine of its own) and
    /// the id.
    pub fn worker_stream_id(&self, stream: StreamId) -> WorkerStreamId {
        WorkerStreamId::new(self.worker().unwrap_or(0), stream)
    }

    /// How many workers this engine's group has (1 for an engine of its
    /// own).
    pub fn workers(&self) -> usize {
        self.peers().map_or(1, |peers| peers.len())
    }

    /// The [`Remote`] of worker `worker` of this engine's group (this
    /// engine's own for its own index), or `None` if there is no such
    /// worker. An engine of its own is worker 0.
    pub fn worker_remote(&self, worker: usize) -> Option<Remote> {
        match self.peers() {
            Some(peers) => peers.get(worker).cloned(),
            None => (worker == 0).then(|| self.remote()),
        }
    }

    /// Writes `data` to the stream `id` names, on whichever worker holds it.
    /// On this engine, it is [`write_to`](Engine::write_to), with its
    /// errors. On another worker, the bytes are posted to that worker's
    /// [`Remote`] and written there when its loop runs the post; a stream
    /// that has closed by then drops them (its own `on_close` has run), and
    /// nothing is reported back. See the [module docs](crate::workers) for
    /// the ordering guarantees.
    ///
    /// ```
    /// use std::io::{Read as _, Write as _};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use pants::{delimiter::Until, Handler, Read, Server, Stream, WorkerStreamId, Workers};
    ///
    /// /// Every line a client sends goes to the first client, wherever it is.
    /// struct Relay(Arc<Mutex<Option<WorkerStreamId>>>);
    /// impl Handler for Relay {
    ///     fn on_connect(&mut self, stream: &mut Stream<Self>) {
    ///         let id = stream.engine().worker_stream_id(stream.id());
    ///         self.0.lock().unwrap().get_or_insert(id);
    ///     }
    /// }
    /// impl Read<Until> for Relay {
    ///     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
    ///         if let Some(first) = *self.0.lock().unwrap() {
    ///             let _ = stream.engine().write_to_worker(first, [line, b"\n"].concat());
    ///         }
    ///     }
    /// }
    ///
    /// let first = Arc::new(Mutex::new(None));
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let port = listener.local_addr()?.port();
    /// drop(listener);
    /// let group = Workers::new().threads(2).start(move |engine, _| {
    ///     let first = Arc::clone(&first);
    ///     Server::from_fn(move |_| Some(Stream::new(Relay(Arc::clone(&first))).read_delimiter(Until::lf())))
    ///         .reuse_port(true)
    ///         .listen(engine, ("127.0.0.1", port))?;
    ///     Ok(())
    /// })?;
    /// let mut receiver = std::net::TcpStream::connect(("127.0.0.1", port))?;
    /// receiver.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// // Wait until the receiver is known, then send from other connections,
    /// // which the kernel spreads over both workers.
    /// receiver.write_all(b"ready\n")?;
    /// let mut got = [0; 6];
    /// receiver.read_exact(&mut got)?;
    /// for _ in 0..4 {
    ///     std::net::TcpStream::connect(("127.0.0.1", port))?.write_all(b"hi\n")?;
    /// }
    /// let mut lines = [0; 12];
    /// receiver.read_exact(&mut lines)?;
    /// assert_eq!(&lines, b"hi\nhi\nhi\nhi\n");
    /// group.shutdown(Duration::from_secs(2))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to_worker(&self, id: WorkerStreamId, data: impl Into<Vec<u8>>) -> Result<(), StreamError> {
        if id.worker == self.worker().unwrap_or(0) {
            return self.write_to(id.stream, data.into());
        }
        let remote = self.worker_remote(id.worker).ok_or(StreamError::NoSuchWorker(id.worker))?;
        let data = data.into();
        remote.post(move |engine| {
            if let Err(error) = engine.write_to(id.stream, data) {
                log::debug!("write_to_worker: stream {} on worker {}: {error}", id.stream, id.worker);
            }
        });
        Ok(())
    }
}

/// What a worker's setup closure may fail with.
pub type SetupError = Box<dyn Error + Send + Sync>;

/// Why a group could not start, or how a worker ended badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkersError {
    /// A worker thread could not be spawned, or its engine created.
    #[error("worker {worker}: could not start: {source}")]
    Start {
        /// The worker's index.
        worker: usize,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A worker's setup closure returned an error (the group was stopped).
    #[error("worker {worker}: setup failed: {source}")]
    Setup {
        /// The worker's index.
        worker: usize,
        /// What the setup returned.
        #[source]
        source: SetupError,
    },
    /// A worker's setup closure, or its engine loop, panicked.
    #[error("worker {worker} panicked: {message}")]
    Panicked {
        /// The worker's index.
        worker: usize,
        /// The panic's message.
        message: String,
    },
    /// A worker's engine loop failed (its poll returned an error).
    #[error("worker {worker}: engine failed: {source}")]
    Engine {
        /// The worker's index.
        worker: usize,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Builds a group of engines: see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "Workers does nothing until started"]
pub struct Workers {
    threads: usize,
    pin: bool,
    name: String,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers {
    /// One worker per available core ([`std::thread::available_parallelism`]),
    /// not pinned, threads named `pants-worker-<i>`.
    pub fn new() -> Self {
        let threads = thread::available_parallelism().map_or(1, usize::from);
        Workers { threads, pin: false, name: "pants-worker".into() }
    }

    /// How many workers (at least 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Pins worker `i` to the `i`-th core this process may run on (Linux;
    /// elsewhere, or if the process may run on fewer cores, workers are not
    /// pinned). Default off.
    pub fn pin_to_cores(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// The threads' name prefix (default `pants-worker`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts the workers: each thread creates its engine, runs
    /// `setup(engine, index)` on it, then runs the engine until stopped.
    /// Returns once every setup has returned: with the group if all
    /// succeeded, otherwise with the first failure (an error or a panic),
    /// after stopping and joining the workers that did start.
    pub fn start<F>(self, setup: F) -> Result<WorkerGroup, WorkersError>
    where
        F: Fn(&Engine, usize) -> Result<(), SetupError> + Send + Sync + 'static,
    {
        let setup = Arc::new(setup);
        let cores = if self.pin { allowed_cores() } else { Vec::new() };
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut group = WorkerGroup { workers: Vec::with_capacity(self.threads), remotes: Vec::new() };
        let mut failure = None;
        for worker in 0..self.threads {
            let (go_tx, go_rx) = mpsc::channel();
            let setup = Arc::clone(&setup);
            let ready = ready_tx.clone();
            let core = cores.get(worker).copied().filter(|_| cores.len() >= self.threads);
            let spawned = thread::Builder::new()
                .name(format!("{}-{worker}", self.name))
                .spawn(move || worker_main(worker, core, &*setup, ready, &go_rx));
            match spawned {
                Ok(handle) => group.workers.push(Worker { handle, go: go_tx }),
                Err(source) => {
                    failure = Some(WorkersError::Start { worker, source });
                    break;
                }
            }
        }
        drop(ready_tx);
        // Two phases, so that every setup can reach every worker: each
        // worker makes its engine and reports its `Remote`; once all have,
        // each gets the full list and runs its setup.
        let mut remotes: Vec<Option<Remote>> = vec![None; group.workers.len()];
        let workers = group.workers.len();
        if failure.is_none() {
            receive_reports(&ready_rx, workers, &mut failure, |worker, report| {
                if let Report::Created(remote) = report {
                    remotes[worker] = Some(remote);
                }
            });
        }
        if failure.is_none() {
            let all: Arc<[Remote]> = remotes.iter().flatten().cloned().collect();
            for worker in &group.workers {
                let _ = worker.go.send(Command::SetUp(Arc::clone(&all)));
            }
            receive_reports(&ready_rx, workers, &mut failure, |_, _| {});
        }
        if let Some(error) = failure {
            // Dropping the group releases and joins the workers that wait.
            drop(group);
            return Err(error);
        }
        group.remotes = remotes.into_iter().flatten().collect();
        for worker in &group.workers {
            let _ = worker.go.send(Command::Run);
        }
        Ok(group)
    }
}

/// What a worker reports while the group starts.
enum Report {
    /// Its engine exists: here is its `Remote`.
    Created(Remote),
    /// Its setup returned `Ok`.
    SetUp,
}

/// Receives one report from each of `workers` workers (or until they are
/// gone), handing each to `f`; the first failure goes into `failure`. A
/// worker that ends without reporting is a failure too.
fn receive_reports(
    ready: &mpsc::Receiver<(usize, Result<Report, WorkersError>)>,
    workers: usize,
    failure: &mut Option<WorkersError>,
    mut f: impl FnMut(usize, Report),
) {
    let mut reported = vec![false; workers];
    for _ in 0..workers {
        let Ok((worker, report)) = ready.recv() else { break };
        reported[worker] = true;
        match report {
            Ok(report) => f(worker, report),
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    if let Some(worker) = reported.iter().position(|done| !done) {
        failure.get_or_insert(WorkersError::Panicked { worker, message: "exited before its setup returned".into() });
    }
}

/// What the group tells a worker once every setup has returned.
enum Command {
    /// Every worker's engine exists: here are their `Remote`s; run the setup.
    SetUp(Arc<[Remote]>),
    /// Run the engine until stopped.
    Run,
    /// Once stopped: drain within this deadline, then end.
    Drain(Duration),
    /// Another worker failed, or the group was joined or dropped: end
    /// (without running, if not running yet; without draining, once stopped).
    Quit,
}

/// What one worker thread returns: its shutdown summary if it drained.
type Outcome = Result<Option<ShutdownSummary>, WorkersError>;

/// A worker thread: engine, setup, report, wait for the word, run, drain.
fn worker_main(
    worker: usize,
    core: Option<usize>,
    setup: &(dyn Fn(&Engine, usize) -> Result<(), SetupError> + Send + Sync),
    ready: mpsc::Sender<(usize, Result<Report, WorkersError>)>,
    go: &mpsc::Receiver<Command>,
) -> Outcome {
    let created = catch_unwind(AssertUnwindSafe(|| {
        if let Some(core) = core {
            pin_to(core);
        }
        Engine::new()
    }));
    let engine = match created {
        Ok(Ok(engine)) => engine,
        Ok(Err(source)) => {
            let _ = ready.send((worker, Err(WorkersError::Start { worker, source })));
            return Ok(None);
        }
        Err(panic) => {
            let _ = ready.send((worker, Err(WorkersError::Panicked { worker, message: panic_message(&*panic) })));
            return Ok(None);
        }
    };
    let _ = ready.send((worker, Ok(Report::Created(engine.remote()))));
    let Ok(Command::SetUp(peers)) = go.recv() else { return Ok(None) };
    engine.set_worker(worker, peers);
    let set_up = catch_unwind(AssertUnwindSafe(|| setup(&engine, worker)));
    let report = match set_up {
        Ok(Ok(())) => Ok(Report::SetUp),
        Ok(Err(source)) => Err(WorkersError::Setup { worker, source }),
        Err(panic) => Err(WorkersError::Panicked { worker, message: panic_message(&*panic) }),
    };
    let failed = report.is_err();
    let _ = ready.send((worker, report));
    drop(ready);
    if failed || !matches!(go.recv(), Ok(Command::Run)) {
        return Ok(None);
    }
    match catch_unwind(AssertUnwindSafe(|| engine.run())) {
        Ok(Ok(())) => {}
        Ok(Err(source)) => return Err(WorkersError::Engine { worker, source }),
        Err(panic) => return Err(WorkersError::Panicked { worker, message: panic_message(&*panic) }),
    }
    // Stopped: wait for what the group says (a worker stopped on its own
    // is drained by a later `shutdown` all the same).
    match go.recv() {
        Ok(Command::Drain(deadline)) => {
            engine.shutdown(deadline).map(Some).map_err(|source| WorkersError::Engine { worker, source })
        }
        Ok(Command::SetUp(_) | Command::Run | Command::Quit) | Err(_) => Ok(None),
    }
}

struct Worker {
    handle: JoinHandle<Outcome>,
    go: mpsc::Sender<Command>,
}

/// A running group of workers, from [`Workers::start`]. Dropping it stops
/// and joins the workers (without draining them).
pub struct WorkerGroup {
    workers: Vec<Worker>,
    remotes: Vec<Remote>,
}

impl fmt::Debug for WorkerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerGroup").field("workers", &self.workers.len()).finish()
    }
}

impl WorkerGroup {
    /// How many workers run.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether the group has no workers (never: a group has at least one).
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Each worker's [`Remote`], by worker index: clone them into handlers
    /// to reach other workers.
    pub fn remotes(&self) -> &[Remote] {
        &self.remotes
    }

    /// A handle that stops the group from any thread (a signal handler's
    /// thread, say).
    pub fn stopper(&self) -> Stopper {
        Stopper { remotes: self.remotes.clone() }
    }

    /// Stops every worker after its current iteration, without draining.
    pub fn stop(&self) {
        self.stopper().stop();
    }

    /// Waits until every worker has stopped (after [`stop`](Self::stop) or
    /// a [`Stopper`]), without draining them. The first worker that failed
    /// or panicked is the error; all are joined either way. A worker that
    /// fails does not stop the others: stop the group to end them. Call it
    /// (and [`shutdown`](Self::shutdown), and drop the group) from a thread
    /// of its own, not from a worker, which would wait for itself.
    pub fn join(mut self) -> Result<(), WorkersError> {
        for worker in &self.workers {
            let _ = worker.go.send(Command::Quit);
        }
        self.join_workers().map(|_| ())
    }

    /// Stops every worker, then drains each (its [`Engine::shutdown`]: no
    /// new connections, every stream closed after flushing, within
    /// `deadline`), and joins them. Returns each worker's summary, by
    /// worker index; workers stopped earlier are drained too. If a worker
    /// failed, its error is returned instead (the others are still drained
    /// and joined).
    pub fn shutdown(mut self, deadline: Duration) -> Result<Vec<ShutdownSummary>, WorkersError> {
        for (worker, remote) in self.workers.iter().zip(&self.remotes) {
            let _ = worker.go.send(Command::Drain(deadline));
            remote.stop();
        }
        self.join_workers()
    }

    /// Listens on `address` (TCP or a UNIX socket) in worker 0 and hands
    /// the accepted connections to the workers in turn, round robin
    /// (worker 0 included): for each, `accept(peer)` runs on the worker that
    /// gets it and builds its stream there (`None` refuses the peer). The
    /// path for UNIX sockets, which have no `SO_REUSEPORT`, and for when an
    /// even spread matters more than the kernel's hash. Returns the address
    /// listened on (the port chosen, for port 0). Each connection costs a
    /// message to its worker; the connections are then served there like
    /// any other. TLS, if any, is set on the stream `accept` builds. A
    /// connection handed to a worker that has stopped is closed. Call it from
    /// a thread that is not worker 0 (which it waits for).
    ///
    /// ```
    /// # use pants::{delimiter::Raw, Handler, Read, Stream, Workers};
    /// # struct Echo;
    /// # impl Handler for Echo {}
    /// # impl Read<Raw> for Echo { fn on_read(&mut self, s: &mut Stream<Self, Raw>, d: &[u8]) { let _ = s.write(d); } }
    /// let group = Workers::new().threads(2).start(|_, _| Ok(()))?;
    /// let address = group.listen_round_robin("127.0.0.1:0", |_peer| Some(Stream::new(Echo)))?;
    /// # use std::io::{Read as _, Write as _};
    /// let mut client = std::net::TcpStream::connect(address.to_string())?;
    /// client.write_all(b"hi")?;
    /// let mut reply = [0; 2];
    /// client.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"hi");
    /// # drop(client);
    /// # group.shutdown(std::time::Duration::from_secs(2))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen_round_robin<F, H, D>(&self, address: impl Into<Address>, accept: F) -> Result<Address, StreamError>
    where
        F: Fn(&Address) -> Option<StreamBuilder<H, D>> + Send + Sync + 'static,
        H: Handler + Read<D>,
        D: Delimiter + 'static,
    {
        let accept = Arc::new(accept);
        let remotes = self.remotes.clone();
        let address = address.into();
        let (done, listening) = mpsc::channel();
        self.remotes[0].post(move |engine| {
            let mut next = 0;
            let hand_off = move |socket: Socket, peer: Address| {
                let accept = Arc::clone(&accept);
                remotes[next % remotes.len()].post(move |engine| {
                    let Some(builder) = accept(&peer) else { return };
                    if let Err(e) = builder.attach_as(engine, socket, None, crate::stream::Side::Accepted) {
                        log::warn!("a connection from {peer} handed to this worker failed: {e}");
                    }
                });
                next += 1;
            };
            let listened = Server::from_fn(|_| None::<StreamBuilder<H, D>>)
                .hand_off(hand_off)
                .listen(engine, address)
                .and_then(|server| engine.local_address(server));
            let _ = done.send(listened);
        });
        listening.recv().map_err(|_| StreamError::Closed("listen_round_robin: worker 0 has stopped"))?
    }

    /// Joins every worker: their summaries (empty for those that did not
    /// drain), or the first failure.
    fn join_workers(&mut self) -> Result<Vec<ShutdownSummary>, WorkersError> {
        let mut summaries = Vec::with_capacity(self.workers.len());
        let mut first = None;
        for (index, worker) in std::mem::take(&mut self.workers).into_iter().enumerate() {
            match worker.handle.join() {
                Ok(Ok(summary)) => summaries.push(summary.unwrap_or_default()),
                Ok(Err(error)) => {
                    first.get_or_insert(error);
                }
                Err(panic) => {
                    first.get_or_insert(WorkersError::Panicked { worker: index, message: panic_message(&*panic) });
                }
            }
        }
        first.map_or(Ok(summaries), Err)
    }
}

impl Drop for WorkerGroup {
    fn drop(&mut self) {
        for worker in &self.workers {
            let _ = worker.go.send(Command::Quit);
        }
        for remote in &self.remotes {
            remote.stop();
        }
        let _ = self.join_workers();
    }
}

/// Stops a [`WorkerGroup`] from any thread; cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    remotes: Vec<Remote>,
}

impl fmt::Debug for Stopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopper").field("workers", &self.remotes.len()).finish()
    }
}

impl Stopper {
    /// Stops every worker's engine after its current iteration.
    pub fn stop(&self) {
        for remote in &self.remotes {
            remote.stop();
        }
    }
}

/// The cores this process may run on, in order (Linux).
#[cfg(target_os = "linux")]
fn allowed_cores() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU).filter(|&cpu| set.is_set(cpu)).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cores() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `core` (Linux; a failure is logged).
#[cfg(target_os = "linux")]
fn pin_to(core: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        log::warn!("could not pin a worker to core {core}: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_core: usize) {}
