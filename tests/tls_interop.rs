//! TLS interop with a real, independent implementation: OpenSSL's command-line
//! tools, not only pants against itself.
//!
//! - our `TlsClient` against `openssl s_server -rev` (it sends each line back
//!   reversed) with TLS 1.2 and TLS 1.3: data both ways, the negotiated
//!   version through `tls_info`, and the server's close_notify seen as a clean
//!   end of stream;
//! - our client against `openssl s_server` in plain mode: a line each way,
//!   then our `close()` must reach s_server as a close_notify (it prints
//!   `DONE`; an unclean end prints `ERROR`);
//! - `openssl s_client` against our TLS server, TLS 1.2 and TLS 1.3 (with a
//!   KeyUpdate asked of our server in 1.3): data both ways, the protocol
//!   s_client reports, certificate verification, and our `close()` seen by
//!   s_client as a clean TLS close (it prints `closed` and exits 0; a close
//!   without close_notify makes it print `unexpected eof while reading` and
//!   exit 1);
//! - `write_file` under TLS (the read-and-encrypt fallback, as `sendfile`
//!   cannot encrypt) followed at once by `close()`: a multi-MiB file reaches
//!   s_client (a slow reader, so that our side blocks) and our own client
//!   byte for byte, ended by a close_notify;
//! - `write_file` and `write_vec` then `close()` to a tokio-rustls reader
//!   that is slow and has small socket buffers (so that TLS still holds
//!   records when the queue drains): every byte, then close_notify
//!   (tokio-rustls reports a missing close_notify as an error).
//!
//! Needs the `openssl` binary (Debian/Ubuntu package `openssl`). Every child
//! process is killed when its guard drops (also when a test fails) and every
//! wait is bounded.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pants::delimiter::{Raw, Until};
use pants::tls::{ProtocolVersion, TlsClient, TlsError, TlsInfo, TlsServer};
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair};

/// How long any one wait may take.
const TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Certificates, files, ports
// ---------------------------------------------------------------------------

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("pants-tls-interop-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().expect("UTF-8 temp path").to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throw-away CA and a leaf for `localhost`/127.0.0.1 signed by it, written
/// to `ca.pem`, `leaf.pem` and `key.pem` in a temporary directory.
struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    leaf_pem: String,
    leaf_der: Vec<u8>,
    key_pem: String,
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL takes a leaf whose issuer name equals its
        // subject name (rcgen's default for both) for a self-signed one.
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "pants interop test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let leaf = params.signed_by(&key, &ca).unwrap();
        let pki = Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            leaf_pem: leaf.pem(),
            leaf_der: leaf.der().to_vec(),
            key_pem: key.serialize_pem(),
            dir: TempDir::new(),
        };
        std::fs::write(pki.dir.path("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(pki.dir.path("leaf.pem"), &pki.leaf_pem).unwrap();
        std::fs::write(pki.dir.path("key.pem"), &pki.key_pem).unwrap();
        pki
    }

    fn server(&self) -> TlsServer {
        TlsServer::builder().certificate(self.leaf_pem.as_bytes(), self.key_pem.as_bytes()).build().unwrap()
    }

    /// Trusts only our CA; verifies the name `localhost` (we connect to
    /// 127.0.0.1, where s_server listens).
    fn client(&self) -> TlsClient {
        TlsClient::builder().root_certificates_file(self.dir.path("ca.pem")).server_name("localhost").build().unwrap()
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Deterministic bytes that do not repeat within a file (so that a lost,
/// repeated or reordered piece is noticed).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------
// openssl child processes
// ---------------------------------------------------------------------------

/// The `openssl` binary, or a failure that names the package to install.
fn openssl() -> &'static str {
    match Command::new("openssl").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(status) if status.success() => "openssl",
        Ok(status) => panic!("`openssl version` failed ({status}): reinstall the apt package `openssl`"),
        Err(e) => panic!(
            "the `openssl` command is needed for the TLS interop tests ({e}): install the apt package `openssl` \
             (apt-get install openssl)"
        ),
    }
}

/// A running openssl child: its output collected by threads, killed on drop.
struct Child {
    name: String,
    child: RefCell<std::process::Child>,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout_done: Arc<Mutex<bool>>,
}

fn collect(mut from: impl std::io::Read + Send + 'static, delay: Duration) -> (Arc<Mutex<Vec<u8>>>, Arc<Mutex<bool>>) {
    let into = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(false));
    let (buffer, finished) = (into.clone(), done.clone());
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut chunk = vec![0; 64 * 1024];
        loop {
            match from.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        *finished.lock().unwrap() = true;
    });
    (into, done)
}

