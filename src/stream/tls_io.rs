//! Reading and writing a stream's bytes through its TLS session, if any.

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;

use super::outbox::Sink;
use super::socket::Socket;
use crate::tls::TlsSession;

/// Plaintext I/O over a TLS session and its socket.
pub(crate) struct TlsIo<'a> {
    pub(crate) session: &'a mut TlsSession,
    pub(crate) socket: &'a mut Socket,
}

impl Read for TlsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.session.read(self.socket, buf)
    }
}

impl Write for TlsIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.session.write(self.socket, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.session.write_records(self.socket)
    }
}

impl Sink for TlsIo<'_> {
    fn raw_fd(&self) -> Option<BorrowedFd<'_>> {
        // Bytes must be encrypted: no sendfile.
        None
    }
}
