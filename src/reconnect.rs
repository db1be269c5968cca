//! Reconnecting clients: exponential [`Backoff`], and the pattern that
//! retries a failed connect and replaces a dropped connection (Twisted's
//! `ReconnectingClientFactory`).
//!
//! A stream comes back from two different ends, and each takes its own road:
//!
//! * **The connect failed** (`on_connect_error`): the stream is not closed
//!   unless the handler closes it. It stays, idle, and can
//!   [`connect`](Stream::connect) again: schedule that with
//!   [`Stream::defer`] after [`Backoff::next_delay`], and close the stream
//!   (giving up) once the backoff is exhausted.
//! * **The connection closed** (`on_close`): that stream is finished for
//!   good, and its own timers are cancelled (a [`Stream::defer`] made in
//!   `on_close` never runs). Build a new stream instead, from an
//!   [`Engine::defer`] (reach the engine through [`Stream::engine`]). A
//!   handler is moved into its stream, so what must survive the reconnect
//!   (the backoff, a session, counters) is moved out of the old handler
//!   into the new one: `on_close` gets `&mut self`, so
//!   [`std::mem::take`] its fields (a [`Backoff`] takes as its
//!   [`Default`]).
//!
//! And on `on_connect`, [`reset`](Backoff::reset) the backoff, so that the
//! next outage starts again from the initial delay.
//!
//! # Example
//!
//! A client of a server that is not up yet, and that drops every
//! connection after one line. The client retries until the server listens,
//! then reconnects after each drop until it has two lines.
//!
//! ```
//! use std::{cell::RefCell, net::SocketAddr, rc::Rc, time::Duration};
//! use pants::delimiter::{Raw, Until};
//! use pants::reconnect::Backoff;
//! use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError};
//!
//! struct Client {
//!     address: Address,
//!     backoff: Backoff,
//!     /// Kept across connections: moved from each handler to the next.
//!     lines: Vec<String>,
//!     /// Where the last handler leaves the lines, for the caller.
//!     result: Rc<RefCell<Option<Vec<String>>>>,
//! }
//!
//! impl Handler for Client {
//!     fn on_connect(&mut self, _stream: &mut Stream<Self>) {
//!         self.backoff.reset();
//!     }
//!
//!     fn on_connect_error(&mut self, stream: &mut Stream<Self>, _error: StreamError) {
//!         // Do not close: connect this same stream again later.
//!         match self.backoff.next_delay() {
//!             Some(delay) => {
//!                 let address = self.address.clone();
//!                 stream.defer(delay, move |client, stream| {
//!                     if let Err(error) = stream.connect(address) {
//!                         client.on_connect_error(stream, error);
//!                     }
//!                 });
//!             }
//!             None => stream.close(), // give up; on_close follows
//!         }
//!     }
//!
//!     fn on_close(&mut self, stream: &mut Stream<Self>) {
//!         let delay = match self.backoff.next_delay() {
//!             Some(delay) if self.lines.len() < 2 => delay,
//!             _ => {
//!                 // Done, or gave up.
//!                 *self.result.borrow_mut() = Some(std::mem::take(&mut self.lines));
//!                 return;
//!             }
//!         };
//!         // This stream is finished: a new one, with this one's state, later.
//!         let next = Client {
//!             address: self.address.clone(),
//!             backoff: std::mem::take(&mut self.backoff),
//!             lines: std::mem::take(&mut self.lines),
//!             result: self.result.clone(),
//!         };
//!         let address = self.address.clone();
//!         stream.engine().defer(delay, move |engine| {
//!             if let Err(error) = Stream::new(next).read_delimiter(Until::lf()).connect(engine, address) {
//!                 eprintln!("reconnecting failed: {error}");
//!             }
//!         });
//!     }
//! }
//!
//! impl Read<Until> for Client {
//!     fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         self.lines.push(String::from_utf8_lossy(line).into_owned());
//!     }
//! }
//!
//! /// Greets with its connection's number, then hangs up.
//! struct Greeter(u32);
//! impl Handler for Greeter {
//!     fn on_connect(&mut self, stream: &mut Stream<Self>) {
//!         let _ = stream.write(format!("hello {}\n", self.0));
//!         stream.close();
//!     }
//! }
//! impl Read<Raw> for Greeter {
//!     fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
//! }
//!
//! let engine = Engine::new()?;
//! // A free port; nothing listens there for the first 100 ms.
//! let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! let address = Address::from(SocketAddr::from(([127, 0, 0, 1], port)));
//!
//! let result = Rc::new(RefCell::new(None));
//! let client = Client {
//!     address: address.clone(),
//!     backoff: Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).max_attempts(20),
//!     lines: Vec::new(),
//!     result: result.clone(),
//! };
//! Stream::new(client).read_delimiter(Until::lf()).connect(&engine, address.clone())?;
//!
//! engine.defer(Duration::from_millis(100), move |engine| {
//!     let mut count = 0;
//!     let greeters = Server::from_fn(move |_peer| {
//!         count += 1;
//!         Some(Stream::new(Greeter(count)))
//!     });
//!     greeters.listen(engine, address).expect("listen");
//! });
//!
//! assert!(engine.run_until(Duration::from_secs(10), || result.borrow().is_some())?);
//! assert_eq!(result.take().unwrap(), ["hello 1", "hello 2"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Helpers
//!
//! [`retry_connect`] is the `on_connect_error` part in one call, and
//! [`connect_after`] the `on_close` part:
//!
//! ```
//! # use std::time::Duration;
//! # use pants::{delimiter::Until, reconnect::{self, Backoff}, Address, Handler, Read, Stream, StreamError};
//! struct Client {
//!     address: Address,
//!     backoff: Backoff,
//!     stopping: bool,
//! }
//!
//! impl Handler for Client {
//!     fn on_connect(&mut self, _stream: &mut Stream<Self>) {
//!         self.backoff.reset();
//!     }
//!
//!     fn on_connect_error(&mut self, stream: &mut Stream<Self>, _error: StreamError) {
//!         reconnect::retry_connect(stream, &mut self.backoff, self.address.clone());
//!     }
//!
//!     fn on_close(&mut self, stream: &mut Stream<Self>) {
//!         if self.stopping {
//!             return;
//!         }
//!         if let Some(delay) = self.backoff.next_delay() {
//!             let next = Client { address: self.address.clone(), backoff: std::mem::take(&mut self.backoff), stopping: false };
//!             let builder = Stream::new(next).read_delimiter(Until::lf());
//!             reconnect::connect_after(stream.engine(), delay, builder, self.address.clone());
//!         }
//!     }
//! }
//!
//! impl Read<Until> for Client {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         if line == b"bye" {
//!             self.stopping = true;
//!             stream.close();
//!         }
//!     }
//! }
//! ```
//!
//! Both retry paths give up together when the backoff is exhausted:
//! `next_delay` returns `None` in `on_close` too.

