//! Closing: `on_close`, then the socket, half-closed and lingering for the
//! peer's end of stream after a flushing close.

use std::io::{self, Read as _};
use std::net::Shutdown;

use super::channel::StreamChannel;
use super::connect::drop_socket;
use super::core::{Close, State, LINGER};
#[cfg(feature = "tls")]
use super::tls_state::Tls;
use super::trace;
use super::Handler;

impl<H: Handler> StreamChannel<H> {
    /// Closes: `on_close`, then the socket (half-closed and lingering for the
    /// peer's end of stream after a flushing close, so that a reset cannot
    /// destroy what we sent).
    pub(super) fn finish_close(&mut self, graceful: bool) {
        let core = self.core();
        if core.is_closed() {
            return;
        }
        core.state = State::Closed { lingering: false };
        core.close.get_or_insert(if graceful { Close::Flush } else { Close::Now });
        core.engine.note_closed(graceful);
        // With the counters of its whole life (and what is dropped unsent).
        trace::closed(core, graceful);
        for timer in core.timers.drain(..).chain(core.timeout_timer.take()) {
            core.engine.cancel(timer);
        }
        if let Some(server) = core.server.take() {
            server.remove(&core.engine, core.id);
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
        if graceful {
            if let (Tls::Running { session, close_notify_sent: false }, Some(socket)) =
                (&mut core.tls, core.socket.as_mut())
            {
                session.close_notify();
                let _ = session.write_records(socket);
            }
        }
        match core.socket.as_ref() {
            Some(socket) if graceful && !core.eof => {
                let _ = socket.shutdown(Shutdown::Write);
                core.state = State::Closed { lingering: true };
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
    pub(super) fn linger(&mut self) {
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

    pub(super) fn end_linger(&mut self) {
        let core = self.core();
        core.state = State::Closed { lingering: false };
        for timer in core.timers.drain(..) {
            core.engine.cancel(timer);
        }
        drop_socket(core);
    }
}
