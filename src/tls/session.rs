//! A TLS session over a non-blocking socket: plaintext in and out, records
//! on the wire.

use std::io::{self, Read, Write};

use rustls::pki_types::ServerName;
use rustls::Connection;

use super::{TlsClient, TlsError, TlsInfo, TlsServer};

/// How much plaintext rustls may hold before `write` reports `WouldBlock`.
const PLAINTEXT_LIMIT: usize = 64 * 1024;

pub(crate) struct TlsSession {
    conn: Connection,
}

/// Wraps a TLS error as an `io::Error`, so it travels through the socket
/// I/O paths and is told apart by [`tls_error`].
fn to_io(error: TlsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The TLS error inside an `io::Error` made by this module, if any.
pub(crate) fn tls_error(error: &io::Error) -> Option<&TlsError> {
    error.get_ref()?.downcast_ref::<TlsError>()
}

impl TlsSession {
    pub(crate) fn client(options: &TlsClient, host: Option<&str>) -> Result<Self, TlsError> {
        let name = match (&options.server_name, host) {
            (Some(name), _) => name.clone(),
            (None, Some(host)) => {
                ServerName::try_from(host.to_string()).map_err(|_| TlsError::InvalidServerName(host.to_string()))?
            }
            (None, None) => return Err(TlsError::InvalidServerName(String::new())),
        };
        let mut conn = rustls::ClientConnection::new(options.config.clone(), name).map_err(TlsError::Rustls)?;
        conn.set_buffer_limit(Some(PLAINTEXT_LIMIT));
        Ok(TlsSession { conn: conn.into() })
    }

    pub(crate) fn server(options: &TlsServer) -> Result<Self, TlsError> {
        let mut conn = rustls::ServerConnection::new(options.config.clone()).map_err(TlsError::Rustls)?;
        conn.set_buffer_limit(Some(PLAINTEXT_LIMIT));
        Ok(TlsSession { conn: conn.into() })
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Sends what TLS has to send, as far as the socket takes it.
    pub(crate) fn write_records<S: Write>(&mut self, io: &mut S) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(io) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads records from the socket and processes them. `Ok(false)`: the
    /// socket reached end of stream.
    fn read_records<S: Read + Write>(&mut self, io: &mut S) -> io::Result<bool> {
        let n = loop {
            match self.conn.read_tls(io) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        let processed = self.conn.process_new_packets();
        // Send what processing produced (handshake messages, or an alert).
        match self.write_records(io) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock && processed.is_ok() => return Err(e),
            _ => {}
        }
        processed.map_err(|e| to_io(TlsError::Rustls(e)))?;
        Ok(n > 0)
    }

    /// Moves the handshake on as far as the socket allows. `Ok(true)` when
    /// it is complete.
    pub(crate) fn handshake<S: Read + Write>(&mut self, io: &mut S) -> io::Result<bool> {
        loop {
            match self.write_records(io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => other?,
            }
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            match self.read_records(io) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(to_io(TlsError::Rustls(rustls::Error::General(
                        "the peer closed the connection during the handshake".into(),
                    ))))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads plaintext. `Ok(0)` is the end of the stream.
    pub(crate) fn read<S: Read + Write>(&mut self, io: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP closed without close_notify: the end of the stream; a
                // cut-off frame is reported by the framer as truncated.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.read_records(io)? {
                // End of stream: let the reader tell clean from unclean.
                match self.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Encrypts plaintext into the session's outgoing records without any
    /// I/O (they are sent by the next flush); returns how much it took.
    pub(crate) fn encrypt(&mut self, buf: &[u8]) -> usize {
        self.conn.writer().write(buf).unwrap_or(0)
    }

    /// Writes plaintext; `WouldBlock` when TLS holds as much as it may.
    pub(crate) fn write<S: Write>(&mut self, io: &mut S, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        match self.write_records(io) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => other?,
        }
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Queues a close_notify alert (sent by the next `write_records`).
    pub(crate) fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The protocol version and cipher suite negotiated (without the
    /// copies [`info`](TlsSession::info) makes).
    #[cfg(feature = "tracing")]
    pub(crate) fn negotiated(&self) -> (Option<rustls::ProtocolVersion>, Option<rustls::CipherSuite>) {
        (self.conn.protocol_version(), self.conn.negotiated_cipher_suite().map(|s| s.suite()))
    }

    pub(crate) fn info(&self) -> TlsInfo {
        TlsInfo {
            version: self.conn.protocol_version(),
            cipher_suite: self.conn.negotiated_cipher_suite().map(|s| s.suite()),
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: self
                .conn
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        }
    }
}
