//! The engine's clock: the system's, or a manual one driven by a test.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A clock that moves only when told to: the time source of an engine made
/// with [`Engine::with_clock`](crate::Engine::with_clock), so that a test of
/// a 30-second timeout runs in microseconds.
///
/// Everything that reads the engine's time reads this clock:
/// [`Engine::now`](crate::Engine::now), the deadlines of
/// [`callback`](crate::Engine::callback), [`defer`](crate::Engine::defer)
/// and [`cycle`](crate::Engine::cycle) timers, [`Stream::defer`](crate::Stream::defer),
/// and streams' idle and read timeouts. Real time passing changes nothing:
/// [`Engine::poll`](crate::Engine::poll) never sleeps waiting for a timer
/// on a manual clock (it waits only for I/O, for as long as it is told);
/// a timer fires on the first iteration after the clock has been advanced
/// to its deadline. [`testing::TestEngine`](crate::testing::TestEngine)
/// pairs an engine with a clock and advances through every deadline in
/// turn.
///
/// The clock is a cheap, cloneable handle (`Rc`): clones share one time.
/// It starts at the moment it is made and never goes backwards.
///
/// ```
/// use pants::{engine::ManualClock, Engine};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let clock = ManualClock::new();
/// let engine = Engine::with_clock(clock.clone())?;
/// let fired = Rc::new(Cell::new(false));
/// let flag = fired.clone();
/// engine.defer(Duration::from_secs(30), move |_| flag.set(true));
///
/// engine.poll(Some(Duration::ZERO))?; // returns at once: nothing is due
/// assert!(!fired.get());
/// clock.advance(Duration::from_secs(30));
/// engine.poll(Some(Duration::ZERO))?;
/// assert!(fired.get());
/// assert_eq!(clock.elapsed(), Duration::from_secs(30));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ManualClock {
    start: Instant,
    now: Rc<Cell<Instant>>,
}

impl ManualClock {
    /// A clock standing at the present moment.
    pub fn new() -> Self {
        let start = Instant::now();
        ManualClock { start, now: Rc::new(Cell::new(start)) }
    }

    /// The clock's time.
    #[inline]
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves the clock forward by `by`. Timers that become due fire on the
    /// engine's next iteration (all of them at once, in deadline order;
    /// [`TestEngine::advance`](crate::testing::TestEngine::advance) stops
    /// at each deadline instead).
    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }

    /// Moves the clock forward to `to`; an instant in its past leaves it
    /// where it is (the clock never goes backwards).
    pub fn advance_to(&self, to: Instant) {
        if to > self.now.get() {
            self.now.set(to);
        }
    }

    /// How far the clock has been advanced since it was made.
    pub fn elapsed(&self) -> Duration {
        self.now.get() - self.start
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock").field("elapsed", &self.elapsed()).finish()
    }
}

/// Where an engine reads the time.
pub(crate) enum Clock {
    System,
    Manual(ManualClock),
}

impl Clock {
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_never_back() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), t0, "real time does not move it");
        let shared = clock.clone();
        shared.advance(Duration::from_secs(30));
        assert_eq!(clock.now(), t0 + Duration::from_secs(30), "clones share one time");
        clock.advance_to(t0);
        assert_eq!(clock.elapsed(), Duration::from_secs(30), "never backwards");
        clock.advance_to(t0 + Duration::from_secs(31));
        assert_eq!(clock.elapsed(), Duration::from_secs(31));
    }

    #[test]
    fn the_system_clock_follows_real_time() {
        let clock = Clock::System;
        let before = Instant::now();
        assert!(clock.now() >= before);
        assert!(!clock.is_manual());
        assert!(Clock::Manual(ManualClock::new()).is_manual());
    }
}
