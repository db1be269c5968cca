//! A stream's connection state, independent of its handler and delimiter.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::socket::Socket;
use crate::engine::{Engine, TimerId};
use crate::error::StreamError;
use crate::{Address, StreamId};

/// Where a stream is in its life; each state holds what only it has. The
/// socket (in [`Core::socket`]) exists while connecting, open, closing and
/// lingering.
#[derive(Debug)]
pub(crate) enum State {
    /// Built, not connected, or a connect attempt failed and the handler did
    /// not close the stream (it may `connect` again). `failed`: the error of
    /// the attempt, until the loop reports it to `on_connect_error`.
    Idle { failed: Option<StreamError> },
    /// Resolving a host name on the engine's resolver.
    Resolving,
    /// A non-blocking connect is in progress; `next` are the addresses to
    /// try if it fails.
    Connecting { next: VecDeque<SocketAddr> },
    /// Connected.
    Open,
    /// `close()` was called: flushing what is queued, then closing.
    Closing,
    /// Closed: the handler has had `on_close`. `lingering`: the socket is
    /// still draining the peer's last bytes before it is dropped.
    Closed { lingering: bool },
}

impl State {
    /// Not connected, and no attempt pending.
    pub(crate) const IDLE: State = State::Idle { failed: None };
}

/// How a close was asked for: [`Stream::close`](super::Stream::close) or
/// the end of stream (after flushing), or
/// [`Stream::close_now`](super::Stream::close_now), an error or a panic
/// (dropping what is queued). Asked for in any state, before connecting
/// too; carried out when the stream settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// After everything queued has been sent.
    Flush,
    /// At once, dropping what is queued.
    Now,
}

/// Default per-stream limit on queued outgoing bytes before reading pauses.
pub(crate) const DEFAULT_WRITE_LIMIT: usize = 1 << 20;
/// How long a closed socket waits for the peer's end of stream, so that the
/// last bytes we sent are not destroyed by a reset.
pub(crate) const LINGER: Duration = Duration::from_secs(5);

/// Connection state shared by every typed view of a stream.
pub(crate) struct Core {
    pub(crate) engine: Engine,
    pub(crate) id: StreamId,
    pub(crate) state: State,
    pub(crate) socket: Option<Socket>,
    /// The OS said readable and no read has hit `WouldBlock` since.
    pub(crate) readable: bool,
    /// The OS reported the peer's end of stream (or an error): a short read
    /// no longer proves the socket drained, so reads go on until `0`,
    /// `WouldBlock` or the error.
    pub(crate) read_closed: bool,
    /// The OS said writable and no write has hit `WouldBlock` since.
    pub(crate) writable: bool,
    /// The peer sent end of stream.
    pub(crate) eof: bool,
    /// `on_end` has been called (it runs once).
    pub(crate) end_reported: bool,
    pub(crate) out: Outbox,
    pub(crate) buffer_size: usize,
    pub(crate) write_limit: usize,
    /// Reading paused because too much is queued for sending.
    pub(crate) paused: bool,
    /// Reading paused by the handler ([`Stream::pause_reading`](super::Stream::pause_reading)).
    pub(crate) held: bool,
    /// `on_write` is owed once the queue drains.
    pub(crate) owe_on_write: bool,
    /// The handler produces: `on_produce` is called while the queue is
    /// at most half the write limit.
    pub(crate) producing: bool,
    /// `on_connect` is owed (accepted or attached streams, and connects).
    pub(crate) owe_on_connect: bool,
    /// The address being connected to (or resolved), for errors.
    pub(crate) target: String,
    /// A close asked for and not carried out yet (or carried out: then
    /// the state is `Closed`); no frame is delivered once it is set.
    pub(crate) close: Option<Close>,
    pub(crate) local_override: Option<Address>,
    pub(crate) remote_override: Option<Address>,
    pub(crate) server: Option<Rc<crate::server::Connections>>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) last_read: Instant,
    pub(crate) last_activity: Instant,
    pub(crate) timeout_timer: Option<TimerId>,
    /// Timers made with `Stream::defer`, cancelled when the stream closes.
    pub(crate) timers: Vec<TimerId>,
    /// Buffered bytes must be cut again (delimiter or limit changed outside
    /// `on_read`).
    pub(crate) redispatch: bool,
    /// The handler panicked: it is never called again.
    pub(crate) poisoned: bool,
    /// Where TLS is: off, asked for, handshaking or running.
    #[cfg(feature = "tls")]
    pub(crate) tls: super::tls_state::Tls,
    /// The host name to verify the server's certificate against.
    #[cfg(feature = "tls")]
    pub(crate) tls_host: Option<String>,
    /// Bytes and frames so far (see `counters`).
    pub(crate) counters: super::counters::Counters,
    /// The stream's `tracing` span (nothing without the feature).
    pub(crate) trace: super::trace::Trace,
}

