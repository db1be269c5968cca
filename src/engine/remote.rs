//! Talking to an engine from other threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::Engine;

type Job = Box<dyn FnOnce(&Engine) + Send>;

/// A `Send + Clone` handle to an [`Engine`] for other threads: post a closure
/// to run on the engine's thread, or stop it. Wakes the engine at once
/// (through `mio::Waker`). Pants could not do this.
///
/// ```
/// use pants::Engine;
///
/// let engine = Engine::new()?;
/// let remote = engine.remote();
/// let worker = std::thread::spawn(move || {
///     let answer = 6 * 7; // work done off the event loop
///     remote.post(move |engine| {
///         println!("the answer is {answer}");
///         engine.stop();
///     });
/// });
/// engine.run()?;
/// worker.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Remote {
    shared: Arc<Shared>,
}

struct Shared {
    jobs: Mutex<Vec<Job>>,
    pending: AtomicBool,
    stop: AtomicBool,
    /// The engine is gone: posted closures are dropped at once.
    closed: AtomicBool,
    waker: mio::Waker,
}

impl Remote {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        Remote {
            shared: Arc::new(Shared {
                jobs: Mutex::new(Vec::new()),
                pending: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                waker,
            }),
        }
    }

    /// Runs `f` on the engine's thread, in the loop's next iteration. Once
    /// the engine has been dropped, `f` is dropped instead.
    pub fn post(&self, f: impl FnOnce(&Engine) + Send + 'static) {
        {
            let mut jobs = self.shared.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            if self.shared.closed.load(Ordering::Acquire) {
                return;
            }
            jobs.push(Box::new(f));
        }
        self.shared.pending.store(true, Ordering::Release);
        self.wake();
    }

    /// Stops the engine's [`run`](Engine::run) after its current iteration.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        if let Err(e) = self.shared.waker.wake() {
            log::error!("could not wake the engine: {e}");
        }
    }

    /// The engine is gone: refuse new closures from now on.
    pub(crate) fn close(&self) {
        let _jobs = self.shared.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.closed.store(true, Ordering::Release);
    }

    pub(crate) fn has_jobs(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire) || self.shared.stop.load(Ordering::Acquire)
    }

    pub(crate) fn take_jobs(&self) -> Vec<Job> {
        if !self.shared.pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.shared.jobs.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn take_stop(&self) -> bool {
        self.shared.stop.swap(false, Ordering::AcqRel)
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remote")
    }
}
