//! `kv`: a Redis-compatible key-value server, speaking RESP2.
//!
//! ```sh
//! cargo run --release --example kv -- --addr 127.0.0.1:7379
//! redis-cli -p 7379 set greeting hello
//! redis-benchmark -p 7379 -P 16 -q      # its whole default suite
//! ```
//!
//! A RESP request is an array of bulk strings:
//!
//! ```text
//! *3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n
//! ```
//!
//! which is exactly what pants' typed delimiters are for. Each connection's
//! handler reads a header line with [`Until`], learns the length of the next
//! bulk string from it, switches its stream to [`Count`] for the body (plus
//! its CRLF), then back to `Until` for the next header: `read_delimiter`
//! transitions the compiler checks (the handler implements `Read<Until>` and
//! `Read<Count>`). The frames arrive borrowed from the receive buffer;
//! pipelined requests are answered in order, and the replies of a batch go
//! out together.
//!
//! Requests that are not arrays are inline commands (`PING`, as typed in
//! telnet). Malformed requests get `-ERR Protocol error: ...` and the
//! connection closes, as with Redis. Sizes are bounded: header lines and
//! inline commands to 64 KiB (the stream's default buffer limit), bulk
//! strings to 512 MiB (Redis' `proto-max-bulk-len`; a `Count` delimiter
//! raises the stream's buffer limit to its frame size, so a bulk string is
//! buffered only as it arrives, and an absurd length is refused before
//! anything is buffered), a request to 1 GiB and 1,048,576 elements.
//!
//! Values are strings, lists, sets, hashes and sorted sets, with the
//! commands `redis-benchmark` runs by default (`collections.rs`); a key of
//! the wrong type is `WRONGTYPE`, as in Redis.
//!
//! Every connection shares one keyspace, an `Rc<RefCell<Db>>`: the engine is
//! single-threaded. Ctrl-C (SIGINT) or SIGTERM stops the server cleanly.

mod collections;
mod commands;
#[path = "../common/mod.rs"]
mod common;
mod db;
mod resp;

use std::error::Error;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pants::delimiter::{Count, Until};
use pants::{Address, Engine, FrameError, Handler, Read, Server, Stream, StreamError};

use commands::{Ctx, Session, Shared};
use resp::{reply, ProtocolError, MAX_REQUEST_BYTES};

/// Not Redis' 6379, so as not to clash with a real Redis.
const DEFAULT_ADDR: &str = "127.0.0.1:7379";

/// Replies larger than this are handed to the stream without a copy.
const LARGE_REPLY: usize = 64 * 1024;

/// Argument buffers up to this capacity are kept for the next request...
const KEEP_ARG_CAPACITY: usize = 64 * 1024;
/// ... and at most this many of them.
const KEEP_ARGS: usize = 16;

/// One connection. Where it is in a request is told by its delimiter:
///
/// * `Until::lf()`: the start of a request, `*<n>` or an inline command
///   (Redis accepts a bare LF there, so `echo PING | nc` works too);
/// * `Until::crlf()`: a bulk string header, `$<len>` (`pending > 0`);
/// * `Count::new(len + 2)`: a bulk string and its CRLF.
struct Client {
    shared: Rc<Shared>,
    session: Session,
    connected: bool,
    /// The arguments of the request being read: the first `argc`. The
    /// vectors after them are kept (cleared) for the next requests, so
    /// that reading a request allocates nothing once warmed up.
    args: Vec<Vec<u8>>,
    argc: usize,
    /// How many bulk strings of the request are still to come.
    pending: usize,
    /// Bulk bytes announced so far in this request.
    request_bytes: usize,
    /// Where replies are encoded before they are queued on the stream.
    out: Vec<u8>,
    /// A CRLF delimiter to clone: cheaper than building its searcher anew
    /// for every bulk string.
    crlf: Until,
}

impl Client {
    fn new(shared: Rc<Shared>) -> Self {
        Client {
            shared,
            session: Session { id: 0, name: None, peer: String::new() },
            connected: false,
            args: Vec::new(),
            argc: 0,
            pending: 0,
            request_bytes: 0,
            out: Vec::new(),
            crlf: Until::crlf(),
        }
    }

    /// Runs a whole request and queues its reply.
    fn run<D>(&mut self, stream: &mut Stream<Self, D>, args: &[Vec<u8>]) {
        let mut ctx = Ctx { shared: &self.shared, session: &mut self.session, out: &mut self.out, close: false };
        commands::execute(&mut ctx, args);
        let close = ctx.close;
        self.send(stream);
        if close {
            stream.close();
        }
    }

    /// Queues what is in `out`.
    fn send<D>(&mut self, stream: &mut Stream<Self, D>) {
        // A write fails only on a closing stream, whose peer is gone.
        if self.out.len() > LARGE_REPLY {
            let _ = stream.write_vec(std::mem::take(&mut self.out));
        } else {
            let _ = stream.write(&self.out);
            self.out.clear();
        }
    }

    /// Replies with a protocol error and closes the connection once the
    /// replies before it are sent, as Redis does.
    fn protocol_error<D>(&mut self, stream: &mut Stream<Self, D>, error: ProtocolError) {
        reply::error(&mut self.out, &format!("ERR Protocol error: {}", error.0));
        self.send(stream);
        stream.close();
    }

