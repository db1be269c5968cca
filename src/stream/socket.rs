//! The socket under a stream: TCP or UNIX, non-blocking, registered with
//! mio; or an in-memory pair's end (`testing`), which mio never sees.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};

use mio::net::{TcpStream, UnixStream};
use mio::{event::Source, Interest, Registry, Token};

use super::memory::MemorySocket;
use crate::Address;

/// A connected (or connecting) stream socket.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// The stream's end of an in-memory pair (see `testing::Peer`):
    /// readiness comes from `Engine::signal`, not from mio.
    Memory(MemorySocket),
}

impl Socket {
    pub(crate) fn peer_address(&self) -> Option<Address> {
        match self {
            Socket::Tcp(s) => s.peer_addr().ok().map(Address::Ip),
            Socket::Unix(s) => s.peer_addr().ok().map(|a| unix_address(&a)),
            Socket::Memory(_) => None,
        }
    }

    pub(crate) fn local_address(&self) -> Option<Address> {
        match self {
            Socket::Tcp(s) => s.local_addr().ok().map(Address::Ip),
            Socket::Unix(s) => s.local_addr().ok().map(|a| unix_address(&a)),
            Socket::Memory(_) => None,
        }
    }

    /// The result of a non-blocking connect: `Ok(true)` connected,
    /// `Ok(false)` still in progress, `Err` failed.
    pub(crate) fn connect_result(&self) -> io::Result<bool> {
        let (error, peer) = match self {
            Socket::Tcp(s) => (s.take_error()?, s.peer_addr().map(drop)),
            Socket::Unix(s) => (s.take_error()?, s.peer_addr().map(drop)),
            Socket::Memory(_) => return Ok(true),
        };
        if let Some(e) = error {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected || e.raw_os_error() == Some(libc_einprogress()) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Unix(s) => s.shutdown(how),
            Socket::Memory(s) => s.shutdown(how),
        }
    }

    pub(crate) fn set_nodelay(&self) {
        if let Socket::Tcp(s) = self {
            // Replies are batched per loop iteration already; Nagle would
            // only add latency.
            let _ = s.set_nodelay(true);
        }
    }
}

fn libc_einprogress() -> i32 {
    rustix::io::Errno::INPROGRESS.raw_os_error()
}

fn unix_address(addr: &std::os::unix::net::SocketAddr) -> Address {
    match addr.as_pathname() {
        Some(path) => Address::Unix(path.to_path_buf()),
        None => Address::Unix(Default::default()),
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
            Socket::Memory(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
            Socket::Memory(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
            Socket::Memory(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket {
    /// The OS socket, for `sendfile`; an in-memory socket has none.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Socket::Tcp(s) => Some(s.as_fd()),
            Socket::Unix(s) => Some(s.as_fd()),
            Socket::Memory(_) => None,
        }
    }
}

impl Source for Socket {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.register(registry, token, interests),
            Socket::Unix(s) => s.register(registry, token, interests),
            Socket::Memory(_) => Ok(()),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.reregister(registry, token, interests),
            Socket::Unix(s) => s.reregister(registry, token, interests),
            Socket::Memory(_) => Ok(()),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.deregister(registry),
            Socket::Unix(s) => s.deregister(registry),
            Socket::Memory(_) => Ok(()),
        }
    }
}
