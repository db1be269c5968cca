//! Streams: a socket, a typed delimiter and a handler.
//!
//! A user type implements [`Handler`] for the lifecycle callbacks (every one
//! has a sensible default) and [`Read<D>`] for each delimiter type `D` it can
//! read: `on_read` receives the frame as `D::Output`, borrowed from the
//! receive buffer where the delimiter allows. A stream is configured as a
//! typed value before it runs ([`Stream::new`] returns a [`StreamBuilder`]),
//! and its delimiter can only be switched to a type its handler reads: the
//! compiler checks, before and during the run.
//!
//! ```no_run
//! use pants::{delimiter::{Count, Until}, Engine, Handler, Read, Stream};
//!
//! /// Reads "LEN <n>" lines, each followed by an n-byte body.
//! struct Client;
//!
//! impl Handler for Client {
//!     fn on_connect(&mut self, stream: &mut Stream<Self>) {
//!         // Outside on_read, the frame's encoder is named: "HELLO\r\n".
//!         stream.send_with(&Until::crlf(), b"HELLO").unwrap();
//!     }
//! }
//!
//! impl Read<Until> for Client {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         if let Some(n) = line.strip_prefix(b"LEN ").and_then(|n| std::str::from_utf8(n).ok()?.parse().ok()) {
//!             // Compiles because Client implements Read<Count>.
//!             stream.read_delimiter(Count::new(n).unwrap());
//!         }
//!     }
//! }
//!
//! impl Read<Count> for Client {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
//!         println!("{} byte body", body.len());
//!         stream.read_delimiter(Until::crlf());
//!     }
//! }
//!
//! let engine = Engine::new()?;
//! Stream::new(Client).read_delimiter(Until::crlf()).connect(&engine, "localhost:7000")?;
//! engine.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing
//!
//! [`Stream::send`] writes one frame of the protocol being read, encoded by
//! the delimiter that cut the frame `on_read` is handling (a line and its
//! terminator, a packed struct: see [`encode`](crate::encode));
//! [`Stream::send_with`] writes one of any encoder's protocol, in any
//! callback. [`write`](Stream::write) and its siblings send raw bytes. All
//! of them queue, and what a callback batch queued goes out together.
//!
//! # Lifecycle
//!
//! `on_connect` runs once the connection is up (before any `on_read`);
//! `on_read` for each frame; `on_write` each time everything queued has been
//! sent; `on_end` once if the peer closes its side; `on_close` exactly once
//! at the end, whether the stream ever connected or not. Errors go to `on_connect_error`, `on_overflow_error` and
//! `on_error`, whose defaults log (through `log`) and close the stream.
//!
//! When the peer closes its side, frames already buffered are still
//! delivered, a partial frame left over is reported to `on_error`
//! ([`FrameError::Truncated`](crate::FrameError), with its length; when the
//! peer resets the connection, before the read error), and what the
//! handler queued in reply is flushed before the stream closes: a half-closing
//! peer gets its answers (Pants dropped them). That close is `on_end`'s
//! default; a handler whose replies are still being made elsewhere keeps
//! the stream open there, and closes it once they are written
//! ([`Engine::shutdown`](crate::Engine::shutdown) closes it regardless,
//! after flushing what is queued).
//!
//! Reading pauses by itself while more than the write limit is queued
//! ([`Handler::on_backpressure`]); a handler can also pause it
//! ([`Stream::pause_reading`]), to bound the replies it owes when they are
//! made elsewhere and so are not queued yet.

mod builder;
mod channel;
mod close;
mod connect;
mod core;
mod counters;
mod memory;
mod outbox;
mod read;
mod reader;
mod socket;
mod timeouts;
#[cfg(feature = "tls")]
mod tls_io;
mod tls_state;
mod trace;
mod write;

use std::fmt;
use std::fs::File;
use std::time::Duration;

