//! A binary key-value protocol defined only by `#[derive(NetStruct)]`
//! structs: the server.
//!
//! ```sh
//! cargo run --example netstruct_server -- --addr 127.0.0.1:7002
//! cargo run --example netstruct_client -- --addr 127.0.0.1:7002 set greeting hello get greeting
//! ```
//!
//! The wire format is the two structs below (netstruct formats `"!IBH$I$"`
//! and `"!IBI$"`): no hand-written parser or encoder. The stream's delimiter
//! is `Packed::<Request>::new()`, so `on_read` receives each request already
//! decoded, its `key` and `value` borrowed straight from the receive buffer;
//! replies go out with `write_packed`, encoded straight into the send queue.
//! The store is shared by every connection.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::Packed;
use pants::{Engine, FrameError, Handler, NetStruct, Read, Server, Stream, StreamError};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: netstruct_server [--addr HOST:PORT]   (default 127.0.0.1:7002)";

// ---- The protocol (the same definitions are in netstruct_client.rs) ----

/// A request: netstruct format `"!IBH$I$"`.
#[derive(NetStruct, Debug)]
struct Request<'a> {
    /// Chosen by the client, echoed in the response.
    id: u32,
    /// One of the `OP_*` codes.
    op: u8,
    #[netstruct(len = u16)]
    key: &'a str,
    /// The value to store (SET); empty for the other operations.
    #[netstruct(len = u32)]
    value: &'a [u8],
}

/// A response: netstruct format `"!IBI$"`.
#[derive(NetStruct, Debug)]
struct Response<'a> {
    id: u32,
    /// One of the `STATUS_*` codes.
    status: u8,
    /// GET: the value; SET and DEL: the previous value, if any.
    #[netstruct(len = u32)]
    value: &'a [u8],
}

const OP_GET: u8 = 1;
const OP_SET: u8 = 2;
const OP_DEL: u8 = 3;

const STATUS_OK: u8 = 0;
const STATUS_NOT_FOUND: u8 = 1;
const STATUS_BAD_OP: u8 = 2;

/// The largest value accepted: a request announcing a longer one is refused
/// as soon as its length prefix arrives, before anything is buffered for it.
const MAX_VALUE: usize = 1 << 20;

// ---- The server ----

type Store = Rc<RefCell<BTreeMap<String, Vec<u8>>>>;

struct Session {
    store: Store,
    peer: String,
    requests: u64,
}

impl Handler for Session {
    fn on_connect(&mut self, _stream: &mut Stream<Self>) {
        println!("{} connected", self.peer);
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        println!("{} closed after {} requests", self.peer, self.requests);
    }

    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, error: FrameError) {
        println!("{}: refusing an oversized request ({error})", self.peer);
        stream.close_now();
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        // A malformed request (a key that is not UTF-8, say) or a request cut
        // short by the peer closing.
        println!("{}: {error}", self.peer);
        stream.close_now();
    }
}

impl Read<Packed<Request<'static>>> for Session {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Request<'static>>>, request: Request<'_>) {
        self.requests += 1;
        let mut store = self.store.borrow_mut();
        let (status, previous) = match request.op {
            OP_GET => match store.get(request.key) {
                Some(value) => {
                    let response = Response { id: request.id, status: STATUS_OK, value };
                    let _ = stream.write_packed(&response);
                    return;
                }
                None => (STATUS_NOT_FOUND, None),
            },
            OP_SET => (STATUS_OK, store.insert(request.key.to_string(), request.value.to_vec())),
            OP_DEL => match store.remove(request.key) {
                Some(value) => (STATUS_OK, Some(value)),
                None => (STATUS_NOT_FOUND, None),
            },
            _ => (STATUS_BAD_OP, None),
        };
        let value = previous.as_deref().unwrap_or_default();
        let _ = stream.write_packed(&Response { id: request.id, status, value });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:7002".to_string();
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
    let store = Store::default();
    let server = Server::from_fn(move |peer| {
        let session = Session { store: store.clone(), peer: peer.to_string(), requests: 0 };
        Some(
            Stream::new(session)
                .read_delimiter(Packed::<Request>::new())
                .buffer_size(Request::MIN_SIZE + u16::MAX as usize + MAX_VALUE),
        )
    })
    .listen(&engine, addr.as_str())?;
    let local = engine.local_address(server)?.ok_or("the server has no address")?;
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