impl Core {
    pub(crate) fn new(engine: Engine, id: StreamId, buffer_size: usize) -> Self {
        let now = engine.now();
        Core {
            engine,
            id,
            state: State::IDLE,
            socket: None,
            readable: false,
            read_closed: false,
            writable: false,
            eof: false,
            end_reported: false,
            out: Outbox::default(),
            buffer_size,
            write_limit: DEFAULT_WRITE_LIMIT,
            paused: false,
            held: false,
            owe_on_write: false,
            producing: false,
            owe_on_connect: false,
            target: String::new(),
            close: None,
            local_override: None,
            remote_override: None,
            server: None,
            idle_timeout: None,
            read_timeout: None,
            last_read: now,
            last_activity: now,
            timeout_timer: None,
            timers: Vec::new(),
            redispatch: false,
            poisoned: false,
            #[cfg(feature = "tls")]
            tls: super::tls_state::Tls::Off,
            #[cfg(feature = "tls")]
            tls_host: None,
            counters: Default::default(),
            trace: super::trace::Trace::none(),
        }
    }

    /// Asks for a close, unless one was asked for already (an earlier
    /// `Now` is not softened into a `Flush`, nor a `Flush` hardened).
    pub(crate) fn ask_close(&mut self, how: Close) {
        self.close.get_or_insert(how);
    }

    /// Whether new writes are accepted, as an error naming `what` if not.
    pub(crate) fn check_writable(&self, what: &'static str) -> Result<(), StreamError> {
        // Closed (or closing) first, connected or not, as in Pants.
        match self.state {
            _ if self.close.is_some() => Err(StreamError::Closed(what)),
            State::Open => Ok(()),
            State::Closing | State::Closed { .. } => Err(StreamError::Closed(what)),
            State::Idle { .. } | State::Resolving | State::Connecting { .. } => Err(StreamError::NotConnected(what)),
        }
    }

    /// Open, not closing, and without TLS: bytes can be queued as they are.
    #[inline]
    pub(crate) fn is_plain_and_open(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.has_session() {
            return false;
        }
        matches!(self.state, State::Open) && self.close.is_none()
    }

    /// Queues `data` behind everything queued (the caller checked that the
    /// stream can write); `on_write` is owed once it has gone out.
    #[inline]
    pub(crate) fn queue(&mut self, data: &[u8]) {
        let engine = &self.engine;
        self.out.tail(|| engine.take_send_buffer()).extend_from_slice(data);
        self.out.appended(data.len());
        self.owe_on_write = true;
    }

    /// Lets `encode` append to the send queue (after checking, for `what`,
    /// that the stream can write); on error, what it appended is dropped
    /// and nothing is queued.
    #[inline]
    pub(crate) fn append(
        &mut self,
        what: &'static str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::PackError>,
    ) -> Result<(), StreamError> {
        self.check_writable(what)?;
        let engine = &self.engine;
        let tail = self.out.tail(|| engine.take_send_buffer());
        let before = tail.len();
        if let Err(error) = encode(tail) {
            tail.truncate(before);
            return Err(error.into());
        }
        let n = tail.len() - before;
        self.out.appended(n);
        self.owe_on_write = true;
        Ok(())
    }

    /// Whether the producer should be asked for more now: producing, open,
    /// not closing, and the queue at most half the write limit.
    pub(crate) fn wants_production(&self) -> bool {
        self.producing
            && matches!(self.state, State::Open)
            && self.close.is_none()
            && self.out.queued() <= (self.write_limit / 2) as u64
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Open, or flushing before it closes.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.state, State::Open | State::Closing)
    }

    /// Closed (`on_close` has run), lingering or not.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed { .. })
    }

    /// Closed and lingering: the socket drains the peer's last bytes.
    pub(crate) fn is_lingering(&self) -> bool {
        matches!(self.state, State::Closed { lingering: true })
    }

    /// Whether plaintext may be read and delivered now: not while TLS is
    /// pending (STARTTLS: what follows is the handshake) or handshaking.
    pub(crate) fn can_read_plaintext(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            !self.tls.holds_plaintext_back()
        }
        #[cfg(not(feature = "tls"))]
        {
            true
        }
    }

    /// Whether a read that returned less than asked proves the socket is
    /// empty: true for plain sockets whose end of stream has not been
    /// reported (with edge-triggered polling, bytes arriving later raise a
    /// new event, but an end of stream already reported raises none). Not
    /// over TLS, where a read returns plaintext, not what the socket held.
    pub(crate) fn drained_by_short_read(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.has_session() {
            return false;
        }
        !self.read_closed
    }

    /// Whether a timeout is set, so that activity must be timestamped.
    pub(crate) fn timed(&self) -> bool {
        self.idle_timeout.is_some() || self.read_timeout.is_some()
    }

    /// Records bytes received (the clock is read only if a timeout needs it).
    pub(crate) fn note_received(&mut self) {
        if self.timed() {
            self.last_read = self.engine.now();
            self.last_activity = self.last_read;
        }
    }

    /// Records bytes sent (the clock is read only if a timeout needs it).
    pub(crate) fn note_sent(&mut self) {
        if self.timed() {
            self.last_activity = self.engine.now();
        }
    }

    /// Sets the timeouts; activity counts from now if none was set before
    /// (until then it was not timestamped).
    pub(crate) fn set_timeouts(&mut self, idle: Option<Duration>, read: Option<Duration>) {
        if !self.timed() {
            self.last_read = self.engine.now();
            self.last_activity = self.last_read;
        }
        self.idle_timeout = idle;
        self.read_timeout = read;
    }
}
