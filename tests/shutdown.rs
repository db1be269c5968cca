//! `Engine::shutdown`, `Server::drain` and connection limits, over loopback.

mod common;

use std::cell::Cell;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use common::{join, pattern, peer, read_all, run_for, wait, Log, IO_TIMEOUT};
use pants::delimiter::{Raw, Until};
use pants::server::AtLimit;
use pants::{Address, Engine, Handler, Read, Server, ServerHandler, Stream, StreamBuilder, StreamId};

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn address_of(engine: &Engine, server: StreamId) -> SocketAddr {
    match engine.local_address(server).unwrap() {
        Address::Ip(address) => address,
        other => panic!("not an IP address: {other}"),
    }
}

/// On connect, queues `reply` (large: the peer reads it while the engine
/// shuts down); logs its close.
struct Sender {
    reply: Rc<Vec<u8>>,
    log: Log,
}

impl Handler for Sender {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.set_write_limit(64 << 20);
        stream.write(&self.reply[..]).unwrap();
        self.log.push("connect");
    }
    fn on_close(&mut self, _: &mut Stream<Self>) {
        self.log.push("close");
    }
}

impl Read<Raw> for Sender {
    fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {}
}

fn sender_server(engine: &Engine, reply: &Rc<Vec<u8>>, log: &Log) -> StreamId {
    let (reply, log) = (reply.clone(), log.clone());
    Server::from_fn(move |_| Some(Stream::new(Sender { reply: reply.clone(), log: log.clone() })))
        .listen(engine, "127.0.0.1:0")
        .unwrap()
}

#[test]
fn shutdown_flushes_every_stream_calls_on_close_and_stops_listening() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let reply = Rc::new(pattern(4 << 20, 3));
    let server = sender_server(&engine, &reply, &log);
    let address = address_of(&engine, server);
    let peers: Vec<_> = (0..3).map(|_| connect(address)).collect();
    wait(&engine, "three connections", || log.count("connect") == 3);
    // The peers read only now, while the engine drains.
    let readers: Vec<_> = peers.into_iter().map(|p| peer(move || read_all(p))).collect();
    let summary = engine.shutdown(Duration::from_secs(20)).unwrap();
    assert_eq!((summary.servers, summary.flushed, summary.cut_off, summary.failed), (1, 3, 0, 0), "{summary:?}");
    assert_eq!(log.count("close"), 3, "on_close for every stream");
    assert_eq!(engine.channel_count(), 0);
    for reader in readers {
        let (got, end) = reader.join().unwrap();
        end.unwrap();
        assert!(got == *reply, "every queued byte delivered ({} of {})", got.len(), reply.len());
    }
    assert!(TcpStream::connect(address).is_err(), "no longer listening");
}

#[test]
fn shutdown_cuts_off_a_stream_whose_peer_never_reads_at_the_deadline() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let reply = Rc::new(pattern(32 << 20, 5));
    let server = sender_server(&engine, &reply, &log);
    let silent = connect(address_of(&engine, server));
    wait(&engine, "the connection", || log.count("connect") == 1);
    let summary = engine.shutdown(Duration::from_millis(300)).unwrap();
    assert_eq!((summary.servers, summary.flushed, summary.cut_off), (1, 0, 1), "{summary:?}");
    assert!(summary.unsent > 0 && summary.unsent <= 32 << 20, "{summary:?}");
    assert_eq!(log.count("close"), 1, "on_close is called for a cut-off stream too");
    assert_eq!(engine.channel_count(), 0);
    drop(silent);
}

#[test]
fn shutdown_frees_timers_and_the_engine_can_be_used_again() {
    let engine = Engine::new().unwrap();
    let state = Rc::new(());
    let held = state.clone();
    engine.cycle(Duration::from_secs(3600), move |_| {
        let _ = &held;
    });
    let summary = engine.shutdown(Duration::from_secs(1)).unwrap();
    assert_eq!(summary, Default::default());
    assert_eq!(Rc::strong_count(&state), 1, "the cycle's closure was dropped");

    let log = Log::new();
    let server = sender_server(&engine, &Rc::new(b"again".to_vec()), &log);
    let client = connect(address_of(&engine, server));
    let reader = peer(move || read_all(client));
    wait(&engine, "a connection after the shutdown", || log.count("connect") == 1);
    engine.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(join(&engine, reader).0, b"again");
}

#[test]
fn shutdown_from_inside_a_callback_is_an_error() {
    let engine = Engine::new().unwrap();
    let answer = Rc::new(Cell::new(None));
    let seen = answer.clone();
    engine.callback(move |engine| seen.set(Some(engine.shutdown(Duration::ZERO).is_err())));
    wait(&engine, "the callback", || answer.get().is_some());
    assert_eq!(answer.get(), Some(true));
}

/// Echoes lines; logs its close.
struct LineEcho {
    log: Log,
}
impl Handler for LineEcho {
    fn on_close(&mut self, _: &mut Stream<Self>) {
        self.log.push("stream closed");
    }
}
impl Read<Until> for LineEcho {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        stream.write([line, b"\n"].concat()).unwrap();
    }
}

