//! A TLS echo server, and a client for it, in one binary.
//!
//! ```sh
//! cargo run --example tls_echo -- --server --addr 127.0.0.1:7003
//! #   CA certificate: /tmp/pants-tls-echo-1234/ca.pem
//! #   listening on 127.0.0.1:7003
//! cargo run --example tls_echo -- --client --addr 127.0.0.1:7003 --ca /tmp/pants-tls-echo-1234/ca.pem hello
//! openssl s_client -connect 127.0.0.1:7003 -CAfile /tmp/pants-tls-echo-1234/ca.pem -quiet
//! ```
//!
//! At start-up the server makes a throw-away certificate authority and a
//! certificate for `localhost`, `127.0.0.1` and `::1` signed by it (with
//! `rcgen`), keeps the keys in memory, and writes only the CA certificate to
//! a file (`--ca PATH`, by default in a fresh temporary directory that is
//! removed on exit), whose path it prints so that clients can trust it. It
//! echoes every byte it receives, over TLS, and stops cleanly on Ctrl-C or
//! SIGTERM.
//!
//! The client verifies the server against that CA and the host name (or IP
//! address) it connects to, then sends its lines (the arguments, or standard
//! input) and prints the echoes, like `echo_client`.

use std::cell::Cell;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::{Raw, Until};
use pants::tls::{TlsClient, TlsError, TlsServer};
use pants::{Engine, Handler, Read, Server, Stream, StreamError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: tls_echo [--server] [--addr HOST:PORT] [--ca PATH]
       tls_echo --client [--addr HOST:PORT] --ca PATH [LINE...]
  --server (the default): listen (default 127.0.0.1:7003) and write the CA certificate to PATH
                          (default: a new temporary directory)
  --client: connect, trusting the CA certificate in PATH; send the LINEs (none: stdin), print the echoes";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut client = false;
    let mut addr = "127.0.0.1:7003".to_string();
    let mut ca = None;
    let mut lines = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => client = false,
            "--client" => client = true,
            "--addr" => addr = args.next().ok_or(USAGE)?,
            "--ca" => ca = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--" => lines.extend(args.by_ref()),
            other if other.starts_with("--") => return Err(format!("unknown option {other:?}\n{USAGE}").into()),
            _ => lines.push(arg),
        }
    }
    if client {
        let ca = ca.ok_or(format!("--client needs --ca PATH\n{USAGE}"))?;
        run_client(&addr, &ca, lines)
    } else if !lines.is_empty() {
        Err(format!("the server takes no LINE arguments\n{USAGE}").into())
    } else {
        run_server(&addr, ca)
    }
}

// ---- The server ----

/// A CA certificate (PEM) and a server certificate chain and key signed by it.
fn make_certificates() -> Result<(String, TlsServer), Box<dyn std::error::Error>> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "pants tls_echo throw-away CA");
    ca_params.distinguished_name = name;
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let leaf_key = KeyPair::generate()?;
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    let leaf = CertificateParams::new(names.to_vec())?.signed_by(&leaf_key, &ca)?;
    // The chain the server presents: its certificate, then the CA's.
    let chain = format!("{}{}", leaf.pem(), ca.pem());
    let tls = TlsServer::builder().certificate(chain.as_bytes(), leaf_key.serialize_pem().as_bytes()).build()?;
    Ok((ca.pem(), tls))
}

struct EchoTls {
    peer: String,
}

impl Handler for EchoTls {
    fn on_ssl_handshake(&mut self, stream: &mut Stream<Self>) {
        let version = stream.tls_info().and_then(|info| info.version);
        println!("{}: TLS handshake done ({version:?})", self.peer);
    }

    fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
        println!("{}: TLS handshake failed: {error}", self.peer);
        stream.close_now();
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        println!("{}: closed", self.peer);
    }
}

impl Read<Raw> for EchoTls {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        // Decrypted on the way in, encrypted again on the way out.
        if stream.write(data).is_err() {
            stream.close();
        }
    }
}

