//! A stream as the engine runs it: the event handling, the read loop, the
//! flushing and the closing.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{self, Read as _};
use std::net::{Shutdown, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Instant;

use mio::Interest;

use super::core::{Core, State, LINGER};
use super::outbox::Flushed;
use super::reader::{Dispatch, Reader};
use super::socket::Socket;
use super::{panic_message, Handler, Stream};
use crate::engine::{Channel, Engine, Readiness};
use crate::error::{FrameError, StreamError};
use crate::{Address, StreamId};

/// How many bytes one stream may read per loop iteration before the others
/// get their turn (fairness); the rest is read in the next iteration.
const READ_BUDGET: usize = 256 * 1024;

pub(crate) struct StreamChannel<H: Handler> {
    handler: H,
    /// Always `Some`, except while lent to a dispatch.
    stream: Option<Stream<H>>,
    /// Always `Some`, except while being replaced by a switch.
    reader: Option<Box<dyn Reader<H>>>,
}

fn register(core: &mut Core) -> io::Result<()> {
    let token = core.id.token();
    let registry = core.engine.registry();
    match core.socket.as_mut() {
        Some(socket) => registry.register(socket, token, Interest::READABLE | Interest::WRITABLE),
        None => Ok(()),
    }
}

fn drop_socket(core: &mut Core) {
    if let Some(mut socket) = core.socket.take() {
        let _ = core.engine.registry().deregister(&mut socket);
    }
    core.readable = false;
    core.writable = false;
}

/// Starts a connection attempt (resolving first, for host names).
pub(crate) fn connect<H: Handler>(core: &mut Core, address: Address) -> Result<(), StreamError> {
    core.target = address.to_string();
    #[cfg(feature = "tls")]
    if core.tls_host.is_none() {
        core.tls_host = match &address {
            Address::Host(host, _) => Some(host.clone()),
            Address::Ip(addr) => Some(addr.ip().to_string()),
            Address::Port(_) => Some("127.0.0.1".to_string()),
            Address::Unix(_) => None,
        };
    }
    core.targets.clear();
    match address {
        Address::Unix(path) => {
            core.state = State::Connecting;
            match mio::net::UnixStream::connect(&path) {
                Ok(socket) => {
                    core.socket = Some(Socket::Unix(socket));
                    register(core).map_err(StreamError::Read)?;
                }
                Err(source) => fail_connect(core, source),
            }
        }
        Address::Host(host, port) => {
            core.state = State::Resolving;
            let remote = core.engine.remote();
            let id = core.id;
            std::thread::Builder::new()
                .name("pants-resolve".into())
                .spawn(move || {
                    let result = (host.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>());
                    remote.post(move |engine| {
                        let _ =
                            engine.with_stream::<H, _>(id, move |_, stream| resolved(&mut stream.core, host, result));
                    });
                })
                .map_err(|source| StreamError::Resolve { host: core.target.clone(), source })?;
        }
        other => {
            core.targets.extend(other.connect_target());
            try_next_target(core);
        }
    }
    Ok(())
}

fn resolved(core: &mut Core, host: String, result: io::Result<Vec<std::net::SocketAddr>>) {
    if core.state != State::Resolving || core.close_flush.is_some() {
        return;
    }
    match result {
        Ok(addresses) if !addresses.is_empty() => {
            core.targets = addresses.into();
            try_next_target(core);
        }
        Ok(_) => {
            core.state = State::Idle;
            core.connect_error = Some(StreamError::Resolve {
                host,
                source: io::Error::new(io::ErrorKind::NotFound, "no addresses found"),
            });
            core.engine.mark_ready(core.id);
        }
        Err(source) => {
            core.state = State::Idle;
            core.connect_error = Some(StreamError::Resolve { host, source });
            core.engine.mark_ready(core.id);
        }
    }
}

/// Tries the next resolved address; reports the last error when none is left.
fn try_next_target(core: &mut Core) {
    core.state = State::Connecting;
    let mut last = None;
    while let Some(addr) = core.targets.pop_front() {
        match mio::net::TcpStream::connect(addr) {
            Ok(socket) => {
                core.socket = Some(Socket::Tcp(socket));
                core.target = addr.to_string();
                match register(core) {
                    Ok(()) => return,
                    Err(e) => {
                        drop_socket(core);
                        last = Some(e);
                    }
                }
            }
            Err(e) => last = Some(e),
        }
    }
    fail_connect(core, last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to connect to")));
}

fn fail_connect(core: &mut Core, source: io::Error) {
    drop_socket(core);
    core.state = State::Idle;
    core.connect_error = Some(StreamError::Connect { address: core.target.clone(), source });
    core.engine.mark_ready(core.id);
}

/// Checks a connection in progress after readiness.
fn check_connect(core: &mut Core) {
    let Some(socket) = core.socket.as_ref() else { return };
    match socket.connect_result() {
        Ok(true) => {
            socket.set_nodelay();
            core.state = State::Open;
            core.owe_on_connect = true;
            #[cfg(feature = "tls")]
            if let Err(e) = begin_tls(core) {
                core.connect_error = Some(StreamError::Tls(e));
            }
            core.last_read = Instant::now();
            core.last_activity = core.last_read;
        }
        Ok(false) => {}
        Err(e) if !core.targets.is_empty() => {
            log::debug!("stream {}: {} failed ({e}); trying the next address", core.id, core.target);
            drop_socket(core);
            try_next_target(core);
        }
        Err(e) => fail_connect(core, e),
    }
}

/// Begins a pending TLS session (client or server side). For STARTTLS the
/// caller has checked that no plain text is buffered past the switch.
#[cfg(feature = "tls")]
fn begin_tls(core: &mut Core) -> Result<(), crate::tls::TlsError> {
    use crate::tls::{TlsOptions, TlsSession};
    let Some(options) = core.tls_pending.take() else { return Ok(()) };
    let session = match &options {
        TlsOptions::Client(client) => TlsSession::client(client, core.tls_host.as_deref())?,
        TlsOptions::Server(server) => TlsSession::server(server)?,
    };
    core.tls = Some(Box::new(session));
    core.handshaking = true;
    core.engine.mark_ready(core.id);
    Ok(())
}

/// Runs an accepted or existing connected socket.
pub(crate) fn attach(
    core: &mut Core,
    socket: Socket,
    server: Option<Rc<RefCell<BTreeSet<StreamId>>>>,
) -> Result<(), StreamError> {
    socket.set_nodelay();
    core.socket = Some(socket);
    register(core).map_err(StreamError::Read)?;
    if let Some(server) = &server {
        server.borrow_mut().insert(core.id);
    }
    core.server = server;
    core.state = State::Open;
    core.owe_on_connect = true;
    core.readable = true;
    core.writable = true;
    #[cfg(feature = "tls")]
    begin_tls(core)?;
    core.engine.mark_ready(core.id);
    Ok(())
}

/// For a graceful close over TLS: queues close_notify once, then sends what
/// the session holds. True when everything, close_notify included, is out
/// (or the connection is broken, or there is no TLS); false while the socket
/// is full (the stream waits for it to be writable).
fn tls_close_sent(core: &mut Core) -> bool {
    #[cfg(feature = "tls")]
    if let (Some(session), Some(socket)) = (core.tls.as_mut(), core.socket.as_mut()) {
        if core.handshaking {
            return true;
        }
        if !core.close_notify_sent {
            session.close_notify();
            core.close_notify_sent = true;
        }
        return match session.write_records(socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.writable = false;
                false
            }
            _ => true,
        };
    }
    let _ = core;
    true
}

/// Whether the TLS session has records of its own to send.
fn tls_wants_write(core: &Core) -> bool {
    #[cfg(feature = "tls")]
    {
        core.tls.as_ref().is_some_and(|s| s.wants_write())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = core;
        false
    }
}

/// Writes `data` straight to a plain socket (nothing may be queued); returns
/// how much it took. Errors are left for the flush of the queued rest to
/// meet and report; TLS streams and a socket known to be full take nothing.
pub(crate) fn write_direct(core: &mut Core, data: &[u8]) -> usize {
    debug_assert!(core.out.is_empty());
    #[cfg(feature = "tls")]
    if core.tls.is_some() || core.tls_pending.is_some() {
        return 0;
    }
    if !core.writable {
        return 0;
    }
    let Some(socket) = core.socket.as_mut() else { return 0 };
    loop {
        match io::Write::write(socket, data) {
            Ok(n) => {
                if n > 0 {
                    core.note_sent();
                }
                return n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.writable = false;
                return 0;
            }
            Err(_) => return 0,
        }
    }
}

/// Writes what is queued, as far as the socket takes it.
pub(crate) fn flush(core: &mut Core) -> io::Result<Flushed> {
    let Some(socket) = core.socket.as_mut() else { return Ok(Flushed::Blocked) };
    #[cfg(feature = "tls")]
    if let Some(session) = core.tls.as_mut() {
        // Records TLS itself wants to send (handshake, close_notify) first.
        let result = match session.write_records(socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Flushed::Blocked),
            Err(e) => Err(e),
            Ok(()) if core.out.is_empty() || core.handshaking => Ok(Flushed::Drained),
            Ok(()) => {
                let engine = &core.engine;
                let mut io = super::tls_io::TlsIo { session, socket };
                core.out.flush(&mut io, &mut |buffer| engine.give_send_buffer(buffer))
            }
        };
        if !matches!(result, Ok(Flushed::Drained)) {
            core.writable = false;
        }
        core.note_sent();
        return result;
    }
    if core.out.is_empty() {
        return Ok(Flushed::Drained);
    }
    let engine = &core.engine;
    let before = core.out.queued();
    let result = core.out.flush(socket, &mut |buffer| engine.give_send_buffer(buffer));
    match &result {
        Ok(Flushed::Blocked) => core.writable = false,
        Ok(Flushed::Drained) => {}
        Err(_) => core.writable = false,
    }
    // Only bytes sent count as activity: an attempt that the socket refused
    // must not keep an idle timeout from expiring.
    if core.out.queued() != before {
        core.note_sent();
    }
    result
}

