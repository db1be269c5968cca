//! Benchmark server on pants (see `scripts/bench_engine.sh`).
//!
//! `--proto raw` echoes every chunk read (delimiter `Raw`); `--proto lines`
//! replies one line per `\n`-terminated request (`Until::lf()`); `--proto len`
//! replies one frame per u32-length-prefixed request (a derived NetStruct,
//! sent back with `write_packed`). Every reply is the request's frame, rebuilt
//! from the parsed frame, so the load generator can check it.
//!
//! ```text
//! cargo run --release --example bench_pants_server -- --proto lines --addr 127.0.0.1:0
//! ```
//!
//! `--threads N` runs `N` engines ([`pants::Workers`]) on one port
//! (`SO_REUSEPORT`). Prints `listening on ADDR` once it listens, then runs
//! until killed.

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;

use pants::delimiter::{Packed, Raw, Until};
use pants::{Address, Engine, Handler, NetStruct, Read, Server, Stream, StreamId, Workers};

/// A length-prefixed request or reply: a big-endian u32 length, then the body
/// (the wire format of tokio-util's default `LengthDelimitedCodec`).
#[derive(NetStruct)]
struct Frame<'a> {
    #[netstruct(len = u32)]
    body: &'a [u8],
}

struct Echo;
impl Handler for Echo {}

impl Read<Raw> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        let _ = stream.write_now(data);
    }
}

struct Lines;
impl Handler for Lines {}

impl Read<Until> for Lines {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let _ = stream.write(line);
        let _ = stream.write(b"\n");
    }
}

struct Frames;
impl Handler for Frames {}

impl Read<Packed<Frame<'_>>> for Frames {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Frame<'_>>>, frame: Frame<'_>) {
        let _ = stream.write_packed(&frame);
    }
}

/// This engine's server for `proto` on `addr`.
fn listen(engine: &Engine, proto: &str, addr: SocketAddr, reuse_port: bool) -> Result<StreamId, Box<dyn Error>> {
    let server = match proto {
        "raw" => Server::from_fn(|_| Some(Stream::new(Echo))).reuse_port(reuse_port).listen(engine, addr)?,
        "lines" => Server::from_fn(|_| Some(Stream::new(Lines).read_delimiter(Until::lf())))
            .reuse_port(reuse_port)
            .listen(engine, addr)?,
        "len" => Server::from_fn(|_| Some(Stream::new(Frames).read_delimiter(Packed::<Frame>::new())))
            .reuse_port(reuse_port)
            .listen(engine, addr)?,
        other => return Err(format!("unknown protocol {other}; use raw, lines or len").into()),
    };
    Ok(server)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut proto = String::from("raw");
    let mut addr = String::from("127.0.0.1:0");
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--proto" => proto = args.next().ok_or("--proto needs a value")?,
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            other => {
                return Err(
                    format!("unknown argument {other}; use --proto raw|lines|len --addr HOST:PORT --threads N").into()
                )
            }
        }
    }
    let mut addr: SocketAddr = addr.parse()?;
    if threads > 1 {
        // One engine per thread, all on one port (SO_REUSEPORT).
        if addr.port() == 0 {
            addr = std::net::TcpListener::bind(addr)?.local_addr()?;
        }
        let group = Workers::new()
            .threads(threads)
            .start(move |engine, _| listen(engine, &proto, addr, true).map(drop).map_err(|e| e.to_string().into()))?;
        println!("listening on {addr}");
        std::io::stdout().flush()?;
        group.join()?;
        return Ok(());
    }
    let engine = Engine::new()?;
    let server = listen(&engine, &proto, addr, false)?;
    let Address::Ip(local) = engine.local_address(server)? else { return Err("no local address".into()) };
    println!("listening on {local}");
    std::io::stdout().flush()?;
    engine.run()?;
    Ok(())
}
