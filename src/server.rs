//! Servers: listening sockets that turn each accepted connection into a
//! typed stream.
//!
//! A [`ServerHandler`] decides, in [`on_accept`](ServerHandler::on_accept),
//! what stream each peer gets (a [`StreamBuilder`] with its handler and first
//! delimiter), or refuses the peer. [`Server::new`] makes a server from one;
//! [`Server::from_fn`] from a closure.
//!
//! ```no_run
//! use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
//!
//! struct Echo;
//! impl Handler for Echo {}
//! impl Read<Raw> for Echo {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
//!         let _ = stream.write(data);
//!     }
//! }
//!
//! let engine = Engine::new()?;
//! Server::from_fn(|_peer| Some(Stream::new(Echo))).listen(&engine, "127.0.0.1:7000")?;
//! engine.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Listening
//!
//! A bare port ([`Address::Port`]) listens on `[::]`, which takes IPv6 and
//! IPv4 connections on one socket (Pants needed a second "slave" server). A
//! path listens on a UNIX socket; a stale socket file that no one listens on
//! is replaced. Accept errors such as running out of file descriptors do not
//! stop the server: it reports them to `on_error`, backs off briefly and goes
//! on accepting.
//!
//! # Closing
//!
//! [`Server::close`] stops listening (a UNIX socket's file is removed), then
//! closes every connection the server accepted that is still open, each
//! after flushing what it has queued, then calls `on_close`.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use mio::net::{TcpListener, UnixListener};
use mio::Interest;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::delimiter::Delimiter;
use crate::engine::panic_message;
use crate::engine::{Channel, Engine, Readiness};
use crate::error::StreamError;
use crate::stream::Socket;
use crate::{Address, Handler, Read, StreamBuilder, StreamId};

/// The default listen backlog.
pub const DEFAULT_BACKLOG: i32 = 1024;
/// How many connections one server accepts per loop iteration (fairness).
const ACCEPT_BUDGET: usize = 256;
/// How long accepting pauses after running out of resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a server does with its connections; see the [module docs](self).
pub trait ServerHandler: Sized + 'static {
    /// The handler of each accepted stream.
    type Handler: Handler + Read<Self::Delimiter>;
    /// The first delimiter of each accepted stream.
    type Delimiter: Delimiter + 'static;

    /// A peer connected: return its stream, or `None` to refuse (close) it.
    fn on_accept(
        &mut self,
        server: &mut Server,
        peer: &Address,
    ) -> Option<StreamBuilder<Self::Handler, Self::Delimiter>>;

    /// The server is listening.
    fn on_listen(&mut self, server: &mut Server) {
        let _ = server;
    }

    /// The server has closed.
    fn on_close(&mut self, server: &mut Server) {
        let _ = server;
    }

    /// A peer was refused because the server has
    /// [`max_connections`](ServerBuilder::max_connections) open (with
    /// [`AtLimit::Refuse`]); its connection has been closed. Default: log.
    fn on_refuse(&mut self, server: &mut Server, peer: &Address) {
        log::debug!("server {}: refused {peer}: {} connections open", server.id(), server.connection_count());
    }

    /// Accepting failed. The server goes on; default: log.
    fn on_error(&mut self, server: &mut Server, error: StreamError) {
        log::warn!("server {}: {error}", server.id());
    }
}

/// Takes each accepted socket instead of the server's engine (a
/// [`Workers`](crate::Workers) group handing connections to its workers).
pub(crate) type HandOff = Box<dyn FnMut(Socket, Address)>;

/// What a server does with a peer that connects while it has
/// [`max_connections`](ServerBuilder::max_connections) open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtLimit {
    /// Accept the peer and close its connection at once (it sees the end of
    /// stream before any byte); [`ServerHandler::on_refuse`] is told. The
    /// backlog stays short, and peers learn at once that the server is full.
    Refuse,
    /// Stop accepting until a connection closes: peers wait in the listen
    /// backlog (and the kernel's SYN queue), and are accepted in turn as
    /// room is made. No peer is turned away, but they may wait.
    Pause,
}

/// The open connections of a server, shared with its streams: each stream
/// removes itself when it closes and wakes the server if the server waits
/// for that (below its connection limit again, or draining).
pub(crate) struct Connections {
    server: StreamId,
    ids: RefCell<BTreeSet<StreamId>>,
    /// The server wants to hear of each close.
    waiting: std::cell::Cell<bool>,
}

impl Connections {
    pub(crate) fn insert(&self, id: StreamId) {
        self.ids.borrow_mut().insert(id);
    }