pub use crate::engine::StreamId;
pub use builder::StreamBuilder;
pub use counters::StreamCounters;
pub(crate) use memory::{MemorySocket, SharedPipe};
pub(crate) use socket::Socket;
pub(crate) use trace::Side;

use self::core::{Close, Core};
use crate::delimiter::Delimiter;
use crate::encode::Encode;
use crate::engine::{Engine, TimerId};
use crate::error::{FrameError, StreamError};
use crate::pack::Pack;
use crate::Address;

/// The lifecycle callbacks of a stream. Every method has a default: the
/// error callbacks log and close, the others do nothing.
///
/// In these callbacks the stream's delimiter type is not known statically,
/// so they receive `&mut Stream<Self>` (delimiter [`AnyDelimiter`]).
pub trait Handler: Sized + 'static {
    /// The connection is up. Runs before any `on_read`.
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let _ = stream;
    }

    /// Everything queued has been sent.
    fn on_write(&mut self, stream: &mut Stream<Self>) {
        let _ = stream;
    }

    /// Too much is queued for sending (more than the write limit): reading
    /// from the peer, and delivering frames already buffered, is paused
    /// until the queue drains to half the limit, and `on_write` tells when
    /// it is empty. A peer that pipelines requests without reading the
    /// replies cannot make the queue grow much past the limit: delivery stops
    /// at the first frame whose reply crosses it.
    fn on_backpressure(&mut self, stream: &mut Stream<Self>) {
        let _ = stream;
    }

    /// The stream can take more: called, after
    /// [`Stream::start_producing`], each time the send queue is at most half
    /// the write limit, for as long as the stream produces (Twisted's
    /// `resumeProducing`). Queue a chunk on each call; a bulk sender written
    /// this way never buffers more than about the write limit, however much
    /// it sends. A call that writes nothing ends producing, as
    /// [`stop_producing`](Stream::stop_producing) does (so the default, for
    /// a handler that never produces, does nothing). Calls are spread over
    /// loop iterations so that other streams get their turn.
    ///
    /// ```
    /// use pants::{Handler, Stream};
    ///
    /// /// Sends `left` bytes of zeros in 16 KiB chunks, then closes.
    /// struct Zeros { left: usize }
    ///
    /// impl Handler for Zeros {
    ///     fn on_connect(&mut self, stream: &mut Stream<Self>) {
    ///         stream.start_producing();
    ///     }
    ///
    ///     fn on_produce(&mut self, stream: &mut Stream<Self>) {
    ///         let n = self.left.min(16 * 1024);
    ///         self.left -= n;
    ///         let _ = stream.write(&[0u8; 16 * 1024][..n]);
    ///         if self.left == 0 {
    ///             stream.stop_producing();
    ///             stream.close(); // after everything queued has gone out
    ///         }
    ///     }
    /// }
    /// ```
    fn on_produce(&mut self, stream: &mut Stream<Self>) {
        let _ = stream;
    }

    /// The peer has closed its side (end of stream): nothing more will be
    /// read. Called once, after every whole frame was delivered and a
    /// partial frame left over was reported to `on_error`, unless the
    /// stream is closing already. Default: [`close`](Stream::close), which
    /// sends what is queued first, so a half-closing peer gets its replies.
    /// A handler that still owes replies made elsewhere (on another worker,
    /// on a thread) may keep the stream open and close it once they are
    /// written: writing works as before. [`Engine::shutdown`](crate::Engine::shutdown)
    /// still closes it (after flushing what is queued).
    fn on_end(&mut self, stream: &mut Stream<Self>) {
        stream.close();
    }

    /// The stream has closed: called exactly once, last. Its addresses are
    /// still readable here.
    fn on_close(&mut self, stream: &mut Stream<Self>) {
        let _ = stream;
    }

    /// Resolving or connecting failed (every resolved address was tried).
    /// Default: log and close. A handler that does not close may
    /// [`connect`](Stream::connect) again.
    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        log::warn!("stream {}: {error}", stream.id());
        stream.close();
    }

    /// No frame fits the buffer limit. Default: log and close (dropping what
    /// is queued). To go on instead, raise the limit or switch delimiter.
    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, error: FrameError) {
        log::warn!("stream {}: {error}", stream.id());
        stream.close_now();
    }

    /// The TLS handshake completed (before `on_connect` when TLS started
    /// before connecting; on its own after STARTTLS).
    #[cfg(feature = "tls")]
    fn on_ssl_handshake(&mut self, stream: &mut Stream<Self>) {
        let _ = stream;
    }

    /// The TLS handshake failed (an untrusted certificate, a wrong host name,
    /// a plain-text peer...). Default: log and close.
    #[cfg(feature = "tls")]
    fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: crate::tls::TlsError) {
        log::warn!("stream {}: TLS handshake failed: {error}", stream.id());
        stream.close_now();
    }

    /// TLS failed after the handshake (a corrupt record, plain text injected
    /// around STARTTLS...). Default: log and close.
    #[cfg(feature = "tls")]
    fn on_ssl_error(&mut self, stream: &mut Stream<Self>, error: crate::tls::TlsError) {
        log::warn!("stream {}: TLS error: {error}", stream.id());
        stream.close_now();
    }

    /// Any other error: reading or writing failed, a frame was malformed, a
    /// timeout expired, the peer left a partial frame. Default: log and close.
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        log::warn!("stream {}: {error}", stream.id());
        match error {
            StreamError::Read(_) | StreamError::Write(_) | StreamError::File(_) => stream.close_now(),
            _ => stream.close(),
        }
    }
}

