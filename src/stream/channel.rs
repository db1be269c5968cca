//! A stream as the engine runs it: the handler, the typed reader and the
//! stream, driven through each event or wake-up and settled after every
//! callback. The parts of its life live beside this file: connecting
//! (`connect`), reading and delivering frames (`read`), writing and flushing
//! (`write`), closing and lingering (`close`), timeouts (`timeouts`) and TLS
//! (`tls_state`).

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::connect::check_connect;
use super::core::{Close, Core, State};
use super::reader::Reader;
use super::timeouts::arm_timeouts;
use super::tls_state::{tls_close_sent, tls_wants_write};
use super::trace;
use super::write::flush;
use super::{Handler, Stream, Switch};
use crate::engine::{panic_message, Channel, Engine, Readiness};
use crate::error::StreamError;
use crate::{Address, StreamId};

/// How many `on_write`/`on_produce` calls one settling makes before the
/// stream yields to the others (it is marked ready to go on).
const SETTLE_ROUNDS: usize = 64;

/// A stream's handler, typed reader and state, as the engine's table holds
/// them.
pub(crate) struct StreamChannel<H: Handler> {
    pub(super) handler: H,
    /// Always `Some`, except while lent to a dispatch.
    pub(super) stream: Option<Stream<H>>,
    /// The typed reader; a switch replaces it (see `switch_reader`).
    pub(super) reader: Box<dyn Reader<H>>,
}

impl<H: Handler> StreamChannel<H> {
    pub(crate) fn new(handler: H, stream: Stream<H>, reader: Box<dyn Reader<H>>) -> Self {
        StreamChannel { handler, stream: Some(stream), reader }
    }

    pub(super) fn stream(&mut self) -> &mut Stream<H> {
        self.stream.as_mut().expect("stream present outside dispatch")
    }

    pub(super) fn core(&mut self) -> &mut Core {
        &mut self.stream().core
    }

    pub(super) fn reader(&mut self) -> &mut Box<dyn Reader<H>> {
        &mut self.reader
    }

    /// Replaces the reader by `next`, which takes over the buffered bytes;
    /// the replaced one is kept, empty, for a later switch back.
    pub(super) fn switch_reader(&mut self, mut next: Switch<H>) {
        next.adopt(self.reader.take_buffer());
        let replaced = std::mem::replace(&mut self.reader, next);
        self.stream().spares.put(replaced);
    }

    /// Calls the handler, catching a panic. Returns false if it panicked or
    /// the handler is poisoned by an earlier panic.
    pub(super) fn call(&mut self, f: impl FnOnce(&mut H, &mut Stream<H>)) -> bool {
        self.try_call(f).is_ok()
    }

    /// Calls the handler, catching a panic (which poisons it and closes the
    /// stream): [`StreamError::Panicked`] if it panicked now,
    /// [`StreamError::Closed`] if an earlier panic poisoned it.
    fn try_call<R>(&mut self, f: impl FnOnce(&mut H, &mut Stream<H>) -> R) -> Result<R, StreamError> {
        let stream = self.stream.as_mut().expect("stream present outside dispatch");
        if stream.core.poisoned {
            return Err(StreamError::Closed("with_stream"));
        }
        let handler = &mut self.handler;
        match catch_unwind(AssertUnwindSafe(|| f(handler, stream))) {
            Ok(out) => Ok(out),
            Err(panic) => {
                let message = panic_message(&*panic);
                self.poison(message.clone());
                Err(StreamError::Panicked(message))
            }
        }
    }

    pub(super) fn poison(&mut self, message: String) {
        let core = self.core();
        log::error!("stream {}: handler panicked, closing the stream: {message}", core.id);
        trace::panicked(&message);
        core.poisoned = true;
        core.close = Some(Close::Now);
    }

    /// Runs a typed closure from outside the stream's own events (a timer,
    /// another stream, a resolver), then settles. An error if the handler
    /// panicked before (the stream is closing), or if `f` panics (the stream
    /// is then closed, as after a panicking callback).
    pub(crate) fn invoke<R>(&mut self, f: impl FnOnce(&mut H, &mut Stream<H>) -> R) -> Result<R, StreamError> {
        let result = self.try_call(f);
        self.settle();
        result
    }

