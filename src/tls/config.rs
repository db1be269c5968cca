//! TLS client and server configuration: secure by default.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::TlsError;

/// Which TLS versions to allow (both by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and TLS 1.3.
    Both,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

static TLS12_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

impl TlsVersions {
    fn list(self) -> &'static [&'static SupportedProtocolVersion] {
        match self {
            TlsVersions::Both => rustls::ALL_VERSIONS,
            TlsVersions::Tls12 => &TLS12_ONLY,
            TlsVersions::Tls13 => &TLS13_ONLY,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File { path: path.to_path_buf(), source })
}

/// Parses every certificate in a PEM document; at least one is required.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs =
        CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM document.
pub(crate) fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        other => TlsError::Pem(other.to_string()),
    })
}

fn root_store(pems: &[Vec<u8>]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    if pems.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for pem in pems {
        for cert in certificates(pem)? {
            roots.add(cert).map_err(TlsError::Rustls)?;
        }
    }
    Ok(roots)
}

/// Options for the client side of TLS (Pants' `ssl_options` for a client).
/// Certificates are verified against the Mozilla roots unless other roots
/// are given; turning verification off takes a method named `dangerous_…`.
///
/// ```
/// use pants::tls::TlsClient;
/// let tls = TlsClient::builder().alpn(&[b"h2", b"http/1.1"]).build()?;
/// # Ok::<(), pants::tls::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsClient {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: Option<ServerName<'static>>,
}

impl TlsClient {
    /// Starts building client options.
    pub fn builder() -> TlsClientBuilder {
        TlsClientBuilder::default()
    }

    /// A client with the Mozilla roots and nothing else.
    pub fn new() -> Result<Self, TlsError> {
        Self::builder().build()
    }

    /// Uses a ready rustls configuration as it is.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        TlsClient { config, server_name: None }
    }
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// Builds a [`TlsClient`].
#[derive(Default)]
pub struct TlsClientBuilder {
    roots: Vec<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    alpn: Vec<Vec<u8>>,
    server_name: Option<String>,
    versions: Option<TlsVersions>,
    no_verification: bool,
    error: Option<TlsError>,
}

impl TlsClientBuilder {
    /// Trusts the CA certificates in this PEM document instead of the
    /// Mozilla roots (may be called several times).
    pub fn root_certificates(mut self, pem: &[u8]) -> Self {
        self.roots.push(pem.to_vec());
        self
    }

    /// Like [`root_certificates`](Self::root_certificates), from a file.
    pub fn root_certificates_file(mut self, path: impl AsRef<Path>) -> Self {
        match read_file(path.as_ref()) {
            Ok(pem) => self.roots.push(pem),
            Err(e) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// Presents a client certificate: a PEM chain and its private key.
    pub fn client_certificate(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        self.client_cert = Some((chain_pem.to_vec(), key_pem.to_vec()));
        self
    }

    /// Like [`client_certificate`](Self::client_certificate), from files.
    pub fn client_certificate_files(mut self, chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        match (read_file(chain.as_ref()), read_file(key.as_ref())) {
            (Ok(chain), Ok(key)) => self.client_cert = Some((chain, key)),
            (Err(e), _) | (_, Err(e)) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// ALPN protocols to offer, in order of preference.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The name to send (SNI) and to verify the certificate against. By
    /// default, the host name the stream connects to.
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_string());
        self
    }

    /// Restricts the TLS versions.
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = Some(versions);
        self
    }

    /// Accepts any certificate from the server, without verification. This
    /// makes the connection open to anyone who can intercept it: only for
    /// tests against throw-away certificates.
    pub fn dangerous_accept_any_certificate(mut self) -> Self {
        self.no_verification = true;
        self
    }

    /// Checks everything and builds the options.
    pub fn build(self) -> Result<TlsClient, TlsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions.unwrap_or(TlsVersions::Both).list())
            .map_err(TlsError::Rustls)?;
        let builder = if self.no_verification {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(super::danger::AcceptAny(provider())))
        } else {
            builder.with_root_certificates(root_store(&self.roots)?)
        };
        let mut config = match self.client_cert {
            Some((chain, key)) => {
                builder.with_client_auth_cert(certificates(&chain)?, private_key(&key)?).map_err(TlsError::Rustls)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        let server_name = match self.server_name {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| TlsError::InvalidServerName(name))?),
            None => None,
        };
        Ok(TlsClient { config: Arc::new(config), server_name })
    }
}

/// Options for the server side of TLS: a certificate chain and its key,
/// optionally requiring client certificates.
///
/// ```no_run
/// use pants::tls::TlsServer;
/// let tls = TlsServer::builder().certificate_files("cert.pem", "key.pem").alpn(&[b"http/1.1"]).build()?;
/// # Ok::<(), pants::tls::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsServer {
    pub(crate) config: Arc<ServerConfig>,
}

impl TlsServer {
    /// Starts building server options.
    pub fn builder() -> TlsServerBuilder {
        TlsServerBuilder::default()
    }

    /// Uses a ready rustls configuration as it is.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        TlsServer { config }
    }
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

/// Builds a [`TlsServer`].
#[derive(Default)]
pub struct TlsServerBuilder {
    chain: Option<(Vec<u8>, Vec<u8>)>,
    client_roots: Vec<Vec<u8>>,
    client_optional: bool,
    alpn: Vec<Vec<u8>>,
    versions: Option<TlsVersions>,
    error: Option<TlsError>,
}

impl TlsServerBuilder {
    /// The certificate chain (leaf first) and private key, as PEM.
    pub fn certificate(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        self.chain = Some((chain_pem.to_vec(), key_pem.to_vec()));
        self
    }

    /// Like [`certificate`](Self::certificate), from files.
    pub fn certificate_files(mut self, chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        match (read_file(chain.as_ref()), read_file(key.as_ref())) {
            (Ok(chain), Ok(key)) => self.chain = Some((chain, key)),
            (Err(e), _) | (_, Err(e)) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// Requires clients to present a certificate issued by one of the CAs in
    /// this PEM document.
    pub fn require_client_certificate(mut self, ca_pem: &[u8]) -> Self {
        self.client_roots.push(ca_pem.to_vec());
        self
    }

    /// Verifies client certificates against these CAs when presented, but
    /// also accepts clients without one.
    pub fn optional_client_certificate(mut self, ca_pem: &[u8]) -> Self {
        self.client_roots.push(ca_pem.to_vec());
        self.client_optional = true;
        self
    }

    /// ALPN protocols to accept, in order of preference.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Restricts the TLS versions.
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = Some(versions);
        self
    }

    /// Checks everything and builds the options.
    pub fn build(self) -> Result<TlsServer, TlsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let (chain, key) = self.chain.ok_or(TlsError::NoCertificates)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions.unwrap_or(TlsVersions::Both).list())
            .map_err(TlsError::Rustls)?;
        let builder = if self.client_roots.is_empty() {
            builder.with_no_client_auth()
        } else {
            let roots = Arc::new(root_store(&self.client_roots)?);
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if self.client_optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Verifier(e.to_string()))?)
        };
        let mut config =
            builder.with_single_cert(certificates(&chain)?, private_key(&key)?).map_err(TlsError::Rustls)?;
        config.alpn_protocols = self.alpn;
        Ok(TlsServer { config: Arc::new(config) })
    }
}
