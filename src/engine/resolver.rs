//! Resolving host names off the loop, on a small shared pool of threads.
//!
//! The OS resolver (`getaddrinfo`, through [`ToSocketAddrs`]) blocks, so the
//! engine never calls it itself: [`Engine::resolve`] queues a job here and
//! returns at once. Each engine owns one `Resolver`; it starts with no
//! threads and spawns a worker (named `pants-resolve`) only when a job is
//! queued that no idle worker can take, up to [`MAX_THREADS`]. More jobs than
//! that wait in the queue, first come first served. A worker resolves, then
//! posts the job's `done` back to the engine's thread through its
//! [`Remote`] (which wakes the loop), so `done` runs in the loop like any
//! posted closure.
//!
//! A worker that has found nothing to do for [`IDLE_EXIT`] exits: an idle
//! engine holds no resolver threads, and a burst of connects reuses the
//! same few workers instead of starting one thread per name.
//!
//! When the engine is torn down, [`Resolver::close`] drops every job not yet
//! started (its `done` is never called) and wakes the idle workers, which
//! exit at once. A lookup already running cannot be interrupted: its worker
//! finishes it, its post is dropped by the closed `Remote`, and it exits.
//!
//! If no worker can be started (the OS refuses a thread) and none is
//! running, the queued jobs fail with that error instead of waiting forever.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Engine, Remote};

/// The most resolver threads one engine runs at once. Lookups are mostly
/// fast (`/etc/hosts`, a local cache); a few threads keep one slow DNS
/// answer from holding up the rest without letting a burst of connects
/// start a thread each.
pub(crate) const MAX_THREADS: usize = 4;

/// How long a worker waits for a job before exiting. Long enough that a
/// burst of connects (or one retried shortly after) reuses the workers,
/// short enough that an engine that is done connecting soon holds none.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(1);

/// What the engine's thread gets back: the addresses, in the resolver's
/// order, or why there are none.
pub(crate) type Done = Box<dyn FnOnce(&Engine, io::Result<Vec<SocketAddr>>) + Send>;

struct Job {
    host: String,
    port: u16,
    done: Done,
}

impl Job {
    /// Resolves on this (worker) thread; hands the result to the engine's.
    fn run(self, remote: &Remote) {
        let Job { host, port, done } = self;
        let result = (host.as_str(), port).to_socket_addrs().map(Iterator::collect);
        remote.post(move |engine| done(engine, result));
    }
}

/// The resolver of one engine; see the [module docs](self).
pub(crate) struct Resolver {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued or the resolver closes.
    wake: Condvar,
    remote: Remote,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Workers alive (spawned and not yet exited).
    threads: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// The engine is gone: no new jobs, workers exit.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Resolver {
    /// A resolver with no threads yet, posting results through `remote`.
    pub(crate) fn new(remote: Remote) -> Self {
        Resolver { shared: Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new(), remote }) }
    }

    /// Queues a lookup of `host:port`; `done` runs on the engine's thread
    /// with the result. Dropped (never called) once the resolver is closed.
    pub(crate) fn resolve(&self, host: String, port: u16, done: Done) {
        let mut state = self.shared.lock();
        if state.closed {
            return;
        }
        state.jobs.push_back(Job { host, port, done });
        if state.idle > 0 {
            self.shared.wake.notify_one();
        }
        if state.jobs.len() <= state.idle || state.threads >= MAX_THREADS {
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name("pants-resolve".into()).spawn(move || work(&shared));
        match spawned {
            Ok(_) => state.threads += 1,
            Err(e) if state.threads == 0 => {
                // Nobody will ever take these jobs: fail them now.
                let failed: Vec<Job> = state.jobs.drain(..).collect();
                drop(state);
                log::error!("could not start a resolver thread: {e}");
                for job in failed {
                    let error = io::Error::new(e.kind(), format!("could not start a resolver thread: {e}"));
                    let done = job.done;
                    self.shared.remote.post(move |engine| done(engine, Err(error)));
                }
            }
            // The running workers will get to it.
            Err(e) => log::warn!("could not start another resolver thread: {e}"),
        }
    }

    /// Drops the jobs not yet started and tells the workers to exit (each
    /// after the lookup it is running, if any).
    pub(crate) fn close(&self) {
        let dropped = {
            let mut state = self.shared.lock();
            state.closed = true;
            std::mem::take(&mut state.jobs)
        };
        self.shared.wake.notify_all();
        // Outside the lock: dropping a job drops its `done`.
        drop(dropped);
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.close();
    }
}

/// A worker: takes jobs until closed, or until idle for [`IDLE_EXIT`].
fn work(shared: &Shared) {
    let mut state = shared.lock();
    let mut idle_since = Instant::now();
    loop {
        if state.closed {
            break;
        }
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            job.run(&shared.remote);
            state = shared.lock();
            idle_since = Instant::now();
            continue;
        }
        let Some(left) = IDLE_EXIT.checked_sub(idle_since.elapsed()).filter(|d| !d.is_zero()) else { break };
        state.idle += 1;
        state = shared.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        state.idle -= 1;
    }
    state.threads -= 1;
}
