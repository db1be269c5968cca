//! Servers over loopback: TCP, dual-stack bare ports, UNIX paths, refusing
//! peers, connection tracking, broadcast and chat, closing (from outside and
//! from callbacks), accept-error back-off, and panicking handlers.
//!
//! Peers are blocking `std` sockets switched to non-blocking reads and pumped
//! from `run_until`'s condition, so one thread drives both sides without
//! deadlock; every wait is bounded.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pants::delimiter::Until;
use pants::{Address, Engine, Handler, Read, Server, ServerHandler, Stream, StreamBuilder, StreamError, StreamId};

/// Upper bound on any single wait; never reached when things work.
const WAIT: Duration = Duration::from_secs(30);

fn run(engine: &Engine, what: &str, done: impl FnMut() -> bool) {
    assert!(engine.run_until(WAIT, done).unwrap(), "timed out waiting for {what}");
}

fn tcp_address(engine: &Engine, id: StreamId) -> SocketAddr {
    match engine.local_address(id).unwrap() {
        Address::Ip(addr) => addr,
        other => panic!("server {id} has no IP address: {other:?}"),
    }
}

/// A unique path for a UNIX socket in the temp directory.
fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pants-server-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

// ---------------------------------------------------------------------------
// Peers: std sockets read without blocking from inside `run_until`.

trait Sock: io::Read + io::Write {
    fn set_nb(&self, nonblocking: bool) -> io::Result<()>;
}

impl Sock for TcpStream {
    fn set_nb(&self, nonblocking: bool) -> io::Result<()> {
        self.set_nonblocking(nonblocking)
    }
}

impl Sock for UnixStream {
    fn set_nb(&self, nonblocking: bool) -> io::Result<()> {
        self.set_nonblocking(nonblocking)
    }
}

struct Peer<S: Sock> {
    sock: S,
    got: Vec<u8>,
    eof: bool,
    error: Option<io::ErrorKind>,
}

impl<S: Sock> Peer<S> {
    fn new(sock: S) -> Self {
        sock.set_nb(true).unwrap();
        Peer { sock, got: Vec::new(), eof: false, error: None }
    }

    fn send(&mut self, data: impl AsRef<[u8]>) {
        self.sock.set_nb(false).unwrap();
        self.sock.write_all(data.as_ref()).unwrap();
        self.sock.set_nb(true).unwrap();
    }

    /// Reads whatever has arrived; returns self for chaining in conditions.
    fn pump(&mut self) -> &mut Self {
        let mut buf = [0u8; 64 * 1024];
        while !self.eof {
            match self.sock.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e.kind());
                    self.eof = true;
                }
            }
        }
        self
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.got).into_owned()
    }

    fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

fn tcp_peer(addr: SocketAddr) -> Peer<TcpStream> {
    Peer::new(TcpStream::connect(addr).unwrap())
}

// ---------------------------------------------------------------------------
// A line-echo server that logs every callback.

#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }

    fn count(&self, prefix: &str) -> usize {
        self.0.borrow().iter().filter(|e| e.starts_with(prefix)).count()
    }

    fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Echoes lines. `shutdown` answers `bye` and closes the whole server from
/// inside this stream's `on_read`.
struct Echo {
    log: Log,
    server: StreamId,
}

impl Handler for Echo {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.log.push(format!("connect {}", stream.id()));
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        self.log.push(format!("close {}", stream.id()));
    }
}

impl Read<Until> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        self.log.push(format!("read {line}"));
        if line == "shutdown" {
            stream.write(b"bye\n").unwrap();
            let engine = stream.engine().clone();
            engine.with_server::<EchoServer, _>(self.server, |_, server| server.close()).unwrap();
        } else {
            stream.write(format!("{line}\n")).unwrap();
        }
    }
}

type Decide = Box<dyn FnMut(&mut Server, &Address) -> bool>;

struct EchoServer {
    log: Log,
    /// Whether to take each peer (default: yes).
    decide: Option<Decide>,
}

impl EchoServer {
    fn new(log: &Log) -> Self {
        EchoServer { log: log.clone(), decide: None }
    }