fn run_server(addr: &str, ca_path: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let (ca_pem, tls) = make_certificates()?;
    // Without --ca: a new directory of our own, removed when we exit.
    let (ca_path, temp_dir) = match ca_path {
        Some(path) => (path, None),
        None => {
            let dir = std::env::temp_dir().join(format!("pants-tls-echo-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (dir.join("ca.pem"), Some(dir))
        }
    };
    let result = serve(addr, &ca_path, &ca_pem, tls);
    // A file the user named is left in place.
    if let Some(dir) = temp_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn serve(addr: &str, ca_path: &Path, ca_pem: &str, tls: TlsServer) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write(ca_path, ca_pem)?;
    let engine = Engine::new()?;
    let server =
        Server::from_fn(|peer| Some(Stream::new(EchoTls { peer: peer.to_string() }))).tls(tls).listen(&engine, addr)?;
    let local = engine.local_address(server)?.ok_or("the server has no address")?;
    println!("CA certificate: {}", ca_path.display());
    println!("listening on {local}");
    std::io::stdout().flush()?;

    stop_on_signal(&engine)?;
    engine.run()?;

    let _ = engine.close_stream(server, true);
    engine.run_until(Duration::from_secs(2), || engine.channel_count() == 0)?;
    println!("stopped");
    Ok(())
}

/// Stops the engine on Ctrl-C or SIGTERM. The engine is single-threaded; a
/// signal thread reaches it through its `Remote`.
fn stop_on_signal(engine: &Engine) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let remote = engine.remote();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            eprintln!("signal {signal}: shutting down");
            remote.stop();
        }
    });
    Ok(())
}

// ---- The client ----

struct Client {
    /// Lines given as arguments (`None`: read standard input).
    lines: Option<Vec<String>>,
    sent: usize,
    received: usize,
    input_done: bool,
    ok: Rc<Cell<bool>>,
}

impl Client {
    fn send<D>(&mut self, stream: &mut Stream<Self, D>, line: &[u8]) {
        if stream.write([line, b"\n"].concat()).is_ok() {
            self.sent += 1;
        }
    }

    fn finish_if_done<D>(&mut self, stream: &mut Stream<Self, D>) {
        if self.input_done && self.received == self.sent {
            self.ok.set(true);
            stream.close();
        }
    }
}

impl Handler for Client {
    /// Runs after the handshake: the server is verified.
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        match self.lines.take() {
            Some(lines) => {
                for line in lines {
                    self.send(stream, line.as_bytes());
                }
                self.input_done = true;
                self.finish_if_done(stream);
            }
            None => {
                let remote = stream.engine().remote();
                let id = stream.id();
                std::thread::spawn(move || {
                    for line in std::io::stdin().lock().split(b'\n') {
                        let Ok(mut line) = line else { break };
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        remote.post(move |engine| {
                            let _ = engine.with_stream::<Client, _>(id, |client, stream| client.send(stream, &line));
                        });
                    }
                    remote.post(move |engine| {
                        let _ = engine.with_stream::<Client, _>(id, |client, stream| {
                            client.input_done = true;
                            client.finish_if_done(stream);
                        });
                    });
                });
            }
        }
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        eprintln!("tls_echo: {error}");
        stream.close();
    }

    fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
        eprintln!("tls_echo: TLS handshake failed: {error}");
        stream.close_now();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        stream.engine().stop();
    }
}

impl Read<Until> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.received += 1;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
        self.finish_if_done(stream);
    }
}

fn run_client(addr: &str, ca: &Path, lines: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    // Trust this CA only (not the Mozilla roots); the server's name is the
    // host (or IP address) connected to.
    let tls = TlsClient::builder().root_certificates_file(ca).build()?;
    let engine = Engine::new()?;
    let ok = Rc::new(Cell::new(false));
    let client =
        Client { lines: (!lines.is_empty()).then_some(lines), sent: 0, received: 0, input_done: false, ok: ok.clone() };
    Stream::new(client).read_delimiter(Until::lf()).tls(tls).connect(&engine, addr)?;
    engine.run()?;
    if !ok.get() {
        return Err("the connection closed before every line came back".into());
    }
    Ok(())
}
