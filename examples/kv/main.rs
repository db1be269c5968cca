//! `kv`: a Redis-compatible key-value server, speaking RESP2.
//!
//! ```sh
//! cargo run --release --example kv -- --addr 127.0.0.1:7379
//! redis-cli -p 7379 set greeting hello
//! redis-benchmark -p 7379 -P 16 -q      # its whole default suite
//! cargo run --release --example kv -- --threads 4   # the keyspace sharded over 4 workers
//! ```
//!
//! A RESP request is an array of bulk strings:
//!
//! ```text
//! *3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n
//! ```
//!
//! Each connection's stream reads with a delimiter of this example's own,
//! [`request::Requests`], which cuts one whole request per frame and hands
//! `on_read` a typed [`request::Request`] whose arguments are slices of the
//! receive buffer: a request is checked once, copied never, and delivered in
//! one call. Pipelined requests are answered in order, and the replies of a
//! batch go out together.
//!
//! (An earlier version cut the same bytes with the built-in delimiters,
//! switching per element: `Until` for each header line, `Count` for each
//! bulk string, four to forty switches per request. That works, the
//! compiler checks every switch, and no switch allocates, but it costs a
//! dispatch per element and a copy of every argument; `BENCHMARKS.md` has
//! the figures. A protocol whose messages are small and pipelined is better
//! served by one delimiter for the whole message, which is what
//! implementing [`pants::Delimiter`] is for.)
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
//! By default (`--threads 1`) every connection shares one keyspace, an
//! `Rc<RefCell<Db>>`: the engine is single-threaded, as Redis is.
//!
//! `--threads N` runs `N` workers ([`pants::Workers`], one engine per
//! thread, every one listening: `SO_REUSEPORT`) and shards the keyspace
//! over them: each key belongs to one worker, by Redis Cluster's hash slot
//! (CRC16 of the key, or of its `{hash tag}`, so that `{user1}:name` and
//! `{user1}:mail` live together), and each worker's shard is its own
//! `Rc<RefCell<Db>>`, without a lock. A request for a key of the
//! connection's own worker, or for no key, runs there; one for another
//! worker's key is forwarded to it through its `Remote`, the requests of a
//! loop iteration bound for one worker in one post, and the replies come
//! back the same way. Replies go out in request order: a connection that
//! owes forwarded replies queues the later ones behind them. MGET, MSET,
//! DEL, UNLINK and EXISTS are split by worker and their replies gathered, as
//! a cluster proxy does (not atomic across workers); MSETNX with keys on
//! several workers is Redis Cluster's `CROSSSLOT` error; DBSIZE, KEYS, SCAN,
//! FLUSHALL, FLUSHDB, INFO and CONFIG RESETSTAT cover every worker. INFO's
//! stats count what was forwarded, in all and per worker. `shard.rs` has the
//! details.
//!
//! Forwarding is not free: on the 2-core machine of this project's
//! benchmarks a forwarded request costs about twice the CPU of a local one
//! (the copy, two posts, and two wake-ups when the load is light), and with
//! keys spread at random `(N-1)/N` of the requests are forwarded, so two
//! workers there answered fewer requests per second than one
//! (`scripts/bench_kv_threads.sh`; on that machine the second worker also
//! shares a core with the load generator). Sharding pays only with cores to
//! spare, and more when clients keep their keys on their connection's
//! worker; the default stays one thread, and Redis itself scales out with
//! more processes (Redis Cluster) rather than threads.
//!
//! A client that pipelines without reading its replies cannot make kv hold
//! much for it: with one thread, reading stops once a megabyte of replies is
//! queued (the stream's write limit); with several, a connection that owes
//! 128 forwarded replies, or holds a megabyte of its own behind them, stops
//! reading until it owes half as much ([`Stream::pause_reading`]).
//!
//! Ctrl-C (SIGINT) or SIGTERM stops the server cleanly: each worker flushes
//! what its connections have queued (2 seconds at most) and closes them;
//! with several workers, replies still owed by another worker then are
//! dropped with their connection.

mod collections;
mod commands;
#[path = "../common/mod.rs"]
mod common;
mod db;
mod request;
mod resp;
mod shard;

use std::error::Error;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pants::{Address, Engine, FrameError, Handler, Read, Server, Stream, StreamBuilder, StreamError, Workers};

use commands::{Ctx, Session, Shared};
use request::{Request, Requests};
use resp::{reply, ProtocolError};
use shard::Pending;

/// Not Redis' 6379, so as not to clash with a real Redis.
const DEFAULT_ADDR: &str = "127.0.0.1:7379";

