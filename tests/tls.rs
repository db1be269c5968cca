//! TLS over loopback: both orders of start_tls, server-side TLS, client
//! certificates, ALPN, verification failures, a plain-text client on a TLS
//! port, STARTTLS and its plain-text injection guard.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::Until;
use pants::tls::{TlsClient, TlsError, TlsServer, TlsVersions};
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError, StreamId};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A throw-away CA and a leaf for `localhost`/127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let (leaf_pem, leaf_key_pem) = Self::leaf(&ca, &["localhost", "127.0.0.1"]);
        Pki { ca_pem: ca.pem(), leaf_pem, leaf_key_pem, ca }
    }

    fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> TlsServer {
        TlsServer::builder().certificate(self.leaf_pem.as_bytes(), self.leaf_key_pem.as_bytes()).build().unwrap()
    }

    fn client(&self) -> TlsClient {
        TlsClient::builder().root_certificates(self.ca_pem.as_bytes()).build().unwrap()
    }
}

type Log = Rc<RefCell<Vec<String>>>;

/// Echoes lines, upper-cased, and answers STARTTLS.
struct LineServer {
    log: Log,
    tls: Option<TlsServer>,
}

impl Handler for LineServer {
    fn on_connect(&mut self, _stream: &mut Stream<Self>) {
        self.log.borrow_mut().push("server connect".into());
    }
    fn on_ssl_handshake(&mut self, stream: &mut Stream<Self>) {
        let info = stream.tls_info().unwrap();
        let alpn = info.alpn.map(|a| String::from_utf8(a).unwrap()).unwrap_or_default();
        let certs = info.peer_certificates.len();
        self.log.borrow_mut().push(format!("server handshake alpn={alpn} client_certs={certs}"));
    }
    fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
        self.log.borrow_mut().push(format!("server handshake error: {error}"));
        stream.close_now();
    }
    fn on_ssl_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
        self.log.borrow_mut().push(format!("server tls error: {error}"));
        stream.close_now();
    }
}

impl Read<Until> for LineServer {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.borrow_mut().push(format!("server read {}", String::from_utf8_lossy(line)));
        if line == b"STARTTLS" {
            stream.write(b"OK\r\n").unwrap();
            stream.start_tls(self.tls.clone().unwrap()).unwrap();
            // A second start is refused at once.
            assert!(matches!(
                stream.start_tls(self.tls.clone().unwrap()),
                Err(StreamError::Tls(TlsError::AlreadyStarted))
            ));
        } else {
            // write_now: straight to the socket in plain text (before
            // STARTTLS), encrypted and flushed over TLS.
            stream.write_now([line.to_ascii_uppercase().as_slice(), b"\r\n"].concat()).unwrap();
        }
    }
}

struct LineClient {
    log: Log,
    send: Vec<&'static str>,
    starttls: Option<TlsClient>,
}

impl Handler for LineClient {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.log.borrow_mut().push("client connect".into());
        let first = self.send.remove(0);
        stream.write(format!("{first}\r\n")).unwrap();
    }
    fn on_ssl_handshake(&mut self, stream: &mut Stream<Self>) {
        let version = stream.tls_info().unwrap().version.unwrap();
        self.log.borrow_mut().push(format!("client handshake {version:?}"));
        if self.starttls.is_some() {
            let next = self.send.remove(0);
            stream.write(format!("{next}\r\n")).unwrap();
        }
    }
    fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
        self.log.borrow_mut().push(format!("client handshake error: {error}"));
        stream.close_now();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.log.borrow_mut().push("client close".into());
    }
}

impl Read<Until> for LineClient {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.log.borrow_mut().push(format!("client read {}", String::from_utf8_lossy(line)));
        if line == b"OK" {
            stream.start_tls(self.starttls.take().unwrap()).unwrap();
            self.starttls = Some(TlsClient::new().unwrap()); // marks "STARTTLS done" for on_ssl_handshake
            return;
        }
        match self.send.is_empty() {
            true => stream.close(),
            false => {
                let next = self.send.remove(0);
                stream.write(format!("{next}\r\n")).unwrap();
            }
        }
    }
}

fn serve(engine: &Engine, log: &Log, tls: Option<TlsServer>, starttls: Option<TlsServer>) -> (StreamId, u16) {
    let server_log = log.clone();
    let builder = Server::from_fn(move |_| {
        Some(Stream::new(LineServer { log: server_log.clone(), tls: starttls.clone() }).read_delimiter(Until::crlf()))
    });
    let builder = match tls {
        Some(tls) => builder.tls(tls),
        None => builder,
    };
    let id = builder.listen(engine, "127.0.0.1:0").unwrap();
    let Address::Ip(addr) = engine.local_address(id).unwrap() else { panic!() };
    (id, addr.port())
}

