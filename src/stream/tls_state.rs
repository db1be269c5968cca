//! The TLS side of a stream's life: beginning a session (before connecting
//! or by STARTTLS), moving the handshake on, and close_notify.

#[cfg(feature = "tls")]
use std::io;

#[cfg(feature = "tls")]
use super::channel::StreamChannel;
use super::core::Core;
#[cfg(feature = "tls")]
use super::Handler;
#[cfg(feature = "tls")]
use crate::error::StreamError;

/// Begins a pending TLS session (client or server side). For STARTTLS the
/// caller has checked that no plain text is buffered past the switch.
#[cfg(feature = "tls")]
pub(super) fn begin_tls(core: &mut Core) -> Result<(), crate::tls::TlsError> {
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

/// For a graceful close over TLS: queues close_notify once, then sends what
/// the session holds. True when everything, close_notify included, is out
/// (or the connection is broken, or there is no TLS); false while the socket
/// is full (the stream waits for it to be writable).
pub(super) fn tls_close_sent(core: &mut Core) -> bool {
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
pub(super) fn tls_wants_write(core: &Core) -> bool {
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

#[cfg(feature = "tls")]
impl<H: Handler> StreamChannel<H> {
    /// Moves a TLS handshake on; reports its end or its failure.
    pub(super) fn handshake(&mut self) {
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

    /// STARTTLS: once everything queued before `start_tls` is sent, begin
    /// the session, refusing plain text that arrived past the switch.
    pub(super) fn start_pending_tls(&mut self) {
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
}