impl Child {
    /// Starts `openssl args...`. Its stdout is read only after
    /// `stdout_delay` (a slow reader: the pipe fills and openssl stops
    /// reading its socket).
    fn spawn(args: &[&str], stdout_delay: Duration) -> Child {
        let mut child = Command::new(openssl())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start openssl {args:?} ({e}): install the apt package `openssl`"));
        let (stdout, stdout_done) = collect(child.stdout.take().unwrap(), stdout_delay);
        let (stderr, _) = collect(child.stderr.take().unwrap(), Duration::ZERO);
        let stdin = child.stdin.take();
        Child {
            name: format!("openssl {}", args.join(" ")),
            stdin,
            child: RefCell::new(child),
            stdout,
            stderr,
            stdout_done,
        }
    }

    fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout()).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn stdout_has(&self, needle: &str) -> bool {
        self.stdout_text().contains(needle)
    }

    fn stdout_closed(&self) -> bool {
        *self.stdout_done.lock().unwrap()
    }

    /// What it printed, for failure messages (long outputs shortened).
    fn describe(&self) -> String {
        let short = |s: String| {
            if s.len() > 6000 {
                format!("{}\n[... {} bytes ...]\n{}", &s[..3000], s.len() - 6000, &s[s.len() - 3000..])
            } else {
                s
            }
        };
        format!(
            "`{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            short(self.stdout_text()),
            short(self.stderr_text())
        )
    }

    /// Writes to its stdin.
    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (sleeping, no engine) until stdout contains `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.stdout_has(needle) {
            if let Some(status) = self.exited() {
                // Give the reader thread a moment for the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                assert!(self.stdout_has(needle), "exited ({status}) before printing {needle:?}: {}", self.describe());
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {needle:?}: {}", self.describe());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its exit status, once it has exited (`None` while running).
    fn exited(&self) -> Option<ExitStatus> {
        self.child.borrow_mut().try_wait().unwrap()
    }

    /// Waits, bounded, for it to exit.
    fn wait_exit(&self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for exit: {}", self.describe());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let child = self.child.get_mut();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `openssl s_server` on a free port with our leaf certificate, once it
/// accepts. `mode` is e.g. `["-rev"]`; `version` `-tls1_2` or `-tls1_3`.
fn s_server(pki: &Pki, version: &str, mode: &[&str]) -> (Child, u16) {
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let (cert, key) = (pki.dir.arg("leaf.pem"), pki.dir.arg("key.pem"));
    let mut args = vec!["s_server", "-accept", &accept, "-cert", &cert, "-key", &key, version];
    args.extend_from_slice(mode);
    let server = Child::spawn(&args, Duration::ZERO);
    server.wait_for("ACCEPT");
    (server, port)
}

// ---------------------------------------------------------------------------
// Our handlers
// ---------------------------------------------------------------------------

/// What a handler saw, shared with the test.
#[derive(Default)]
struct Seen {
    info: Option<TlsInfo>,
    lines: Vec<String>,
    bytes: Vec<u8>,
    errors: Vec<String>,
    connected: bool,
    closed: bool,
}

type Shared = Rc<RefCell<Seen>>;

fn record_errors<H: Handler>(seen: &Shared, stream: &mut Stream<H>, what: String) {
    seen.borrow_mut().errors.push(what);
    stream.close_now();
}

macro_rules! error_callbacks {
    () => {
        fn on_ssl_handshake(&mut self, stream: &mut Stream<Self>) {
            self.seen.borrow_mut().info = stream.tls_info();
        }
        fn on_connect(&mut self, stream: &mut Stream<Self>) {
            self.seen.borrow_mut().connected = true;
            self.connected(stream);
        }
        fn on_close(&mut self, _stream: &mut Stream<Self>) {
            self.seen.borrow_mut().closed = true;
        }
        fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
            record_errors(&self.seen, stream, format!("connect error: {error}"));
        }
        fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
            record_errors(&self.seen, stream, format!("error: {error}"));
        }
        fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
            record_errors(&self.seen, stream, format!("handshake error: {error}"));
        }
        fn on_ssl_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
            record_errors(&self.seen, stream, format!("TLS error: {error}"));
        }
    };
}

/// A line client: sends `first` on connect; after `then_after` lines have
/// come back, sends `then` (or closes, if `then` is `None`).
struct LineClient {
    seen: Shared,
    first: Vec<u8>,
    then_after: usize,
    then: Option<Vec<u8>>,
}

impl LineClient {
    fn connected(&mut self, stream: &mut Stream<Self>) {
        stream.write(&self.first).unwrap();
    }
}

impl Handler for LineClient {
    error_callbacks!();
}

impl Read<Until> for LineClient {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let count = {
            let mut seen = self.seen.borrow_mut();
            seen.lines.push(String::from_utf8_lossy(line).into_owned());
            seen.lines.len()
        };
        if count == self.then_after {
            match self.then.take() {
                Some(bytes) => stream.write(bytes).unwrap(),
                None => stream.close(),
            }
        }
    }
}

/// A line server: answers each line upper-cased; `bye` gets `GOODBYE` and a
/// (flushing) close.
struct UpperServer {
    seen: Shared,
}

impl UpperServer {
    fn connected(&mut self, _stream: &mut Stream<Self>) {}
}

impl Handler for UpperServer {
    error_callbacks!();
}

impl Read<Until> for UpperServer {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.seen.borrow_mut().lines.push(String::from_utf8_lossy(line).into_owned());
        if line == b"bye" {
            stream.write(b"GOODBYE\n").unwrap();
            stream.close();
        } else {
            stream.write([line.to_ascii_uppercase().as_slice(), b"\n"].concat()).unwrap();
        }
    }
}

/// What [`FileServer`] sends.
#[derive(Clone)]
enum Payload {
    /// A file, with `write_file`.
    File(PathBuf),
    /// Bytes, with `write_vec`.
    Bytes(Vec<u8>),
}

/// A file server: sends its payload and closes at once (the close waits
/// for the queue to drain).
struct FileServer {
    seen: Shared,
    payload: Payload,
}

impl FileServer {
    fn connected(&mut self, stream: &mut Stream<Self>) {
        match &self.payload {
            Payload::File(path) => {
                let file = std::fs::File::open(path).unwrap();
                stream.write_file(&file, 0, 0).unwrap();
            }
            Payload::Bytes(bytes) => stream.write_vec(bytes.clone()).unwrap(),
        }
        stream.close();
    }
}

impl Handler for FileServer {
    error_callbacks!();
}

impl Read<Raw> for FileServer {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.seen.borrow_mut().bytes.extend_from_slice(data);
    }
}

/// A client that keeps every byte it receives.
struct SinkClient {
    seen: Shared,
}

impl SinkClient {
    fn connected(&mut self, _stream: &mut Stream<Self>) {}
}

impl Handler for SinkClient {
    error_callbacks!();
}

impl Read<Raw> for SinkClient {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.seen.borrow_mut().bytes.extend_from_slice(data);
    }
}

fn listen<H, D>(engine: &Engine, tls: TlsServer, make: impl Fn() -> pants::StreamBuilder<H, D> + 'static) -> u16
where
    H: Handler + Read<D>,
    D: pants::Delimiter + 'static,
{
    let id = Server::from_fn(move |_| Some(make())).tls(tls).listen(engine, "127.0.0.1:0").unwrap();
    let Address::Ip(addr) = engine.local_address(id).unwrap() else { panic!("no TCP address") };
    addr.port()
}

fn run_until(engine: &Engine, what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let ok = engine.run_until(TIMEOUT, &mut done).unwrap();
    assert!(ok, "timed out waiting for {what}: {}", context());
}

// ---------------------------------------------------------------------------
// (a) our client against openssl s_server
// ---------------------------------------------------------------------------

fn client_against_s_server_rev(version_flag: &str, expected: ProtocolVersion) {
    let pki = Pki::new();
    let (server, port) = s_server(&pki, version_flag, &["-rev"]);
    let engine = Engine::new().unwrap();
    let seen = Shared::default();
    let long: String = (0..5000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let lines = ["hello pants", "a second line", long.as_str()];
    let first: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // After the three answers, CLOSE makes s_server send close_notify and
    // close the connection.
    let client =
        LineClient { seen: seen.clone(), first: first.into_bytes(), then_after: 3, then: Some(b"CLOSE\n".to_vec()) };
    Stream::new(client).read_delimiter(Until::lf()).tls(pki.client()).connect(&engine, ("127.0.0.1", port)).unwrap();
    run_until(
        &engine,
        "the client to close",
        || seen.borrow().closed,
        || format!("errors {:?}, lines {:?}\n{}", seen.borrow().errors, seen.borrow().lines, server.describe()),
    );

    let seen = seen.borrow();
    assert!(seen.errors.is_empty(), "{:?}\n{}", seen.errors, server.describe());
    assert!(seen.connected);
    let reversed: Vec<String> = lines.iter().map(|l| l.chars().rev().collect()).collect();
    assert_eq!(seen.lines.len(), 3, "{:?}", seen.lines);
    assert_eq!(seen.lines, reversed);
    let info = seen.info.as_ref().expect("tls_info after the handshake");
    assert_eq!(info.version, Some(expected));
    assert!(info.cipher_suite.is_some());
    assert_eq!(info.peer_certificates.len(), 1, "s_server sends the leaf only");
    assert_eq!(info.peer_certificates[0].as_ref(), pki.leaf_der.as_slice());
    // s_server agrees on the version (its -rev mode prints the summary on
    // stderr), and saw its CLOSE.
    let wanted = format!("Protocol version: {}", version_name(expected));
    let printed = || format!("{}{}", server.stdout_text(), server.stderr_text());
    let deadline = Instant::now() + TIMEOUT;
    while !(printed().contains(&wanted) && printed().contains("CONNECTION CLOSED")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(printed().contains(&wanted), "{}", server.describe());
    assert!(printed().contains("CONNECTION CLOSED"), "{}", server.describe());
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn our_client_against_s_server_tls12() {
    client_against_s_server_rev("-tls1_2", ProtocolVersion::TLSv1_2);
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn our_client_against_s_server_tls13() {
    client_against_s_server_rev("-tls1_3", ProtocolVersion::TLSv1_3);
}

/// s_server in plain mode prints what the client sends and sends what is
/// written to its stdin; when the client ends with close_notify it prints
/// `DONE`, when the connection just ends, `ERROR`.
fn client_close_reaches_s_server(version_flag: &str, expected: ProtocolVersion) {
    let pki = Pki::new();
    let (mut server, port) = s_server(&pki, version_flag, &["-naccept", "1"]);
    let engine = Engine::new().unwrap();
    let seen = Shared::default();
    // Closes (flushing) after the first line from s_server.
    let client = LineClient { seen: seen.clone(), first: b"from pants\n".to_vec(), then_after: 1, then: None };
    Stream::new(client).read_delimiter(Until::lf()).tls(pki.client()).connect(&engine, ("127.0.0.1", port)).unwrap();
    run_until(
        &engine,
        "s_server to print our line",
        || server.stdout_has("from pants\n"),
        || format!("{:?}\n{}", seen.borrow().errors, server.describe()),
    );
    server.send("from openssl\n");
    run_until(&engine, "our client to close", || seen.borrow().closed, || server.describe());
    {
        let seen = seen.borrow();
        assert!(seen.errors.is_empty(), "{:?}\n{}", seen.errors, server.describe());
        assert_eq!(seen.lines, ["from openssl"]);
        assert_eq!(seen.info.as_ref().unwrap().version, Some(expected));
    }
    // Keep the engine turning while s_server takes our close_notify (the
    // closed stream lingers for s_server's end of stream).
    run_until(
        &engine,
        "s_server to see the end of the connection",
        || server.stdout_has("DONE") || server.stdout_has("ERROR"),
        || server.describe(),
    );
    assert!(server.stdout_has("DONE\n") && !server.stdout_has("ERROR"), "no clean close_notify: {}", server.describe());
    assert!(server.wait_exit().success(), "{}", server.describe());
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn our_close_sends_close_notify_to_s_server_tls12() {
    client_close_reaches_s_server("-tls1_2", ProtocolVersion::TLSv1_2);
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn our_close_sends_close_notify_to_s_server_tls13() {
    client_close_reaches_s_server("-tls1_3", ProtocolVersion::TLSv1_3);
}

// ---------------------------------------------------------------------------
// (b) openssl s_client against our server; (d) our close
// ---------------------------------------------------------------------------

fn s_client(pki: &Pki, port: u16, extra: &[&str], stdout_delay: Duration) -> Child {
    let connect = format!("127.0.0.1:{port}");
    let ca = pki.dir.arg("ca.pem");
    let mut args =
        vec!["s_client", "-connect", &connect, "-CAfile", &ca, "-servername", "localhost", "-verify_return_error"];
    args.extend_from_slice(extra);
    Child::spawn(&args, stdout_delay)
}

fn s_client_against_our_server(version_flag: &str, expected: ProtocolVersion) {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let seen = Shared::default();
    let server_seen = seen.clone();
    let port = listen(&engine, pki.server(), move || {
        Stream::new(UpperServer { seen: server_seen.clone() }).read_delimiter(Until::lf())
    });
    // Not -quiet: s_client prints the session (protocol, verification) and
    // `closed` when the server's close_notify arrives. Lines starting with
    // Q, R, K or k are s_client commands, not data.
    let mut client = s_client(&pki, port, &[version_flag], Duration::ZERO);
    let context =
        |client: &Child, seen: &Shared| format!("server errors {:?}\n{}", seen.borrow().errors, client.describe());

    client.send("hello from s_client\n");
    run_until(&engine, "the first answer", || client.stdout_has("HELLO FROM S_CLIENT\n"), || context(&client, &seen));
    if expected == ProtocolVersion::TLSv1_3 {
        // `K`: s_client sends a KeyUpdate asking us to update our keys too;
        // the next answer comes under our new keys.
        // s_client drops the rest of what it read with a command: wait for
        // it to take the command before sending the next line.
        client.send("K\n");
        run_until(
            &engine,
            "s_client's KeyUpdate",
            || client.stderr_text().contains("KEYUPDATE"),
            || context(&client, &seen),
        );
        client.send("after the key update\n");
        run_until(
            &engine,
            "the answer after KeyUpdate",
            || client.stdout_has("AFTER THE KEY UPDATE\n"),
            || context(&client, &seen),
        );
    }
    client.send("bye\n");
    run_until(
        &engine,
        "s_client to exit",
        || client.stdout_closed() && client.exited().is_some(),
        || context(&client, &seen),
    );
    let status = client.wait_exit();
    let out = client.stdout_text();
    let err = client.stderr_text();
    let describe = context(&client, &seen);
    assert!(seen.borrow().errors.is_empty(), "{describe}");
    assert!(out.contains("GOODBYE\n"), "{describe}");
    assert!(out.contains(&format!("Protocol  : {}", version_name(expected))), "{describe}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{describe}");
    // Our close() sent close_notify: s_client reports a clean close.
    assert!(out.contains("\nclosed\n"), "no close_notify seen: {describe}");
    assert!(!err.contains("unexpected eof"), "{describe}");
    assert!(status.success(), "{status}: {describe}");
    let seen = seen.borrow();
    assert_eq!(seen.info.as_ref().unwrap().version, Some(expected));
    let mut lines = vec!["hello from s_client"];
    if expected == ProtocolVersion::TLSv1_3 {
        lines.push("after the key update");
    }
    lines.push("bye");
    assert_eq!(seen.lines, lines, "{describe}");
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn s_client_against_our_server_tls12() {
    s_client_against_our_server("-tls1_2", ProtocolVersion::TLSv1_2);
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn s_client_against_our_server_tls13_with_key_update() {
    s_client_against_our_server("-tls1_3", ProtocolVersion::TLSv1_3);
}

// ---------------------------------------------------------------------------
// (c) write_file over TLS, then close
// ---------------------------------------------------------------------------

/// 4 MiB and an odd tail: several 1 MiB file pieces and 64 KiB copy pieces,
/// the last one short.
const FILE_LEN: usize = 4 * 1024 * 1024 + 12_345;

fn file_server(engine: &Engine, pki: &Pki, seen: &Shared) -> (u16, Vec<u8>) {
    let content = pattern(FILE_LEN);
    let path = pki.dir.path("payload.bin");
    std::fs::write(&path, &content).unwrap();
    let server_seen = seen.clone();
    let port = listen(engine, pki.server(), move || {
        Stream::new(FileServer { seen: server_seen.clone(), payload: Payload::File(path.clone()) })
    });
    (port, content)
}

fn write_file_to_s_client(version_flag: &str) {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let seen = Shared::default();
    let (port, content) = file_server(&engine, &pki, &seen);
    // -quiet: stdout is the data alone. Its stdout is read only after a
    // while, so s_client stops reading its socket and our side blocks with
    // most of the file still queued.
    let client = s_client(&pki, port, &[version_flag, "-quiet"], Duration::from_millis(700));
    run_until(
        &engine,
        "s_client to exit",
        || client.stdout_closed() && client.exited().is_some(),
        || format!("received {} of {} bytes\n{}", client.stdout().len(), content.len(), client.describe()),
    );
    let status = client.wait_exit();
    let got = client.stdout();
    let err = client.stderr_text();
    let summary = format!(
        "received {} of {} bytes, status {status}, server errors {:?}, stderr:\n{err}",
        got.len(),
        content.len(),
        seen.borrow().errors
    );
    assert!(seen.borrow().errors.is_empty(), "{summary}");
    if got != content {
        let first_difference =
            got.iter().zip(&content).position(|(a, b)| a != b).unwrap_or(got.len().min(content.len()));
        panic!("the file arrived damaged (first difference at byte {first_difference}): {summary}");
    }
    // Ended by our close_notify, not by a bare TCP close.
    assert!(!err.contains("unexpected eof"), "{summary}");
    assert!(status.success(), "{summary}");
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn write_file_over_tls12_to_s_client() {
    write_file_to_s_client("-tls1_2");
}

#[test]
#[ignore = "needs the openssl command: `cargo test --test tls_interop -- --ignored`; CI runs it"]
fn write_file_over_tls13_to_s_client() {
    write_file_to_s_client("-tls1_3");
}

#[test]
fn write_file_over_tls_to_our_client() {
    let pki = Pki::new();
    let engine = Engine::new().unwrap();
    let server_seen = Shared::default();
    let (port, content) = file_server(&engine, &pki, &server_seen);
    let seen = Shared::default();
    Stream::new(SinkClient { seen: seen.clone() }).tls(pki.client()).connect(&engine, ("127.0.0.1", port)).unwrap();
    run_until(
        &engine,
        "the client to close",
        || seen.borrow().closed,
        || format!("received {} bytes, errors {:?}", seen.borrow().bytes.len(), seen.borrow().errors),
    );
    let seen = seen.borrow();
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(server_seen.borrow().errors.is_empty(), "{:?}", server_seen.borrow().errors);
    assert_eq!(seen.bytes.len(), content.len());
    assert!(seen.bytes == content, "the file arrived damaged");
    assert_eq!(seen.info.as_ref().unwrap().version, Some(ProtocolVersion::TLSv1_3));
}

/// A slow reader, and small socket buffers on both sides: our side blocks
/// again and again, also while TLS still holds records of the last piece
/// after the queue has drained. `close()` must still send them all, then
/// close_notify. tokio-rustls reports a close without close_notify as an
/// error, so a lost tail cannot pass unnoticed.
fn close_after_sending_to_a_slow_reader(use_file: bool) {
    use tokio::io::AsyncReadExt as _;
    use tokio_rustls::rustls;

    let pki = Pki::new();
    let content = pattern(FILE_LEN);
    let path = pki.dir.path("payload.bin");
    std::fs::write(&path, &content).unwrap();
    let payload = if use_file { Payload::File(path) } else { Payload::Bytes(content.clone()) };

    // Our server's socket comes from a listener with a small, fixed send
    // buffer (accepted sockets inherit it; Linux then stops auto-tuning it),
    // and is attached to the engine as a TLS server stream.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let listener = {
        let _context = runtime.enter();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(16 * 1024).unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        socket.listen(4).unwrap().into_std().unwrap()
    };
    let port = listener.local_addr().unwrap().port();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(pki.ca_der.clone())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        runtime.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket.set_recv_buffer_size(4096).map_err(|e| e.to_string())?;
            let tcp = socket.connect(([127, 0, 0, 1], port).into()).await.map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            // Read slowly, so that our server keeps blocking to the end.
            let mut got = Vec::new();
            let mut chunk = vec![0; 16 * 1024];
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) => return Ok(got),
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) => return Err(format!("{e} after {} of {FILE_LEN} bytes", got.len())),
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    });

    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let tcp = loop {
        match listener.accept() {
            Ok((tcp, _)) => break tcp,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    tcp.set_nonblocking(true).unwrap();
    let engine = Engine::new().unwrap();
    let seen = Shared::default();
    Stream::new(FileServer { seen: seen.clone(), payload }).tls(pki.server()).attach_tcp(&engine, tcp).unwrap();
    // Dropping the engine (on failure) closes the server's socket, which
    // ends the client's read.
    run_until(&engine, "the client to finish", || client.is_finished(), || format!("{:?}", seen.borrow().errors));
    let got = client.join().unwrap().unwrap_or_else(|e| panic!("server errors {:?}: {e}", seen.borrow().errors));
    assert!(seen.borrow().errors.is_empty(), "{:?}", seen.borrow().errors);
    assert_eq!(got.len(), content.len());
    assert!(got == content, "the file arrived damaged");
}

#[test]
fn write_file_then_close_to_a_slow_reader_loses_nothing() {
    close_after_sending_to_a_slow_reader(true);
}

#[test]
fn write_vec_then_close_to_a_slow_reader_loses_nothing() {
    close_after_sending_to_a_slow_reader(false);
}
