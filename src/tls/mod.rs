//! TLS on streams and servers, with `rustls` (and its `ring` provider).
//!
//! A stream starts TLS before it connects (the handshake runs first, then
//! `on_ssl_handshake`, then `on_connect`) or after (STARTTLS: TLS begins once
//! everything queued before it has been sent in plain text). A server given
//! [`TlsServer`] options runs TLS on every connection it accepts.
//! Certificates are verified by default, against the Mozilla roots.
//!
//! ```no_run
//! use pants::tls::TlsClient;
//! use pants::{delimiter::Until, Engine, Handler, Read, Stream};
//!
//! struct Https;
//! impl Handler for Https {
//!     fn on_connect(&mut self, stream: &mut Stream<Self>) {
//!         let _ = stream.write(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
//!     }
//! }
//! impl Read<Until> for Https {
//!     fn on_read(&mut self, _stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         println!("{}", String::from_utf8_lossy(line));
//!     }
//! }
//!
//! let engine = Engine::new()?;
//! Stream::new(Https)
//!     .read_delimiter(Until::crlf())
//!     .tls(TlsClient::new()?)
//!     .connect(&engine, "example.com:443")?;
//! engine.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod danger;
mod session;

use std::path::PathBuf;

pub use config::{TlsClient, TlsClientBuilder, TlsServer, TlsServerBuilder, TlsVersions};
pub(crate) use session::{tls_error, TlsSession};

pub use rustls::pki_types::CertificateDer;
pub use rustls::{CipherSuite, ProtocolVersion};

/// What went wrong with TLS: configuration, a handshake, or a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("could not read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM document is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// No certificate where one is required.
    #[error("no certificate found in the PEM document")]
    NoCertificates,
    /// No private key where one is required.
    #[error("no private key found in the PEM document")]
    NoPrivateKey,
    /// Not a valid DNS name or IP address for SNI and verification.
    #[error("invalid server name {0:?}")]
    InvalidServerName(String),
    /// The client-certificate verifier could not be built.
    #[error("client certificate verification: {0}")]
    Verifier(String),
    /// rustls refused a configuration or a peer (a bad certificate, a
    /// protocol error, plain text on a TLS connection...).
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// TLS was started twice on a stream.
    #[error("TLS is already started on this stream")]
    AlreadyStarted,
    /// Bytes the peer sent in plain text after the point where TLS starts
    /// (a STARTTLS injection attempt, CVE-2011-0411): they are never handed
    /// to the handler as if they came through TLS.
    #[error("{0} bytes arrived in plain text after the point where TLS starts")]
    PlaintextAfterStartTls(usize),
}

/// What a TLS session negotiated; see
/// [`Stream::tls_info`](crate::Stream::tls_info).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version.
    pub version: Option<ProtocolVersion>,
    /// The cipher suite.
    pub cipher_suite: Option<CipherSuite>,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<Vec<u8>>,
    /// The peer's certificate chain (leaf first), if it sent one.
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

/// TLS options for a stream: the client or server side.
#[derive(Debug, Clone)]
pub enum TlsOptions {
    /// Connect as a TLS client.
    Client(TlsClient),
    /// Accept as a TLS server.
    Server(TlsServer),
}

impl From<TlsClient> for TlsOptions {
    fn from(options: TlsClient) -> Self {
        TlsOptions::Client(options)
    }
}

impl From<TlsServer> for TlsOptions {
    fn from(options: TlsServer) -> Self {
        TlsOptions::Server(options)
    }
}