    pub(crate) fn remove(&self, engine: &Engine, id: StreamId) {
        self.ids.borrow_mut().remove(&id);
        if self.waiting.get() {
            engine.mark_ready(self.server);
        }
    }

    fn len(&self) -> usize {
        self.ids.borrow().len()
    }

    fn ids(&self) -> Vec<StreamId> {
        self.ids.borrow().iter().copied().collect()
    }
}

/// A [`ServerHandler`] made from a closure; see [`Server::from_fn`].
pub struct FnServer<F>(F);

impl<F, H, D> ServerHandler for FnServer<F>
where
    F: FnMut(&Address) -> Option<StreamBuilder<H, D>> + 'static,
    H: Handler + Read<D>,
    D: Delimiter + 'static,
{
    type Handler = H;
    type Delimiter = D;

    fn on_accept(&mut self, _server: &mut Server, peer: &Address) -> Option<StreamBuilder<H, D>> {
        (self.0)(peer)
    }
}

/// A listening server, as its handler's callbacks see it.
pub struct Server {
    engine: Engine,
    id: StreamId,
    connections: Rc<Connections>,
    local: Option<Address>,
    closing: Option<Closing>,
    /// Peers taken from the listener and run (or handed off), and refused.
    accepted: u64,
    refused: u64,
}

/// What a server has accepted so far, as [`Server::counters`] and
/// [`Engine::server_counters`] report it: a copy, taken when asked for.
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
/// let pants::Address::Ip(address) = engine.local_address(server)? else { unreachable!() };
/// let _peer = std::net::TcpStream::connect(address)?;
/// engine.run_until(std::time::Duration::from_secs(10), || {
///     engine.server_counters(server).is_ok_and(|c| c.accepted == 1)
/// })?;
/// let counters = engine.server_counters(server)?;
/// assert_eq!((counters.accepted, counters.refused, counters.open), (1, 0, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ServerCounters {
    /// Connections taken from the listener and run as streams (or handed
    /// to a worker, for [`WorkerGroup::listen_round_robin`](crate::WorkerGroup::listen_round_robin)).
    pub accepted: u64,
    /// Connections closed as soon as they were accepted: refused at the
    /// [`max_connections`](ServerBuilder::max_connections) limit, or by
    /// [`on_accept`](ServerHandler::on_accept) returning `None`.
    pub refused: u64,
    /// Connections this server accepted that are open now (as
    /// [`Server::connection_count`] says).
    pub open: usize,
}

/// How a server was asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Stop listening and close every connection (after it flushes).
    Close,
    /// Stop listening and let the connections finish on their own.
    Drain,
}

