//! A binary key-value protocol defined only by `#[derive(NetStruct)]`
//! structs: the server.
//!
//! ```sh
//! cargo run --example netstruct_server -- --addr 127.0.0.1:7002
//! cargo run --example netstruct_client -- --addr 127.0.0.1:7002 set greeting hello get greeting
//! ```
//!
//! The wire format is the two structs of `common/netstruct_proto.rs`
//! (netstruct formats `"!IBH$I$"` and `"!IBI$"`), shared with the client: no
//! hand-written parser or encoder. The stream's delimiter is
//! `Packed::<Request>::new()`, so `on_read` receives each request already
//! decoded, its `key` and `value` borrowed straight from the receive buffer;
//! replies go out with `send_with(&Packed::<Response>::new(), ..)`, encoded
//! straight into the send queue.
//! The store is shared by every connection (an `Arc<Mutex<..>>`, so that
//! `--threads N`, which serves on `N` engines on one address, shares it
//! between workers too).
//!
//! A value is at most `MAX_VALUE` (1 MiB) bytes: `Request` says so with
//! `#[netstruct(len = u32, max = MAX_VALUE)]` on its value, so a request
//! announcing a longer value is refused as soon as its length prefix arrives (`FrameError::FieldTooLong`), before any byte of the
//! value is buffered: the server says so and closes the connection. The
//! buffer limit only bounds a whole request (a key of up to 64 KiB, then a
//! value of up to 1 MiB).

#[path = "common/mod.rs"]
mod common;
#[path = "common/netstruct_proto.rs"]
mod proto;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use pants::delimiter::Packed;
use pants::{Engine, FrameError, Handler, NetStruct, Read, Server, Stream, StreamError, StreamId};
use proto::{Request, Response, MAX_VALUE, OP_DEL, OP_GET, OP_SET, STATUS_BAD_OP, STATUS_NOT_FOUND, STATUS_OK};

const USAGE: &str = "usage: netstruct_server [--addr HOST:PORT] [--threads N]   (default 127.0.0.1:7002, 1 thread)";

type Store = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

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
        match error {
            // A value prefix over MAX_VALUE: refused like an overflow, before
            // the value is buffered.
            StreamError::Frame(error @ FrameError::FieldTooLong { .. }) => {
                println!("{}: refusing an oversized request ({error})", self.peer)
            }
            // A malformed request (a key that is not UTF-8, say) or a request
            // cut short by the peer closing.
            error => println!("{}: {error}", self.peer),
        }
        stream.close_now();
    }
}

impl Read<Packed<Request<'_>>> for Session {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Request<'_>>>, request: Request<'_>) {
        self.requests += 1;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, previous) = match request.op {
            OP_GET => match store.get(request.key) {
                Some(value) => {
                    let response = Response { id: request.id, status: STATUS_OK, value };
                    let _ = stream.send_with(&Packed::<Response>::new(), &response);
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
        let _ = stream.send_with(&Packed::<Response>::new(), &Response { id: request.id, status, value });
    }
}

/// This worker's server on `addr` (`SO_REUSEPORT` with several workers).
fn listen(engine: &Engine, addr: &str, store: &Store, reuse_port: bool) -> Result<StreamId, StreamError> {
    let store = store.clone();
    Server::from_fn(move |peer| {
        let session = Session { store: store.clone(), peer: peer.to_string(), requests: 0 };
        Some(
            Stream::new(session)
                .read_delimiter(Packed::<Request>::new())
                .buffer_size(Request::MIN_SIZE + u16::MAX as usize + MAX_VALUE),
        )
    })
    .reuse_port(reuse_port)
    .listen(engine, addr)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some((addr, threads)) = common::server_options(USAGE, "127.0.0.1:7002")? else { return Ok(()) };
    let store = Store::default();
    if threads > 1 {
        return common::serve_on_workers(&addr, threads, move |engine, addr, _| listen(engine, addr, &store, true));
    }
    let engine = Engine::new()?;
    let server = listen(&engine, &addr, &store, false)?;
    common::serve(&engine, server, || {})
}
