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
//! input) and prints the echoes: it is `echo_client`'s client
//! (`common/line_client.rs`), over TLS.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use pants::delimiter::Raw;
use pants::tls::{TlsClient, TlsError, TlsServer};
use pants::{Engine, Handler, Read, Server, Stream};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair};

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
    let go_on = common::parse_args(USAGE, &mut addr, |arg, args| {
        match arg.as_str() {
            "--server" => client = false,
            "--client" => client = true,
            "--ca" => ca = Some(PathBuf::from(args.value()?)),
            _ => return common::line_argument(arg, args, &mut lines),
        }
        Ok(())
    })?;
    if !go_on {
        return Ok(());
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
    common::serve(&engine, server, || println!("CA certificate: {}", ca_path.display()))
}

// ---- The client ----

fn run_client(addr: &str, ca: &Path, lines: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    // Trust this CA only (not the Mozilla roots); the server's name is the
    // host (or IP address) connected to.
    let tls = TlsClient::builder().root_certificates_file(ca).build()?;
    common::line_client::run("tls_echo", addr, lines, Some(tls))
}