/// A server of `LineEcho` streams that logs its own close and refusals.
struct Lines {
    log: Log,
}
impl ServerHandler for Lines {
    type Handler = LineEcho;
    type Delimiter = Until;
    fn on_accept(&mut self, _: &mut Server, _: &Address) -> Option<StreamBuilder<LineEcho, Until>> {
        self.log.push("accept");
        Some(Stream::new(LineEcho { log: self.log.clone() }).read_delimiter(Until::lf()))
    }
    fn on_refuse(&mut self, _: &mut Server, _: &Address) {
        self.log.push("refuse");
    }
    fn on_close(&mut self, _: &mut Server) {
        self.log.push("server closed");
    }
}

fn ask(client: &mut TcpStream, line: &str) -> String {
    client.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut got = vec![0u8; line.len() + 1];
    client.read_exact(&mut got).unwrap();
    String::from_utf8(got).unwrap()
}

#[test]
fn a_draining_server_stops_accepting_and_closes_after_its_last_connection() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let server = Server::new(Lines { log: log.clone() }).listen(&engine, "127.0.0.1:0").unwrap();
    let address = address_of(&engine, server);
    let (mut a, mut b) = (connect(address), connect(address));
    wait(&engine, "two connections", || log.count("accept") == 2);
    engine.with_server::<Lines, _>(server, |_, server| server.drain()).unwrap();
    run_for(&engine, Duration::from_millis(20));
    assert!(TcpStream::connect(address).is_err(), "draining: no longer listening");

    let asked = peer(move || {
        let first = ask(&mut a, "still here");
        drop(a);
        (first, b)
    });
    let (first, b2) = join(&engine, asked);
    assert_eq!(first, "still here\n", "open connections keep working");
    wait(&engine, "the first close", || log.count("stream closed") == 1);
    run_for(&engine, Duration::from_millis(50));
    assert!(!log.contains("server closed"), "one connection is still open: {log:?}");
    b = b2;
    let asked = peer(move || ask(&mut b, "last"));
    assert_eq!(join(&engine, asked), "last\n");
    wait(&engine, "the server's close", || log.contains("server closed"));
    assert_eq!(log.events().last().map(String::as_str), Some("server closed"), "after the last stream: {log:?}");
    assert_eq!(engine.channel_count(), 0);
}

#[test]
fn at_the_connection_limit_refuse_closes_new_peers_at_once() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let server = Server::new(Lines { log: log.clone() })
        .max_connections(2, AtLimit::Refuse)
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
    let address = address_of(&engine, server);
    let (mut a, mut b) = (connect(address), connect(address));
    wait(&engine, "two connections", || log.count("accept") == 2);
    let third = connect(address);
    wait(&engine, "the refusal", || log.contains("refuse"));
    let refused = peer(move || read_all(third));
    let (got, _) = join(&engine, refused);
    assert!(got.is_empty(), "the refused peer got nothing but the end");
    // Both come back, so that only `a` closes below (`b` stays open).
    let asked = peer(move || (ask(&mut a, "a"), ask(&mut b, "b"), a, b));
    let (ra, rb, a, b) = join(&engine, asked);
    assert_eq!((ra.as_str(), rb.as_str()), ("a\n", "b\n"));
    // Below the limit again, a new peer is accepted.
    drop(a);
    wait(&engine, "a close", || log.count("stream closed") == 1);
    let mut fourth = connect(address);
    let asked = peer(move || ask(&mut fourth, "room again"));
    assert_eq!(join(&engine, asked), "room again\n");
    assert_eq!(log.count("refuse"), 1);
    assert_eq!(log.count("accept"), 3);
    drop(b);
}

#[test]
fn at_the_connection_limit_pause_accepts_waiting_peers_as_room_is_made() {
    let engine = Engine::new().unwrap();
    let log = Log::new();
    let server = Server::new(Lines { log: log.clone() })
        .max_connections(1, AtLimit::Pause)
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
    let address = address_of(&engine, server);
    let mut first = connect(address);
    wait(&engine, "the first connection", || log.count("accept") == 1);
    // The second peer connects (the kernel queues it) and asks at once.
    let mut second = connect(address);
    second.write_all(b"waiting\n").unwrap();
    run_for(&engine, Duration::from_millis(200));
    assert_eq!(log.count("accept"), 1, "paused at the limit: {log:?}");
    let asked = peer(move || (ask(&mut first, "first"), first));
    let (answer, first) = join(&engine, asked);
    assert_eq!(answer, "first\n");
    let waited = peer(move || {
        let mut got = [0u8; 8];
        second.read_exact(&mut got).unwrap();
        got
    });
    run_for(&engine, Duration::from_millis(50));
    assert!(!waited.is_finished(), "not served while the first is open");
    assert_eq!(log.count("accept"), 1);
    // The first peer leaves: its close makes room.
    drop(first);
    let got = join(&engine, waited);
    assert_eq!(&got, b"waiting\n");
    assert_eq!(log.count("accept"), 2);
    assert!(!log.contains("refuse"));
}

#[test]
fn engine_drain_reaches_a_server_of_any_type() {
    let engine = Engine::new().unwrap();
    let server = Server::from_fn(|_| Some(Stream::new(LineEcho { log: Log::new() }).read_delimiter(Until::lf())))
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
    let address = address_of(&engine, server);
    let mut client = connect(address);
    wait(&engine, "the connection", || engine.channel_count() == 2);
    engine.drain(server).unwrap();
    run_for(&engine, Duration::from_millis(20));
    assert!(TcpStream::connect(address).is_err(), "no longer listening");
    let asked = peer(move || ask(&mut client, "x"));
    assert_eq!(join(&engine, asked), "x\n");
    wait(&engine, "the server's close", || engine.channel_count() == 0);
}