    fn deciding(log: &Log, decide: impl FnMut(&mut Server, &Address) -> bool + 'static) -> Self {
        EchoServer { log: log.clone(), decide: Some(Box::new(decide)) }
    }
}

impl ServerHandler for EchoServer {
    type Handler = Echo;
    type Delimiter = Until;

    fn on_accept(&mut self, server: &mut Server, peer: &Address) -> Option<StreamBuilder<Echo, Until>> {
        let take = self.decide.as_mut().map_or(true, |decide| decide(server, peer));
        self.log.push(format!("{} {peer}", if take { "accept" } else { "refuse" }));
        take.then(|| Stream::new(Echo { log: self.log.clone(), server: server.id() }).read_delimiter(Until::lf()))
    }

    fn on_listen(&mut self, server: &mut Server) {
        self.log.push(format!("listen {:?}", server.local_address()));
    }

    fn on_close(&mut self, server: &mut Server) {
        self.log.push(format!("server-close {}", server.connection_count()));
    }

    fn on_error(&mut self, _server: &mut Server, error: StreamError) {
        self.log.push(format!("server-error {error}"));
    }
}

fn connections(engine: &Engine, server: StreamId) -> Vec<StreamId> {
    engine.with_server::<EchoServer, _>(server, |_, s| s.connections()).unwrap()
}

fn connection_count(engine: &Engine, server: StreamId) -> usize {
    engine.with_server::<EchoServer, _>(server, |_, s| s.connection_count()).unwrap()
}

// ---------------------------------------------------------------------------

#[test]
fn tcp_server_on_loopback_calls_on_listen_once() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let server = Server::new(EchoServer::new(&log)).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0, "port 0 must be replaced by the port the OS chose");

    // on_listen comes from the loop, not from listen().
    assert_eq!(log.count("listen"), 0);
    run(&engine, "on_listen", || log.count("listen") == 1);
    assert_eq!(log.entries()[0], format!("listen {:?}", Some(Address::Ip(addr))));

    let mut peers: Vec<_> = (0..3).map(|_| tcp_peer(addr)).collect();
    for (i, peer) in peers.iter_mut().enumerate() {
        peer.send(format!("hello {i}\n"));
    }
    run(&engine, "echoes", || peers.iter_mut().enumerate().all(|(i, p)| p.pump().text() == format!("hello {i}\n")));
    // More iterations, more accepts: still exactly one on_listen, and first.
    let mut late = tcp_peer(addr);
    late.send("late\n");
    run(&engine, "late echo", || late.pump().text() == "late\n");
    assert_eq!(log.count("listen"), 1);
    assert!(log.entries()[0].starts_with("listen"), "{:?}", log.entries());
    assert_eq!(log.count("accept 127.0.0.1:"), 4, "{:?}", log.entries());
    assert_eq!(connection_count(&engine, server), 4);
}

