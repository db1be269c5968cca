//! An in-memory socket: the stream's end of a pair whose other end is a
//! test's [`Peer`](crate::testing::Peer). Bytes move through shared queues,
//! and readiness reaches the engine through `Engine::signal` instead of
//! the OS, so every other part of the stream (framing, writes, closing,
//! timeouts) is the code that runs over real sockets.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the two ends share.
#[derive(Default)]
pub(crate) struct Pipe {
    /// Sent by the peer, not yet read by the stream.
    pub(crate) inbound: VecDeque<u8>,
    /// Written by the stream, not yet taken by the peer.
    pub(crate) outbound: Vec<u8>,
    /// How many untaken bytes `outbound` may hold before writes block
    /// (`None`: no limit).
    pub(crate) capacity: Option<usize>,
    /// The peer sent its end of stream: reads return 0 once `inbound` is
    /// empty.
    pub(crate) peer_closed: bool,
    /// The peer reset the connection: reads and writes fail.
    pub(crate) reset: bool,
    /// The stream shut down its writing side.
    pub(crate) write_shutdown: bool,
    /// The stream shut down its reading side.
    pub(crate) read_shutdown: bool,
    /// The stream's socket was dropped.
    pub(crate) dropped: bool,
    /// A write found `outbound` full: the peer taking bytes makes the
    /// stream writable again.
    pub(crate) write_blocked: bool,
}

/// The pipe, shared by the two ends. Behind a mutex only because a
/// `Socket` must be `Send` (workers hand accepted sockets between threads):
/// both ends are used on the engine's thread.
#[derive(Clone, Default)]
pub(crate) struct SharedPipe(Arc<Mutex<Pipe>>);

impl SharedPipe {
    /// The pipe (a panic while it was locked leaves it usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pipe> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The stream's end of an in-memory pair.
pub(crate) struct MemorySocket {
    pipe: SharedPipe,
}

impl MemorySocket {
    pub(crate) fn new(pipe: SharedPipe) -> Self {
        MemorySocket { pipe }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let mut pipe = self.pipe.lock();
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            pipe.write_shutdown = true;
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            pipe.read_shutdown = true;
        }
        Ok(())
    }
}

impl Read for MemorySocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut pipe = self.pipe.lock();
        if pipe.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if pipe.read_shutdown {
            return Ok(0);
        }
        if pipe.inbound.is_empty() {
            return if pipe.peer_closed { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        pipe.inbound.read(buf)
    }
}

impl Write for MemorySocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut pipe = self.pipe.lock();
        if pipe.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if pipe.write_shutdown {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        let room = pipe.capacity.map_or(usize::MAX, |capacity| capacity.saturating_sub(pipe.outbound.len()));
        if room == 0 {
            pipe.write_blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut left = room.min(total);
        let written = left;
        for buf in bufs {
            let n = buf.len().min(left);
            pipe.outbound.extend_from_slice(&buf[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for MemorySocket {
    fn drop(&mut self) {
        let mut pipe = self.pipe.lock();
        pipe.dropped = true;
    }
}

impl fmt::Debug for MemorySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pipe = self.pipe.lock();
        f.debug_struct("MemorySocket")
            .field("inbound", &pipe.inbound.len())
            .field("outbound", &pipe.outbound.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket() -> (MemorySocket, SharedPipe) {
        let pipe = SharedPipe::default();
        (MemorySocket::new(pipe.clone()), pipe)
    }

    #[test]
    fn reads_block_until_bytes_arrive_then_end_at_the_peers_close() {
        let (mut socket, pipe) = socket();
        let mut buf = [0u8; 4];
        assert_eq!(socket.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        pipe.lock().inbound.extend(b"abcdef");
        assert_eq!(socket.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        pipe.lock().peer_closed = true;
        assert_eq!(socket.read(&mut buf).unwrap(), 2, "bytes before the end of stream come first");
        assert_eq!(socket.read(&mut buf).unwrap(), 0);
        pipe.lock().reset = true;
        assert_eq!(socket.read(&mut buf).unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn writes_take_what_the_capacity_allows_across_slices() {
        let (mut socket, pipe) = socket();
        pipe.lock().capacity = Some(5);
        let n = socket.write_vectored(&[IoSlice::new(b"abc"), IoSlice::new(b""), IoSlice::new(b"defg")]).unwrap();
        assert_eq!(n, 5);
        assert_eq!(pipe.lock().outbound, b"abcde");
        assert_eq!(socket.write(b"x").unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert!(pipe.lock().write_blocked);
        pipe.lock().outbound.clear();
        assert_eq!(socket.write(b"fg").unwrap(), 2);
        assert_eq!(socket.write(b"").unwrap(), 0);
        socket.shutdown(Shutdown::Write).unwrap();
        assert_eq!(socket.write(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        drop(socket);
        let pipe = pipe.lock();
        assert!(pipe.dropped && pipe.write_shutdown);
    }
}