fn run_until_closed(engine: &Engine, log: &Log) {
    let done = engine.run_until(Duration::from_secs(10), || log.borrow().iter().any(|l| l == "client close")).unwrap();
    assert!(done, "timed out: {:?}", log.borrow());
}

fn lines(log: &Log, prefix: &str) -> Vec<String> {
    log.borrow().iter().filter(|l| l.starts_with(prefix)).cloned().collect()
}

#[test]
fn tls_before_connect_then_on_connect() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let (_, port) = serve(&engine, &log, Some(pki.server()), None);
    let client = LineClient { log: log.clone(), send: vec!["hello", "world"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(pki.client()).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &log);
    let client = lines(&log, "client");
    assert_eq!(client[0], "client handshake TLSv1_3", "{client:?}");
    assert_eq!(client[1..], ["client connect", "client read HELLO", "client read WORLD", "client close"]);
    // The server's on_connect waits for its handshake too.
    let server = lines(&log, "server");
    assert_eq!(server[..2], ["server handshake alpn= client_certs=0", "server connect"]);
}

#[test]
fn tls12_only_works() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let tls = TlsServer::builder()
        .certificate(pki.leaf_pem.as_bytes(), pki.leaf_key_pem.as_bytes())
        .versions(TlsVersions::Tls12)
        .build()
        .unwrap();
    let (_, port) = serve(&engine, &log, Some(tls), None);
    let client = LineClient { log: log.clone(), send: vec!["a"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(pki.client()).connect(&engine, ("127.0.0.1", port)).unwrap();
    run_until_closed(&engine, &log);
    assert_eq!(lines(&log, "client")[0], "client handshake TLSv1_2");
}

#[test]
fn starttls_line_protocol() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let (_, port) = serve(&engine, &log, None, Some(pki.server()));
    let client =
        LineClient { log: log.clone(), send: vec!["plain", "STARTTLS", "secret"], starttls: Some(pki.client()) };
    Stream::new(client).read_delimiter(Until::crlf()).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &log);
    assert_eq!(
        lines(&log, "client"),
        [
            "client connect",
            "client read PLAIN",
            "client read OK",
            "client handshake TLSv1_3",
            "client read SECRET",
            "client close"
        ]
    );
    assert!(lines(&log, "server").contains(&"server handshake alpn= client_certs=0".to_string()));
}

#[test]
fn starttls_refuses_plaintext_injected_after_the_switch() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let (_, port) = serve(&engine, &log, None, Some(pki.server()));
    let peer = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The injection: a command in plain text right behind STARTTLS.
        s.write_all(b"STARTTLS\r\nINJECTED\r\n").unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    });
    engine.run_until(Duration::from_secs(10), || peer.is_finished()).unwrap();
    assert_eq!(peer.join().unwrap(), b"OK\r\n");
    let server = lines(&log, "server");
    assert!(
        server
            .contains(&"server tls error: 10 bytes arrived in plain text after the point where TLS starts".to_string()),
        "{server:?}"
    );
    assert!(!server.iter().any(|l| l.contains("INJECTED")), "{server:?}");
}

