//! TLS echo server on pants, for `scripts/bench_tls.sh` (against
//! `bench_tls_tokio`, driven by `bench_tls_load`).
//!
//! Every connection is TLS (rustls, ring provider, TLS 1.2 and 1.3, no
//! client certificates); every chunk read is written back. When the client
//! ends its side (close_notify), what is queued is flushed and the stream
//! closes with a close_notify of its own.
//!
//! ```text
//! cargo run --release --example bench_tls_pants -- --addr 127.0.0.1:0 --cert cert.pem --key key.pem
//! ```
//!
//! `--write-limit BYTES` sets each stream's write limit (the queue size at
//! which reading pauses; pants' default is 1 MiB).
//!
//! Prints `listening on ADDR` once it listens, then runs until killed.

use std::io::Write as _;

use pants::delimiter::Raw;
use pants::tls::TlsServer;
use pants::{Address, Engine, Handler, Read, Server, Stream};

struct Echo {
    write_limit: Option<usize>,
}

impl Handler for Echo {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        if let Some(limit) = self.write_limit {
            stream.set_write_limit(limit);
        }
    }
}

impl Read<Raw> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        let _ = stream.write(data);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = String::from("127.0.0.1:0");
    let mut cert = String::from("cert.pem");
    let mut key = String::from("key.pem");
    let mut write_limit = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?,
            "--cert" => cert = value()?,
            "--key" => key = value()?,
            "--write-limit" => write_limit = Some(value()?.parse()?),
            other => {
                return Err(format!(
                    "unknown argument {other}; use --addr HOST:PORT --cert PEM --key PEM [--write-limit BYTES]"
                )
                .into())
            }
        }
    }
    let addr: std::net::SocketAddr = addr.parse()?;
    let tls = TlsServer::builder().certificate_files(&cert, &key).build()?;
    let engine = Engine::new()?;
    let server = Server::from_fn(move |_| Some(Stream::new(Echo { write_limit }))).tls(tls).listen(&engine, addr)?;
    let Address::Ip(local) = engine.local_address(server)? else { return Err("no local address".into()) };
    println!("listening on {local}");
    std::io::stdout().flush()?;
    engine.run()?;
    Ok(())
}
