//! Load generator for the TLS echo servers `bench_tls_pants` and
//! `bench_tls_tokio` (see `scripts/bench_tls.sh`).
//!
//! One thread, a tokio current-thread runtime, tokio-rustls clients (ring
//! provider, like the servers). Two workloads:
//!
//! - `--mode throughput`: `--conns` connections, each writing `--size`-byte
//!   chunks as fast as the echo comes back (a writer and a reader task per
//!   connection) for `--warmup` + `--duration` seconds, then close_notify;
//!   every byte echoed is checked and counted, and the echo must return
//!   exactly what was sent before the server's close_notify.
//! - `--mode handshake`: `--conns` concurrent loops of connect, full
//!   handshake (resumption off), 1 byte out and back, close_notify, wait for
//!   the server's close.
//!
//! Only what happens inside the measured window counts. By default the
//! client skips certificate and signature verification, so that it costs
//! less than the server it measures (`--verify --ca ca.pem` verifies). With
//! `--server-pid`, the server's CPU time over the window (all its threads,
//! from `/proc/PID/task/*/schedstat`) is reported per unit of work.
//!
//! `--gen-certs DIR` writes `ca.pem`, `cert.pem` and `key.pem` (ECDSA P-256,
//! for `localhost` and 127.0.0.1) and exits.
//!
//! Prints one line of `key=value` pairs; exits non-zero if the echo was
//! wrong or nothing completed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Throughput,
    Handshake,
}

struct Options {
    addr: std::net::SocketAddr,
    mode: Mode,
    conns: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
    tls12: bool,
    verify: bool,
    ca: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:7000".parse().unwrap(),
        mode: Mode::Throughput,
        conns: 8,
        size: 16 * 1024,
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(2),
        server_pid: None,
        tls12: false,
        verify: false,
        ca: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--gen-certs" => {
                let dir = value()?;
                gen_certs(std::path::Path::new(&dir)).map_err(|e| format!("--gen-certs {dir}: {e}"))?;
                std::process::exit(0);
            }
            "--addr" => o.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--mode" => {
                o.mode = match value()?.as_str() {
                    "throughput" => Mode::Throughput,
                    "handshake" => Mode::Handshake,
                    other => return Err(format!("unknown mode {other}; use throughput or handshake")),
                }
            }
            "--conns" => o.conns = (number(value()?)? as usize).max(1),
            "--size" => o.size = (number(value()?)? as usize).max(1),
            "--warmup" => o.warmup = Duration::from_secs_f64(number(value()?)?),
            "--duration" => o.duration = Duration::from_secs_f64(number(value()?)?),
            "--server-pid" => o.server_pid = Some(number(value()?)? as u32),
            "--tls12" => o.tls12 = true,
            "--verify" => o.verify = true,
            "--ca" => o.ca = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.verify && o.ca.is_none() {
        return Err("--verify needs --ca".into());
    }
    Ok(o)
}

/// A throw-away CA and a leaf for `localhost` and 127.0.0.1.
fn gen_certs(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "pants bench CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let leaf = params.signed_by(&key, &ca)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("cert.pem"), leaf.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    Ok(())
}

/// Skips certificate and signature checks: a benchmark client that should
/// cost as little as possible. Never for real connections.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(o: &Options) -> Result<rustls::ClientConfig, Box<dyn std::error::Error>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        if o.tls12 { &[&rustls::version::TLS12] } else { rustls::ALL_VERSIONS };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    let mut config = match &o.ca {
        Some(ca) if o.verify => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)? {
                roots.add(cert?)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth(),
    };
    // Every handshake a full one.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// CPU time of every thread of a process, in nanoseconds.
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Bytes echoed back (throughput) or handshakes completed.
    ops: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    version: Mutex<Option<String>>,
    /// The echo returned something other than what was sent.
    wrong: AtomicBool,
}

impl Shared {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().unwrap().get_or_insert(what);
    }

    fn version(&self, tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
        let mut version = self.version.lock().unwrap();
        if version.is_none() {
            *version = tls.get_ref().1.protocol_version().map(|v| format!("{v:?}"));
        }
    }
}

type Connector = tokio_rustls::TlsConnector;

async fn connect(
    connector: &Connector,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// One throughput connection: a writer task and this reader.
async fn echo(connector: Connector, addr: std::net::SocketAddr, size: usize, shared: Arc<Shared>) {
    const BYTE: u8 = 0x5a;
    let tls = match connect(&connector, addr).await {
        Ok(tls) => tls,
        Err(e) => return shared.error(format!("connect: {e}")),
    };
    shared.version(&tls);
    let (mut reader, mut writer) = tokio::io::split(tls);
    let writer_shared = shared.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![BYTE; size];
        let mut sent = 0u64;
        while !writer_shared.stop.load(Ordering::Relaxed) {
            writer.write_all(&chunk).await?;
            sent += size as u64;
        }
        writer.flush().await?;
        // close_notify: the server answers with its own after the echo.
        writer.shutdown().await?;
        Ok::<u64, std::io::Error>(sent)
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0u64;
    let read_result = loop {
        match reader.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if !buf[..n].iter().all(|&b| b == BYTE) {
                    shared.wrong.store(true, Ordering::Relaxed);
                }
                received += n as u64;
                shared.ops.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => break Err(e),
        }
    };
    match (writer.await, read_result) {
        (Ok(Ok(sent)), Ok(())) if sent == received => {}
        (Ok(Ok(sent)), Ok(())) => {
            shared.wrong.store(true, Ordering::Relaxed);
            shared.error(format!("sent {sent} bytes, {received} came back"));
        }
        (Ok(Err(e)), _) => shared.error(format!("write: {e}")),
        (Err(e), _) => shared.error(format!("writer task: {e}")),
        (_, Err(e)) => shared.error(format!("read after {received} bytes: {e}")),
    }
}