#[test]
fn bare_port_listens_on_ipv6_and_ipv4_at_once() {
    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        println!("note: ::1 is not available on this machine; skipping the dual-stack test");
        return;
    }
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let server = Server::new(EchoServer::new(&log)).listen(&engine, Address::Port(0)).unwrap();
    let local = tcp_address(&engine, server);
    assert_eq!(local.ip(), Ipv6Addr::UNSPECIFIED, "a bare port listens on [::]");
    let port = local.port();
    assert_ne!(port, 0);

    let mut v4 = tcp_peer(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let mut v6 = tcp_peer(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
    v4.send("over ipv4\n");
    v6.send("over ipv6\n");
    run(&engine, "both echoes", || v4.pump().text() == "over ipv4\n" && v6.pump().text() == "over ipv6\n");
    assert_eq!(connection_count(&engine, server), 2);

    // The server saw each peer from its own family (IPv4 as a mapped address).
    let peers: Vec<SocketAddr> =
        log.entries().iter().filter_map(|e| e.strip_prefix("accept ")).map(|a| a.parse().unwrap()).collect();
    let v4_port = v4.sock.local_addr().unwrap().port();
    let v6_port = v6.sock.local_addr().unwrap().port();
    let seen_v4 = peers.iter().find(|p| p.port() == v4_port).expect("the IPv4 peer was accepted");
    let seen_v6 = peers.iter().find(|p| p.port() == v6_port).expect("the IPv6 peer was accepted");
    let v4_ip = match seen_v4 {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().expect("an IPv4-mapped address"),
    };
    assert_eq!(v4_ip, Ipv4Addr::LOCALHOST);
    assert_eq!(seen_v6.ip(), Ipv6Addr::LOCALHOST);
}

#[test]
fn unix_server_replaces_a_stale_socket_and_removes_its_file_on_close() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let path = socket_path("stale");

    // A stale socket file: bound once, nobody listening any more.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "std leaves the socket file behind");

    let server = Server::new(EchoServer::new(&log)).listen(&engine, path.as_path()).unwrap();
    assert_eq!(engine.local_address(server).unwrap(), Address::Unix(path.clone()));
    let mut peer = Peer::new(UnixStream::connect(&path).unwrap());
    peer.send("over unix\n");
    run(&engine, "echo over UNIX", || peer.pump().text() == "over unix\n");

    // A live socket is not replaced: a second server on the path fails to
    // listen, and the first goes on serving. (Probing the path connects once
    // to the first server; that probe is accepted and closes at once.)
    let second = Server::new(EchoServer::new(&Log::default())).listen(&engine, path.as_path());
    assert!(matches!(second, Err(StreamError::Listen { .. })), "{second:?}");
    let mut again = Peer::new(UnixStream::connect(&path).unwrap());
    again.send("still here\n");
    run(&engine, "echo after the failed second listen", || again.pump().text() == "still here\n");

    // Nor is a regular file that happens to sit at a path.
    let file = socket_path("regular-file");
    std::fs::write(&file, b"not a socket").unwrap();
    let refused = Server::new(EchoServer::new(&Log::default())).listen(&engine, file.as_path());
    assert!(matches!(refused, Err(StreamError::Listen { .. })), "{refused:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a socket");
    std::fs::remove_file(&file).unwrap();

    engine.close_stream(server, true).unwrap();
    run(&engine, "both peers closed", || peer.pump().eof && again.pump().eof);
    assert_eq!(log.count("server-close"), 1);
    assert!(!path.exists(), "close removes the socket file");
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn on_accept_refuses_some_peers_and_takes_others() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let mut n = 0;
    // Refuse every odd-numbered peer (1st, 3rd, ...).
    let handler = EchoServer::deciding(&log, move |_, _| {
        n += 1;
        n % 2 == 0
    });
    let server = Server::new(handler).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);

    let mut taken = Vec::new();
    for round in 0..3 {
        let mut refused = tcp_peer(addr);
        run(&engine, "the refused peer's end of stream", || refused.pump().eof);
        assert!(refused.got.is_empty(), "a refused peer gets nothing");
        assert_eq!(refused.error, None, "a refused peer that sent nothing sees a clean end of stream");

        let mut accepted = tcp_peer(addr);
        accepted.send(format!("round {round}\n"));
        run(&engine, "the accepted peer's echo", || accepted.pump().text() == format!("round {round}\n"));
        taken.push(accepted);
        assert_eq!(connection_count(&engine, server), round + 1, "refused peers are never tracked");
    }
    assert_eq!(log.count("refuse"), 3);
    assert_eq!(log.count("accept"), 3);
    assert_eq!(log.count("connect"), 3, "no stream exists for a refused peer");
    // Only the server and the accepted streams are open.
    assert_eq!(engine.channel_count(), 1 + 3);
}

