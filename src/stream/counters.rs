//! Per-stream counters: bytes read and written, frames delivered, bytes
//! queued. Always on: each is a plain integer add on a path that already
//! runs (a read, a write, a frame handed to `on_read`), with no atomics and
//! no allocation.

use super::core::Core;
use super::Stream;
use crate::engine::Engine;
use crate::error::StreamError;
use crate::StreamId;

/// What a stream has moved so far, as [`Stream::counters`] and
/// [`Engine::counters`] report it: a copy, taken when asked for.
///
/// Bytes are counted as the application sees them: `bytes_read` is what
/// reached the receive buffer (for a TLS stream, the decrypted plaintext),
/// `bytes_written` what left the send queue for the socket, or, on a TLS
/// stream, for the TLS session (plaintext, without the record framing, the
/// handshake or alerts). On a plain stream these are exactly the bytes the
/// socket took and gave. Bytes dropped unsent (a [`close_now`](Stream::close_now),
/// a write error) are never counted as written, nor is what a closed stream
/// discards while it waits for the peer's end of stream counted as read.
///
/// ```
/// use pants::{delimiter::Until, Engine, Handler, Read, Server, Stream};
/// use std::io::{BufRead, BufReader, Write};
///
/// /// Answers each line with "ok", and the line "stats" with its counters.
/// struct Stats;
/// impl Handler for Stats {}
/// impl Read<Until> for Stats {
///     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
///         if line == b"stats" {
///             let c = stream.counters(); // this frame is counted already
///             let reply = format!("read {} written {} frames {}", c.bytes_read, c.bytes_written, c.frames_read);
///             let _ = stream.send(reply.as_bytes());
///         } else {
///             let _ = stream.send(b"ok");
///         }
///     }
/// }
///
/// let engine = Engine::new()?;
/// let server = Server::from_fn(|_| Some(Stream::new(Stats).read_delimiter(Until::lf())))
///     .listen(&engine, "127.0.0.1:0")?;
/// let pants::Address::Ip(address) = engine.local_address(server)? else { unreachable!() };
/// let client = std::thread::spawn(move || {
///     let mut peer = std::net::TcpStream::connect(address).unwrap();
///     let mut lines = BufReader::new(peer.try_clone().unwrap());
///     let mut line = String::new();
///     peer.write_all(b"hello\n").unwrap();
///     lines.read_line(&mut line).unwrap();
///     peer.write_all(b"stats\n").unwrap();
///     line.clear();
///     lines.read_line(&mut line).unwrap();
///     line
/// });
/// engine.run_until(std::time::Duration::from_secs(10), || client.is_finished())?;
/// // "hello\n" and "stats\n" read, "ok\n" written: 12 bytes, 2 frames, 3 bytes.
/// assert_eq!(client.join().unwrap(), "read 12 written 3 frames 2\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StreamCounters {
    /// Bytes read from the peer into the receive buffer (plaintext over TLS).
    pub bytes_read: u64,
    /// Bytes sent to the peer: taken by the socket, or over TLS by the TLS
    /// session (plaintext).
    pub bytes_written: u64,
    /// Frames handed to `on_read`, whatever their delimiter (a frame is
    /// counted before `on_read` runs, so `on_read` sees itself counted).
    pub frames_read: u64,
    /// Bytes queued and not yet sent, as [`Stream::queued`] says (files
    /// queued with [`write_file`](Stream::write_file) count by what is
    /// left of them).
    pub queued: u64,
}

/// The running totals a stream keeps in its [`Core`]; the bytes that went
/// out through the send queue are counted by the queue itself
/// ([`Outbox::sent`](super::outbox::Outbox::sent)).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_read: u64,
    /// Bytes written around the queue: straight from the caller's buffer
    /// (`write_now`), or taken by the TLS session directly (`write` on TLS).
    pub(crate) bytes_written: u64,
    pub(crate) frames_read: u64,
}

impl Core {
    /// The stream's counters now.
    pub(crate) fn counters(&self) -> StreamCounters {
        StreamCounters {
            bytes_read: self.counters.bytes_read,
            bytes_written: self.counters.bytes_written + self.out.sent(),
            frames_read: self.counters.frames_read,
            queued: self.out.queued(),
        }
    }
}

impl<H, D> Stream<H, D> {
    /// What this stream has read, written and queued so far (see
    /// [`StreamCounters`]). In `on_close`, the totals of its whole life.
    pub fn counters(&self) -> StreamCounters {
        self.core.counters()
    }
}

impl Engine {
    /// The counters of stream `id` (see [`StreamCounters`]), from outside
    /// its callbacks. Errors: [`StreamError::NoSuchStream`] once it has
    /// closed (read them in `on_close` to keep the totals),
    /// [`StreamError::WrongHandler`] for a server (see
    /// [`server_counters`](Engine::server_counters)), and
    /// [`StreamError::Busy`] from inside the stream's own callbacks, which
    /// have [`Stream::counters`].
    ///
    /// ```
    /// use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    /// impl Read<Raw> for Quiet {
    ///     fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _chunk: &[u8]) {}
    /// }
    ///
    /// let engine = Engine::new()?;
    /// let server = Server::from_fn(|_| Some(Stream::new(Quiet))).listen(&engine, "127.0.0.1:0")?;
    /// let client = Stream::new(Quiet).connect(&engine, engine.local_address(server)?)?;
    /// let counters = engine.counters(client)?;
    /// assert_eq!((counters.bytes_read, counters.bytes_written, counters.queued), (0, 0, 0));
    /// assert!(engine.counters(server).is_err()); // a server has its own
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counters(&self, id: StreamId) -> Result<StreamCounters, StreamError> {
        self.with_channel(id, |channel, _| channel.counters())?.ok_or(StreamError::WrongHandler(id))
    }
}
