//! The engine's timers and cross-thread handle: order, never firing early,
//! cancellation by identity (Pants bugs 1 and 2), `Remote::post` and
//! `Remote::stop` from other threads, and panicking timers.
//!
//! The tests of deadlines, order and cancellation run on a manual clock
//! (`pants::testing::TestEngine`): every timer's firing time is exact, and
//! nothing waits. Those on the system clock assert no upper bound on a
//! time: only that nothing fired *before* its delay, and orders that hold
//! however late the loop runs.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::WAIT;
use pants::engine::ManualClock;
use pants::testing::TestEngine;
use pants::{Engine, TimerId};

type Fired = Rc<RefCell<Vec<String>>>;

fn record(fired: &Fired, name: impl Into<String>) -> impl FnOnce(&Engine) + 'static {
    let fired = fired.clone();
    let name = name.into();
    move |_| fired.borrow_mut().push(name)
}

/// Aborts the process if not disarmed in time: for the tests that call
/// `Engine::run`, which has no timeout of its own.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn arm(what: &'static str) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(60)) {
                eprintln!("watchdog: {what} did not finish in 60 s; aborting");
                std::process::abort();
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[test]
fn timers_due_now_run_in_creation_order_on_the_next_iteration() {
    let engine = Engine::new().unwrap();
    let fired = Fired::default();
    engine.callback(record(&fired, "callback 1"));
    engine.defer(Duration::ZERO, record(&fired, "defer 0 a"));
    engine.callback(record(&fired, "callback 2"));
    engine.defer(Duration::ZERO, record(&fired, "defer 0 b"));
    let inner = fired.clone();
    engine.callback(move |engine| {
        inner.borrow_mut().push("callback 3".into());
        // Made while timers fire: waits for the next iteration, after the
        // ones already due.
        engine.callback(record(&inner, "callback from callback"));
    });
    engine.callback(record(&fired, "callback 4"));
    // Nothing runs outside the loop.
    assert!(fired.borrow().is_empty());
    engine.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(*fired.borrow(), ["callback 1", "defer 0 a", "callback 2", "defer 0 b", "callback 3", "callback 4"]);
    engine.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(fired.borrow().last().unwrap(), "callback from callback");
    assert_eq!(fired.borrow().len(), 7);
}

#[test]
fn timers_fire_in_deadline_order_exactly_at_their_deadlines() {
    let test = TestEngine::new().unwrap();
    let start = test.now();
    let fired: Rc<RefCell<Vec<(usize, Duration)>>> = Rc::default();
    // Made out of order, with equal delays among them.
    let delays_ms = [120u64, 0, 60, 30, 60, 1, 120, 5, 30, 0, 60];
    for (i, &ms) in delays_ms.iter().enumerate() {
        let log = fired.clone();
        test.defer(Duration::from_millis(ms), move |engine| log.borrow_mut().push((i, engine.now() - start)));
    }
    test.advance(Duration::from_millis(119)).unwrap();
    assert_eq!(fired.borrow().len(), delays_ms.len() - 2, "the 120 ms timers wait");
    test.advance(Duration::from_millis(1)).unwrap();
    // Deadline order; equal deadlines in creation order; each at its time.
    let mut expected: Vec<(usize, Duration)> =
        delays_ms.iter().enumerate().map(|(i, &ms)| (i, Duration::from_millis(ms))).collect();
    expected.sort_by_key(|&(i, at)| (at, i));
    assert_eq!(*fired.borrow(), expected);
}

#[test]
fn timers_on_the_system_clock_never_fire_early() {
    let engine = Engine::new().unwrap();
    let fired: Rc<RefCell<Vec<(usize, Instant)>>> = Rc::default();
    let delays_ms = [20u64, 0, 10, 10];
    let mut earliest = Vec::new();
    for (i, &ms) in delays_ms.iter().enumerate() {
        let delay = Duration::from_millis(ms);
        earliest.push(Instant::now() + delay);
        let log = fired.clone();
        engine.defer(delay, move |_| log.borrow_mut().push((i, Instant::now())));
    }
    common::wait(&engine, "every timer", || fired.borrow().len() == delays_ms.len());
    let fired = fired.borrow();
    for (i, at) in fired.iter() {
        assert!(*at >= earliest[*i], "timer {i} ({} ms) fired early", delays_ms[*i]);
    }
    assert_eq!(fired.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2, 3, 0]);
}

#[test]
fn a_cycle_repeats_at_each_interval_and_can_cancel_itself() {
    let test = TestEngine::new().unwrap();
    let interval = Duration::from_millis(15);
    let runs: Rc<RefCell<Vec<Duration>>> = Rc::default();
    let me: Rc<Cell<Option<TimerId>>> = Rc::default();
    let started = test.now();
    let (log, id) = (runs.clone(), me.clone());
    let cycle = test.cycle(interval, move |engine| {
        log.borrow_mut().push(engine.now() - started);
        if log.borrow().len() == 4 {
            let own = id.get().expect("own id");
            assert!(engine.is_pending(own), "a running cycle is still pending");
            assert!(engine.cancel(own), "a cycle cancels itself from inside");
            assert!(!engine.is_pending(own));
        }
    });
    me.set(Some(cycle));
    test.advance(interval * 10).unwrap();
    assert!(!test.is_pending(cycle));
    assert!(!test.cancel(cycle), "already cancelled");
    let expected: Vec<Duration> = (1..=4).map(|k| interval * k).collect();
    assert_eq!(*runs.borrow(), expected, "each run at its interval, no fifth");
}