/// One handshake loop: connect, handshake, a byte each way, close.
async fn handshakes(connector: Connector, addr: std::net::SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let result = async {
            let mut tls = connect(&connector, addr).await?;
            shared.version(&tls);
            tls.write_all(b"x").await?;
            tls.flush().await?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await?;
            if byte != *b"x" {
                shared.wrong.store(true, Ordering::Relaxed);
            }
            tls.shutdown().await?;
            // Wait for the server's side of the close (its close_notify).
            while tls.read(&mut byte).await? > 0 {}
            Ok::<(), std::io::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                shared.ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => shared.error(format!("handshake loop: {e}")),
        }
    }
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_tls_load: {e}");
            std::process::exit(2);
        }
    };
    let config = match client_config(&o) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bench_tls_load: {e}");
            std::process::exit(2);
        }
    };
    let connector = Connector::from(Arc::new(config));
    let shared = Arc::new(Shared::default());

    // The clock: warm up, measure, then stop the connections. If they do
    // not finish within 10 s of the stop, give up.
    let clock_shared = shared.clone();
    let (warmup, duration, server_pid) = (o.warmup, o.duration, o.server_pid);
    let own_pid = std::process::id();
    let clock = std::thread::spawn(move || {
        std::thread::sleep(warmup);
        let start = (Instant::now(), clock_shared.ops.load(Ordering::Relaxed));
        let cpu_start = (server_pid.and_then(cpu_ns), cpu_ns(own_pid));
        std::thread::sleep(duration);
        let end = (Instant::now(), clock_shared.ops.load(Ordering::Relaxed));
        let cpu_end = (server_pid.and_then(cpu_ns), cpu_ns(own_pid));
        clock_shared.stop.store(true, Ordering::Relaxed);
        let seconds = (end.0 - start.0).as_secs_f64();
        let server_ns = cpu_start.0.zip(cpu_end.0).map(|(a, b)| b.saturating_sub(a));
        let client_ns = cpu_start.1.zip(cpu_end.1).map(|(a, b)| b.saturating_sub(a));
        (seconds, end.1 - start.1, server_ns, client_ns)
    });
    let watchdog_shared = shared.clone();
    std::thread::spawn(move || {
        while !watchdog_shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(10));
        eprintln!("bench_tls_load: connections did not finish within 10 s of the stop");
        std::process::exit(3);
    });

    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("tokio runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = (0..o.conns)
            .map(|_| {
                let (connector, shared) = (connector.clone(), shared.clone());
                match o.mode {
                    Mode::Throughput => tokio::spawn(echo(connector, o.addr, o.size, shared)),
                    Mode::Handshake => tokio::spawn(handshakes(connector, o.addr, shared)),
                }
            })
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                shared.error(format!("task: {e}"));
            }
        }
    });
    let (seconds, ops, server_ns, client_ns) = clock.join().expect("clock thread");

    let version = shared.version.lock().unwrap().clone().unwrap_or_else(|| "none".into());
    let mut line = format!("conns={} version={version} seconds={seconds:.3}", o.conns);
    let pct = |ns: Option<u64>| ns.map_or("na".into(), |ns| format!("{:.1}", ns as f64 / seconds / 1e7));
    match o.mode {
        Mode::Throughput => {
            let mib = ops as f64 / (1024.0 * 1024.0);
            let per_kib =
                |ns: Option<u64>| ns.map_or("na".into(), |ns| format!("{:.0}", ns as f64 / (ops as f64 / 1024.0)));
            line += &format!(
                " mode=throughput size={} mib_per_s={:.1} server_cpu_pct={} server_cpu_ns_per_kib={} client_cpu_pct={}",
                o.size,
                mib / seconds,
                pct(server_ns),
                per_kib(server_ns),
                pct(client_ns)
            );
        }
        Mode::Handshake => {
            let per = |ns: Option<u64>| ns.map_or("na".into(), |ns| format!("{:.1}", ns as f64 / ops as f64 / 1e3));
            line += &format!(
                " mode=handshake handshakes_per_s={:.0} server_cpu_pct={} server_cpu_us_per_handshake={} client_cpu_pct={}",
                ops as f64 / seconds,
                pct(server_ns),
                per(server_ns),
                pct(client_ns)
            );
        }
    }
    let errors = shared.errors.load(Ordering::Relaxed);
    line += &format!(" errors={errors}");
    if let Some(first) = shared.first_error.lock().unwrap().as_ref() {
        line += &format!(" first_error={:?}", first);
    }
    println!("{line}");
    if shared.wrong.load(Ordering::Relaxed) {
        eprintln!("bench_tls_load: the echo did not return what was sent");
        std::process::exit(1);
    }
    if ops == 0 {
        eprintln!("bench_tls_load: nothing completed in the measured window");
        std::process::exit(1);
    }
}