use std::time::Duration;

use crate::delimiter::Delimiter;
use crate::engine::{Engine, TimerId};
use crate::error::StreamError;
use crate::{Address, Handler, Read, Stream, StreamBuilder};

/// Exponential backoff: the delays before successive reconnection attempts.
///
/// The first delay is `initial`; each next one is the previous times the
/// [`factor`](Backoff::factor) (default 2), never more than `max`. With
/// [`max_attempts`](Backoff::max_attempts), [`next_delay`](Backoff::next_delay)
/// returns `None` once that many delays were handed out (by default it never
/// does). [`jitter`](Backoff::jitter) shortens each delay by a random part,
/// from a generator seeded by the caller (by default there is none, and the
/// delays are exact). [`reset`](Backoff::reset) starts again from `initial`:
/// call it once connected.
///
/// `Backoff::default()` is 100 ms doubling up to 30 s, forever, without
/// jitter (what [`std::mem::take`] leaves behind).
///
/// ```
/// use pants::reconnect::Backoff;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let mut backoff = Backoff::new(ms(100), ms(500)).max_attempts(5);
/// let delays: Vec<_> = std::iter::from_fn(|| backoff.next_delay()).collect();
/// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
/// assert!(backoff.is_exhausted());
///
/// backoff.reset();
/// assert_eq!(backoff.next_delay(), Some(ms(100)));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    max_attempts: Option<u32>,
    jitter: f64,
    rng: u64,
    /// The delay (before jitter) the next call hands out.
    next: Duration,
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Delays from `initial`, doubling, up to `max` (an `initial` above
    /// `max` is lowered to it), with no limit on attempts and no jitter.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    /// assert_eq!(backoff.next_delay(), Some(Duration::from_secs(1)));
    /// assert_eq!(backoff.next_delay(), Some(Duration::from_secs(2)));
    /// ```
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.min(max);
        Backoff { initial, max, factor: 2.0, max_attempts: None, jitter: 0.0, rng: 0, next: initial, attempts: 0 }
    }

    /// Sets the factor each delay is multiplied by (default 2; 1 keeps the
    /// delay constant).
    ///
    /// # Panics
    ///
    /// If `factor` is less than 1 or not finite.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).factor(1.5);
    /// assert_eq!(backoff.next_delay(), Some(Duration::from_millis(100)));
    /// assert_eq!(backoff.next_delay(), Some(Duration::from_millis(150)));
    /// assert_eq!(backoff.next_delay(), Some(Duration::from_millis(225)));
    /// ```
    pub fn factor(mut self, factor: f64) -> Backoff {
        assert!(factor.is_finite() && factor >= 1.0, "a backoff factor must be finite and at least 1, not {factor}");
        self.factor = factor;
        self
    }

    /// Gives up after `attempts` delays (since the last
    /// [`reset`](Backoff::reset)): `next_delay` returns `None` from then on.
    /// `max_attempts(0)` never retries.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).max_attempts(2);
    /// assert!(backoff.next_delay().is_some());
    /// assert!(backoff.next_delay().is_some());
    /// assert_eq!(backoff.next_delay(), None);
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Backoff {
        self.max_attempts = Some(attempts);
        self
    }

    /// Shortens each delay `d` by a random part: the delay handed out is
    /// uniformly distributed in `[(1 - fraction) * d, d]`, so it never
    /// exceeds `max`, and the growth underneath is unchanged. 0.5 is
    /// "equal jitter", 1 "full jitter". Clients that lost the same server
    /// at the same moment then do not all come back at once.
    ///
    /// The generator (xorshift64) is seeded with `seed`: the same seed gives
    /// the same delays, which keeps tests reproducible. Give each client its
    /// own seed (a client number, the process id, a hash of the stream id).
    ///
    /// # Panics
    ///
    /// If `fraction` is not between 0 and 1.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10)).jitter(0.5, 42);
    /// let (mut a, mut b) = (backoff.clone(), backoff);
    /// for _ in 0..10 {
    ///     let d = a.next_delay().unwrap();
    ///     assert_eq!(Some(d), b.next_delay()); // the same seed, the same delays
    /// }
    /// let d = a.next_delay().unwrap(); // the 11th: 10 s before jitter
    /// assert!(d >= Duration::from_secs(5) && d <= Duration::from_secs(10));
    /// ```
    pub fn jitter(mut self, fraction: f64, seed: u64) -> Backoff {
        assert!((0.0..=1.0).contains(&fraction), "a jitter fraction must be between 0 and 1, not {fraction}");
        self.jitter = fraction;
        self.rng = seed_state(seed);
        self
    }

    /// The delay before the next attempt, counting it as made; `None` once
    /// [`max_attempts`](Backoff::max_attempts) is reached.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(1)).max_attempts(4);
    /// let delays: Vec<_> = std::iter::from_fn(|| backoff.next_delay()).map(|d| d.as_millis()).collect();
    /// assert_eq!(delays, [250, 500, 1000, 1000]);
    /// ```
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.is_exhausted() {
            return None;
        }
        self.attempts = self.attempts.saturating_add(1);
        let delay = self.next;
        self.next = scale(delay, self.factor, self.max);
        if self.jitter > 0.0 {
            let shortened = delay.as_secs_f64() * self.jitter * unit(&mut self.rng);
            return Some(delay.saturating_sub(Duration::try_from_secs_f64(shortened).unwrap_or(delay)));
        }
        Some(delay)
    }

    /// Starts again from the initial delay, with no attempts counted (call
    /// it on a successful connect). The jitter generator goes on where it
    /// was.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8)).max_attempts(2);
    /// backoff.next_delay();
    /// backoff.next_delay();
    /// backoff.reset();
    /// assert_eq!((backoff.attempts(), backoff.next_delay()), (0, Some(Duration::from_secs(1))));
    /// ```
    pub fn reset(&mut self) {
        self.attempts = 0;
        self.next = self.initial;
    }

    /// How many delays were handed out since the last
    /// [`reset`](Backoff::reset): the retries made so far.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    /// assert_eq!(backoff.attempts(), 0);
    /// backoff.next_delay();
    /// assert_eq!(backoff.attempts(), 1);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether [`max_attempts`](Backoff::max_attempts) is reached (the next
    /// `next_delay` returns `None`). Never, without a limit.
    ///
    /// ```
    /// # use pants::reconnect::Backoff;
    /// # use std::time::Duration;
    /// let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).max_attempts(1);
    /// assert!(!backoff.is_exhausted());
    /// backoff.next_delay();
    /// assert!(backoff.is_exhausted());
    /// ```
    pub fn is_exhausted(&self) -> bool {
        self.max_attempts.is_some_and(|max| self.attempts >= max)
    }
}

