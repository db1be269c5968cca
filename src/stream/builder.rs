//! Configuring a stream before it runs.

use std::marker::PhantomData;
use std::time::Duration;

use super::channel::StreamChannel;
use super::connect;
use super::core::Core;
use super::reader::TypedReader;
use super::socket::Socket;
use super::trace::{Side, Trace};
use super::{Handler, Read, ReadBy, Stream};
use crate::delimiter::{Delimiter, Raw};
use crate::engine::Engine;
use crate::error::StreamError;
use crate::framer::DEFAULT_BUFFER_SIZE;
use crate::{Address, StreamId};

/// A stream being configured: its handler `H` and its first delimiter `D`,
/// both in the type. Made by [`Stream::new`]; started by
/// [`connect`](StreamBuilder::connect) or [`attach_tcp`](StreamBuilder::attach_tcp)
/// / [`attach_unix`](StreamBuilder::attach_unix), or handed to a
/// [`Server`](crate::Server) for accepted connections.
///
/// ```
/// use pants::{delimiter::Until, Handler, Read, Stream};
///
/// struct Lines;
/// impl Handler for Lines {}
/// impl Read<Until> for Lines {
///     fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
///         println!("{}", String::from_utf8_lossy(line));
///     }
/// }
///
/// let builder = Stream::new(Lines).read_delimiter(Until::lf()).buffer_size(4096);
/// ```
#[must_use = "a StreamBuilder does nothing until it is connected or attached"]
pub struct StreamBuilder<H, D> {
    handler: H,
    delimiter: D,
    buffer_size: usize,
    write_limit: Option<usize>,
    idle_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsOptions>,
    _reads: PhantomData<fn() -> D>,
}

impl<H: Handler> StreamBuilder<H, Raw> {
    pub(crate) fn new(handler: H) -> Self {
        StreamBuilder {
            handler,
            delimiter: Raw,
            buffer_size: DEFAULT_BUFFER_SIZE,
            write_limit: None,
            idle_timeout: None,
            read_timeout: None,
            #[cfg(feature = "tls")]
            tls: None,
            _reads: PhantomData,
        }
    }
}