impl Server {
    /// Starts configuring a server for `handler`.
    #[allow(clippy::new_ret_no_self)] // Server::new(..).listen(..), as Stream::new(..).connect(..)
    pub fn new<S: ServerHandler>(handler: S) -> ServerBuilder<S> {
        ServerBuilder {
            handler,
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
            hand_off: None,
            limit: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// A server whose every connection comes from `accept(peer)` (`None`
    /// refuses the peer).
    pub fn from_fn<F, H, D>(accept: F) -> ServerBuilder<FnServer<F>>
    where
        F: FnMut(&Address) -> Option<StreamBuilder<H, D>> + 'static,
        H: Handler + Read<D>,
        D: Delimiter + 'static,
    {
        Server::new(FnServer(accept))
    }

    /// The server's id (for [`Engine::with_server`] and
    /// [`Engine::close_stream`]).
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The address the server listens on (with the port chosen, for port 0).
    pub fn local_address(&self) -> Option<Address> {
        self.local.clone()
    }

    /// The ids of the open connections this server accepted.
    pub fn connections(&self) -> Vec<StreamId> {
        self.connections.ids()
    }

    /// How many connections this server accepted are open.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Queues `data` on every open connection; returns how many took it.
    pub fn broadcast(&self, data: impl AsRef<[u8]>) -> usize {
        let data = data.as_ref();
        self.connections().into_iter().filter(|id| self.engine.write_to(*id, data).is_ok()).count()
    }

    /// Stops listening and closes the connections (see the
    /// [module docs](self)).
    pub fn close(&mut self) {
        self.closing = Some(Closing::Close);
    }

    /// Stops listening, and lets the open connections run on until each
    /// closes by itself (its handler or its peer closes it); then the
    /// server closes (`on_close`). To bound the wait, close the server (or
    /// shut the engine down) later: [`Engine::shutdown`] drains every
    /// stream until a deadline.
    ///
    /// ```
    /// # use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
    /// # struct Echo;
    /// # impl Handler for Echo {}
    /// # impl Read<Raw> for Echo {
    /// #     fn on_read(&mut self, s: &mut Stream<Self, Raw>, d: &[u8]) { let _ = s.write(d); }
    /// # }
    /// let engine = Engine::new()?;
    /// let server = Server::from_fn(|_| Some(Stream::new(Echo))).listen(&engine, "127.0.0.1:0")?;
    /// // From outside the server's callbacks, whatever its handler type:
    /// engine.drain(server)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(&mut self) {
        if self.closing.is_none() {
            self.closing = Some(Closing::Drain);
        }
    }

    /// Whether [`close`](Server::close) or [`drain`](Server::drain) was
    /// called.
    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// How many peers this server has accepted and refused, and how many of
    /// its connections are open (see [`ServerCounters`]).
    pub fn counters(&self) -> ServerCounters {
        ServerCounters { accepted: self.accepted, refused: self.refused, open: self.connections.len() }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("id", &self.id).field("local", &self.local).finish()
    }
}

/// A server being configured. Made by [`Server::new`].
#[must_use = "a ServerBuilder does nothing until it listens"]
pub struct ServerBuilder<S> {
    handler: S,
    backlog: i32,
    reuse_port: bool,
    hand_off: Option<HandOff>,
    limit: Option<(usize, AtLimit)>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsOptions>,
}

impl<S: ServerHandler> ServerBuilder<S> {
    /// The listen backlog (default 1024).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEPORT` on a TCP listener (default off), so that
    /// several listeners, one per [`Workers`](crate::Workers) engine say, can
    /// listen on the same address; the kernel spreads the connections over
    /// them (Linux: by a hash of the peer's address and port). Every
    /// listener on the address must set it. Ignored for UNIX sockets.
    ///
    /// ```
    /// # use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
    /// # struct Echo;
    /// # impl Handler for Echo {}
    /// # impl Read<Raw> for Echo { fn on_read(&mut self, s: &mut Stream<Self, Raw>, d: &[u8]) { let _ = s.write(d); } }
    /// let (one, two) = (Engine::new()?, Engine::new()?);
    /// let first = Server::from_fn(|_| Some(Stream::new(Echo))).reuse_port(true).listen(&one, "127.0.0.1:0")?;
    /// let address = one.local_address(first)?;
    /// // A second listener on the very same address and port.
    /// Server::from_fn(|_| Some(Stream::new(Echo))).reuse_port(true).listen(&two, address)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reuse_port(mut self, reuse_port: bool) -> Self {
        self.reuse_port = reuse_port;
        self
    }

    /// Every accepted socket goes to `hand_off` instead of becoming a
    /// stream here (`on_accept` is not called; the connection limit and
    /// TLS options do not apply).
    pub(crate) fn hand_off(mut self, hand_off: impl FnMut(Socket, Address) + 'static) -> Self {
        self.hand_off = Some(Box::new(hand_off));
        self
    }