/// Reading frames of delimiter type `D`. Implement it once per delimiter type
/// a handler reads; [`Stream::read_delimiter`] only compiles for those.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not read `{D}` frames: it has no `impl Read<{D}> for {Self}`",
    label = "a stream of `{Self}` cannot read `{D}`",
    note = "a stream's delimiter can only be set or switched to a type its handler implements `Read` for"
)]
pub trait Read<D: Delimiter>: Handler {
    /// A frame arrived.
    fn on_read(&mut self, stream: &mut Stream<Self, D>, frame: D::Output<'_>);
}

/// `D: ReadBy<H>` holds exactly when `H: Read<D>`: the bound of the
/// delimiter switches ([`Stream::read_delimiter`],
/// [`StreamBuilder::read_delimiter`]), written with the delimiter first.
/// Implemented for every delimiter, for every handler that reads it; there
/// is nothing to implement. Spelled this way, a switch to a delimiter the
/// handler does not read is reported as the missing `Read` impl, even when
/// the handler has a single `Read` impl (bounded the other way round, the
/// compiler infers the delimiter from that impl and reports mismatched
/// types instead).
///
/// ```compile_fail
/// use pants::{delimiter::{Count, Until}, Handler, Read, Stream};
///
/// struct Lines;
/// impl Handler for Lines {}
/// impl Read<Until> for Lines {
///     fn on_read(&mut self, stream: &mut Stream<Self, Until>, _line: &[u8]) {
///         // error[E0277]: `Lines` does not read `Count` frames
///         stream.read_delimiter(Count::new(4).unwrap());
///     }
/// }
/// ```
pub trait ReadBy<H>: Delimiter + Sized + 'static {
    /// Makes this delimiter the stream's next one.
    #[doc(hidden)]
    fn switch_stream<D>(self, stream: &mut Stream<H, D>);
}

impl<H: Read<D>, D: Delimiter + 'static> ReadBy<H> for D {
    fn switch_stream<D0>(self, stream: &mut Stream<H, D0>) {
        let next = stream.spares.reader_for(self);
        if let Some(replaced) = stream.switch.replace(next) {
            stream.spares.put(replaced);
        }
    }
}

