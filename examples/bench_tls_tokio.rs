//! TLS echo server on tokio + tokio-rustls, for `scripts/bench_tls.sh`: the
//! same work as `bench_tls_pants`, done the usual tokio way.
//!
//! One thread (a current-thread runtime, as pants runs one engine on one
//! thread), one task per connection. The rustls configuration is the one
//! pants builds: ring provider, TLS 1.2 and 1.3, no client certificates,
//! rustls defaults otherwise. Every chunk read is written back (and flushed,
//! so that no record waits in rustls); at the client's close_notify the
//! server shuts down with a close_notify of its own.
//!
//! ```text
//! cargo run --release --example bench_tls_tokio -- --addr 127.0.0.1:0 --cert cert.pem --key key.pem
//! ```
//!
//! Prints `listening on ADDR` once it listens, then runs until killed.

use std::io::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = String::from("127.0.0.1:0");
    let mut cert = String::from("cert.pem");
    let mut key = String::from("key.pem");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?,
            "--cert" => cert = value()?,
            "--key" => key = value()?,
            other => return Err(format!("unknown argument {other}; use --addr HOST:PORT --cert PEM --key PEM").into()),
        }
    }
    let addr: std::net::SocketAddr = addr.parse()?;
    let chain = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(serve(addr, acceptor))?;
    Ok(())
}

async fn serve(addr: std::net::SocketAddr, acceptor: tokio_rustls::TlsAcceptor) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else { return };
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tls.shutdown().await;
        });
    }
}