/// (Re)arms the idle/read timeout timer of the stream.
pub(crate) fn arm_timeouts<H: Handler>(core: &mut Core) {
    if let Some(timer) = core.timeout_timer.take() {
        core.engine.cancel(timer);
    }
    // Only a connected stream (or one flushing before it closes) times out:
    // a deadline armed before connecting would already be past, and a timer
    // re-armed in the past fires on every iteration.
    if !matches!(core.state, State::Open | State::Closing) {
        return;
    }
    let deadline = [core.idle_timeout.map(|t| core.last_activity + t), core.read_timeout.map(|t| core.last_read + t)]
        .into_iter()
        .flatten()
        .min();
    if let Some(deadline) = deadline {
        let id = core.id;
        let delay = deadline.saturating_duration_since(Instant::now());
        core.timeout_timer = Some(core.engine.defer(delay, move |engine| {
            let _ = engine.with_stream::<H, _>(id, |handler, stream| {
                stream.core.timeout_timer = None;
                let now = Instant::now();
                let expired = if stream.core.read_timeout.is_some_and(|t| now >= stream.core.last_read + t) {
                    Some("read")
                } else if stream.core.idle_timeout.is_some_and(|t| now >= stream.core.last_activity + t) {
                    Some("idle")
                } else {
                    None
                };
                match expired {
                    Some(which) if stream.core.state == State::Open => {
                        handler.on_error(stream, StreamError::Timeout(which));
                        if stream.core.close_flush == Some(true) && !stream.core.out.is_empty() {
                            // close() waits to flush: one more period, then it
                            // is given up (below) if the peer stays silent.
                            stream.core.last_read = now;
                            stream.core.last_activity = now;
                            arm_timeouts::<H>(&mut stream.core);
                        }
                    }
                    Some(which) if stream.core.state == State::Closing => {
                        // close() has waited this long for a silent peer
                        // (Pants waited forever): drop what is queued.
                        handler.on_error(stream, StreamError::Timeout(which));
                        stream.close_now();
                    }
                    Some(_) => {}
                    None => arm_timeouts::<H>(&mut stream.core),
                }
            });
        }));
    }
}