#[test]
fn a_cycle_that_overruns_its_interval_skips_to_the_next_interval_from_now() {
    // No burst to catch up: a run that took 25 ms of a 10 ms interval is
    // followed by the next 10 ms after it ended.
    let test = TestEngine::new().unwrap();
    let clock = test.clock().clone();
    let started = test.now();
    let runs: Rc<RefCell<Vec<Duration>>> = Rc::default();
    let log = runs.clone();
    test.cycle(Duration::from_millis(10), move |engine| {
        log.borrow_mut().push(engine.now() - started);
        if log.borrow().len() == 2 {
            clock.advance(Duration::from_millis(25)); // this run is slow
        }
    });
    test.advance(Duration::from_millis(70)).unwrap();
    let ms: Vec<u128> = runs.borrow().iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [10, 20, 55, 65]);
}

#[test]
fn cancelling_removes_exactly_the_timer_named() {
    // Pants bug 1: cancel compared deadlines, not identities, and removed
    // the first timer due at the same time.
    let test = TestEngine::new().unwrap();
    let fired = Fired::default();
    let a = test.callback(record(&fired, "callback a"));
    let b = test.callback(record(&fired, "callback b"));
    let c = test.callback(record(&fired, "callback c"));
    let delay = Duration::from_millis(20);
    let d1 = test.defer(delay, record(&fired, "defer 1"));
    let d2 = test.defer(delay, record(&fired, "defer 2"));
    let d3 = test.defer(delay, record(&fired, "defer 3"));
    let ids = [a, b, c, d1, d2, d3];
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 6, "ids are unique");
    assert!(test.cancel(b));
    assert!(test.cancel(d2));
    assert!(!test.cancel(b), "cancelling twice");
    assert!(!test.is_pending(b) && !test.is_pending(d2));
    assert!(test.is_pending(a) && test.is_pending(d1) && test.is_pending(d3));
    test.advance(delay * 2).unwrap();
    assert_eq!(*fired.borrow(), ["callback a", "callback c", "defer 1", "defer 3"]);
    assert!(!test.cancel(a), "a fired timer is no longer pending");
    assert!(ids.iter().all(|id| !test.is_pending(*id)));
}

#[test]
fn a_timer_cancelled_by_an_earlier_one_in_the_same_iteration_does_not_run() {
    // Pants bug 2: a callback cancelled by an earlier callback in the same
    // poll still ran.
    let clock = ManualClock::new();
    let engine = Engine::with_clock(clock.clone()).unwrap();
    let fired = Fired::default();
    let later: Rc<Cell<Option<TimerId>>> = Rc::default();
    let (log, victim) = (fired.clone(), later.clone());
    engine.callback(move |engine| {
        log.borrow_mut().push("first".into());
        assert!(engine.cancel(victim.get().unwrap()));
    });
    later.set(Some(engine.callback(record(&fired, "cancelled callback"))));
    engine.callback(record(&fired, "third"));
    engine.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(*fired.borrow(), ["first", "third"]);

    // The same with defers that become due together: the clock moves past
    // both deadlines before the loop runs.
    let fired = Fired::default();
    let later: Rc<Cell<Option<TimerId>>> = Rc::default();
    let (log, victim) = (fired.clone(), later.clone());
    let delay = Duration::from_millis(5);
    engine.defer(delay, move |engine| {
        log.borrow_mut().push("first".into());
        assert!(engine.cancel(victim.get().unwrap()));
    });
    later.set(Some(engine.defer(delay, record(&fired, "cancelled defer"))));
    engine.poll(Some(Duration::ZERO)).unwrap();
    assert!(fired.borrow().is_empty(), "not due yet");
    clock.advance(delay * 2);
    engine.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(*fired.borrow(), ["first"]);
    clock.advance(delay * 2);
    pants::testing::settle(&engine).unwrap();
    assert_eq!(*fired.borrow(), ["first"]);
}

#[test]
fn poll_on_a_manual_clock_does_not_sleep_for_timers() {
    // A timer an hour away, on a clock that only the test moves: waiting
    // for it in real time would be waiting for nothing.
    let clock = ManualClock::new();
    let engine = Engine::with_clock(clock.clone()).unwrap();
    let fired = Fired::default();
    engine.defer(Duration::from_secs(3600), record(&fired, "an hour later"));
    let real = Instant::now();
    engine.poll(Some(Duration::from_millis(1))).unwrap();
    assert!(real.elapsed() < Duration::from_secs(5), "poll waited for the hour");
    assert!(fired.borrow().is_empty());
    clock.advance(Duration::from_secs(3600));
    // Due now: even a poll told to wait forever returns at once.
    engine.poll(None).unwrap();
    assert_eq!(*fired.borrow(), ["an hour later"]);
}