#[test]
fn connections_are_tracked_until_each_client_closes() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let server = Server::new(EchoServer::new(&log)).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);
    assert_eq!(connection_count(&engine, server), 0);

    let mut peers: Vec<Option<Peer<TcpStream>>> = (0..4).map(|_| Some(tcp_peer(addr))).collect();
    run(&engine, "4 connections", || connection_count(&engine, server) == 4);
    // Which stream is which peer: each says its number.
    for (i, peer) in peers.iter_mut().enumerate() {
        peer.as_mut().unwrap().send(format!("{i}\n"));
    }
    run(&engine, "4 echoes", || {
        peers.iter_mut().enumerate().all(|(i, p)| p.as_mut().unwrap().pump().text() == format!("{i}\n"))
    });
    let connected: Vec<String> =
        log.entries().iter().filter_map(|e| e.strip_prefix("connect ")).map(str::to_owned).collect();
    let mut listed: Vec<String> = connections(&engine, server).iter().map(|id| id.to_string()).collect();
    let mut expected = connected.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "connections() lists exactly the accepted, open streams");
    assert_eq!(engine.connections(server).unwrap(), connections(&engine, server));

    for (closed, i) in [2, 0, 3, 1].into_iter().enumerate() {
        drop(peers[i].take());
        let want = 3 - closed;
        run(&engine, "the count to drop", || connection_count(&engine, server) == want);
        assert_eq!(connections(&engine, server).len(), want);
        assert_eq!(log.count("close "), closed + 1);
    }
    // The server itself stays up.
    let mut late = tcp_peer(addr);
    late.send("late\n");
    run(&engine, "a late echo", || late.pump().text() == "late\n");
    assert_eq!(connection_count(&engine, server), 1);
}

#[test]
fn broadcast_reaches_every_open_connection() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let server = Server::new(EchoServer::new(&log)).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);
    let mut peers: Vec<_> = (0..5).map(|_| tcp_peer(addr)).collect();
    run(&engine, "5 connections", || connection_count(&engine, server) == 5);

    let took = engine.with_server::<EchoServer, _>(server, |_, s| s.broadcast("news 1\n")).unwrap();
    assert_eq!(took, 5);
    run(&engine, "the broadcast", || peers.iter_mut().all(|p| p.pump().text() == "news 1\n"));

    // A closed client is no longer broadcast to.
    drop(peers.remove(0));
    run(&engine, "4 connections", || connection_count(&engine, server) == 4);
    let took = engine.with_server::<EchoServer, _>(server, |_, s| s.broadcast(b"news 2\n")).unwrap();
    assert_eq!(took, 4);
    run(&engine, "the second broadcast", || peers.iter_mut().all(|p| p.pump().text() == "news 1\nnews 2\n"));
}

// A small chat: each line from one member goes to every other member.

struct Chat;

struct Member {
    server: StreamId,
}

impl Handler for Member {}

impl Read<Until> for Member {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let me = stream.id();
        let mut message = line.to_vec();
        message.push(b'\n');
        let engine = stream.engine().clone();
        engine
            .with_server::<Chat, _>(self.server, |_, server| {
                for id in server.connections().into_iter().filter(|id| *id != me) {
                    engine.write_to(id, &message).unwrap();
                }
            })
            .unwrap();
    }
}

impl ServerHandler for Chat {
    type Handler = Member;
    type Delimiter = Until;

    fn on_accept(&mut self, server: &mut Server, _peer: &Address) -> Option<StreamBuilder<Member, Until>> {
        Some(Stream::new(Member { server: server.id() }).read_delimiter(Until::lf()))
    }
}

#[test]
fn chat_relays_each_line_to_every_other_client() {
    const MEMBERS: usize = 4;
    const LINES: usize = 25;
    let engine = Engine::new().unwrap();
    let server = Server::new(Chat).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);
    let mut peers: Vec<_> = (0..MEMBERS).map(|_| tcp_peer(addr)).collect();
    run(&engine, "every member", || engine.connections(server).unwrap().len() == MEMBERS);

    // Everyone talks at once, several lines per write.
    for k in 0..LINES {
        for (i, peer) in peers.iter_mut().enumerate() {
            peer.send(format!("member {i} line {k}\n"));
        }
    }
    let want = (MEMBERS - 1) * LINES;
    run(&engine, "every relayed line", || peers.iter_mut().all(|p| p.pump().lines().len() >= want));
    // Let anything extra (a bug) arrive before checking.
    engine.run_until(Duration::from_millis(50), || false).unwrap();
    for (i, peer) in peers.iter_mut().enumerate() {
        let lines = peer.pump().lines();
        assert_eq!(lines.len(), want, "member {i} got {lines:?}");
        let mut next = BTreeMap::new();
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            let (from, k): (usize, usize) = (words[1].parse().unwrap(), words[3].parse().unwrap());
            assert_ne!(from, i, "member {i} got its own line back");
            let expected = next.entry(from).or_insert(0);
            assert_eq!(k, *expected, "member {i}: lines from {from} out of order");
            *expected += 1;
        }
        assert_eq!(next.len(), MEMBERS - 1);
    }
}