impl<H: Handler> StreamChannel<H> {
    pub(crate) fn new(handler: H, stream: Stream<H>, reader: Box<dyn Reader<H>>) -> Self {
        StreamChannel { handler, stream: Some(stream), reader: Some(reader) }
    }

    fn stream(&mut self) -> &mut Stream<H> {
        self.stream.as_mut().expect("stream present outside dispatch")
    }

    fn core(&mut self) -> &mut Core {
        &mut self.stream().core
    }

    fn reader(&mut self) -> &mut Box<dyn Reader<H>> {
        self.reader.as_mut().expect("reader present outside a switch")
    }

    /// Calls the handler, catching a panic. Returns false if it panicked or
    /// the handler is poisoned by an earlier panic.
    fn call(&mut self, f: impl FnOnce(&mut H, &mut Stream<H>)) -> bool {
        let stream = self.stream.as_mut().expect("stream present outside dispatch");
        if stream.core.poisoned {
            return false;
        }
        let handler = &mut self.handler;
        match catch_unwind(AssertUnwindSafe(|| f(handler, stream))) {
            Ok(()) => true,
            Err(panic) => {
                self.poison(panic_message(&*panic));
                false
            }
        }
    }

    fn poison(&mut self, message: String) {
        let core = self.core();
        log::error!("stream {}: handler panicked, closing the stream: {message}", core.id);
        core.poisoned = true;
        core.close_flush = Some(false);
    }