/// The delimiter parameter of a stream whose delimiter type is not known
/// statically (in [`Handler`] callbacks). Cannot be constructed outside
/// this crate, and implements no [`Encode`]: such a stream
/// sends raw bytes, packed values, or frames of an encoder named with
/// [`Stream::send_with`].
#[derive(Debug)]
pub struct AnyDelimiter {
    _private: (),
}

/// A delimiter switch: the next reader, its delimiter installed, waiting
/// for the buffer.
type Switch<H> = Box<dyn reader::Reader<H>>;

/// A running stream, as its handler's callbacks see it: `H` is the handler
/// type, `D` the delimiter that cut the frame being handled (or
/// [`AnyDelimiter`]).
pub struct Stream<H, D = AnyDelimiter> {
    core: Box<Core>,
    switch: Option<Switch<H>>,
    spares: reader::SpareReaders<H>,
    /// In `on_read`, the delimiter that cut the frame (lent by the reader,
    /// in its box); otherwise a box of nothing, which allocates nothing.
    delimiter: Box<D>,
}

impl<H> Stream<H> {
    /// A stream over `core` that reads nothing yet.
    pub(super) fn from_core(core: Core) -> Self {
        Stream {
            core: Box::new(core),
            switch: None,
            spares: reader::SpareReaders::new(),
            delimiter: Box::new(AnyDelimiter { _private: () }),
        }
    }

    /// The typed stream `on_read` sees, holding the reader's delimiter.
    fn lend<D>(self, delimiter: Box<D>) -> Stream<H, D> {
        Stream { core: self.core, switch: self.switch, spares: self.spares, delimiter }
    }
}

impl<H, D> Stream<H, D> {
    /// The untyped stream back, and the delimiter for the reader.
    fn give_back(self) -> (Stream<H>, Box<D>) {
        let Stream { core, switch, spares, delimiter } = self;
        (Stream { core, switch, spares, delimiter: Box::new(AnyDelimiter { _private: () }) }, delimiter)
    }
}

impl<H: Handler> Stream<H> {
    /// Starts configuring a stream for `handler`. It reads raw chunks
    /// ([`Raw`](crate::delimiter::Raw), Pants' `None`) until told otherwise.
    #[allow(clippy::new_ret_no_self)] // the builder is the stream before it runs
    pub fn new(handler: H) -> StreamBuilder<H, crate::delimiter::Raw> {
        StreamBuilder::new(handler)
    }
}

impl<H: Handler, D> Stream<H, D> {
    /// This stream's id, for [`Engine::write_to`] and friends.
    pub fn id(&self) -> StreamId {
        self.core.id
    }

    /// The engine running this stream.
    pub fn engine(&self) -> &Engine {
        &self.core.engine
    }

    /// Queues bytes to send. They go out at the end of the current callback
    /// batch, together with everything else queued, in as few system calls
    /// as possible. An error if the stream is not connected, or closing.
    /// [`write_now`](Stream::write_now) sends at once instead.
    #[inline]
    pub fn write(&mut self, data: impl AsRef<[u8]>) -> Result<(), StreamError> {
        let data = data.as_ref();
        if self.core.is_plain_and_open() {
            // The common case, kept small enough to inline into `on_read`.
            self.core.queue(data);
            return Ok(());
        }
        self.write_slow(data)
    }

    /// [`write`](Stream::write) on a TLS stream, or one that cannot write.
    #[inline(never)]
    fn write_slow(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.core.check_writable("write")?;
        #[allow(unused_mut)]
        let mut data = data;
        #[cfg(feature = "tls")]
        if self.core.out.is_empty() {
            if let tls_state::Tls::Running { session, .. } = &mut self.core.tls {
                // Nothing queued before it: encrypt straight from the
                // caller's bytes (one copy fewer); the records go out with
                // the batch's flush, and only what TLS refuses is queued.
                let taken = session.encrypt(data);
                self.core.counters.bytes_written += taken as u64;
                data = &data[taken..];
                self.core.owe_on_write = true;
                if data.is_empty() {
                    return Ok(());
                }
            }
        }
        self.core.queue(data);
        Ok(())
    }