    /// Keeps at most `limit` connections open: a peer that connects while
    /// `limit` are open is refused or waits, as `at_limit` says (see
    /// [`AtLimit`]). Refused peers are not counted, nor given to
    /// `on_accept`.
    ///
    /// ```
    /// # use pants::{delimiter::Raw, Engine, Handler, Read, Server, Stream};
    /// use pants::server::AtLimit;
    /// # struct Echo;
    /// # impl Handler for Echo {}
    /// # impl Read<Raw> for Echo {
    /// #     fn on_read(&mut self, s: &mut Stream<Self, Raw>, d: &[u8]) { let _ = s.write(d); }
    /// # }
    /// let engine = Engine::new()?;
    /// Server::from_fn(|_| Some(Stream::new(Echo)))
    ///     .max_connections(10_000, AtLimit::Pause)
    ///     .listen(&engine, "127.0.0.1:0")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_connections(mut self, limit: usize, at_limit: AtLimit) -> Self {
        self.limit = Some((limit, at_limit));
        self
    }

    /// Runs TLS on every connection the server accepts (unless `on_accept`
    /// gives a stream its own options).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, options: crate::tls::TlsServer) -> Self {
        self.tls = Some(options.into());
        self
    }

    /// Starts listening and returns the server's id; `on_listen` runs in the
    /// loop's next iteration. A host name is resolved here, before
    /// listening, and resolving blocks the calling thread: listen before
    /// [`Engine::run`] (as servers usually do), or listen on an IP address
    /// or a bare port, which never resolves.
    pub fn listen(self, engine: &Engine, address: impl Into<Address>) -> Result<StreamId, StreamError> {
        let address = address.into();
        let (listener, unix_path) = bind(&address, self.backlog, self.reuse_port)?;
        let local = listener.local_address();
        let handler = self.handler;
        let limit = self.limit;
        let hand_off = self.hand_off;
        let id = engine.insert(|id| {
            let connections = Rc::new(Connections { server: id, ids: RefCell::default(), waiting: Default::default() });
            Box::new(ServerChannel {
                handler,
                #[cfg(feature = "tracing")]
                span: tracing::info_span!(
                    target: "pants::server",
                    "server",
                    id = %id,
                    local = local.as_ref().map(tracing::field::display),
                ),
                server: Server {
                    engine: engine.handle(),
                    id,
                    connections,
                    local,
                    closing: None,
                    accepted: 0,
                    refused: 0,
                },
                limit,
                listener: Some(listener),
                hand_off,
                unix_path,
                owe_on_listen: true,
                closed: false,
                poisoned: false,
                #[cfg(feature = "tls")]
                tls: self.tls,
            })
        })?;
        engine
            .with_channel(id, |channel, engine| {
                let channel = channel.as_any().downcast_mut::<ServerChannel<S>>().expect("just inserted");
                let token = id.token();
                match channel.listener.as_mut() {
                    Some(Listener::Tcp(l)) => engine.registry().register(l, token, Interest::READABLE),
                    Some(Listener::Unix(l)) => engine.registry().register(l, token, Interest::READABLE),
                    None => Ok(()),
                }
            })?
            .map_err(|source| StreamError::Listen { address: address.to_string(), source })?;
        engine.mark_ready(id);
        Ok(id)
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn local_address(&self) -> Option<Address> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(Address::Ip),
            Listener::Unix(l) => l.local_addr().ok()?.as_pathname().map(Address::unix),
        }
    }

    fn accept(&self) -> io::Result<(Socket, Address)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, peer)| (Socket::Tcp(s), Address::Ip(peer))),
            Listener::Unix(l) => l.accept().map(|(s, peer)| {
                let peer = peer.as_pathname().map(Address::unix).unwrap_or_else(|| Address::Unix(PathBuf::new()));
                (Socket::Unix(s), peer)
            }),
        }
    }
}

fn listen_error(address: &Address) -> impl Fn(io::Error) -> StreamError + '_ {
    move |source| StreamError::Listen { address: address.to_string(), source }
}

/// Creates, binds and listens, with the options Pants could not set.
fn bind(address: &Address, backlog: i32, reuse_port: bool) -> Result<(Listener, Option<PathBuf>), StreamError> {
    let error = listen_error(address);
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    match address {
        Address::Unix(path) => {
            remove_stale_socket(path);
            let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)
                .map_err(|e| error(e.into()))?;
            let addr = SocketAddrUnix::new(path.as_path()).map_err(|e| error(e.into()))?;
            rustix::net::bind(&fd, &addr).map_err(|e| error(e.into()))?;
            rustix::net::listen(&fd, backlog).map_err(|e| error(e.into()))?;
            let std = std::os::unix::net::UnixListener::from(fd);
            Ok((Listener::Unix(UnixListener::from_std(std)), Some(path.clone())))
        }
        other => {
            let target = match other.listen_target() {
                Some(target) => target,
                None => {
                    let Address::Host(host, port) = other else { unreachable!("only hosts need resolving") };
                    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))
                        .map_err(&error)?
                        .next()
                        .ok_or_else(|| error(io::Error::new(io::ErrorKind::NotFound, "no addresses found")))?
                }
            };
            let family = if target.is_ipv6() { AddressFamily::INET6 } else { AddressFamily::INET };
            let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None).map_err(|e| error(e.into()))?;
            rustix::net::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| error(e.into()))?;
            if reuse_port {
                rustix::net::sockopt::set_socket_reuseport(&fd, true).map_err(|e| error(e.into()))?;
            }
            if let SocketAddr::V6(v6) = target {
                if v6.ip().is_unspecified() {
                    // One socket for IPv6 and IPv4.
                    rustix::net::sockopt::set_ipv6_v6only(&fd, false).map_err(|e| error(e.into()))?;
                }
            }
            rustix::net::bind(&fd, &target).map_err(|e| error(e.into()))?;
            rustix::net::listen(&fd, backlog).map_err(|e| error(e.into()))?;
            let std = std::net::TcpListener::from(fd);
            Ok((Listener::Tcp(TcpListener::from_std(std)), None))
        }
    }
}