    /// Runs a typed closure from outside the stream's own events (a timer,
    /// another stream, a resolver), then settles.
    pub(crate) fn invoke<R>(&mut self, f: impl FnOnce(&mut H, &mut Stream<H>) -> R) -> Option<R> {
        let mut out = None;
        self.call(|h, s| out = Some(f(h, s)));
        self.settle();
        out
    }

    /// Everything that follows readiness or a queued wake-up.
    fn drive(&mut self) {
        if self.core().lingering {
            self.linger();
            return;
        }
        if self.core().state == State::Connecting {
            check_connect(self.core());
        }
        if let Some(error) = self.core().connect_error.take() {
            self.call(|h, s| h.on_connect_error(s, error));
        }
        #[cfg(feature = "tls")]
        self.handshake();
        let core = self.core();
        if core.owe_on_connect && core.is_open() && core.can_read_plaintext() && core.close_flush.is_none() {
            self.core().owe_on_connect = false;
            arm_timeouts::<H>(self.core());
            self.call(|h, s| h.on_connect(s));
        }
        self.read();
        self.settle();
    }

    /// Moves a TLS handshake on; reports its end or its failure.
    #[cfg(feature = "tls")]
    fn handshake(&mut self) {
        let core = self.core();
        if !core.handshaking || core.close_flush.is_some() {
            return;
        }
        let (Some(session), Some(socket)) = (core.tls.as_mut(), core.socket.as_mut()) else { return };
        match session.handshake(socket) {
            Ok(false) => {}
            Ok(true) => {
                core.handshaking = false;
                // Application data may have come with the last flight.
                core.readable = true;
                self.call(|h, s| h.on_ssl_handshake(s));
            }
            Err(e) => {
                core.handshaking = false;
                match e.into_inner().map(|inner| inner.downcast::<crate::tls::TlsError>()) {
                    Some(Ok(tls)) => self.call(|h, s| h.on_ssl_handshake_error(s, *tls)),
                    Some(Err(other)) => self.call(|h, s| h.on_error(s, StreamError::Read(io::Error::other(other)))),
                    None => self.call(|h, s| h.on_error(s, StreamError::Read(io::ErrorKind::Other.into()))),
                };
                let core = self.core();
                if core.close_flush.is_none() {
                    // The session is unusable: the stream cannot go on.
                    core.close_flush = Some(false);
                }
            }
        }
    }