impl<H: Handler, D: Delimiter + 'static> StreamBuilder<H, D> {
    /// Sets the first delimiter. Only compiles if the handler reads `D2`.
    pub fn read_delimiter<D2: ReadBy<H>>(self, delimiter: D2) -> StreamBuilder<H, D2> {
        StreamBuilder {
            handler: self.handler,
            delimiter,
            buffer_size: self.buffer_size,
            write_limit: self.write_limit,
            idle_timeout: self.idle_timeout,
            read_timeout: self.read_timeout,
            #[cfg(feature = "tls")]
            tls: self.tls,
            _reads: PhantomData,
        }
    }

    /// Sets the buffer limit (Pants' `buffer_size`, default 64 KiB).
    pub fn buffer_size(mut self, buffer_size: usize) -> Self {
        self.buffer_size = buffer_size;
        self
    }

    /// Sets the limit on queued outgoing bytes above which reading pauses
    /// (default 1 MiB).
    pub fn write_limit(mut self, limit: usize) -> Self {
        self.write_limit = Some(limit.max(1));
        self
    }

    /// Closes the stream after this long without traffic either way.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Closes the stream after this long without receiving anything.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Runs TLS on the stream from the start (Pants' `ssl_options`): the
    /// handshake runs once connected, then `on_ssl_handshake`, then
    /// `on_connect`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, options: impl Into<crate::tls::TlsOptions>) -> Self {
        self.tls = Some(options.into());
        self
    }

    /// Sets TLS options unless the builder has its own (a server's options
    /// for the streams it accepts).
    #[cfg(feature = "tls")]
    pub(crate) fn default_tls(mut self, options: Option<&crate::tls::TlsOptions>) -> Self {
        if self.tls.is_none() {
            self.tls = options.cloned();
        }
        self
    }

    /// The handler, for inspection before the stream starts.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    fn into_channel(self, engine: &Engine, id: StreamId, side: Side) -> StreamChannel<H>
    where
        H: Read<D>,
    {
        let mut core = Core::new(engine.handle(), id, self.buffer_size);
        core.trace = Trace::stream(id, side);
        if let Some(limit) = self.write_limit {
            core.write_limit = limit;
        }
        core.idle_timeout = self.idle_timeout;
        core.read_timeout = self.read_timeout;
        #[cfg(feature = "tls")]
        {
            if let Some(options) = self.tls {
                core.tls = super::tls_state::Tls::Pending(options);
            }
        }
        StreamChannel::new(
            self.handler,
            Stream::from_core(core),
            Box::new(TypedReader::new(self.delimiter, self.buffer_size)),
        )
    }

    /// Starts connecting to `address` and returns at once. `on_connect` (or
    /// `on_connect_error`) follows from the engine's loop. Host names are
    /// resolved off the loop on the engine's shared resolver threads (at
    /// most 4, started on demand and gone after 1 s idle), never blocking
    /// the loop, and every address they resolve to is tried in turn; a
    /// failed lookup, or a resolver thread that cannot be started, is
    /// reported to `on_connect_error` as [`StreamError::Resolve`].
    pub fn connect(self, engine: &Engine, address: impl Into<Address>) -> Result<StreamId, StreamError>
    where
        H: Read<D>,
    {
        let address = address.into();
        let id = engine.insert(|id| Box::new(self.into_channel(engine, id, Side::Client)))?;
        engine.with_stream::<H, _>(id, |_, stream| connect::connect::<H>(&mut stream.core, address))??;
        Ok(id)
    }

    /// Runs the stream over an existing, connected `std` TCP stream.
    /// `on_connect` follows from the loop.
    pub fn attach_tcp(self, engine: &Engine, stream: std::net::TcpStream) -> Result<StreamId, StreamError>
    where
        H: Read<D>,
    {
        stream.set_nonblocking(true).map_err(StreamError::Read)?;
        self.attach(engine, Socket::Tcp(mio::net::TcpStream::from_std(stream)), None)
    }

    /// Runs the stream over an existing, connected `std` UNIX stream.
    pub fn attach_unix(self, engine: &Engine, stream: std::os::unix::net::UnixStream) -> Result<StreamId, StreamError>
    where
        H: Read<D>,
    {
        stream.set_nonblocking(true).map_err(StreamError::Read)?;
        self.attach(engine, Socket::Unix(mio::net::UnixStream::from_std(stream)), None)
    }

    pub(crate) fn attach(
        self,
        engine: &Engine,
        socket: Socket,
        server: Option<std::rc::Rc<crate::server::Connections>>,
    ) -> Result<StreamId, StreamError>
    where
        H: Read<D>,
    {
        let side = if server.is_some() { Side::Accepted } else { Side::Attached };
        self.attach_as(engine, socket, server, side)
    }

    /// [`attach`](StreamBuilder::attach), with the `side` its span names (a
    /// connection a worker was handed is accepted, with no server of its
    /// own).
    pub(crate) fn attach_as(
        self,
        engine: &Engine,
        socket: Socket,
        server: Option<std::rc::Rc<crate::server::Connections>>,
        side: Side,
    ) -> Result<StreamId, StreamError>
    where
        H: Read<D>,
    {
        let id = engine.insert(|id| Box::new(self.into_channel(engine, id, side)))?;
        engine.with_stream::<H, _>(id, move |_, stream| connect::attach(&mut stream.core, socket, server))??;
        Ok(id)
    }
}

impl<H, D: std::fmt::Debug> std::fmt::Debug for StreamBuilder<H, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBuilder")
            .field("handler", &std::any::type_name::<H>())
            .field("delimiter", &self.delimiter)
            .field("buffer_size", &self.buffer_size)
            .finish()
    }
}