    /// Everything that follows readiness or a queued wake-up.
    pub(super) fn drive(&mut self) {
        if self.core().is_lingering() {
            self.linger();
            return;
        }
        if let State::Connecting { .. } = self.core().state {
            check_connect(self.core());
        }
        if let State::Idle { failed } = &mut self.core().state {
            if let Some(error) = failed.take() {
                trace::connect_failed(self.core(), &error);
                self.call(|h, s| h.on_connect_error(s, error));
            }
        }
        #[cfg(feature = "tls")]
        self.handshake();
        let core = self.core();
        if core.owe_on_connect && core.is_open() && core.can_read_plaintext() && core.close.is_none() {
            self.core().owe_on_connect = false;
            arm_timeouts::<H>(self.core());
            self.call(|h, s| h.on_connect(s));
        }
        self.read();
        self.settle();
    }

    /// Reports an I/O error: TLS errors to the TLS callbacks, others to
    /// `on_error` as made by `wrap`.
    pub(super) fn report_io_error(&mut self, error: io::Error, wrap: fn(io::Error) -> StreamError) {
        #[cfg(feature = "tls")]
        if crate::tls::tls_error(&error).is_some() {
            if let Some(Ok(tls)) = error.into_inner().map(|inner| inner.downcast::<crate::tls::TlsError>()) {
                trace::error("tls", &tls);
                self.call(|h, s| h.on_ssl_error(s, *tls));
            }
            self.core().ask_close(Close::Now);
            return;
        }
        if error.get_ref().is_some_and(|inner| inner.is::<super::outbox::FileReadError>()) {
            if let Some(Ok(file)) = error.into_inner().map(|inner| inner.downcast::<super::outbox::FileReadError>()) {
                let error = StreamError::File(file.0);
                trace::error("file", &error);
                self.call(|h, s| h.on_error(s, error));
            }
            return;
        }
        let error = wrap(error);
        trace::error(if matches!(error, StreamError::Write(_)) { "write" } else { "read" }, &error);
        self.call(|h, s| h.on_error(s, error));
    }