    /// Reports an I/O error: TLS errors to the TLS callbacks, others to
    /// `on_error` as made by `wrap`.
    fn report_io_error(&mut self, error: io::Error, wrap: fn(io::Error) -> StreamError) {
        #[cfg(feature = "tls")]
        if crate::tls::tls_error(&error).is_some() {
            if let Some(Ok(tls)) = error.into_inner().map(|inner| inner.downcast::<crate::tls::TlsError>()) {
                self.call(|h, s| h.on_ssl_error(s, *tls));
            }
            let core = self.core();
            if core.close_flush.is_none() {
                core.close_flush = Some(false);
            }
            return;
        }
        if error.get_ref().is_some_and(|inner| inner.is::<super::outbox::FileReadError>()) {
            if let Some(Ok(file)) = error.into_inner().map(|inner| inner.downcast::<super::outbox::FileReadError>()) {
                self.call(|h, s| h.on_error(s, StreamError::File(file.0)));
            }
            return;
        }
        self.call(|h, s| h.on_error(s, wrap(error)));
    }

    /// STARTTLS: once everything queued before `start_tls` is sent, begin
    /// the session, refusing plain text that arrived past the switch.
    #[cfg(feature = "tls")]
    fn start_pending_tls(&mut self) {
        let core = self.core();
        if core.tls_pending.is_none() || core.tls.is_some() || !core.is_open() || !core.out.is_empty() {
            return;
        }
        if core.close_flush.is_some() {
            return;
        }
        let injected = self.reader().buffered();
        if injected > 0 {
            self.reader().clear();
            self.core().tls_pending = None;
            self.call(|h, s| h.on_ssl_error(s, crate::tls::TlsError::PlaintextAfterStartTls(injected)));
            let core = self.core();
            if core.close_flush.is_none() {
                core.close_flush = Some(false);
            }
            return;
        }
        match begin_tls(self.core()) {
            Ok(()) => self.handshake(),
            Err(e) => {
                self.call(|h, s| h.on_ssl_handshake_error(s, e));
                let core = self.core();
                if core.close_flush.is_none() {
                    core.close_flush = Some(false);
                }
            }
        }
    }