#[test]
fn client_certificates_and_alpn() {
    let pki = Pki::new();
    let (client_pem, client_key) = Pki::leaf(&pki.ca, &["client.example"]);
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let tls = TlsServer::builder()
        .certificate(pki.leaf_pem.as_bytes(), pki.leaf_key_pem.as_bytes())
        .require_client_certificate(pki.ca_pem.as_bytes())
        .alpn(&[b"pants/1", b"h2"])
        .build()
        .unwrap();
    let (_, port) = serve(&engine, &log, Some(tls), None);
    let with_cert = TlsClient::builder()
        .root_certificates(pki.ca_pem.as_bytes())
        .client_certificate(client_pem.as_bytes(), client_key.as_bytes())
        .alpn(&[b"pants/1"])
        .build()
        .unwrap();
    let client = LineClient { log: log.clone(), send: vec!["x"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(with_cert).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &log);
    assert!(lines(&log, "server").contains(&"server handshake alpn=pants/1 client_certs=1".to_string()));

    // Without a client certificate the handshake fails.
    let log2 = Log::default();
    let client = LineClient { log: log2.clone(), send: vec!["x"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(pki.client()).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &log2);
    assert!(!lines(&log2, "client").contains(&"client read X".to_string()), "{:?}", log2.borrow());
}

#[test]
fn wrong_host_name_and_untrusted_ca_fail_the_handshake() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let (_, port) = serve(&engine, &log, Some(pki.server()), None);

    let wrong_name =
        TlsClient::builder().root_certificates(pki.ca_pem.as_bytes()).server_name("example.org").build().unwrap();
    let client_log = Log::default();
    let client = LineClient { log: client_log.clone(), send: vec!["x"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(wrong_name).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &client_log);
    let client = lines(&client_log, "client");
    assert!(client[0].starts_with("client handshake error") && client[0].contains("not valid for name"), "{client:?}");
    assert!(!client.contains(&"client connect".to_string()));

    let other = Pki::new();
    let untrusted = other.client();
    let client_log = Log::default();
    let client = LineClient { log: client_log.clone(), send: vec!["x"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(untrusted).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &client_log);
    let client = lines(&client_log, "client");
    assert!(client[0].starts_with("client handshake error: invalid peer certificate"), "{client:?}");

    // The server is unaffected: a good client still gets served.
    let ok_log = Log::default();
    let client = LineClient { log: ok_log.clone(), send: vec!["still"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(pki.client()).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &ok_log);
    assert!(lines(&ok_log, "client").contains(&"client read STILL".to_string()));
}

#[test]
fn plain_text_client_on_a_tls_port() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let (_, port) = serve(&engine, &log, Some(pki.server()), None);
    let plain = Log::default();
    let client = LineClient { log: plain.clone(), send: vec!["hello"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).connect(&engine, ("127.0.0.1", port)).unwrap();
    run_until_closed(&engine, &plain);
    assert!(lines(&log, "server").iter().any(|l| l.starts_with("server handshake error")), "{:?}", log.borrow());
    assert!(!lines(&log, "server").iter().any(|l| l.starts_with("server read")));

    let ok_log = Log::default();
    let client = LineClient { log: ok_log.clone(), send: vec!["fine"], starttls: None };
    Stream::new(client).read_delimiter(Until::crlf()).tls(pki.client()).connect(&engine, ("localhost", port)).unwrap();
    run_until_closed(&engine, &ok_log);
    assert!(lines(&ok_log, "client").contains(&"client read FINE".to_string()));
}

#[test]
fn pem_errors_are_typed() {
    assert!(matches!(TlsServer::builder().build(), Err(TlsError::NoCertificates)));
    assert!(matches!(TlsServer::builder().certificate(b"", b"").build(), Err(TlsError::NoCertificates)));
    let pki = Pki::new();
    assert!(matches!(
        TlsServer::builder().certificate(pki.leaf_pem.as_bytes(), b"no key here").build(),
        Err(TlsError::NoPrivateKey)
    ));
    assert!(matches!(
        TlsServer::builder().certificate_files("/nonexistent/cert.pem", "/nonexistent/key.pem").build(),
        Err(TlsError::File { .. })
    ));
    assert!(matches!(TlsClient::builder().server_name("not a name!").build(), Err(TlsError::InvalidServerName(_))));
}

/// Logs connects and connect errors.
struct NoName {
    log: Rc<RefCell<Vec<String>>>,
}
impl Handler for NoName {
    fn on_connect(&mut self, _: &mut Stream<Self>) {
        self.log.borrow_mut().push("connect".into());
    }
    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.log.borrow_mut().push(format!("connect error: {error}"));
        assert!(!stream.is_connected());
        stream.close();
    }
    fn on_close(&mut self, _: &mut Stream<Self>) {
        self.log.borrow_mut().push("close".into());
    }
}
impl Read<Until> for NoName {
    fn on_read(&mut self, _: &mut Stream<Self, Until>, _: &[u8]) {}
}

#[test]
fn tls_that_cannot_begin_after_connecting_fails_the_connect() {
    // A UNIX socket gives no host name to verify, and none was set: the
    // session cannot begin, so the connection cannot go on (no on_connect).
    let dir = std::env::temp_dir().join(format!("pants-tls-noname-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let engine = Engine::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    Stream::new(NoName { log: log.clone() })
        .read_delimiter(Until::lf())
        .tls(TlsClient::new().unwrap())
        .connect(&engine, Address::unix(&path))
        .unwrap();
    assert!(engine.run_until(Duration::from_secs(10), || log.borrow().iter().any(|e| e == "close")).unwrap());
    let events = log.borrow().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("connect error: ") && events[0].contains("server name"), "{events:?}");
    assert_eq!(events[1], "close");
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