    /// After any callback: apply a delimiter switch made outside `on_read`,
    /// flush, call `on_write`, pause or resume reading, and close.
    pub(super) fn settle(&mut self) {
        // Each round may call `on_write` or `on_produce` once. A stream that
        // still has work after its rounds goes to the back of the ready
        // queue: the others get their turn, and its producer is called
        // again in the next iteration (it is never left stalled).
        let mut more = true;
        for _ in 0..SETTLE_ROUNDS {
            // What `Engine::write_to` queued for this stream while its own
            // callback ran: queued now, before flushing, on_write and close.
            let engine = self.core().engine.clone();
            for op in engine.take_deferred(self.core().id) {
                op(self, &engine);
            }
            // A switch (or limit change) made outside on_read applies to
            // the bytes buffered now, not only to the next ones: `dispatch`
            // takes the pending switch before it cuts a frame.
            if self.stream().switch.is_some() {
                self.core().redispatch = true;
            }
            if self.core().redispatch && self.core().is_open() {
                self.read();
            }
            let core = self.core();
            if core.is_connected() && (!core.out.is_empty() || tls_wants_write(core)) && core.close != Some(Close::Now)
            {
                match flush(core) {
                    Ok(_) => {}
                    Err(e) => {
                        let dropped = core.out.clear();
                        for buffer in dropped {
                            core.engine.give_send_buffer(buffer);
                        }
                        self.report_io_error(e, StreamError::Write);
                        self.core().ask_close(Close::Now);
                    }
                }
            }
            let core = self.core();
            if core.out.is_empty()
                && !tls_wants_write(core)
                && core.owe_on_write
                && core.is_open()
                && core.close.is_none()
            {
                core.owe_on_write = false;
                self.call(|h, s| h.on_write(s));
                continue;
            }
            if core.wants_production() {
                // Below half the write limit: ask the producer for more.
                // Every write sets `owe_on_write`, which tells whether the
                // call wrote anything; one that wrote nothing ends producing.
                let owed = std::mem::replace(&mut core.owe_on_write, false);
                self.call(|h, s| h.on_produce(s));
                let core = self.core();
                if !core.owe_on_write {
                    core.producing = false;
                }
                core.owe_on_write |= owed;
                continue;
            }
            more = false;
            break;
        }
        if more {
            let core = self.core();
            core.engine.mark_ready(core.id);
        }
        #[cfg(feature = "tls")]
        self.start_pending_tls();
        self.backpressure();
        let core = self.core();
        let flushed =
            core.socket.is_none() || (core.close == Some(Close::Flush) && core.out.is_empty() && tls_close_sent(core));
        match core.close {
            Some(Close::Now) => self.finish_close(false),
            Some(Close::Flush) if flushed => self.finish_close(true),
            Some(Close::Flush) => core.state = State::Closing,
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
}

impl<H: Handler> Channel for StreamChannel<H> {
    fn event(&mut self, _engine: &Engine, readiness: Readiness) {
        let core = self.core();
        // After the end of stream there is nothing to read (and the socket
        // stays readable for good): a stream kept open past it (`on_end`)
        // must still count as idle, so that its receive buffer goes back to
        // the pool.
        core.readable |= readiness.readable && !core.eof;
        core.read_closed |= readiness.read_closed;
        core.writable |= readiness.writable;
        self.drive();
    }

    fn service(&mut self, _engine: &Engine) {
        self.drive();
    }

    fn counters(&self) -> Option<super::StreamCounters> {
        Some(self.stream.as_ref()?.core.counters())
    }

    #[cfg(feature = "tracing")]
    fn enter_span(&mut self) -> bool {
        self.stream.as_mut().is_some_and(|stream| stream.core.trace.enter())
    }

    #[cfg(feature = "tracing")]
    fn exit_span(&mut self, entered: bool) {
        if let Some(stream) = self.stream.as_mut() {
            stream.core.trace.exit(entered);
        }
    }

    fn is_done(&self) -> bool {
        let core = &self.stream.as_ref().expect("stream present").core;
        matches!(core.state, State::Closed { lingering: false })
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn write_bytes(&mut self, _engine: &Engine, bytes: &[u8]) -> Result<(), StreamError> {
        // Open with a flushing close pending happens only while the stream's
        // own callback batch runs: these bytes were written (`write_to` on
        // itself) before that batch ended, so they go out before the close.
        let core = self.core();
        let pending_close = if core.is_open() && core.close == Some(Close::Flush) { core.close.take() } else { None };
        let result = self.stream().write(bytes);
        if pending_close.is_some() {
            self.core().close = pending_close;
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

    fn is_closing(&self) -> bool {
        self.stream.as_ref().map_or(true, |stream| stream.is_closed())
    }

    fn cut_off(&mut self, _engine: &Engine) -> Option<u64> {
        let core = self.core();
        if core.is_closed() {
            if core.is_lingering() {
                self.end_linger();
            }
            return None;
        }
        let unsent = core.out.queued();
        self.stream().close_now();
        self.settle();
        Some(unsent)
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

impl Engine {
    /// Runs `f` with the handler and stream `id`, then flushes and closes as
    /// the stream's own callbacks would. This is how code outside a stream's
    /// callbacks (a timer, another stream's handler) reaches it with its
    /// types. Errors: no such open stream, a stream with another handler
    /// type, or the stream's own callback is running (use the `&mut Stream`
    /// it was given).
    ///
    /// ```
    /// # use pants::{Engine, Handler, Stream, StreamId};
    /// struct Counter { seen: usize }
    /// impl Handler for Counter {}
    ///
    /// fn seen(engine: &Engine, id: StreamId) -> Result<usize, pants::StreamError> {
    ///     engine.with_stream::<Counter, _>(id, |counter, _stream| counter.seen)
    /// }
    /// ```
    pub fn with_stream<H: Handler, R>(
        &self,
        id: StreamId,
        f: impl FnOnce(&mut H, &mut Stream<H>) -> R,
    ) -> Result<R, StreamError> {
        self.with_channel(id, |channel, _| match channel.as_any().downcast_mut::<StreamChannel<H>>() {
            Some(stream) => stream.invoke(f),
            None => Err(StreamError::WrongHandler(id)),
        })?
    }
}
