//! Spans and events through `tracing`, with the `tracing` feature; without
//! it, everything here compiles to nothing ([`Trace`] is empty, every
//! function a no-op).
//!
//! Each stream gets one span, made once when the stream is built, and
//! entered around everything the engine does with the stream
//! (`Engine::with_channel`: its events, its wake-ups,
//! [`Engine::with_stream`](crate::Engine::with_stream), the operations of
//! other streams on it), so that the events below, and any the handler
//! emits in its callbacks, are inside it. Entering costs two
//! calls into the subscriber per dispatch when a subscriber has the span
//! enabled, and one branch when none has.

use super::core::Core;
use crate::StreamId;

/// The target of every stream span and event.
#[cfg(feature = "tracing")]
pub(crate) const TARGET: &str = "pants::stream";

/// How a stream came to be: the `side` field of its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// It connects ([`StreamBuilder::connect`](crate::StreamBuilder::connect)).
    Client,
    /// A server accepted it.
    Accepted,
    /// It runs over a socket connected elsewhere
    /// ([`attach_tcp`](crate::StreamBuilder::attach_tcp) and friends).
    Attached,
}

impl Side {
    #[cfg(feature = "tracing")]
    fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Accepted => "accepted",
            Side::Attached => "attached",
        }
    }
}

/// A stream's span. Empty without the `tracing` feature.
pub(crate) struct Trace {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Trace {
    /// No span (a stream being built).
    pub(crate) fn none() -> Self {
        Trace {
            #[cfg(feature = "tracing")]
            span: tracing::Span::none(),
        }
    }

    /// The span of stream `id` (its peer is recorded once known).
    pub(crate) fn stream(id: StreamId, side: Side) -> Self {
        #[cfg(feature = "tracing")]
        {
            let span = tracing::info_span!(
                target: TARGET,
                "stream",
                id = %id,
                side = side.as_str(),
                peer = tracing::field::Empty,
            );
            Trace { span }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (id, side);
            Trace::none()
        }
    }

    /// Enters the span, if a subscriber has it enabled; returns whether
    /// it did, for [`exit`](Trace::exit). Through the span's own
    /// subscriber, as `Span::enter` does, but without a guard borrowing the
    /// span (and so the stream) for the whole dispatch. A channel is never
    /// entered twice at once: the engine lends it to one dispatch at a time.
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        self.span.with_subscriber(|(id, dispatch)| dispatch.enter(id)).is_some()
    }

    /// Exits the span if [`enter`](Trace::enter) entered it.
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn exit(&self, entered: bool) {
        if entered {
            self.span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
        }
    }
}

/// An event in the stream's span (the span is entered around every
/// dispatch, so the event's parent is the current span).
macro_rules! event {
    ($level:ident, $($rest:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::$level!(target: TARGET, $($rest)*);
    };
}

/// Records the peer's address on the span, once connected.
#[cfg(feature = "tracing")]
fn record_peer(core: &Core) {
    if core.trace.span.is_disabled() {
        return;
    }
    match core.socket.as_ref().and_then(|socket| socket.peer_address()) {
        Some(peer) => core.trace.span.record("peer", tracing::field::display(peer)),
        None => core.trace.span.record("peer", tracing::field::display(&core.target)),
    };
}

/// A client starts connecting to `core.target` (resolving it first if it
/// is a host name).
pub(crate) fn connecting(core: &Core) {
    #[cfg(feature = "tracing")]
    if !core.trace.span.is_disabled() {
        core.trace.span.record("peer", tracing::field::display(&core.target));
    }
    event!(debug, address = %core.target, "connecting");
    let _ = core;
}

/// One address of several refused the connection; the next is tried.
pub(crate) fn connect_retry(core: &Core, error: &std::io::Error) {
    event!(debug, address = %core.target, error = %error, "connect attempt failed, trying the next address");
    let _ = (core, error);
}

/// The connection is up (connected, accepted or attached).
pub(crate) fn connected(core: &Core) {
    #[cfg(feature = "tracing")]
    record_peer(core);
    event!(debug, "connected");
    let _ = core;
}

/// Connecting failed (after every address was tried), or resolving did.
pub(crate) fn connect_failed(core: &Core, error: &crate::StreamError) {
    event!(warn, address = %core.target, error = %error, "connect failed");
    let _ = (core, error);
}

/// An error reported to the handler: `kind` is one of `read`, `write`,
/// `file`, `frame`, `overflow`, `truncated`, `timeout`, `tls`, `tls_handshake`.
pub(crate) fn error(kind: &'static str, error: &dyn std::fmt::Display) {
    event!(warn, kind, error = %error, "error");
    let _ = (kind, error);
}

/// The handler panicked; the stream closes without calling it again.
pub(crate) fn panicked(message: &str) {
    event!(error, panic = message, "handler panicked");
    let _ = message;
}

/// The stream closes: `graceful` after flushing, else at once (`unsent`
/// bytes dropped). With the counters of its whole life.
pub(crate) fn closed(core: &Core, graceful: bool) {
    #[cfg(feature = "tracing")]
    {
        let counters = core.counters();
        tracing::debug!(
            target: TARGET,
            graceful,
            bytes_read = counters.bytes_read,
            bytes_written = counters.bytes_written,
            frames_read = counters.frames_read,
            unsent = counters.queued,
            "closed"
        );
    }
    let _ = (core, graceful);
}

/// A TLS handshake begins.
#[cfg(feature = "tls")]
pub(crate) fn tls_started(core: &Core) {
    event!(debug, "TLS handshake started");
    let _ = core;
}

/// The TLS handshake completed: what it negotiated.
#[cfg(feature = "tls")]
pub(crate) fn tls_done(session: &crate::tls::TlsSession) {
    #[cfg(feature = "tracing")]
    {
        let (version, cipher) = session.negotiated();
        tracing::debug!(
            target: TARGET,
            version = version.map(tracing::field::debug),
            cipher = cipher.map(tracing::field::debug),
            "TLS handshake complete"
        );
    }
    let _ = session;
}
