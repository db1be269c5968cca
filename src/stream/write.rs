//! The write side: sending straight from the caller's buffer, flushing the
//! queue, and pausing or resuming reading as the queue grows and drains.

use std::io;

use super::channel::StreamChannel;
use super::core::Core;
use super::outbox::Flushed;
use super::Handler;

/// Writes `data` straight to a plain socket (nothing may be queued); returns
/// how much it took. Errors are left for the flush of the queued rest to
/// meet and report; TLS streams and a socket known to be full take nothing.
pub(super) fn write_direct(core: &mut Core, data: &[u8]) -> usize {
    debug_assert!(core.out.is_empty());
    #[cfg(feature = "tls")]
    if !core.tls.is_off() {
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
                core.counters.bytes_written += n as u64;
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
pub(super) fn flush(core: &mut Core) -> io::Result<Flushed> {
    let Some(socket) = core.socket.as_mut() else { return Ok(Flushed::Blocked) };
    #[cfg(feature = "tls")]
    let handshaking = core.tls.is_handshaking();
    #[cfg(feature = "tls")]
    if let Some(session) = core.tls.session_mut() {
        // Records TLS itself wants to send (handshake, close_notify) first.
        let result = match session.write_records(socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Flushed::Blocked),
            Err(e) => Err(e),
            Ok(()) if core.out.is_empty() || handshaking => Ok(Flushed::Drained),
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

impl<H: Handler> StreamChannel<H> {
    pub(super) fn backpressure(&mut self) {
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
}
