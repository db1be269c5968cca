//! The tokio counterpart of `bench_pants_server` (see
//! `scripts/bench_engine.sh`): the same three protocols on tokio's
//! current-thread runtime (with `--threads N`, N > 1: the multi-thread
//! runtime with N workers), in their usual fast forms.
//!
//! `--proto raw`: `read` into a 64 KiB buffer, `write_all` what was read.
//! `--proto lines`: tokio-util `Framed` with `LinesCodec`; `--proto len`:
//! `Framed` with `LengthDelimitedCodec` (big-endian u32 length). Both reply
//! to each decoded frame with `feed` and `flush` once no further frame is
//! immediately ready, so a pipelined batch goes out in one write.
//!
//! ```text
//! cargo run --release --example bench_tokio_server -- --proto lines --addr 127.0.0.1:0
//! ```
//!
//! Prints `listening on ADDR` once it listens, then runs until killed.

use std::io::Write as _;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec, LinesCodec};

/// The receive buffer of the raw echo, as pants' default buffer limit.
const RAW_BUFFER: usize = 64 * 1024;

async fn raw_echo(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; RAW_BUFFER];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        socket.write_all(&buf[..n]).await?;
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Replies to every frame with `reply(frame)`, flushing once per batch of
/// frames that were ready together.
async fn framed_echo<C, I, O>(socket: TcpStream, codec: C, reply: impl Fn(I) -> O) -> Result<(), BoxError>
where
    C: Decoder<Item = I> + Encoder<O>,
    <C as Decoder>::Error: Into<BoxError>,
    <C as Encoder<O>>::Error: Into<BoxError>,
{
    let mut framed = Framed::new(socket, codec);
    while let Some(frame) = framed.next().await {
        framed.feed(reply(frame.map_err(Into::into)?)).await.map_err(Into::into)?;
        // More frames already buffered or readable now: answer them too
        // before flushing.
        loop {
            match framed.next().now_or_never() {
                Some(Some(frame)) => framed.feed(reply(frame.map_err(Into::into)?)).await.map_err(Into::into)?,
                Some(None) => {
                    framed.flush().await.map_err(Into::into)?;
                    return Ok(());
                }
                None => break,
            }
        }
        framed.flush().await.map_err(Into::into)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut proto = String::from("raw");
    let mut addr = String::from("127.0.0.1:0");
    let mut threads: usize = 1;
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
    if !matches!(proto.as_str(), "raw" | "lines" | "len") {
        return Err(format!("unknown protocol {proto}; use raw, lines or len").into());
    }
    // One thread: the current-thread runtime; more: the multi-thread
    // runtime with that many workers.
    let runtime = if threads > 1 {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_io().build()?
    } else {
        tokio::runtime::Builder::new_current_thread().enable_io().build()?
    };
    runtime.block_on(serve(&addr, &proto))?;
    Ok(())
}

async fn serve(addr: &str, proto: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        match proto {
            "raw" => {
                tokio::spawn(async move {
                    let _ = raw_echo(socket).await;
                });
            }
            "lines" => {
                tokio::spawn(async move {
                    let codec = LinesCodec::new_with_max_length(RAW_BUFFER);
                    let _ = framed_echo(socket, codec, |line: String| line).await;
                });
            }
            _ => {
                tokio::spawn(async move {
                    let codec = LengthDelimitedCodec::new();
                    let _ = framed_echo(socket, codec, |body: bytes::BytesMut| body.freeze()).await;
                });
            }
        }
    }
}
