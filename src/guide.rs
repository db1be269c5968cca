//! # Guide: writing a protocol with pants
//!
//! This walks through a small protocol from the first line to TLS: a
//! "greeting then records" service where a client sends a text line, then
//! switches both sides to binary records.
//!
//! ## 1. The handler
//!
//! A handler is your type. [`Handler`](crate::Handler) holds the lifecycle
//! callbacks, all optional; [`Read<D>`](crate::Read) is implemented once per
//! delimiter the handler can read, each with its own typed `on_read`:
//!
//! ```
//! use pants::{delimiter::Until, Handler, Read, Stream};
//!
//! struct Greeter {
//!     greeted: usize,
//! }
//!
//! impl Handler for Greeter {
//!     fn on_connect(&mut self, stream: &mut Stream<Self>) {
//!         // No frame is being read here: name the encoder.
//!         let _ = stream.send_with(&Until::crlf(), b"hello, who are you?");
//!     }
//! }
//!
//! impl Read<Until> for Greeter {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         self.greeted += 1;
//!         let _ = stream.write(b"hi ");
//!         let _ = stream.send(line); // the line, then the terminator
//!     }
//! }
//! ```
//!
//! `line` is a `&[u8]` pointing into the stream's receive buffer: no copy.
//! [`send`](crate::Stream::send) writes a frame of the protocol being read:
//! here the line and the `\r\n` that ends it, appended to the send queue
//! without an allocation.
//!
//! ## 2. Delimiters
//!
//! A [`Delimiter`](crate::Delimiter) decides where a frame ends and what
//! type it has. The built-ins cover Pants' `read_delimiter` values
//! ([`delimiter`](crate::delimiter) has the table); protocols defined by
//! structs use [`#[derive(NetStruct)]`](derive@crate::NetStruct):
//!
//! ```
//! use pants::NetStruct;
//!
//! /// netstruct `"!IH$"`: a record id, then a u16-length-prefixed body.
//! #[derive(NetStruct, Debug)]
//! struct Record<'a> {
//!     id: u32,
//!     #[netstruct(len = u16)]
//!     body: &'a [u8],
//! }
//! ```
//!
//! ## 3. Switching
//!
//! Inside a callback, [`Stream::read_delimiter`](crate::Stream::read_delimiter)
//! switches from the next frame on; bytes already buffered are cut with the
//! new delimiter at once. It compiles only if the handler implements
//! `Read` for the new delimiter type, so a handler can never be handed a frame
//! type it does not read:
//!
//! ```
//! # use pants::{delimiter::{Packed, Until}, Handler, NetStruct, Read, Stream};
//! # #[derive(NetStruct, Debug)]
//! # struct Record<'a> { id: u32, #[netstruct(len = u16)] body: &'a [u8] }
//! struct Service;
//! impl Handler for Service {}
//!
//! impl Read<Until> for Service {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         if line == b"RECORDS" {
//!             stream.read_delimiter(Packed::<Record>::new());
//!         }
//!     }
//! }
//!
//! impl Read<Packed<Record<'_>>> for Service {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Packed<Record<'_>>>, record: Record<'_>) {
//!         println!("record {} ({} bytes)", record.id, record.body.len());
//!         // A record back, borrowing the one received: no copy of the body.
//!         let _ = stream.send(&Record { id: record.id.wrapping_add(1), body: record.body });
//!         if record.id == 0 {
//!             stream.read_delimiter(pants::delimiter::Until::crlf());
//!         }
//!     }
//! }
//! ```
//!
//! Without `impl Read<Packed<Record<'_>>> for Service`, the first
//! `read_delimiter` would not compile, and the error names the missing
//! `Read` impl.
//!
//! ### Naming a borrowed frame type: `'_`
//!
//! A struct that borrows the receive buffer (`Record<'a>`) is one type per
//! buffer lifetime. Name it with `'_` wherever a delimiter or frame type is
//! written: `impl Read<Packed<Record<'_>>>`, `Stream<Self, Packed<Record<'_>>>`,
//! `record: Record<'_>`; and with no lifetime at all where Rust infers one,
//! as in `Packed::<Record>::new()`. `'_` says "whatever buffer the frame
//! came from"; `'static` would claim the frame lives forever, which a
//! frame borrowed from a buffer never does (a frame typed `Record<'static>`
//! in `on_read` is a lifetime mismatch). To keep a frame past `on_read`,
//! copy out what you need (or give the struct owned fields, `Vec<u8>` and
//! `String`, which make it `'static` for real).
//!
//! ## 4. Running it
//!
//! An [`Engine`](crate::Engine) runs everything on one thread. A
//! [`Server`](crate::Server) gives each accepted connection its typed stream;
//! a client stream is configured with [`Stream::new`](crate::Stream::new)
//! and connected:
//!
//! ```
//! use std::{cell::RefCell, rc::Rc, time::Duration};
//! use pants::{delimiter::Until, Engine, Handler, Read, Server, Stream};
//!
//! struct Upper;
//! impl Handler for Upper {}
//! impl Read<Until> for Upper {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         let _ = stream.send(line.to_ascii_uppercase());
//!     }
//! }
//!
//! /// The engine runs on this thread: handlers share state with `Rc`.
//! struct Asker { answer: Rc<RefCell<Option<String>>> }
//! impl Handler for Asker {
//!     fn on_connect(&mut self, stream: &mut Stream<Self>) {
//!         let _ = stream.send_with(&Until::lf(), b"quiet please");
//!     }
//! }
//! impl Read<Until> for Asker {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         *self.answer.borrow_mut() = Some(String::from_utf8_lossy(line).into_owned());
//!         stream.close();
//!     }
//! }
//!
//! let engine = Engine::new()?;
//! let server = Server::from_fn(|_peer| Some(Stream::new(Upper).read_delimiter(Until::lf())))
//!     .listen(&engine, "127.0.0.1:0")?;
//! let address = engine.local_address(server)?;
//! let answer = Rc::new(RefCell::new(None));
//! Stream::new(Asker { answer: answer.clone() }).read_delimiter(Until::lf()).connect(&engine, address)?;
//!
//! engine.run_until(Duration::from_secs(5), || answer.borrow().is_some())?;
//! assert_eq!(answer.borrow().as_deref(), Some("QUIET PLEASE"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `engine.run()` runs until [`Engine::stop`](crate::Engine::stop); other
//! threads use a [`Remote`](crate::Remote).
//!
//! ### Testing it without sockets
//!
//! [`testing`](crate::testing) runs the same handler on an in-memory
//! transport, on an engine whose clock the test moves: send bytes in any
//! split, settle, and look at what the handler wrote; a timeout of minutes
//! is tested in microseconds.
//!
//! ```
//! # use pants::{delimiter::Until, Handler, Read, Stream};
//! # struct Upper;
//! # impl Handler for Upper {}
//! # impl Read<Until> for Upper {
//! #     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//! #         let _ = stream.send(line.to_ascii_uppercase());
//! #     }
//! # }
//! let test = pants::testing::TestEngine::new()?;
//! let peer = Stream::new(Upper).read_delimiter(Until::lf()).attach_memory(&test)?;
//! peer.send("qui");
//! peer.send("et\n");
//! test.settle()?;
//! assert_eq!(peer.take_written(), b"QUIET\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 5. Writing
//!
//! [`write`](crate::Stream::write) queues bytes; everything a stream queues
//! during one callback batch goes out together, in as few system calls as
//! possible, so replies to pipelined requests are batched for free.
//! [`write_now`](crate::Stream::write_now) sends at once instead (Pants'
//! `flush=True`), without copying when nothing is queued: the call for an
//! echo or a proxy forwarding large chunks.
//! [`send`](crate::Stream::send) writes one frame of the protocol being read
//! (see [`encode`](crate::encode): every built-in delimiter but the regex
//! ones is also an encoder), [`send_with`](crate::Stream::send_with) one of
//! any encoder's protocol; both encode straight into the queue and refuse
//! what the peer could not cut back out (a line holding its terminator, a
//! body of the wrong length) with a typed [`PackError`](crate::PackError),
//! queueing nothing.
//! [`write_packed`](crate::Stream::write_packed) encodes a NetStruct (or a
//! zerocopy / binrw value) straight into the queue;
//! [`write_file`](crate::Stream::write_file) sends a file with `sendfile`.
//! `on_write` tells when the queue has drained. A peer that does not read
//! cannot make a stream buffer without bound: above the write limit, reading
//! from it pauses ([`Handler::on_backpressure`](crate::Handler::on_backpressure)).
//!
//! A bulk sender (a file server, a replication feed) is a *producer*: it
//! calls [`start_producing`](crate::Stream::start_producing), and
//! [`on_produce`](crate::Handler::on_produce) is called each time the queue
//! is at most half the write limit, for one chunk at a time (Twisted's
//! `registerProducer`). However much it sends, it never buffers much more
//! than the write limit, and other streams keep their turn.
//!
//! ## 6. Closing
//!
//! [`close`](crate::Stream::close) sends everything queued, then closes;
//! [`close_now`](crate::Stream::close_now) drops the queue. `on_close` runs
//! exactly once. When the peer closes first, the frames already buffered are
//! still delivered, a partial frame is reported to `on_error`
//! ([`FrameError::Truncated`](crate::FrameError) with its length; also when
//! the peer resets the connection, before the read error), and replies
//! queued in response are still sent.
//!
//! ## 7. Stopping a server
//!
//! [`Engine::shutdown`](crate::Engine::shutdown) is the orderly end, on a
//! signal say: servers stop accepting, every stream flushes what it queued
//! until a deadline and gets `on_close`, the rest is cut off, and a
//! [`ShutdownSummary`](crate::ShutdownSummary) says which was which.
//! [`Server::drain`](crate::Server::drain) stops one server listening while
//! its connections finish by themselves;
//! [`max_connections`](crate::server::ServerBuilder::max_connections)
//! refuses peers, or stops accepting, at a limit. Dropping the engine (its
//! last handle from [`Engine::new`](crate::Engine::new)) closes every socket
//! and drops every handler at once, without `on_close`.
//!
//! ```
//! use std::time::Duration;
//! use pants::{delimiter::Until, server::AtLimit, Engine, Handler, Read, Server, Stream};
//!
//! struct Echo;
//! impl Handler for Echo {}
//! impl Read<Until> for Echo {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
//!         let _ = stream.send(line);
//!     }
//! }
//!
//! let engine = Engine::new()?;
//! Server::from_fn(|_| Some(Stream::new(Echo).read_delimiter(Until::lf())))
//!     .max_connections(1000, AtLimit::Refuse)
//!     .listen(&engine, "127.0.0.1:0")?;
//! // engine.run()? until a signal stops it (through a Remote), then:
//! let summary = engine.shutdown(Duration::from_secs(5))?;
//! println!("{} flushed, {} cut off", summary.flushed, summary.cut_off);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Clients that must stay connected reconnect with backoff after
//! `on_connect_error` or `on_close`: the [`reconnect`](crate::reconnect)
//! module shows the pattern and gives a [`Backoff`](crate::reconnect::Backoff).
//!
//! ## 8. Errors
//!
//! Nothing a peer sends can panic the library: every problem is a typed
//! error. Framing errors ([`FrameError`](crate::FrameError)) reach
//! `on_overflow_error` (no frame fits the buffer limit) or `on_error`; I/O,
//! timeouts and the rest are [`StreamError`](crate::StreamError)s. The
//! defaults log and close; override them to recover. A handler that panics
//! only takes down its own stream.
//!
//! ## 9. TLS
//!
//! With the `tls` feature (a default), give a client stream
//! [`TlsClient`][TlsClient] options with [`StreamBuilder::tls`][builder-tls],
//! or a server [`TlsServer`][TlsServer] options with
//! [`ServerBuilder::tls`][server-tls]. For STARTTLS, call
//! [`Stream::start_tls`][start-tls] inside a callback: TLS begins once the
//! plain-text replies queued before it are sent, and plain text injected
//! after that point is refused. Certificates are verified by default.
#![cfg_attr(
    feature = "tls",
    doc = "\n\n[TlsClient]: crate::tls::TlsClient\n[builder-tls]: crate::StreamBuilder::tls\n[TlsServer]: crate::tls::TlsServer\n[server-tls]: crate::server::ServerBuilder::tls\n[start-tls]: crate::Stream::start_tls\n[plaintext]: crate::tls::TlsError::PlaintextAfterStartTls"
)]
#![cfg_attr(
    not(feature = "tls"),
    doc = "\n\n[TlsClient]: https://docs.rs/pants/latest/pants/tls/struct.TlsClient.html\n[builder-tls]: https://docs.rs/pants/latest/pants/struct.StreamBuilder.html#method.tls\n[TlsServer]: https://docs.rs/pants/latest/pants/tls/struct.TlsServer.html\n[server-tls]: https://docs.rs/pants/latest/pants/server/struct.ServerBuilder.html#method.tls\n[start-tls]: https://docs.rs/pants/latest/pants/struct.Stream.html#method.start_tls\n[plaintext]: https://docs.rs/pants/latest/pants/tls/enum.TlsError.html#variant.PlaintextAfterStartTls"
)]
//!
//! ## 10. Observing streams: counters and tracing
//!
//! Every stream counts what it moves, for the price of an integer add per
//! read, write and frame: [`Stream::counters`](crate::Stream::counters) in
//! its callbacks (in `on_close`, the totals of its life) and
//! [`Engine::counters`](crate::Engine::counters) by id from outside them
//! give a [`StreamCounters`](crate::StreamCounters): bytes read, bytes
//! written (application bytes: the plaintext over TLS), frames delivered to
//! `on_read`, and bytes queued. A server counts the peers it accepted and
//! refused ([`ServerCounters`](crate::ServerCounters)).
//!
//! ```
//! use pants::{delimiter::Until, Engine, Handler, Read, Server, Stream, StreamCounters};
//! use std::{cell::Cell, io::Write, rc::Rc};
//!
//! /// Reads lines; keeps its counters at close.
//! struct Meter {
//!     at_close: Rc<Cell<Option<StreamCounters>>>,
//! }
//!
//! impl Handler for Meter {
//!     fn on_close(&mut self, stream: &mut Stream<Self>) {
//!         self.at_close.set(Some(stream.counters()));
//!     }
//! }
//!
//! impl Read<Until> for Meter {
//!     fn on_read(&mut self, stream: &mut Stream<Self, Until>, _line: &[u8]) {
//!         let _ = stream.send(b"+"); // "+\r\n"
//!     }
//! }
//!
//! let engine = Engine::new()?;
//! let at_close = Rc::new(Cell::new(None));
//! let kept = at_close.clone();
//! let server = Server::from_fn(move |_| Some(Stream::new(Meter { at_close: kept.clone() }).read_delimiter(Until::crlf())))
//!     .listen(&engine, "127.0.0.1:0")?;
//! let pants::Address::Ip(address) = engine.local_address(server)? else { unreachable!() };
//! let mut peer = std::net::TcpStream::connect(address)?;
//! peer.write_all(b"one\r\ntwo\r\n")?;
//! peer.shutdown(std::net::Shutdown::Write)?; // the server replies, then closes
//! engine.run_until(std::time::Duration::from_secs(10), || at_close.get().is_some())?;
//! let counters = at_close.get().unwrap();
//! assert_eq!((counters.bytes_read, counters.frames_read, counters.bytes_written), (10, 2, 6));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `tracing` feature, each stream has a [`tracing`](https://docs.rs/tracing) span, made
//! once and entered while the engine works on the stream, its callbacks
//! included: named `stream`, target `pants::stream`, level INFO, with the
//! fields `id` (as [`StreamId`](crate::StreamId) displays), `side`
//! (`client`, `accepted` or `attached`) and `peer` (recorded once known).
//! A server's span is `server` (target `pants::server`: `id`, `local`), and
//! the streams it accepts are its children. Inside them come these events
//! (`log` goes on logging what it did; both can be on):
//!
//! | event (message) | level | fields |
//! |---|---|---|
//! | `connecting` | DEBUG | `address` |
//! | `connect attempt failed, trying the next address` | DEBUG | `address`, `error` |
//! | `connected` (connected, accepted or attached) | DEBUG | |
//! | `connect failed` | WARN | `address`, `error` |
//! | `TLS handshake started`, `TLS handshake complete` | DEBUG | `version`, `cipher` (complete) |
//! | `error` | WARN | `kind` (`read`, `write`, `file`, `frame`, `overflow`, `truncated`, `timeout`, `tls`, `tls_handshake`), `error` |
//! | `handler panicked` | ERROR | `panic` |
//! | `closed` | DEBUG | `graceful`, `bytes_read`, `bytes_written`, `frames_read`, `unsent` |
//! | server: `listening`, `closed` (`accepted`, `refused`); `refused ...` | DEBUG | `peer` |
//! | server: `accept failed`, `an accepted connection could not run` | WARN | `error` |
//!
//! Any subscriber shows them; with `tracing-subscriber`,
//! `tracing_subscriber::fmt().with_env_filter("pants=debug").init()`
//! prints each event with its stream's span, as
//! `stream{id=#1.0 side=accepted peer=127.0.0.1:50312}: closed graceful=true ...`.
//! Without the feature, none of this is compiled.
//!
//! ## 11. For Pants users: what behaves differently
//!
//! Python's Pants 1.0 had bugs and surprises that a port should not carry
//! over. This is what pants does instead:
//!
//! | Pants 1.0 | pants |
//! |---|---|
//! | cancelling a timer removed another one due at the same time | timers are cancelled by identity ([`TimerId`](crate::TimerId)) |
//! | a cycle could not cancel itself | it can, from inside its own function |
//! | `defer`/`cycle` counted from the last poll, so fired early | they count from the call, and never fire early |
//! | one channel closing another mid-dispatch killed the engine; a reused fd could get another's events | ids carry a generation: events for a closed stream never reach its successor |
//! | a refused connect was reported as a read error, and `on_close` came before `on_connect_error` | [`on_connect_error`](crate::Handler::on_connect_error), then `on_close` once (if the handler closes) |
//! | an invalid address left the stream unusable; reconnecting raised | typed errors at once; a stream whose connect failed may `connect` again |
//! | data arriving with the connection reached `on_read` before `on_connect` | `on_connect` always comes first |
//! | a delimiter set outside `on_read` left buffered frames stuck | buffered bytes are cut again at once |
//! | degenerate delimiters (`0`, `''`, an empty-matching regex) hung the loop | refused when built ([`DelimiterError`](crate::DelimiterError)), or at compile time |
//! | overflow depended on how `recv` chunked the input; NetStruct string lengths were not limited | a length prefix over the limit is an overflow as soon as it is read; per-field `max` limits ([`netstruct`](crate::netstruct)) |
//! | the peer's end of stream closed without flushing: replies to its last requests were lost | buffered frames are delivered, a partial frame is reported, replies are flushed (half-close) |
//! | a `write_file` of zero bytes stalled the queue | nothing is queued for it |
//! | `close()` towards a peer that never reads waited forever | idle and read timeouts give up on it |
//! | `write_packed` used native byte order, unlike the NetStruct delimiters | the same derived struct reads and writes, in network order by default |
//! | host names resolved with a blocking `getaddrinfo`; only the first address was tried | resolution off the loop; every address is tried in turn |
//! | listening on a bare port made a second IPv6 "slave" server (different ports with port 0); UNIX listeners failed with `SO_REUSEPORT` | one dual-stack socket on `[::]`; UNIX sockets listen, and a stale socket file is replaced |
//! | `EPIPE` and socket errors closed silently | every error reaches an error callback, typed ([`StreamError`](crate::StreamError)) |
//! | plain text injected after `startSSL` was handed over as if it came through TLS | it is refused ([`TlsError::PlaintextAfterStartTls`][plaintext]) |