/// Removes a UNIX socket file that no one listens on any more.
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(false);
    if is_socket
        && matches!(std::os::unix::net::UnixStream::connect(path), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
    {
        let _ = std::fs::remove_file(path);
    }
}

struct ServerChannel<S> {
    handler: S,
    server: Server,
    listener: Option<Listener>,
    hand_off: Option<HandOff>,
    unix_path: Option<PathBuf>,
    limit: Option<(usize, AtLimit)>,
    owe_on_listen: bool,
    closed: bool,
    poisoned: bool,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsOptions>,
    /// The server's `tracing` span, entered while the engine works on it.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl<S> Drop for ServerChannel<S> {
    fn drop(&mut self) {
        // Dropped without closing (the engine was dropped): the UNIX
        // socket's file goes with the listener.
        if let Some(path) = self.unix_path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl<S: ServerHandler> ServerChannel<S> {
    fn call<R>(&mut self, f: impl FnOnce(&mut S, &mut Server) -> R) -> Option<R> {
        self.try_call(f).ok()
    }

    /// Calls the handler, catching a panic (which closes the server): an
    /// error if it panicked now ([`StreamError::Panicked`]) or before.
    fn try_call<R>(&mut self, f: impl FnOnce(&mut S, &mut Server) -> R) -> Result<R, StreamError> {
        if self.poisoned {
            return Err(StreamError::Closed("with_server"));
        }
        let (handler, server) = (&mut self.handler, &mut self.server);
        match catch_unwind(AssertUnwindSafe(|| f(handler, server))) {
            Ok(r) => Ok(r),
            Err(panic) => {
                let message = panic_message(&*panic);
                log::error!("server {}: handler panicked, closing the server: {message}", self.server.id);
                self.poisoned = true;
                self.server.closing = Some(Closing::Close);
                Err(StreamError::Panicked(message))
            }
        }
    }

    fn accept(&mut self, engine: &Engine) {
        for _ in 0..ACCEPT_BUDGET {
            if self.server.closing.is_some() {
                return;
            }
            let full = self.limit.filter(|(limit, _)| self.server.connections.len() >= *limit);
            if let Some((_, AtLimit::Pause)) = full {
                // Accepting resumes when a connection closes (it marks the
                // server ready); peers wait in the backlog until then.
                self.server.connections.waiting.set(true);
                return;
            }
            let Some(listener) = self.listener.as_ref() else { return };
            match listener.accept() {
                Ok((socket, peer)) if self.hand_off.is_some() => {
                    self.server.accepted += 1;
                    if let Some(hand_off) = &mut self.hand_off {
                        hand_off(socket, peer);
                    }
                }
                Ok((socket, peer)) if full.is_some() => {
                    drop(socket);
                    self.server.refused += 1;
                    #[cfg(feature = "tracing")]
                    tracing::debug!(target: "pants::server", %peer, "refused: at the connection limit");
                    self.call(|h, s| h.on_refuse(s, &peer));
                }
                Ok((socket, peer)) => {
                    let Some(Some(builder)) = self.call(|h, s| h.on_accept(s, &peer)) else {
                        self.server.refused += 1;
                        #[cfg(feature = "tracing")]
                        tracing::debug!(target: "pants::server", %peer, "refused by on_accept");
                        continue;
                    };
                    self.server.accepted += 1;
                    #[cfg(feature = "tls")]
                    let builder = builder.default_tls(self.tls.as_ref());
                    if let Err(e) = builder.attach(engine, socket, Some(self.server.connections.clone())) {
                        #[cfg(feature = "tracing")]
                        tracing::warn!(target: "pants::server", %peer, error = %e, "an accepted connection could not run");
                        self.call(|h, s| h.on_error(s, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if out_of_resources(&e) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "pants::server", error = %e, "accept failed; backing off");
                    self.call(|h, s| h.on_error(s, StreamError::Accept(e)));
                    let id = self.server.id;
                    engine.defer(ACCEPT_BACKOFF, move |engine| engine.mark_ready(id));
                    return;
                }
                Err(e) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "pants::server", error = %e, "accept failed");
                    self.call(|h, s| h.on_error(s, StreamError::Accept(e)));
                }
            }
        }
        // More may be waiting: go on next iteration, after the others.
        engine.mark_ready(self.server.id);
    }

    fn settle(&mut self, engine: &Engine) {
        let Some(closing) = self.server.closing else {
            // Below the limit again: no need to hear of every close.
            if !matches!(self.limit, Some((limit, _)) if self.server.connections.len() >= limit) {
                self.server.connections.waiting.set(false);
            }
            return;
        };
        if self.closed {
            return;
        }
        self.stop_listening(engine);
        if closing == Closing::Drain && self.server.connection_count() > 0 {
            // Woken by each connection's close until the last is gone.
            self.server.connections.waiting.set(true);
            return;
        }
        self.closed = true;
        #[cfg(feature = "tracing")]
        tracing::debug!(
            target: "pants::server",
            accepted = self.server.accepted,
            refused = self.server.refused,
            "closed"
        );
        self.server.connections.waiting.set(false);
        for id in self.server.connections() {
            let _ = engine.close_stream(id, true);
        }
        self.call(|h, s| h.on_close(s));
    }

    /// Closes the listening socket (a UNIX socket's file is removed).
    fn stop_listening(&mut self, engine: &Engine) {
        if let Some(listener) = self.listener.take() {
            match listener {
                Listener::Tcp(mut l) => drop(engine.registry().deregister(&mut l)),
                Listener::Unix(mut l) => drop(engine.registry().deregister(&mut l)),
            }
        }
        if let Some(path) = self.unix_path.take() {
            let _ = std::fs::remove_file(path);
        }
    }

    fn drive(&mut self, engine: &Engine) {
        if self.owe_on_listen {
            self.owe_on_listen = false;
            #[cfg(feature = "tracing")]
            tracing::debug!(target: "pants::server", "listening");
            self.call(|h, s| h.on_listen(s));
        }
        self.accept(engine);
        self.settle(engine);
    }
}

fn out_of_resources(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

impl<S: ServerHandler> Channel for ServerChannel<S> {
    fn event(&mut self, engine: &Engine, _readiness: Readiness) {
        self.drive(engine);
    }

    fn service(&mut self, engine: &Engine) {
        self.drive(engine);
    }

    fn is_done(&self) -> bool {
        self.closed
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn write_bytes(&mut self, _engine: &Engine, _bytes: &[u8]) -> Result<(), StreamError> {
        Err(StreamError::WrongHandler(self.server.id))
    }

    fn local_address(&self) -> Option<Address> {
        self.server.local_address()
    }

    fn connections(&self) -> Option<Vec<StreamId>> {
        Some(self.server.connections())
    }

    fn is_closing(&self) -> bool {
        self.closed || self.server.closing.is_some()
    }

    fn drain(&mut self, engine: &Engine) {
        self.server.drain();
        self.settle(engine);
    }

    fn cut_off(&mut self, engine: &Engine) -> Option<u64> {
        self.server.closing = Some(Closing::Close);
        self.settle(engine);
        None
    }

    fn close(&mut self, engine: &Engine, _flush: bool) {
        self.server.closing = Some(Closing::Close);
        self.settle(engine);
    }

    fn server_counters(&self) -> Option<ServerCounters> {
        Some(self.server.counters())
    }

    #[cfg(feature = "tracing")]
    fn enter_span(&mut self) -> bool {
        self.span.with_subscriber(|(id, dispatch)| dispatch.enter(id)).is_some()
    }

    #[cfg(feature = "tracing")]
    fn exit_span(&mut self, entered: bool) {
        if entered {
            self.span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
        }
    }
}

impl Engine {
    /// The counters of server `id` (see [`ServerCounters`]);
    /// [`StreamError::WrongHandler`] for a stream (see
    /// [`counters`](Engine::counters)), [`StreamError::Busy`] from inside
    /// the server's own callbacks, which have [`Server::counters`].
    pub fn server_counters(&self, id: StreamId) -> Result<ServerCounters, StreamError> {
        self.with_channel(id, |channel, _| channel.server_counters())?.ok_or(StreamError::WrongHandler(id))
    }

    /// Runs `f` with server `id`'s handler and [`Server`] (to count or list
    /// its connections, broadcast, or close it from outside its callbacks).
    pub fn with_server<S: ServerHandler, R>(
        &self,
        id: StreamId,
        f: impl FnOnce(&mut S, &mut Server) -> R,
    ) -> Result<R, StreamError> {
        self.with_channel(id, |channel, engine| match channel.as_any().downcast_mut::<ServerChannel<S>>() {
            Some(server) => {
                let result = server.try_call(f);
                server.settle(engine);
                result
            }
            None => Err(StreamError::WrongHandler(id)),
        })?
    }
}
