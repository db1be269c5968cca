//! The TLS side of a stream's life: where TLS is ([`Tls`]), beginning a
//! session (before connecting or by STARTTLS), moving the handshake on, and
//! close_notify.

#[cfg(feature = "tls")]
use std::io;

#[cfg(feature = "tls")]
use super::channel::StreamChannel;
#[cfg(feature = "tls")]
use super::core::Close;
use super::core::Core;
#[cfg(feature = "tls")]
use super::Handler;
#[cfg(feature = "tls")]
use crate::error::StreamError;
#[cfg(feature = "tls")]
use crate::tls::{TlsOptions, TlsSession};

/// Where a stream's TLS is. One value, so that a session cannot be both
/// asked for and running, nor close_notify be sent before there is one.
#[cfg(feature = "tls")]
pub(crate) enum Tls {
    /// Plain text.
    Off,
    /// Asked for, not begun: it begins once connected and, for STARTTLS,
    /// once everything queued before it has been sent in plain text.
    Pending(TlsOptions),
    /// The handshake is in progress.
    Handshaking(Box<TlsSession>),
    /// The handshake is over (or failed, and the stream is closing);
    /// `close_notify_sent`: a graceful close has queued close_notify.
    Running { session: Box<TlsSession>, close_notify_sent: bool },
}

#[cfg(feature = "tls")]
impl Tls {
    /// No TLS asked for, nor running.
    pub(crate) fn is_off(&self) -> bool {
        matches!(self, Tls::Off)
    }

    /// Asked for and not begun.
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self, Tls::Pending(_))
    }

    /// The handshake is in progress.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self, Tls::Handshaking(_))
    }

    /// A session exists (handshaking or running): bytes on the socket are
    /// TLS records.
    pub(crate) fn has_session(&self) -> bool {
        matches!(self, Tls::Handshaking(_) | Tls::Running { .. })
    }

    /// Plain text read now must not be delivered: what follows is (or will
    /// be) the handshake.
    pub(crate) fn holds_plaintext_back(&self) -> bool {
        matches!(self, Tls::Pending(_) | Tls::Handshaking(_))
    }

    /// The session, handshaking or running.
    pub(crate) fn session(&self) -> Option<&TlsSession> {
        match self {
            Tls::Handshaking(session) | Tls::Running { session, .. } => Some(session),
            Tls::Off | Tls::Pending(_) => None,
        }
    }

    /// The session, handshaking or running.
    pub(crate) fn session_mut(&mut self) -> Option<&mut TlsSession> {
        match self {
            Tls::Handshaking(session) | Tls::Running { session, .. } => Some(session),
            Tls::Off | Tls::Pending(_) => None,
        }
    }

    /// The handshake ended (completed or failed): the session runs.
    fn handshake_over(&mut self) {
        if let Tls::Handshaking(_) = self {
            if let Tls::Handshaking(session) = std::mem::replace(self, Tls::Off) {
                *self = Tls::Running { session, close_notify_sent: false };
            }
        }
    }
}

/// Begins a pending TLS session (client or server side). For STARTTLS the
/// caller has checked that no plain text is buffered past the switch.
#[cfg(feature = "tls")]
pub(super) fn begin_tls(core: &mut Core) -> Result<(), crate::tls::TlsError> {
    let options = match std::mem::replace(&mut core.tls, Tls::Off) {
        Tls::Pending(options) => options,
        other => {
            core.tls = other;
            return Ok(());
        }
    };
    let session = match &options {
        TlsOptions::Client(client) => TlsSession::client(client, core.tls_host.as_deref())?,
        TlsOptions::Server(server) => TlsSession::server(server)?,
    };
    core.tls = Tls::Handshaking(Box::new(session));
    super::trace::tls_started(core);
    core.engine.mark_ready(core.id);
    Ok(())
}

/// For a graceful close over TLS: queues close_notify once, then sends what
/// the session holds. True when everything, close_notify included, is out
/// (or the connection is broken, or there is no TLS); false while the socket
/// is full (the stream waits for it to be writable).
pub(super) fn tls_close_sent(core: &mut Core) -> bool {
    #[cfg(feature = "tls")]
    if let (Tls::Running { session, close_notify_sent }, Some(socket)) = (&mut core.tls, core.socket.as_mut()) {
        if !*close_notify_sent {
            session.close_notify();
            *close_notify_sent = true;
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
        core.tls.session().is_some_and(|s| s.wants_write())
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
        if core.close.is_some() {
            return;
        }
        let (Tls::Handshaking(session), Some(socket)) = (&mut core.tls, core.socket.as_mut()) else { return };
        let result = session.handshake(socket);
        match result {
            Ok(false) => {}
            Ok(true) => {
                super::trace::tls_done(session);
                core.tls.handshake_over();
                // Application data may have come with the last flight.
                core.readable = true;
                self.call(|h, s| h.on_ssl_handshake(s));
            }
            Err(e) => {
                core.tls.handshake_over();
                super::trace::error("tls_handshake", &e);
                match e.into_inner().map(|inner| inner.downcast::<crate::tls::TlsError>()) {
                    Some(Ok(tls)) => self.call(|h, s| h.on_ssl_handshake_error(s, *tls)),
                    Some(Err(other)) => self.call(|h, s| h.on_error(s, StreamError::Read(io::Error::other(other)))),
                    None => self.call(|h, s| h.on_error(s, StreamError::Read(io::ErrorKind::Other.into()))),
                };
                // The session is unusable: the stream cannot go on.
                self.core().ask_close(Close::Now);
            }
        }
    }

    /// STARTTLS: once everything queued before `start_tls` is sent, begin
    /// the session, refusing plain text that arrived past the switch.
    pub(super) fn start_pending_tls(&mut self) {
        let core = self.core();
        if !core.tls.is_pending() || !core.is_open() || !core.out.is_empty() {
            return;
        }
        if core.close.is_some() {
            return;
        }
        let injected = self.reader().buffered();
        if injected > 0 {
            self.reader().clear();
            self.core().tls = Tls::Off;
            let error = crate::tls::TlsError::PlaintextAfterStartTls(injected);
            super::trace::error("tls", &error);
            self.call(|h, s| h.on_ssl_error(s, error));
            self.core().ask_close(Close::Now);
            return;
        }
        match begin_tls(self.core()) {
            Ok(()) => self.handshake(),
            Err(e) => {
                super::trace::error("tls_handshake", &e);
                self.call(|h, s| h.on_ssl_handshake_error(s, e));
                self.core().ask_close(Close::Now);
            }
        }
    }
}
