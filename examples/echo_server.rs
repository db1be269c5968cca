//! An echo server: every byte a client sends comes straight back.
//!
//! ```sh
//! cargo run --example echo_server -- --addr 127.0.0.1:7000
//! cargo run --example echo_client -- --addr 127.0.0.1:7000 hello world
//! ```
//!
//! It prints `listening on <address>` once it listens (`--addr` may use port
//! 0), and stops cleanly on Ctrl-C or SIGTERM: it stops listening, lets every
//! connection flush what it was sent, and exits with status 0.

use std::io::Write as _;
use std::time::Duration;

use pants::delimiter::Raw;
use pants::{Engine, Handler, Read, Server, Stream};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: echo_server [--addr HOST:PORT]   (default 127.0.0.1:7000)";

/// One connection: reads raw chunks (whatever arrived) and writes them back.
struct Echo {
    peer: String,
    bytes: u64,
}

impl Handler for Echo {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        println!("{} connected ({})", self.peer, stream.id());
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        println!("{} closed after echoing {} bytes", self.peer, self.bytes);
    }
}

impl Read<Raw> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        self.bytes += data.len() as u64;
        // Queued, then sent with everything else at the end of the loop
        // iteration. A peer that sends faster than it reads fills our send
        // queue; past the write limit the stream stops reading from it.
        if stream.write(data).is_err() {
            stream.close();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:7000".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or(USAGE)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }

    let engine = Engine::new()?;
    let server = Server::from_fn(|peer| Some(Stream::new(Echo { peer: peer.to_string(), bytes: 0 })))
        .listen(&engine, addr.as_str())?;
    let local = engine.local_address(server)?.ok_or("the server has no address")?;
    println!("listening on {local}");
    std::io::stdout().flush()?;

    stop_on_signal(&engine)?;
    engine.run()?;

    // Stop listening, close the connections once they have flushed.
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