    /// Delivers buffered frames, then reads (within the fairness budget)
    /// and delivers, until the socket has nothing more.
    fn read(&mut self) {
        let mut budget = READ_BUDGET;
        loop {
            let core = self.core();
            if !matches!(core.state, State::Open | State::Closing)
                || core.close_flush.is_some()
                || !core.can_read_plaintext()
            {
                return;
            }
            if core.paused {
                // Buffered frames wait until the queue drains to half the
                // write limit; `backpressure` then marks the stream ready.
                return;
            }
            self.dispatch();
            let core = self.core();
            if core.close_flush.is_some() || core.state != State::Open || !core.can_read_plaintext() {
                return;
            }
            if core.out.queued() > core.write_limit as u64 {
                // The handler queued more than the write limit: deliver and
                // read no more (not even the end of stream) for now. `settle`
                // flushes, then pauses; if everything went out, the next
                // iteration goes on.
                core.engine.mark_ready(core.id);
                return;
            }
            if core.eof {
                self.end_of_stream();
                return;
            }
            if core.paused || !core.readable {
                return;
            }
            if budget == 0 {
                core.engine.mark_ready(core.id);
                return;
            }
            let engine = core.engine.clone();
            self.reader().lend_storage(&|| engine.take_recv_buffer());
            let room = self.reader().room();
            if room == 0 {
                // Full of bytes that make no frame: the framer reported it
                // (overflow) and the handler chose to keep the stream.
                return;
            }
            let stream = self.stream.as_mut().expect("stream present");
            let core = &mut *stream.core;
            let Some(socket) = core.socket.as_mut() else { return };
            let reader = self.reader.as_mut().expect("reader present");
            let want = room.min(budget);
            #[cfg(feature = "tls")]
            let result = match core.tls.as_mut() {
                Some(session) => reader.read_from(&mut super::tls_io::TlsIo { session, socket }, want),
                None => reader.read_from(socket, want),
            };
            #[cfg(not(feature = "tls"))]
            let result = reader.read_from(socket, want);
            match result {
                Ok(0) => {
                    stream.core.eof = true;
                    stream.core.readable = false;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    stream.core.note_received();
                    if n < want && stream.core.drained_by_short_read() {
                        // The kernel had less than we asked for: the socket
                        // is empty now, and new bytes will raise a new edge.
                        // Skipping the read that would only say `WouldBlock`
                        // saves a system call per wake-up.
                        stream.core.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.core.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    stream.core.readable = false;
                    self.report_io_error(e, StreamError::Read);
                    return;
                }
            }
        }
    }

    /// Cuts and delivers every whole frame buffered, switching readers as
    /// the handler asks.
    fn dispatch(&mut self) {
        self.core().redispatch = false;
        loop {
            let reader = self.reader.as_mut().expect("reader present");
            match reader.dispatch(&mut self.stream, &mut self.handler) {
                Dispatch::Idle | Dispatch::Stopped => return,
                Dispatch::Switch(switch) => {
                    let old = self.reader.take().expect("reader present");
                    self.reader = Some(switch(old.into_raw()));
                }
                Dispatch::Panicked(message) => {
                    self.poison(message);
                    return;
                }
                Dispatch::Error(error @ FrameError::Overflow { .. }) => {
                    self.call(|h, s| h.on_overflow_error(s, error));
                    return;
                }
                Dispatch::Error(error) => {
                    self.call(|h, s| h.on_error(s, StreamError::Frame(error)));
                    return;
                }
            }
        }
    }

    /// The peer closed its side: report a partial frame, then close after
    /// flushing the replies.
    fn end_of_stream(&mut self) {
        let left = self.reader().buffered();
        if left > 0 {
            self.reader().clear();
            self.call(|h, s| h.on_error(s, StreamError::Frame(FrameError::Truncated { buffered: left })));
        }
        let core = self.core();
        if core.close_flush.is_none() {
            core.close_flush = Some(true);
        }
    }

    /// After any callback: apply a delimiter switch made outside `on_read`,
    /// flush, call `on_write`, pause or resume reading, and close.
    fn settle(&mut self) {
        for _ in 0..64 {
            // What `Engine::write_to` queued for this stream while its own
            // callback ran: queued now, before flushing, on_write and close.
            let engine = self.core().engine.clone();
            for op in engine.take_deferred(self.core().id) {
                op(self, &engine);
            }
            // A switch (or limit change) made outside on_read applies to
            // the bytes buffered now, not only to the next ones.
            if let Some(switch) = self.stream().switch.take() {
                let old = self.reader.take().expect("reader present");
                self.reader = Some(switch(old.into_raw()));
                self.core().redispatch = true;
            }
            if self.core().redispatch && self.core().is_open() {
                self.read();
            }
            let core = self.core();
            if matches!(core.state, State::Open | State::Closing)
                && (!core.out.is_empty() || tls_wants_write(core))
                && core.close_flush != Some(false)
            {
                match flush(core) {
                    Ok(_) => {}
                    Err(e) => {
                        let dropped = core.out.clear();
                        for buffer in dropped {
                            core.engine.give_send_buffer(buffer);
                        }
                        self.report_io_error(e, StreamError::Write);
                        if self.core().close_flush.is_none() {
                            self.core().close_flush = Some(false);
                        }
                    }
                }
            }
            let core = self.core();
            if core.out.is_empty()
                && !tls_wants_write(core)
                && core.owe_on_write
                && core.is_open()
                && core.close_flush.is_none()
            {
                core.owe_on_write = false;
                self.call(|h, s| h.on_write(s));
                continue;
            }
            break;
        }
        #[cfg(feature = "tls")]
        self.start_pending_tls();
        self.backpressure();
        let core = self.core();
        let flushed =
            core.socket.is_none() || (core.close_flush == Some(true) && core.out.is_empty() && tls_close_sent(core));
        match core.close_flush {
            Some(false) => self.finish_close(false),
            Some(true) if flushed => self.finish_close(true),
            Some(true) => core.state = State::Closing,
            None => {}
        }
        let core = self.core();
        if core.is_open() && !core.readable {
            // Idle: hand the receive buffer back to the engine's pool.
            if let Some(buffer) = self.reader().reclaim_storage() {
                self.core().engine.give_recv_buffer(buffer);
            }
        }
    }

    fn backpressure(&mut self) {
        let core = self.core();
        let queued = core.out.queued();
        if !core.paused && queued > core.write_limit as u64 && core.is_open() {
            core.paused = true;
            self.call(|h, s| h.on_backpressure(s));
        } else if core.paused && queued <= (core.write_limit / 2) as u64 {
            core.paused = false;
            // Frames left buffered (or the peer's end of stream) wait for
            // this, even when the socket has nothing new.
            core.engine.mark_ready(core.id);
        }
    }

    /// Closes: `on_close`, then the socket (half-closed and lingering for the
    /// peer's end of stream after a flushing close, so that a reset cannot
    /// destroy what we sent).
    fn finish_close(&mut self, graceful: bool) {
        let core = self.core();
        if core.state == State::Closed {
            return;
        }
        core.state = State::Closed;
        core.close_flush.get_or_insert(graceful);
        for timer in core.timers.drain(..).chain(core.timeout_timer.take()) {
            core.engine.cancel(timer);
        }
        if let Some(server) = core.server.take() {
            server.borrow_mut().remove(&core.id);
        }
        for buffer in core.out.clear() {
            core.engine.give_send_buffer(buffer);
        }
        self.call(|h, s| h.on_close(s));
        if let Some(buffer) = self.reader().reclaim_storage() {
            self.core().engine.give_recv_buffer(buffer);
        }
        self.reader().clear();
        let core = self.core();
        #[cfg(feature = "tls")]
        if graceful && !core.handshaking && !core.close_notify_sent {
            if let (Some(session), Some(socket)) = (core.tls.as_mut(), core.socket.as_mut()) {
                session.close_notify();
                let _ = session.write_records(socket);
            }
        }
        match core.socket.as_ref() {
            Some(socket) if graceful && !core.eof => {
                let _ = socket.shutdown(Shutdown::Write);
                core.lingering = true;
                let id = core.id;
                let timer = core.engine.defer(LINGER, move |engine| {
                    let _ = engine.on_channel(id, |channel, _| {
                        if let Some(this) = channel.as_any().downcast_mut::<StreamChannel<H>>() {
                            this.end_linger();
                        }
                    });
                });
                // Cancelled when the linger ends early (the usual case), so
                // that closed streams do not leave timers behind for LINGER.
                core.timers.push(timer);
                self.linger();
            }
            _ => drop_socket(core),
        }
    }

    /// Reads and discards until the peer's end of stream, then drops the
    /// socket.
    fn linger(&mut self) {
        let core = self.core();
        let mut scratch = [0u8; 4096];
        while let Some(socket) = core.socket.as_mut() {
            match socket.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.end_linger();
    }

    fn end_linger(&mut self) {
        let core = self.core();
        core.lingering = false;
        for timer in core.timers.drain(..) {
            core.engine.cancel(timer);
        }
        drop_socket(core);
    }
}

impl<H: Handler> Channel for StreamChannel<H> {
    fn event(&mut self, _engine: &Engine, readiness: Readiness) {
        let core = self.core();
        core.readable |= readiness.readable;
        core.read_closed |= readiness.read_closed;
        core.writable |= readiness.writable;
        self.drive();
    }

    fn service(&mut self, _engine: &Engine) {
        self.drive();
    }

    fn is_done(&self) -> bool {
        let core = &self.stream.as_ref().expect("stream present").core;
        core.state == State::Closed && !core.lingering
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn write_bytes(&mut self, _engine: &Engine, bytes: &[u8]) -> Result<(), StreamError> {
        // Open with a flushing close pending happens only while the stream's
        // own callback batch runs: these bytes were written (`write_to` on
        // itself) before that batch ended, so they go out before the close.
        let core = self.core();
        let pending_close =
            if core.state == State::Open && core.close_flush == Some(true) { core.close_flush.take() } else { None };
        let result = self.stream().write(bytes);
        if pending_close.is_some() {
            self.core().close_flush = pending_close;
        }
        if result.is_ok() {
            // Flushed with everything else at the end of the iteration.
            let core = self.core();
            core.engine.mark_ready(core.id);
        }
        result
    }

    fn local_address(&self) -> Option<Address> {
        self.stream.as_ref()?.local_address()
    }

    fn connections(&self) -> Option<Vec<StreamId>> {
        None
    }

    fn close(&mut self, _engine: &Engine, flush: bool) {
        let stream = self.stream();
        if flush {
            stream.close();
        } else {
            stream.close_now();
        }
        self.settle();
    }
}
