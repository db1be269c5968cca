//! The read side: reading within the fairness budget, cutting and
//! delivering frames, and the peer's end of stream.

use std::io;

use super::channel::StreamChannel;
use super::reader::Dispatch;
use super::trace;
use super::Handler;
use crate::error::{FrameError, StreamError};

/// How many bytes one stream may read per loop iteration before the others
/// get their turn (fairness); the rest is read in the next iteration.
const READ_BUDGET: usize = 256 * 1024;

impl<H: Handler> StreamChannel<H> {
    /// Delivers buffered frames, then reads (within the fairness budget)
    /// and delivers, until the socket has nothing more.
    pub(super) fn read(&mut self) {
        let mut budget = READ_BUDGET;
        loop {
            let core = self.core();
            if !core.is_connected() || core.close.is_some() || !core.can_read_plaintext() {
                return;
            }
            if core.paused || core.held {
                // Buffered frames wait until the queue drains to half the
                // write limit (`backpressure` then marks the stream ready),
                // or until the handler resumes reading (which does too).
                return;
            }
            self.dispatch();
            let core = self.core();
            if core.close.is_some() || !core.is_open() || !core.can_read_plaintext() {
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
            if core.held {
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
            let reader = &mut self.reader;
            let want = room.min(budget);
            #[cfg(feature = "tls")]
            let result = match core.tls.session_mut() {
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
                    stream.core.counters.bytes_read += n as u64;
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
                    // Every whole frame was delivered before this read: what
                    // is left is a partial frame, which the handler is told
                    // of before the error that ends the stream.
                    self.report_partial_frame();
                    self.report_io_error(e, StreamError::Read);
                    return;
                }
            }
        }
    }

    /// Cuts and delivers every whole frame buffered, switching readers as
    /// the handler asks.
    pub(super) fn dispatch(&mut self) {
        self.core().redispatch = false;
        loop {
            // A switch made outside `on_read` (in `on_connect`, say, or an
            // error callback) applies before the next frame is cut: the
            // bytes already buffered are cut with the new delimiter.
            if let Some(switch) = self.stream().switch.take() {
                self.switch_reader(switch);
            }
            match self.reader.dispatch(&mut self.stream, &mut self.handler) {
                Dispatch::Idle | Dispatch::Stopped => return,
                Dispatch::Switch(switch) => self.switch_reader(switch),
                Dispatch::Panicked(message) => {
                    self.poison(message);
                    return;
                }
                Dispatch::Error(error @ FrameError::Overflow { .. }) => {
                    trace::error("overflow", &error);
                    self.call(|h, s| h.on_overflow_error(s, error));
                    return;
                }
                Dispatch::Error(error) => {
                    trace::error("frame", &error);
                    self.call(|h, s| h.on_error(s, StreamError::Frame(error)));
                    return;
                }
            }
        }
    }

    /// The peer closed its side: report a partial frame, then tell the
    /// handler (once; by default it closes after flushing the replies).
    pub(super) fn end_of_stream(&mut self) {
        self.report_partial_frame();
        let core = self.core();
        if core.end_reported || core.close.is_some() {
            return;
        }
        core.end_reported = true;
        self.call(|h, s| h.on_end(s));
    }

    /// The peer will send no more: bytes left buffered are a partial frame,
    /// reported to `on_error` as [`FrameError::Truncated`] with their length
    /// (never dropped silently), then cleared.
    fn report_partial_frame(&mut self) {
        let left = self.reader().buffered();
        if left > 0 {
            self.reader().clear();
            let error = StreamError::Frame(FrameError::Truncated { buffered: left });
            trace::error("truncated", &error);
            self.call(|h, s| h.on_error(s, error));
        }
    }
}