    /// Writes `data` now, as far as the socket takes it, and queues the rest
    /// (Pants' `write(data, flush=True)`); bytes queued before go first.
    /// With nothing queued, the socket takes `data` straight from the
    /// caller's buffer, without the copy [`write`](Stream::write) makes: an
    /// echo or a proxy forwarding large chunks saves a copy per chunk. Use
    /// `write` for small replies to pipelined requests, which it batches
    /// into one system call. Errors as `write`, and
    /// [`StreamError::Write`] if the socket fails.
    ///
    /// ```
    /// # use pants::{Handler, Read, Stream, delimiter::Raw};
    /// struct Echo;
    /// impl Handler for Echo {}
    /// impl Read<Raw> for Echo {
    ///     fn on_read(&mut self, stream: &mut Stream<Self, Raw>, chunk: &[u8]) {
    ///         // Each chunk as read, back at once.
    ///         let _ = stream.write_now(chunk);
    ///     }
    /// }
    /// ```
    pub fn write_now(&mut self, data: impl AsRef<[u8]>) -> Result<(), StreamError> {
        self.core.check_writable("write_now")?;
        let mut data = data.as_ref();
        if self.core.out.is_empty() {
            data = &data[write::write_direct(&mut self.core, data)..];
        }
        self.core.owe_on_write = true;
        if data.is_empty() {
            return Ok(());
        }
        self.write(data)?;
        self.flush()
    }

    /// Queues an owned buffer; a large one is sent without being copied.
    pub fn write_vec(&mut self, data: Vec<u8>) -> Result<(), StreamError> {
        self.core.check_writable("write_vec")?;
        let engine = &self.core.engine;
        self.core.out.push_vec(data, || engine.take_send_buffer());
        self.core.owe_on_write = true;
        Ok(())
    }

    /// Packs `value` straight into the send queue: a derived
    /// [`NetStruct`](crate::NetStruct), or a zerocopy or binrw value in its
    /// [`pack`](crate::pack) wrapper. Nothing is queued if packing fails.
    pub fn write_packed(&mut self, value: &(impl Pack + ?Sized)) -> Result<(), StreamError> {
        self.core.append("write_packed", |out| value.pack(out))
    }

    /// Sends `item` as one frame of `encoder`'s protocol (see
    /// [`Encode`]): the write side of any delimiter, whatever this stream
    /// reads. Appended straight to the send queue (no allocation per frame);
    /// batched and sent as [`write`](Stream::write) is. An encoding error
    /// ([`StreamError::Pack`]) queues nothing.
    ///
    /// ```
    /// use pants::{delimiter::{Packed, Until}, Handler, NetStruct, Read, Stream};
    ///
    /// #[derive(NetStruct)]
    /// struct Score { points: u32 }
    ///
    /// /// Reads text commands, answers in binary.
    /// struct Scorer;
    /// impl Handler for Scorer {}
    /// impl Read<Until> for Scorer {
    ///     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
    ///         let _ = stream.send_with(&Packed::<Score>::new(), &Score { points: line.len() as u32 });
    ///     }
    /// }
    /// ```
    pub fn send_with<I>(&mut self, encoder: &impl Encode<I>, item: I) -> Result<(), StreamError> {
        self.core.append("send_with", |out| encoder.encode(item, out))
    }

