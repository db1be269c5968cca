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
//! With `--framing pants` (built with `--features tokio`), `lines` and `len`
//! use pants' tokio reader and writer instead of `Framed` (`Until::lf()`;
//! `Packed` of a `u32`-length-prefixed NetStruct), frames borrowed from the
//! reader's buffer, answered the same way (`feed`, `flush` once no further
//! frame is ready): `scripts/bench_tokio_reader.sh` measures one against
//! the other.
//!
//! ```text
//! cargo run --release --example bench_tokio_server -- --proto lines --addr 127.0.0.1:0
//! cargo run --release --features tokio --example bench_tokio_server -- --proto lines --framing pants
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

/// The `--framing pants` servers: pants' tokio reader and writer.
#[cfg(feature = "tokio")]
mod pants_framing {
    use futures_util::FutureExt;
    use pants::delimiter::{Packed, Until};
    use pants::io::tokio::{Reader, Writer};
    use pants::NetStruct;
    use tokio::net::TcpStream;

    use super::BoxError;

    /// A `len` frame: a big-endian `u32` length, then the body.
    #[derive(NetStruct)]
    pub struct Message<'a> {
        #[netstruct(len = u32)]
        pub body: &'a [u8],
    }

    /// Replies to every frame with the item `$reply` makes of it, flushing
    /// once per batch of frames that were ready together (as `framed_echo`).
    macro_rules! echo {
        ($reader:ident, $writer:ident, |$frame:ident| $reply:expr) => {{
            loop {
                let Some($frame) = $reader.next_frame().await? else { break };
                $writer.feed($reply).await?;
                // More frames already buffered or readable now: answer them
                // too before flushing (next_frame is cancel safe).
                loop {
                    match $reader.next_frame().now_or_never() {
                        Some(Ok(Some($frame))) => $writer.feed($reply).await?,
                        Some(Ok(None)) => {
                            $writer.flush().await?;
                            return Ok(());
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => break,
                    }
                }
                $writer.flush().await?;
            }
            $writer.flush().await?;
            Ok(())
        }};
    }

    pub async fn lines(mut socket: TcpStream) -> Result<(), BoxError> {
        let (read, write) = socket.split();
        let mut reader = Reader::new(read, Until::lf());
        let mut writer = Writer::new(write, Until::lf());
        echo!(reader, writer, |line| line)
    }

    pub async fn len(mut socket: TcpStream) -> Result<(), BoxError> {
        let (read, write) = socket.split();
        let mut reader = Reader::new(read, Packed::<Message>::new());
        let mut writer = Writer::new(write, Packed::<Message>::new());
        // Replies are encoded straight from the borrowed frame.
        echo!(reader, writer, |message| &message)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut proto = String::from("raw");
    let mut framing = String::from("tokio-util");
    let mut addr = String::from("127.0.0.1:0");
    let mut threads: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--proto" => proto = args.next().ok_or("--proto needs a value")?,
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            "--framing" => framing = args.next().ok_or("--framing needs a value")?,
            other => {
                return Err(format!(
                    "unknown argument {other}; use --proto raw|lines|len --addr HOST:PORT --threads N --framing tokio-util|pants"
                )
                .into())
            }
        }
    }
    match framing.as_str() {
        "tokio-util" => {}
        "pants" if cfg!(feature = "tokio") => {}
        "pants" => return Err("--framing pants needs the example built with --features tokio".into()),
        other => return Err(format!("unknown framing {other}; use tokio-util or pants").into()),
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
    runtime.block_on(serve(&addr, &proto, framing == "pants"))?;
    Ok(())
}

async fn serve(addr: &str, proto: &str, pants_framing: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        #[cfg(feature = "tokio")]
        if pants_framing && proto != "raw" {
            let lines = proto == "lines";
            tokio::spawn(async move {
                let _ = if lines { pants_framing::lines(socket).await } else { pants_framing::len(socket).await };
            });
            continue;
        }
        #[cfg(not(feature = "tokio"))]
        let _ = pants_framing;
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