    /// The start of a request: an array header or an inline command.
    fn request_line(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(digits) = line.strip_prefix(b"*") {
            match resp::parse_array_len(digits) {
                // `*0` and `*-1`: an empty request, ignored as by Redis.
                Ok(None) => {}
                Ok(Some(n)) => {
                    self.pending = n;
                    self.args.reserve(n.min(1024));
                    stream.read_delimiter(self.crlf.clone());
                }
                Err(e) => self.protocol_error(stream, e),
            }
            return;
        }
        match resp::split_inline(line) {
            Ok(args) if args.is_empty() => {}
            Ok(args) => self.run(stream, &args),
            Err(e) => self.protocol_error(stream, e),
        }
    }

    /// A bulk string header: read its body next.
    fn bulk_header(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let len = match resp::parse_bulk_len(line) {
            Ok(len) => len,
            Err(e) => return self.protocol_error(stream, e),
        };
        self.request_bytes += len;
        if self.request_bytes > MAX_REQUEST_BYTES {
            return self.protocol_error(stream, ProtocolError("request too large".into()));
        }
        // The body and its CRLF. The Count raises the stream's buffer limit
        // to its size (at most MAX_BULK_LEN + 2): no set_buffer_size needed.
        stream.read_delimiter(Count::new(len + 2).expect("len + 2 is never zero"));
    }
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.connected = true;
        self.session.id = self.shared.connect();
        self.session.peer = stream.remote_address().map(|a| a.to_string()).unwrap_or_default();
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        if self.connected {
            self.shared.disconnect();
        }
    }

    /// A header line or inline command over 64 KiB.
    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, _error: FrameError) {
        let what = if self.pending > 0 { "too big bulk count string" } else { "too big inline request" };
        self.protocol_error(stream, ProtocolError(what.into()));
    }

    /// A failed read or write: the peer is gone. A partial request left when
    /// the peer closed its side: the replies to the requests before it are
    /// still sent. Nothing is logged either way.
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        match error {
            StreamError::Read(_) | StreamError::Write(_) => stream.close_now(),
            _ => stream.close(),
        }
    }
}

impl Read<Until> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        if self.pending > 0 {
            self.bulk_header(stream, line);
        } else {
            self.request_line(stream, line);
        }
    }
}

impl Read<Count> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
        let Some(arg) = body.strip_suffix(b"\r\n") else {
            return self.protocol_error(stream, ProtocolError("expected CRLF after a bulk string".into()));
        };
        match self.args.get_mut(self.argc) {
            Some(kept) => kept.extend_from_slice(arg),
            None => self.args.push(arg.to_vec()),
        }
        self.argc += 1;
        self.pending -= 1;
        if self.pending > 0 {
            stream.read_delimiter(self.crlf.clone());
            return;
        }
        // The request is whole: back to reading the start of the next one.
        stream.read_delimiter(Until::lf());
        let mut args = std::mem::take(&mut self.args);
        self.request_bytes = 0;
        self.run(stream, &args[..self.argc]);
        // Keep the vectors' memory for the next request: a few, not large.
        args.truncate(KEEP_ARGS);
        for arg in &mut args {
            arg.clear();
            if arg.capacity() > KEEP_ARG_CAPACITY {
                *arg = Vec::new();
            }
        }
        self.argc = 0;
        self.args = args;
    }
}

fn usage() -> String {
    format!(
        "usage: kv [--addr HOST:PORT | --addr PATH]\n\n\
         A Redis-compatible key-value server (RESP2) built on pants.\n\
         Listens on {DEFAULT_ADDR} by default; port 0 picks a free port.\n\
         Prints `listening on <address>` once it listens; Ctrl-C stops it."
    )
}

/// The address from the command line: `--addr HOST:PORT` (or a path with a
/// `/`, for a UNIX socket).
fn parse_args() -> Result<Option<Address>, String> {
    let mut address = DEFAULT_ADDR.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => address = args.next().ok_or("--addr needs a value")?,
            other => match other.strip_prefix("--addr=") {
                Some(value) => address = value.to_string(),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    match Address::from(address.as_str()) {
        Address::Unix(_) if !address.contains('/') => Err(format!("--addr {address:?}: expected HOST:PORT or a path")),
        parsed => Ok(Some(parsed)),
    }
}

fn serve(address: Address) -> Result<(), Box<dyn Error>> {
    let engine = Engine::new()?;
    let shared = Rc::new(Shared::new());

    let state = shared.clone();
    let server =
        Server::from_fn(move |_peer| Some(Stream::new(Client::new(state.clone())).read_delimiter(Until::lf())))
            .listen(&engine, address)?;
    let local = engine.local_address(server)?;
    *shared.address.borrow_mut() = local.to_string();
    common::print_listening(&local)?;

    // Keys with a time to live are also removed when nobody asks for them.
    let state = shared.clone();
    engine.cycle(Duration::from_millis(100), move |_| {
        state.db.borrow_mut().expire_due(Instant::now(), 10_000);
    });

    // Stop on SIGINT or SIGTERM: a thread waits for the signal and stops the
    // engine through its thread-safe Remote.
    let signals = common::stop_on_signal(&engine, |signal| eprintln!("kv: signal {signal}, stopping"))?;
    engine.run()?;
    signals.close();
    println!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(Some(address)) => match serve(address) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kv: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kv: {e}\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}