#[test]
fn posts_from_several_threads_run_once_each_on_the_engine_thread() {
    let engine = Engine::new().unwrap();
    let engine_thread = std::thread::current().id();
    let ran: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let wrong_thread = Arc::new(Mutex::new(0usize));
    let (threads, per_thread) = (4, 250);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let remote = engine.remote();
            let ran = ran.clone();
            let wrong_thread = wrong_thread.clone();
            std::thread::spawn(move || {
                for n in 0..per_thread {
                    let ran = ran.clone();
                    let wrong_thread = wrong_thread.clone();
                    remote.post(move |_engine| {
                        if std::thread::current().id() != engine_thread {
                            *wrong_thread.lock().unwrap() += 1;
                        }
                        ran.lock().unwrap().push((t, n));
                    });
                    if n % 50 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    common::wait(&engine, "every post", || ran.lock().unwrap().len() == threads * per_thread);
    for worker in workers {
        worker.join().unwrap();
    }
    common::run_for(&engine, Duration::from_millis(20));
    let ran = ran.lock().unwrap();
    assert_eq!(ran.len(), threads * per_thread, "a closure ran twice");
    let unique: HashSet<_> = ran.iter().collect();
    assert_eq!(unique.len(), threads * per_thread);
    // Each thread's posts run in the order it posted them.
    for t in 0..threads {
        let mine: Vec<usize> = ran.iter().filter(|(who, _)| *who == t).map(|(_, n)| *n).collect();
        assert_eq!(mine, (0..per_thread).collect::<Vec<_>>());
    }
    assert_eq!(*wrong_thread.lock().unwrap(), 0, "closures ran off the engine thread");
}

#[test]
fn remote_stop_from_another_thread_wakes_and_stops_run() {
    let engine = Engine::new().unwrap();
    let _watchdog = Watchdog::arm("Engine::run with Remote::stop");
    // Nothing registered, no timer: run() blocks in poll until woken.
    let remote = engine.remote();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        remote.stop();
    });
    engine.run().unwrap();
    assert!(engine.is_stopped());
    stopper.join().unwrap();

    // A posted closure wakes the loop too, and can stop it.
    let remote = engine.remote();
    let poster = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        remote.post(|engine| engine.stop());
    });
    engine.run().unwrap();
    poster.join().unwrap();

    // And run_until ends on a remote stop, before its timeout.
    let remote = engine.remote();
    let stopper = std::thread::spawn(move || remote.stop());
    let done = engine.run_until(WAIT * 10, || false).unwrap();
    assert!(!done && engine.is_stopped());
    stopper.join().unwrap();
}

#[test]
fn stop_from_a_timer_ends_run() {
    let engine = Engine::new().unwrap();
    let _watchdog = Watchdog::arm("Engine::run with stop from a timer");
    let fired = Fired::default();
    engine.defer(Duration::from_millis(5), |engine| engine.stop());
    engine.defer(Duration::from_secs(3600), record(&fired, "never"));
    engine.run().unwrap();
    assert!(fired.borrow().is_empty());
}

#[test]
fn panicking_timers_and_posts_do_not_stop_the_engine() {
    let engine = Engine::new().unwrap();
    let fired = Fired::default();
    engine.callback(|_| panic!("a callback panics (expected by the test)"));
    let cycles = Rc::new(Cell::new(0));
    let count = cycles.clone();
    let cycle = engine.cycle(Duration::from_millis(1), move |_| {
        count.set(count.get() + 1);
        panic!("a cycle panics (expected by the test)");
    });
    engine.defer(Duration::from_millis(2), |_| panic!("a defer panics (expected by the test)"));
    engine.remote().post(|_| panic!("a posted closure panics (expected by the test)"));
    engine.defer(Duration::from_millis(20), record(&fired, "after the panics"));
    let posted = Arc::new(Mutex::new(false));
    let flag = posted.clone();
    engine.remote().post(move |_| *flag.lock().unwrap() = true);
    common::wait(&engine, "the later timer", || fired.borrow().len() == 1);
    assert_eq!(*fired.borrow(), ["after the panics"]);
    assert!(*posted.lock().unwrap(), "the post after a panicking post ran");
    // A cycle that panicked is dropped, not repeated.
    assert_eq!(cycles.get(), 1);
    assert!(!engine.is_pending(cycle));
    common::run_for(&engine, Duration::from_millis(10));
    assert_eq!(cycles.get(), 1);
}

#[test]
fn polling_from_inside_the_engine_is_refused() {
    let engine = Engine::new().unwrap();
    let result: Rc<RefCell<Option<std::io::Result<()>>>> = Rc::default();
    let out = result.clone();
    engine.callback(move |engine| *out.borrow_mut() = Some(engine.poll(Some(Duration::ZERO))));
    common::wait(&engine, "the callback", || result.borrow().is_some());
    assert!(result.borrow_mut().take().unwrap().is_err());
    // The engine still works afterwards.
    let fired = Fired::default();
    engine.callback(record(&fired, "after"));
    common::wait(&engine, "the next callback", || !fired.borrow().is_empty());
}
