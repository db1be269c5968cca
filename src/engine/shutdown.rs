//! Shutting an engine down gracefully: stop accepting, let every stream
//! flush until a deadline, close the rest, free everything.

use std::io;
use std::time::{Duration, Instant};

use super::Engine;

/// What [`Engine::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSummary {
    /// Streams that closed after sending everything they had queued.
    pub flushed: usize,
    /// Streams still flushing (or connecting) at the deadline: closed then,
    /// dropping what they had queued.
    pub cut_off: usize,
    /// The bytes the cut-off streams still had queued.
    pub unsent: u64,
    /// Streams that closed without flushing before the deadline, by their
    /// handler's choice (`close_now`) or an error (a reset peer, say).
    pub failed: usize,
    /// Servers closed.
    pub servers: usize,
}

/// How long the loop waits for events at most per iteration while draining,
/// so that the deadline is kept even when nothing happens.
const DRAIN_TICK: Duration = Duration::from_millis(10);

impl Engine {
    /// Shuts the engine down gracefully and returns what happened: every
    /// server stops accepting and closes; every stream is closed after it
    /// has sent what it queued ([`Stream::close`](crate::Stream::close)),
    /// and the loop runs until all have, or until `deadline` has passed;
    /// streams still open then are closed at once, dropping what they had
    /// queued. Each stream's `on_close` is called, either way. Finally the
    /// engine's timers and posted closures are dropped: the engine is empty,
    /// and may be used again.
    ///
    /// Call it from outside the loop (after [`run`](Engine::run) returned,
    /// say on a signal); from inside a callback it is an error. Compare
    /// dropping the engine, which calls no `on_close` and flushes nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
    ///
    /// struct Greeter;
    /// impl Handler for Greeter {
    ///     fn on_connect(&mut self, stream: &mut Stream<Self>) {
    ///         let _ = stream.write(b"hello\n");
    ///     }
    /// }
    /// impl Read<Raw> for Greeter {
    ///     fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {}
    /// }
    ///
    /// let engine = Engine::new()?;
    /// let server = Server::from_fn(|_| Some(Stream::new(Greeter))).listen(&engine, "127.0.0.1:0")?;
    /// let address = engine.local_address(server)?;
    /// let peer = std::net::TcpStream::connect(address.to_string())?;
    /// engine.run_until(Duration::from_secs(5), || engine.channel_count() == 2)?;
    ///
    /// let summary = engine.shutdown(Duration::from_secs(2))?;
    /// assert_eq!((summary.servers, summary.flushed, summary.cut_off), (1, 1, 0));
    /// assert_eq!(engine.channel_count(), 0);
    /// # drop(peer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self, deadline: Duration) -> io::Result<ShutdownSummary> {
        let inner = &self.inner;
        if inner.running.get() {
            return Err(io::Error::other("Engine::shutdown called from inside the engine"));
        }
        let until = Instant::now() + deadline;
        let (graceful_before, abrupt_before) = (inner.closed_graceful.get(), inner.closed_abrupt.get());
        let mut summary = ShutdownSummary::default();
        // Servers first, so that no connection is accepted from here on.
        for id in self.ids() {
            let _ = self.with_channel(id, |channel, engine| {
                if channel.connections().is_some() {
                    summary.servers += 1;
                    channel.close(engine, true);
                }
            });
        }
        let result = loop {
            // Every stream that is not closing yet: on the first pass all of
            // them, then those started while draining (a handler connecting
            // in its `on_close`, say).
            for id in self.ids() {
                let _ = self.with_channel(id, |channel, engine| {
                    if !channel.is_closing() {
                        channel.close(engine, true);
                    }
                });
            }
            let now = Instant::now();
            if self.channel_count() == 0 || now >= until {
                break Ok(());
            }
            if let Err(e) = self.poll(Some((until - now).min(DRAIN_TICK))) {
                break Err(e);
            }
        };
        for id in self.ids() {
            let _ = self.with_channel(id, |channel, engine| {
                if let Some(unsent) = channel.cut_off(engine) {
                    summary.cut_off += 1;
                    summary.unsent += unsent;
                }
            });
        }
        self.clear();
        summary.flushed = (inner.closed_graceful.get() - graceful_before) as usize;
        summary.failed = ((inner.closed_abrupt.get() - abrupt_before) as usize).saturating_sub(summary.cut_off);
        result.map(|()| summary)
    }
}