    /// Queues `len` bytes of `file` from `offset` (`len` 0: to the end of the
    /// file, as Pants), sent with `sendfile` (zero-copy), or read and written
    /// in pieces where `sendfile` cannot serve. The file is duplicated, so the
    /// caller may close its handle.
    pub fn write_file(&mut self, file: &File, offset: u64, len: u64) -> Result<(), StreamError> {
        self.core.check_writable("write_file")?;
        let size = file.metadata().map_err(StreamError::File)?.len();
        let len = if len == 0 { size.saturating_sub(offset) } else { len.min(size.saturating_sub(offset)) };
        if len > 0 {
            let file = file.try_clone().map_err(StreamError::File)?;
            self.core.out.push_file(file, offset, len, false);
            self.core.owe_on_write = true;
        }
        Ok(())
    }

    /// Writes what is queued now, as far as the socket takes it, instead of
    /// at the end of the callback batch.
    pub fn flush(&mut self) -> Result<(), StreamError> {
        self.core.check_writable("flush")?;
        write::flush(&mut self.core).map(drop).map_err(StreamError::Write)
    }

    /// Closes the stream once everything queued has been sent; then
    /// `on_close`. No frame is delivered after this call. Closing a closed
    /// stream does nothing.
    pub fn close(&mut self) {
        self.core.ask_close(Close::Flush);
    }

    /// Closes the stream now, dropping what is queued (Pants'
    /// `close(flush=False)`); `on_close` follows.
    pub fn close_now(&mut self) {
        self.core.close = Some(Close::Now);
    }

    /// Whether the stream is connected and not closing.
    pub fn is_connected(&self) -> bool {
        self.core.is_open() && self.core.close.is_none()
    }

    /// Whether `close` or `close_now` was called, or the stream has closed.
    pub fn is_closed(&self) -> bool {
        self.core.close.is_some() || self.core.is_closed()
    }

    /// Switches the delimiter from the next frame on; bytes already buffered
    /// are cut with the new delimiter at once (as when Pants' `on_read` set
    /// `read_delimiter`). Only compiles if the handler reads `D2`. Outside
    /// `on_read` (a timer, say) buffered frames are delivered at once, too.
    ///
    /// Nothing is allocated by a switch to a delimiter type this stream
    /// used before (its reader is kept for reuse), so a protocol that
    /// alternates between a few delimiters costs no allocation per frame.
    pub fn read_delimiter<D2: ReadBy<H>>(&mut self, delimiter: D2) {
        delimiter.switch_stream(self);
        self.core.redispatch = true;
    }

    /// The buffer limit (Pants' `buffer_size`; default 64 KiB).
    pub fn buffer_size(&self) -> usize {
        self.core.buffer_size
    }

    /// Sets the buffer limit, raised to the delimiter's minimum.
    pub fn set_buffer_size(&mut self, buffer_size: usize) {
        self.core.buffer_size = buffer_size;
        self.core.redispatch = true;
    }

    /// Asks for [`Handler::on_produce`] each time the stream can take more
    /// (the send queue at most half the write limit), until
    /// [`stop_producing`](Stream::stop_producing) or the stream closes. The
    /// first call comes once the current callback returns.
    pub fn start_producing(&mut self) {
        self.core.producing = true;
    }

    /// Stops the calls to [`Handler::on_produce`].
    pub fn stop_producing(&mut self) {
        self.core.producing = false;
    }

    /// Whether [`Handler::on_produce`] is being called.
    pub fn is_producing(&self) -> bool {
        self.core.producing
    }