/// Replies larger than this are handed to the stream without a copy.
const LARGE_REPLY: usize = 64 * 1024;

/// Arguments of a request collected on the stack; a request with more
/// (a large `MSET`, say) collects them in a vector.
const ARGS_ON_STACK: usize = 32;

/// One connection. Its stream reads whole requests ([`Requests`]): each
/// `on_read` is one request, its arguments borrowed from the receive buffer.
struct Client {
    shared: Rc<Shared>,
    session: Session,
    connected: bool,
    /// Where replies are encoded before they are queued on the stream.
    out: Vec<u8>,
    /// With several workers: the replies owed, in order (`shard.rs`).
    /// Always empty with one.
    pending: Pending,
}

impl Client {
    fn new(shared: Rc<Shared>) -> Self {
        Client {
            shared,
            session: Session { id: 0, name: None, peer: String::new() },
            connected: false,
            out: Vec::new(),
            pending: Pending::default(),
        }
    }

    /// Runs a whole request and queues its reply.
    #[inline(always)]
    fn run<D>(&mut self, stream: &mut Stream<Self, D>, args: &[&[u8]]) {
        if self.shared.router.is_some() {
            return self.run_routed(stream, args);
        }
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

    /// Queues what is in `out`, behind the replies owed if any.
    fn reply_here<D>(&mut self, stream: &mut Stream<Self, D>) {
        if self.pending.is_empty() {
            self.send(stream);
        } else {
            self.pending.push_ready(&mut self.out);
        }
    }

    /// Closes once the replies owed, if any, are sent.
    fn close_after_replies<D>(&mut self, stream: &mut Stream<Self, D>) {
        if self.pending.is_empty() {
            stream.close();
        } else {
            self.pending.closing = true;
        }
    }

    /// Replies with a protocol error and closes the connection once the
    /// replies before it are sent, as Redis does.
    fn protocol_error<D>(&mut self, stream: &mut Stream<Self, D>, error: ProtocolError) {
        if self.pending.closing {
            // Said already; waiting for the replies owed.
            return;
        }
        reply::error(&mut self.out, &format!("ERR Protocol error: {}", error.0));
        self.reply_here(stream);
        self.close_after_replies(stream);
    }
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.connected = true;
        self.session.id = self.shared.connect();
        self.session.peer = stream.remote_address().map(|a| a.to_string()).unwrap_or_default();
    }

    /// The peer will send no more: close once every reply is sent.
    fn on_end(&mut self, stream: &mut Stream<Self>) {
        self.close_after_replies(stream);
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        if self.connected {
            self.shared.disconnect();
        }
    }

    /// Cannot happen: [`Requests`] raises the buffer limit to what the
    /// request needs, and refuses over-long lines itself. Closes, as for
    /// any framing error.
    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, _error: FrameError) {
        self.protocol_error(stream, ProtocolError("request too large".into()));
    }

    /// A malformed request gets Redis' protocol error, then the connection
    /// closes. A failed read or write: the peer is gone. A partial request
    /// left when the peer closed its side: the replies to the requests
    /// before it are still sent. Nothing is logged either way.
    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        match error {
            StreamError::Frame(FrameError::Malformed(message)) => {
                self.protocol_error(stream, ProtocolError(message.to_string()))
            }
            StreamError::Read(_) | StreamError::Write(_) => stream.close_now(),
            _ => self.close_after_replies(stream),
        }
    }
}

impl Read<Requests> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Requests>, request: Request<'_>) {
        match request {
            Request::Empty => {}
            Request::Inline(line) => match resp::split_inline(line) {
                Ok(args) if args.is_empty() => {}
                Ok(args) => {
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    self.run(stream, &args);
                }
                Err(e) => self.protocol_error(stream, e),
            },
            Request::Array(args) if args.len() <= ARGS_ON_STACK => {
                let mut slots: [&[u8]; ARGS_ON_STACK] = [&[]; ARGS_ON_STACK];
                let argc = args.len();
                for (slot, arg) in slots.iter_mut().zip(args) {
                    *slot = arg;
                }
                self.run(stream, &slots[..argc]);
            }
            Request::Array(args) => {
                let args: Vec<&[u8]> = args.collect();
                self.run(stream, &args);
            }
        }
    }
}