/// `delay * factor`, at most `max` (computed in whole nanoseconds, so that
/// an integer factor gives exact delays).
fn scale(delay: Duration, factor: f64, max: Duration) -> Duration {
    let nanos = delay.as_nanos() as f64 * factor;
    if nanos >= max.as_nanos() as f64 || nanos >= u64::MAX as f64 {
        return max;
    }
    Duration::from_nanos(nanos.round() as u64).min(max)
}

/// A non-zero xorshift64 state from any seed (a splitmix64 step).
fn seed_state(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        z
    }
}

/// The next number in `[0, 1)` from a xorshift64 state.
fn unit(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The `on_connect_error` half of reconnecting: connects `stream` to
/// `address` again after [`backoff.next_delay()`](Backoff::next_delay)
/// (through [`Stream::defer`]), and returns that delay; or, once the backoff
/// is exhausted, closes the stream (`on_close` follows) and returns `None`.
///
/// A failed retry comes back to `on_connect_error`, as the first attempt
/// did; so does an error that `connect` returns at once (other than the
/// stream being closed or already connecting again, which end the retry
/// quietly).
///
/// ```
/// use std::{cell::Cell, net::SocketAddr, rc::Rc, time::Duration};
/// use pants::{delimiter::Raw, reconnect::{self, Backoff}, Engine, Handler, Read, Stream, StreamError};
///
/// struct Client {
///     address: SocketAddr,
///     backoff: Backoff,
///     errors: u32,
///     /// Set by on_close: the connect errors and the retries.
///     closed: Rc<Cell<Option<(u32, u32)>>>,
/// }
///
/// impl Handler for Client {
///     fn on_connect_error(&mut self, stream: &mut Stream<Self>, _error: StreamError) {
///         self.errors += 1;
///         reconnect::retry_connect(stream, &mut self.backoff, self.address);
///     }
///     fn on_close(&mut self, _stream: &mut Stream<Self>) {
///         self.closed.set(Some((self.errors, self.backoff.attempts())));
///     }
/// }
/// impl Read<Raw> for Client {
///     fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
/// }
///
/// let engine = Engine::new()?;
/// // A free port, where nothing listens.
/// let address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let closed = Rc::new(Cell::new(None));
/// let backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(20)).max_attempts(2);
/// let client = Client { address, backoff, errors: 0, closed: closed.clone() };
/// Stream::new(client).connect(&engine, address)?;
/// assert!(engine.run_until(Duration::from_secs(10), || closed.get().is_some())?);
/// // The first attempt and two retries failed; then it gave up.
/// assert_eq!(closed.get(), Some((3, 2)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn retry_connect<H: Handler>(
    stream: &mut Stream<H>,
    backoff: &mut Backoff,
    address: impl Into<Address>,
) -> Option<Duration> {
    let Some(delay) = backoff.next_delay() else {
        log::debug!("stream {}: giving up reconnecting after {} attempts", stream.id(), backoff.attempts());
        stream.close();
        return None;
    };
    let address = address.into();
    log::debug!("stream {}: reconnecting to {address} in {delay:?} (attempt {})", stream.id(), backoff.attempts());
    stream.defer(delay, move |handler, stream| match stream.connect(address) {
        Ok(()) | Err(StreamError::AlreadyActive) | Err(StreamError::Closed(_)) => {}
        Err(error) => handler.on_connect_error(stream, error),
    });
    Some(delay)
}