    /// Stops reading until [`resume_reading`](Stream::resume_reading): no
    /// more frames are delivered (including the rest of those already
    /// buffered; the current `on_read` finishes), nothing more is read from
    /// the socket, so the peer's sending backs up through TCP's flow
    /// control, and the end of stream waits too. Writing, timers and
    /// timeouts go on (a read timeout still counts).
    ///
    /// For a handler whose replies are made elsewhere (on another worker, a
    /// thread) and so do not count against the write limit while they are
    /// owed: it pauses when it owes too many and resumes as they are
    /// written, which bounds what a peer pipelining requests can make it
    /// hold.
    ///
    /// ```
    /// use pants::{delimiter::Until, testing::TestEngine, Handler, Read, Stream};
    ///
    /// struct OneAtATime;
    /// impl Handler for OneAtATime {}
    /// impl Read<Until> for OneAtATime {
    ///     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
    ///         let _ = stream.write(line);
    ///         stream.pause_reading(); // until someone resumes it
    ///     }
    /// }
    ///
    /// let test = TestEngine::new()?;
    /// let peer = Stream::new(OneAtATime).read_delimiter(Until::lf()).attach_memory(&test)?;
    /// peer.send(b"a\nb\n");
    /// test.settle()?;
    /// assert_eq!(peer.take_written(), b"a");
    /// test.with_stream::<OneAtATime, _>(peer.id(), |_, stream| stream.resume_reading())?;
    /// test.settle()?;
    /// assert_eq!(peer.take_written(), b"b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause_reading(&mut self) {
        self.core.held = true;
    }

    /// Reads again after [`pause_reading`](Stream::pause_reading): frames
    /// already buffered are delivered in the next loop iteration, even if
    /// the socket has nothing new.
    pub fn resume_reading(&mut self) {
        if std::mem::take(&mut self.core.held) {
            self.core.engine.mark_ready(self.core.id);
        }
    }

    /// Whether [`pause_reading`](Stream::pause_reading) holds reading.
    pub fn is_reading_paused(&self) -> bool {
        self.core.held
    }

    /// Bytes queued and not yet sent.
    pub fn queued(&self) -> u64 {
        self.core.out.queued()
    }

    /// Sets the limit on queued outgoing bytes above which reading from the
    /// peer pauses (default 1 MiB); see [`Handler::on_backpressure`].
    pub fn set_write_limit(&mut self, limit: usize) {
        self.core.write_limit = limit.max(1);
    }

    /// Closes the stream (through `on_error` with [`StreamError::Timeout`])
    /// after this long without reading or writing anything. `None` turns it
    /// off. Set while no timeout was, it counts from now.
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.core.set_timeouts(timeout, self.core.read_timeout);
        timeouts::arm_timeouts::<H>(&mut self.core);
    }

    /// Like [`set_idle_timeout`](Stream::set_idle_timeout), counting only
    /// bytes received: a silent peer times out even while we write to it.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.core.set_timeouts(self.core.idle_timeout, timeout);
        timeouts::arm_timeouts::<H>(&mut self.core);
    }

    /// The peer's address: an override set with
    /// [`set_remote_address`](Stream::set_remote_address), else the socket's.
    pub fn remote_address(&self) -> Option<Address> {
        self.core.remote_override.clone().or_else(|| self.core.socket.as_ref()?.peer_address())
    }

    /// Our address: an override, else the socket's.
    pub fn local_address(&self) -> Option<Address> {
        self.core.local_override.clone().or_else(|| self.core.socket.as_ref()?.local_address())
    }

    /// Overrides what [`remote_address`](Stream::remote_address) returns
    /// (`None` restores the socket's), e.g. for a client behind a proxy.
    pub fn set_remote_address(&mut self, address: Option<Address>) {
        self.core.remote_override = address;
    }

    /// Overrides what [`local_address`](Stream::local_address) returns.
    pub fn set_local_address(&mut self, address: Option<Address>) {
        self.core.local_override = address;
    }

    /// Runs `f` with this stream's handler and stream after `delay` (to time
    /// out a silent peer, say). Nothing runs if the stream has closed by
    /// then; its pending timers are cancelled when it closes.
    pub fn defer(&mut self, delay: Duration, f: impl FnOnce(&mut H, &mut Stream<H>) + 'static) -> TimerId {
        let id = self.core.id;
        let timer = self.core.engine.defer(delay, move |engine| {
            let _ = engine.with_stream::<H, _>(id, f);
        });
        if self.core.is_closed() {
            // Made in on_close (or later): the stream's timers were already
            // cancelled, so this one is cancelled at once.
            self.core.engine.cancel(timer);
            return timer;
        }
        self.core.timers.retain(|t| self.core.engine.is_pending(*t));
        self.core.timers.push(timer);
        timer
    }

    /// Starts TLS (Pants' `startSSL`). Before the stream is connected, the
    /// handshake runs as soon as it is, then `on_ssl_handshake`, then
    /// `on_connect`. On a connected stream (STARTTLS), TLS begins once
    /// everything queued before this call has been sent in plain text; no
    /// frame is delivered from then until the handshake completes, and bytes
    /// the peer sent in plain text after this point are an error
    /// ([`TlsError::PlaintextAfterStartTls`](crate::tls::TlsError), to
    /// `on_ssl_error`), never handed over as if they came through TLS.
    /// Starting TLS twice, or on a closed stream, is an error at once.
    #[cfg(feature = "tls")]
    pub fn start_tls(&mut self, options: impl Into<crate::tls::TlsOptions>) -> Result<(), StreamError> {
        if self.is_closed() {
            return Err(StreamError::Closed("start_tls"));
        }
        if !self.core.tls.is_off() {
            return Err(crate::tls::TlsError::AlreadyStarted.into());
        }
        self.core.tls = tls_state::Tls::Pending(options.into());
        Ok(())
    }

    /// What the TLS session negotiated, once its handshake is complete.
    #[cfg(feature = "tls")]
    pub fn tls_info(&self) -> Option<crate::tls::TlsInfo> {
        match &self.core.tls {
            tls_state::Tls::Running { session, .. } => Some(session.info()),
            _ => None,
        }
    }

    /// Connects again after a failed attempt whose `on_connect_error` did not
    /// close the stream. An error at once if the stream is connecting,
    /// connected or closed.
    pub fn connect(&mut self, address: impl Into<Address>) -> Result<(), StreamError> {
        match self.core.state {
            // After close(), even while still connected: closed, not active.
            _ if self.core.close.is_some() => Err(StreamError::Closed("connect")),
            core::State::Idle { .. } => connect::connect::<H>(&mut self.core, address.into()),
            core::State::Closing | core::State::Closed { .. } => Err(StreamError::Closed("connect")),
            _ => Err(StreamError::AlreadyActive),
        }
    }
}

