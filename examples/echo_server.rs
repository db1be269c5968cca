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
//!
//! `--threads N` serves on `N` engines, one per thread ([`pants::Workers`]),
//! all listening on the same address (`SO_REUSEPORT`: the kernel spreads the
//! connections over them).

#[path = "common/mod.rs"]
mod common;

use pants::delimiter::Raw;
use pants::{Engine, Handler, Read, Server, Stream, StreamError, StreamId};

const USAGE: &str = "usage: echo_server [--addr HOST:PORT] [--threads N]   (default 127.0.0.1:7000, 1 thread)";

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

/// This worker's server on `addr`.
fn listen(engine: &Engine, addr: &str, reuse_port: bool) -> Result<StreamId, StreamError> {
    Server::from_fn(|peer| Some(Stream::new(Echo { peer: peer.to_string(), bytes: 0 })))
        .reuse_port(reuse_port)
        .listen(engine, addr)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some((addr, threads)) = common::server_options(USAGE, "127.0.0.1:7000")? else { return Ok(()) };
    if threads > 1 {
        return common::serve_on_workers(&addr, threads, |engine, addr, _| listen(engine, addr, true));
    }
    let engine = Engine::new()?;
    let server = listen(&engine, &addr, false)?;
    // Until Ctrl-C or SIGTERM; then stop listening, close the connections
    // once they have flushed.
    common::serve(&engine, server, || {})
}