/// The `on_close` half of reconnecting: connects a new stream, `builder`,
/// to `address` after `delay` (through [`Engine::defer`]). Cancelling the
/// returned timer, or dropping the engine first, drops the builder and its
/// handler unconnected. An error `connect` returns at once is logged (the
/// handler is dropped, without callbacks); a failure to connect reaches the
/// new handler's `on_connect_error`.
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use pants::{delimiter::Raw, reconnect, Engine, Handler, Read, Server, Stream};
///
/// struct Client(Rc<Cell<bool>>);
/// impl Handler for Client {
///     fn on_connect(&mut self, stream: &mut Stream<Self>) {
///         self.0.set(true);
///         stream.close();
///     }
/// }
/// impl Read<Raw> for Client {
///     fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
/// }
///
/// struct Quiet;
/// impl Handler for Quiet {}
/// impl Read<Raw> for Quiet {
///     fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
/// }
///
/// let engine = Engine::new()?;
/// let server = Server::from_fn(|_peer| Some(Stream::new(Quiet))).listen(&engine, "127.0.0.1:0")?;
/// let address = engine.local_address(server)?;
///
/// let connected = Rc::new(Cell::new(false));
/// let timer = reconnect::connect_after(&engine, Duration::from_millis(20), Stream::new(Client(connected.clone())), address);
/// assert!(engine.is_pending(timer));
/// assert!(engine.run_until(Duration::from_secs(10), || connected.get())?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect_after<H, D>(
    engine: &Engine,
    delay: Duration,
    builder: StreamBuilder<H, D>,
    address: impl Into<Address>,
) -> TimerId
where
    H: Read<D>,
    D: Delimiter + 'static,
{
    let address = address.into();
    engine.defer(delay, move |engine| {
        let target = address.to_string();
        if let Err(error) = builder.connect(engine, address) {
            log::warn!("reconnecting to {target} failed: {error}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn take(backoff: &mut Backoff, n: usize) -> Vec<Option<Duration>> {
        (0..n).map(|_| backoff.next_delay()).collect()
    }

    #[test]
    fn doubles_from_initial_up_to_the_cap() {
        let mut backoff = Backoff::new(ms(10), ms(100));
        let expected: Vec<_> = [10, 20, 40, 80, 100, 100, 100].into_iter().map(|n| Some(ms(n))).collect();
        assert_eq!(take(&mut backoff, 7), expected);
        assert_eq!(backoff.attempts(), 7);
        assert!(!backoff.is_exhausted());
    }

    #[test]
    fn forever_by_default_and_the_cap_holds() {
        let mut backoff = Backoff::new(ms(1), Duration::from_secs(3600)).factor(10.0);
        for _ in 0..10_000 {
            assert!(backoff.next_delay().unwrap() <= Duration::from_secs(3600));
        }
        assert_eq!(backoff.next_delay(), Some(Duration::from_secs(3600)));
        assert_eq!(backoff.attempts(), 10_001);
        // Huge values neither overflow nor panic.
        let mut huge = Backoff::new(Duration::from_secs(u64::MAX / 4), Duration::MAX).factor(1e300);
        assert_eq!(
            take(&mut huge, 3),
            [Some(Duration::from_secs(u64::MAX / 4)), Some(Duration::MAX), Some(Duration::MAX)]
        );
    }

    #[test]
    fn initial_above_max_is_lowered() {
        let mut backoff = Backoff::new(ms(500), ms(200));
        assert_eq!(take(&mut backoff, 2), [Some(ms(200)), Some(ms(200))]);
    }

    #[test]
    fn other_factors() {
        let mut constant = Backoff::new(ms(30), ms(100)).factor(1.0);
        assert_eq!(take(&mut constant, 3), [Some(ms(30)); 3]);
        let mut three = Backoff::new(ms(1), ms(100)).factor(3.0);
        let expected: Vec<_> = [1, 3, 9, 27, 81, 100].into_iter().map(|n| Some(ms(n))).collect();
        assert_eq!(take(&mut three, 6), expected);
        let mut zero = Backoff::new(Duration::ZERO, ms(100));
        assert_eq!(take(&mut zero, 2), [Some(Duration::ZERO); 2]);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn factor_below_one_panics() {
        let _ = Backoff::new(ms(1), ms(2)).factor(0.5);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn nan_factor_panics() {
        let _ = Backoff::new(ms(1), ms(2)).factor(f64::NAN);
    }

    #[test]
    #[should_panic(expected = "between 0 and 1")]
    fn jitter_above_one_panics() {
        let _ = Backoff::new(ms(1), ms(2)).jitter(1.5, 0);
    }

    #[test]
    fn attempts_limit() {
        let mut backoff = Backoff::new(ms(10), ms(100)).max_attempts(3);
        assert_eq!(take(&mut backoff, 5), [Some(ms(10)), Some(ms(20)), Some(ms(40)), None, None]);
        assert_eq!(backoff.attempts(), 3);
        assert!(backoff.is_exhausted());

        let mut never = Backoff::new(ms(10), ms(100)).max_attempts(0);
        assert!(never.is_exhausted());
        assert_eq!(never.next_delay(), None);
        assert_eq!(never.attempts(), 0);
    }

    #[test]
    fn reset_starts_over_and_renews_the_attempts() {
        let mut backoff = Backoff::new(ms(10), ms(100)).max_attempts(2);
        assert_eq!(take(&mut backoff, 3), [Some(ms(10)), Some(ms(20)), None]);
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert!(!backoff.is_exhausted());
        assert_eq!(take(&mut backoff, 3), [Some(ms(10)), Some(ms(20)), None]);
        // Reset mid-way, too.
        backoff.reset();
        backoff.next_delay();
        backoff.reset();
        assert_eq!(backoff.next_delay(), Some(ms(10)));
    }

    #[test]
    fn default_and_take() {
        let mut backoff = Backoff::new(ms(1), ms(2)).max_attempts(1);
        let taken = std::mem::take(&mut backoff);
        assert_eq!(taken.attempts(), 0);
        assert!(!taken.is_exhausted());
        assert_eq!(take(&mut backoff, 4), [Some(ms(100)), Some(ms(200)), Some(ms(400)), Some(ms(800))]);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        for fraction in [0.1, 0.5, 1.0] {
            for seed in 0..20 {
                let mut jittered = Backoff::new(ms(10), Duration::from_secs(5)).jitter(fraction, seed);
                let mut exact = Backoff::new(ms(10), Duration::from_secs(5));
                for _ in 0..30 {
                    let d = exact.next_delay().unwrap();
                    let j = jittered.next_delay().unwrap();
                    assert!(j <= d, "{j:?} > {d:?}");
                    let low = d.mul_f64(1.0 - fraction).saturating_sub(Duration::from_nanos(1));
                    assert!(j >= low, "{j:?} < {low:?} (fraction {fraction})");
                }
            }
        }
    }

    #[test]
    fn jitter_is_deterministic_per_seed_and_varies() {
        let make = |seed| Backoff::new(ms(100), ms(100)).jitter(0.5, seed);
        let (mut a, mut b, mut c) = (make(7), make(7), make(8));
        let a: Vec<_> = take(&mut a, 50);
        assert_eq!(a, take(&mut b, 50));
        assert_ne!(a, take(&mut c, 50));
        // The delays spread over the range rather than sticking to one value.
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 40, "{distinct:?}");
        let mean = a.iter().map(|d| d.unwrap().as_secs_f64()).sum::<f64>() / 50.0;
        assert!((0.06..0.09).contains(&mean), "mean {mean}");
        // Seed 0 works (xorshift needs a non-zero state).
        let mut zero = make(0);
        assert_ne!(zero.next_delay(), zero.next_delay());
    }

    #[test]
    fn no_jitter_with_fraction_zero() {
        let mut backoff = Backoff::new(ms(10), ms(100)).jitter(0.0, 3);
        assert_eq!(take(&mut backoff, 3), [Some(ms(10)), Some(ms(20)), Some(ms(40))]);
    }
}