/// Each accepted stream queues `size` bytes as soon as it connects.
struct Talker {
    size: usize,
    closes: Rc<Cell<usize>>,
}

impl Handler for Talker {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.write_vec(pattern(stream.id(), self.size)).unwrap();
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.closes.set(self.closes.get() + 1);
    }
}

impl Read<Until> for Talker {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

/// Bytes that differ per position: a reordering or loss shows.
fn pattern(seed: impl std::fmt::Display, size: usize) -> Vec<u8> {
    let seed = seed.to_string().bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    (0..size as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13).wrapping_add(seed) as u8).collect()
}

struct TalkServer {
    size: usize,
    closes: Rc<Cell<usize>>,
    server_closes: Rc<Cell<usize>>,
    /// Close the server from inside on_accept when this many were taken.
    close_after: Option<usize>,
}

impl ServerHandler for TalkServer {
    type Handler = Talker;
    type Delimiter = Until;

    fn on_accept(&mut self, server: &mut Server, _peer: &Address) -> Option<StreamBuilder<Talker, Until>> {
        if self.close_after.is_some_and(|n| server.connection_count() >= n) {
            server.close();
            return None;
        }
        Some(Stream::new(Talker { size: self.size, closes: self.closes.clone() }).read_delimiter(Until::lf()))
    }

    fn on_close(&mut self, _server: &mut Server) {
        self.server_closes.set(self.server_closes.get() + 1);
    }
}

fn talk_server(size: usize, close_after: Option<usize>) -> TalkServer {
    TalkServer { size, closes: Rc::default(), server_closes: Rc::default(), close_after }
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

#[test]
fn close_stops_listening_then_flushes_and_closes_every_connection() {
    const SIZE: usize = 16 << 20; // far more than the kernel buffers take
    let engine = Engine::new().unwrap();
    let handler = talk_server(SIZE, None);
    let (closes, server_closes) = (handler.closes.clone(), handler.server_closes.clone());
    let server = Server::new(handler).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);

    // Two peers that do not read yet: most of each 16 MiB stays queued.
    let mut peers: Vec<_> = (0..2).map(|_| tcp_peer(addr)).collect();
    run(&engine, "2 connections", || engine.connections(server).unwrap().len() == 2);
    let ids = engine.connections(server).unwrap();
    for _ in 0..5 {
        engine.poll(Some(Duration::from_millis(2))).unwrap();
    }
    let queued: Vec<u64> =
        ids.iter().map(|id| engine.with_stream::<Talker, _>(*id, |_, s| s.queued()).unwrap()).collect();
    assert!(queued.iter().all(|q| *q > 0), "data must still be queued when the server closes: {queued:?}");

    engine.close_stream(server, true).unwrap();
    assert_eq!(server_closes.get(), 1, "on_close of the server");
    assert!(refused(addr), "a closed server accepts no one");
    assert!(engine.with_server::<TalkServer, _>(server, |_, s| s.connection_count()).is_err());
    assert!(engine.connections(server).is_err());

    // Each peer still gets all its bytes, then the end of stream.
    run(&engine, "both peers' data and end of stream", || peers.iter_mut().all(|p| p.pump().eof));
    for (peer, id) in peers.iter().zip(&ids) {
        assert_eq!(peer.error, None);
        assert_eq!(peer.got.len(), SIZE);
        assert!(peer.got == pattern(id, SIZE), "the bytes of {id} arrived intact");
    }
    run(&engine, "the streams' on_close", || closes.get() == 2);
    // Once the peers hang up too, nothing is left on the engine.
    drop(peers);
    run(&engine, "no channels left", || engine.channel_count() == 0);
    assert_eq!(server_closes.get(), 1);
}