impl<H: Handler, D> Stream<H, D> {
    /// Sends `item` as one frame of the protocol this stream reads, encoded
    /// by the delimiter that cut the frame being handled (see [`Encode`]):
    /// in `on_read` of a [`Until::crlf`](crate::delimiter::Until::crlf)
    /// stream, `send(b"PONG")` queues `PONG\r\n`; of a
    /// [`Packed<T>`](crate::delimiter::Packed) stream, `send(&t)` queues a
    /// packed `T`. Appended straight to the send queue, without an
    /// allocation per frame; batched and sent as [`write`](Stream::write)
    /// is. An encoding error ([`StreamError::Pack`]: a line holding its
    /// terminator, a body of the wrong length, a string too long for its
    /// prefix) queues nothing. [`send_with`](Stream::send_with) writes
    /// frames of another delimiter.
    ///
    /// ```
    /// use pants::{delimiter::Until, Handler, Read, Stream};
    ///
    /// struct Pong;
    /// impl Handler for Pong {}
    /// impl Read<Until> for Pong {
    ///     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
    ///         if line == b"PING" {
    ///             stream.send(b"PONG").unwrap(); // PONG\r\n
    ///         }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn send<I>(&mut self, item: I) -> Result<(), StreamError>
    where
        D: Encode<I>,
    {
        let Stream { core, delimiter, .. } = self;
        core.append("send", |out| delimiter.encode(item, out))
    }
}

impl<H, D> fmt::Debug for Stream<H, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.core.id)
            .field("state", &self.core.state)
            .field("queued", &self.core.out.queued())
            .finish()
    }
}
