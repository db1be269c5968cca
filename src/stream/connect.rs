//! Connecting: resolving a host name (on the engine's shared resolver
//! threads, see `engine::resolver`), trying each address in turn, and
//! attaching an accepted or existing socket.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use mio::Interest;

use super::core::{Core, State};
use super::socket::Socket;
#[cfg(feature = "tls")]
use super::tls_state::begin_tls;
use super::trace;
use super::Handler;
use crate::error::StreamError;
use crate::Address;

pub(super) fn register(core: &mut Core) -> io::Result<()> {
    let token = core.id.token();
    let registry = core.engine.registry();
    match core.socket.as_mut() {
        Some(socket) => registry.register(socket, token, Interest::READABLE | Interest::WRITABLE),
        None => Ok(()),
    }
}

pub(super) fn drop_socket(core: &mut Core) {
    if let Some(mut socket) = core.socket.take() {
        let _ = core.engine.registry().deregister(&mut socket);
    }
    core.readable = false;
    core.writable = false;
}

/// Starts a connection attempt (resolving first, for host names).
pub(super) fn connect<H: Handler>(core: &mut Core, address: Address) -> Result<(), StreamError> {
    core.target = address.to_string();
    trace::connecting(core);
    #[cfg(feature = "tls")]
    if core.tls_host.is_none() {
        core.tls_host = match &address {
            Address::Host(host, _) => Some(host.clone()),
            Address::Ip(addr) => Some(addr.ip().to_string()),
            Address::Port(_) => Some("127.0.0.1".to_string()),
            Address::Unix(_) => None,
        };
    }
    match address {
        Address::Unix(path) => {
            core.state = State::Connecting { next: VecDeque::new() };
            match mio::net::UnixStream::connect(&path) {
                Ok(socket) => {
                    core.socket = Some(Socket::Unix(socket));
                    if let Err(source) = register(core) {
                        // Reported like any failed connect: the stream is
                        // idle again and may connect anew.
                        fail_connect(core, source);
                    }
                }
                Err(source) => fail_connect(core, source),
            }
        }
        Address::Host(host, port) => {
            core.state = State::Resolving;
            let id = core.id;
            // On the engine's shared resolver threads; the answer comes back
            // through the loop (a thread that cannot be started is reported
            // as the lookup's error, to `on_connect_error`).
            core.engine.resolve(host.clone(), port, move |engine, result| {
                let _ = engine.with_stream::<H, _>(id, move |_, stream| resolved(&mut stream.core, host, result));
            });
        }
        other => try_next_target(core, other.connect_target().into_iter().collect()),
    }
    Ok(())
}

pub(super) fn resolved(core: &mut Core, host: String, result: io::Result<Vec<SocketAddr>>) {
    if !matches!(core.state, State::Resolving) || core.close.is_some() {
        return;
    }
    match result {
        Ok(addresses) if !addresses.is_empty() => try_next_target(core, addresses.into()),
        Ok(_) => {
            let source = io::Error::new(io::ErrorKind::NotFound, "no addresses found");
            fail_connect_with(core, StreamError::Resolve { host, source });
        }
        Err(source) => fail_connect_with(core, StreamError::Resolve { host, source }),
    }
}

/// Tries the next address of `next`; reports the last error when none is
/// left.
fn try_next_target(core: &mut Core, mut next: VecDeque<SocketAddr>) {
    let mut last = None;
    while let Some(addr) = next.pop_front() {
        match mio::net::TcpStream::connect(addr) {
            Ok(socket) => {
                core.socket = Some(Socket::Tcp(socket));
                core.target = addr.to_string();
                match register(core) {
                    Ok(()) => {
                        core.state = State::Connecting { next };
                        return;
                    }
                    Err(e) => {
                        drop_socket(core);
                        last = Some(e);
                    }
                }
            }
            Err(e) => last = Some(e),
        }
    }
    fail_connect(core, last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to connect to")));
}

/// The attempt failed: the stream is idle again, and the error is
/// reported to `on_connect_error` from the loop.
fn fail_connect(core: &mut Core, source: io::Error) {
    let error = StreamError::Connect { address: core.target.clone(), source };
    fail_connect_with(core, error);
}

fn fail_connect_with(core: &mut Core, error: StreamError) {
    drop_socket(core);
    core.state = State::Idle { failed: Some(error) };
    core.engine.mark_ready(core.id);
}

/// Checks a connection in progress after readiness.
pub(super) fn check_connect(core: &mut Core) {
    let Some(socket) = core.socket.as_ref() else { return };
    match socket.connect_result() {
        Ok(true) => {
            socket.set_nodelay();
            core.state = State::Open;
            core.owe_on_connect = true;
            trace::connected(core);
            #[cfg(feature = "tls")]
            if let Err(e) = begin_tls(core) {
                // The TLS asked for cannot run (a name that is no valid
                // server name, say): the connection cannot go on.
                core.owe_on_connect = false;
                fail_connect_with(core, StreamError::Tls(e));
                return;
            }
            core.last_read = core.engine.now();
            core.last_activity = core.last_read;
        }
        Ok(false) => {}
        Err(e) => {
            let next = match &mut core.state {
                State::Connecting { next } => std::mem::take(next),
                _ => VecDeque::new(),
            };
            if next.is_empty() {
                fail_connect(core, e);
            } else {
                log::debug!("stream {}: {} failed ({e}); trying the next address", core.id, core.target);
                trace::connect_retry(core, &e);
                drop_socket(core);
                try_next_target(core, next);
            }
        }
    }
}

/// Runs an accepted or existing connected socket.
pub(super) fn attach(
    core: &mut Core,
    socket: Socket,
    server: Option<Rc<crate::server::Connections>>,
) -> Result<(), StreamError> {
    socket.set_nodelay();
    core.socket = Some(socket);
    register(core).map_err(StreamError::Read)?;
    if let Some(server) = &server {
        server.insert(core.id);
    }
    core.server = server;
    core.state = State::Open;
    core.owe_on_connect = true;
    core.readable = true;
    core.writable = true;
    trace::connected(core);
    #[cfg(feature = "tls")]
    begin_tls(core)?;
    core.engine.mark_ready(core.id);
    Ok(())
}