#[test]
fn server_closes_itself_from_on_accept() {
    let engine = Engine::new().unwrap();
    let handler = talk_server(4096, Some(2));
    let (closes, server_closes) = (handler.closes.clone(), handler.server_closes.clone());
    let server = Server::new(handler).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);

    let mut peers: Vec<_> = (0..2).map(|_| tcp_peer(addr)).collect();
    run(&engine, "2 connections", || engine.connections(server).unwrap().len() == 2);
    let accepted = engine.connections(server).unwrap();
    // The third peer makes on_accept close the server.
    let mut third = tcp_peer(addr);
    run(&engine, "the server's on_close", || server_closes.get() == 1);
    assert!(refused(addr));
    run(&engine, "every peer's end of stream", || third.pump().eof && peers.iter_mut().all(|p| p.pump().eof));
    assert!(third.got.is_empty());
    for (peer, id) in peers.iter().zip(&accepted) {
        assert!(peer.got == pattern(id, 4096), "queued data is flushed before the close");
    }
    run(&engine, "the streams' on_close", || closes.get() == 2);
    assert_eq!(server_closes.get(), 1);
}

#[test]
fn server_closes_from_a_stream_callback() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let server = Server::new(EchoServer::new(&log)).listen(&engine, "127.0.0.1:0").unwrap();
    let addr = tcp_address(&engine, server);
    let mut idle = tcp_peer(addr);
    let mut boss = tcp_peer(addr);
    run(&engine, "2 connections", || connection_count(&engine, server) == 2);
    idle.send("hi\n");
    boss.send("shutdown\n");
    run(&engine, "both ends of stream", || idle.pump().eof && boss.pump().eof);
    assert_eq!(boss.text(), "bye\n", "the reply queued before closing is delivered");
    assert_eq!(idle.text(), "hi\n");
    assert_eq!(log.count("server-close"), 1);
    assert!(refused(addr));
    run(&engine, "both streams' on_close", || log.count("close ") == 2);
}

// ---------------------------------------------------------------------------
// Accept errors: a child process with a small file descriptor limit.

const EMFILE_CHILD: &str = "PANTS_TEST_EMFILE_CHILD";
const EMFILE: i32 = 24;

/// Echoes lines; reports accept errors on stdout (the parent reads them).
struct Frugal {
    log: Log,
    errors: Rc<Cell<usize>>,
}

impl ServerHandler for Frugal {
    type Handler = Echo;
    type Delimiter = Until;

    fn on_accept(&mut self, server: &mut Server, _peer: &Address) -> Option<StreamBuilder<Echo, Until>> {
        Some(Stream::new(Echo { log: self.log.clone(), server: server.id() }).read_delimiter(Until::lf()))
    }

    fn on_error(&mut self, server: &mut Server, error: StreamError) {
        let emfile = matches!(&error, StreamError::Accept(e) if e.raw_os_error() == Some(EMFILE));
        self.errors.set(self.errors.get() + 1);
        if self.errors.get() == 1 {
            println!("CHILD accept-error emfile={emfile} open={} ({error})", server.connection_count());
            io::stdout().flush().unwrap();
        }
    }
}

/// Runs in the child: a server that runs out of descriptors while the parent
/// keeps connecting, then recovers when the parent's clients leave.
fn emfile_child() {
    let engine = Engine::new().unwrap();
    let log = Log::default();
    let errors = Rc::new(Cell::new(0));
    let handler = Frugal { log: log.clone(), errors: errors.clone() };
    let server = Server::new(handler).listen(&engine, "127.0.0.1:0").unwrap();
    println!("CHILD port {}", tcp_address(&engine, server).port());
    io::stdout().flush().unwrap();
    let quit = engine.run_until(Duration::from_secs(60), || log.count("read quit") == 1).unwrap();
    println!("CHILD done quit={quit} errors={} pings={}", errors.get(), log.count("read ping"));
    io::stdout().flush().unwrap();
    assert!(quit, "the parent never said quit");
}