fn usage() -> String {
    format!(
        "usage: kv [--addr HOST:PORT | --addr PATH] [--threads N]\n\n\
         A Redis-compatible key-value server (RESP2) built on pants.\n\
         Listens on {DEFAULT_ADDR} by default; port 0 picks a free port.\n\
         --threads N (default 1): N workers, one engine per thread, each\n\
         owning the keys that hash to it (Redis Cluster's slots; {{tag}}s put\n\
         keys together) and forwarding requests for others' keys to them.\n\
         Prints `listening on <address>` once it listens; Ctrl-C stops it."
    )
}

/// The address (`--addr HOST:PORT`, or a path with a `/` for a UNIX
/// socket) and the number of workers (`--threads N`) from the command line.
fn parse_args() -> Result<Option<(Address, usize)>, String> {
    let mut address = DEFAULT_ADDR.to_string();
    let mut threads = "1".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => address = args.next().ok_or("--addr needs a value")?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?,
            other => match (other.strip_prefix("--addr="), other.strip_prefix("--threads=")) {
                (Some(value), _) => address = value.to_string(),
                (_, Some(value)) => threads = value.to_string(),
                _ => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    let threads = match threads.parse::<usize>() {
        Ok(n) if n >= 1 => n,
        _ => return Err(format!("--threads {threads:?}: expected a number, at least 1")),
    };
    match Address::from(address.as_str()) {
        Address::Unix(_) if !address.contains('/') => Err(format!("--addr {address:?}: expected HOST:PORT or a path")),
        parsed => Ok(Some((parsed, threads))),
    }
}

/// A connection's stream.
fn client_stream(shared: Rc<Shared>) -> StreamBuilder<Client, Requests> {
    Stream::new(Client::new(shared)).read_delimiter(Requests::default())
}

/// Keys with a time to live are also removed when nobody asks for them.
fn expire_keys(engine: &Engine, shared: &Rc<Shared>) {
    let state = shared.clone();
    engine.cycle(Duration::from_millis(100), move |_| {
        state.db.borrow_mut().expire_due(Instant::now(), 10_000);
    });
}

/// One engine, one keyspace.
fn serve(address: Address) -> Result<(), Box<dyn Error>> {
    let engine = Engine::new()?;
    let shared = Rc::new(Shared::new());

    let state = shared.clone();
    let server = Server::from_fn(move |_peer| Some(client_stream(state.clone()))).listen(&engine, address)?;
    let local = engine.local_address(server)?;
    *shared.address.borrow_mut() = local.to_string();
    common::print_listening(&local)?;
    expire_keys(&engine, &shared);

    // Stop on SIGINT or SIGTERM: a thread waits for the signal and stops the
    // engine through its thread-safe Remote.
    let signals = common::stop_on_signal(&engine, |signal| eprintln!("kv: signal {signal}, stopping"))?;
    engine.run()?;
    signals.close();
    println!("stopped");
    Ok(())
}

/// Worker `worker`'s state: its shard, its router, the expiry timer.
fn set_up_worker(engine: &Engine, worker: usize) -> Rc<Shared> {
    let router = shard::Router::new(engine);
    let shared = Rc::new(Shared::for_worker(worker, router.workers(), Some(router)));
    shard::install(&shared);
    expire_keys(engine, &shared);
    shared
}

/// `threads` workers, each owning a shard of the keyspace (`shard.rs`). On
/// TCP every worker listens (`SO_REUSEPORT`: the kernel spreads the
/// connections); a UNIX socket has no `SO_REUSEPORT`, so worker 0 listens
/// and hands the connections out in turn.
fn serve_sharded(address: Address, threads: usize) -> Result<(), Box<dyn Error>> {
    let signals = common::catch_signals()?;
    let (group, local) = match address {
        Address::Unix(path) => {
            let text = path.display().to_string();
            let group = Workers::new().threads(threads).start(move |engine, worker| {
                *set_up_worker(engine, worker).address.borrow_mut() = text.clone();
                Ok(())
            })?;
            let local = group.listen_round_robin(path, |_peer| shard::local().map(client_stream))?;
            (group, local)
        }
        address => common::start_workers(&address.to_string(), threads, |engine, addr, worker| {
            let shared = set_up_worker(engine, worker);
            let state = shared.clone();
            let server = Server::from_fn(move |_peer| Some(client_stream(state.clone())))
                .reuse_port(true)
                .listen(engine, addr)?;
            *shared.address.borrow_mut() = engine.local_address(server)?.to_string();
            Ok(server)
        })?,
    };
    common::print_listening(&local)?;
    common::wait_for_signal(signals);
    common::shut_down_workers(group)
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(Some((address, threads))) => {
            match if threads == 1 { serve(address) } else { serve_sharded(address, threads) } {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kv: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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