/// Kills the child if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn accept_errors_back_off_and_the_server_recovers() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        return emfile_child();
    }
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    let child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "accept_errors_back_off_and_the_server_recovers", "--nocapture", "--test-threads=1"])
        .env(EMFILE_CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut transcript = Vec::new();
    let mut expect = |prefix: &str| -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    transcript.push(line.clone());
                    // The harness may print on the same line first.
                    if let Some(at) = line.find(prefix) {
                        return line[at + prefix.len()..].to_owned();
                    }
                }
                Err(e) => panic!("no `{prefix}` line from the child ({e}); it said {transcript:?}"),
            }
        }
    };

    let port: u16 = expect("CHILD port ").trim().parse().unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // More clients than the child has descriptors: the kernel completes
    // every connection (backlog); the child accepts until EMFILE.
    let clients: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let report = expect("CHILD accept-error ");
    assert!(report.starts_with("emfile=true"), "{report}");

    // Most clients leave, freeing the child's descriptors. The last ten are
    // still waiting in the backlog: no new connection announces them, so
    // only the server's retry after its back-off can accept them.
    let mut leaving = clients;
    let waiting = leaving.split_off(90);
    drop(leaving);
    for mut client in waiting {
        client.set_read_timeout(Some(WAIT)).unwrap();
        client.write_all(b"ping\n").unwrap();
        let mut echo = [0u8; 5];
        client.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ping\n");
    }
    // And a new client is served as usual.
    let mut fresh = TcpStream::connect(addr).unwrap();
    fresh.set_read_timeout(Some(WAIT)).unwrap();
    fresh.write_all(b"ping\n").unwrap();
    let mut echo = [0u8; 5];
    fresh.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping\n");
    fresh.write_all(b"quit\n").unwrap();

    let done = expect("CHILD done ");
    assert!(done.starts_with("quit=true"), "{done}");
    let errors: usize = done.split("errors=").nth(1).and_then(|e| e.split(' ').next()?.parse().ok()).unwrap();
    assert!(errors >= 1, "{done}");
    println!("child: {transcript:?}");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!("the child did not exit; it said {transcript:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "child failed: {status}; it said {transcript:?}");
    reader.join().unwrap();
}

// ---------------------------------------------------------------------------

/// Panics on the second peer.
struct Fragile {
    log: Log,
    seen: usize,
    closes: Rc<Cell<usize>>,
}

impl ServerHandler for Fragile {
    type Handler = Echo;
    type Delimiter = Until;

    fn on_accept(&mut self, server: &mut Server, _peer: &Address) -> Option<StreamBuilder<Echo, Until>> {
        self.seen += 1;
        if self.seen == 2 {
            panic!("deliberate panic in on_accept (expected by the test)");
        }
        Some(Stream::new(Echo { log: self.log.clone(), server: server.id() }).read_delimiter(Until::lf()))
    }

    fn on_close(&mut self, _server: &mut Server) {
        self.closes.set(self.closes.get() + 1);
    }
}

#[test]
fn a_panic_in_on_accept_closes_only_that_server() {
    let engine = Engine::new().unwrap();
    let fragile_log = Log::default();
    let closes = Rc::new(Cell::new(0));
    let fragile = Server::new(Fragile { log: fragile_log.clone(), seen: 0, closes: closes.clone() })
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
    let fragile_addr = tcp_address(&engine, fragile);
    let log = Log::default();
    let sturdy = Server::new(EchoServer::new(&log)).listen(&engine, "127.0.0.1:0").unwrap();
    let sturdy_addr = tcp_address(&engine, sturdy);

    let mut first = tcp_peer(fragile_addr);
    first.send("one\n");
    let mut other = tcp_peer(sturdy_addr);
    other.send("before\n");
    run(&engine, "both echoes", || first.pump().text() == "one\n" && other.pump().text() == "before\n");

    let mut second = tcp_peer(fragile_addr);
    run(&engine, "the fragile server's peers to be closed", || second.pump().eof && first.pump().eof);
    assert!(engine.with_server::<Fragile, _>(fragile, |_, s| s.connection_count()).is_err(), "closed");
    assert!(refused(fragile_addr), "the panicking server stopped listening");
    assert_eq!(closes.get(), 0, "a panicked handler is not called again");

    // The engine, the other server and its connection are unaffected.
    other.send("after\n");
    run(&engine, "the other server's echo", || other.pump().text() == "before\nafter\n");
    let mut new = tcp_peer(sturdy_addr);
    new.send("new\n");
    run(&engine, "a new connection to the other server", || new.pump().text() == "new\n");
    assert_eq!(connection_count(&engine, sturdy), 2);
}
