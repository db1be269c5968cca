//! `Workers`: several engines on several threads, over real loopback
//! sockets. Every wait is bounded.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pants::delimiter::Until;
use pants::{Engine, Handler, Read, Server, Stream, StreamError, StreamId, WorkerStreamId, Workers, WorkersError};

const STEP: Duration = Duration::from_secs(10);

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream
}

/// Sends a line and reads one back.
fn ask(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream.try_clone().unwrap()).read_line(&mut reply).unwrap();
    reply
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Echoes lines with the worker's index in front; `boom` panics.
struct Tagged {
    worker: usize,
}

impl Handler for Tagged {}

impl Read<Until> for Tagged {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        assert!(line != b"boom", "boom");
        let _ = stream.write(format!("{} {}\n", self.worker, String::from_utf8_lossy(line)));
    }
}

fn tagged(engine: &Engine, worker: usize, port: u16, accepted: Option<Arc<Vec<AtomicUsize>>>) -> StreamId {
    Server::from_fn(move |_| {
        if let Some(accepted) = &accepted {
            accepted[worker].fetch_add(1, Ordering::Relaxed);
        }
        Some(Stream::new(Tagged { worker }).read_delimiter(Until::lf()))
    })
    .reuse_port(true)
    .listen(engine, ("127.0.0.1", port))
    .expect("listen")
}

#[test]
fn workers_share_one_address_and_the_kernel_spreads_connections() {
    const WORKERS: usize = 4;
    const CLIENTS: usize = 64;
    let port = free_port();
    let accepted = Arc::new((0..WORKERS).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let counts = Arc::clone(&accepted);
    let group = Workers::new()
        .threads(WORKERS)
        .start(move |engine, worker| {
            assert_eq!(engine.worker(), Some(worker));
            tagged(engine, worker, port, Some(Arc::clone(&counts)));
            Ok(())
        })
        .expect("start");
    assert_eq!((group.len(), group.remotes().len()), (WORKERS, WORKERS));

    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(port)).collect();
    let mut served_by = vec![0; WORKERS];
    for (i, client) in clients.iter_mut().enumerate() {
        let reply = ask(client, &format!("hello {i}"));
        let (worker, rest) = reply.trim_end().split_once(' ').expect("tagged reply");
        assert_eq!(rest, format!("hello {i}"));
        served_by[worker.parse::<usize>().unwrap()] += 1;
    }
    let accepted: Vec<usize> = accepted.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    assert_eq!(accepted, served_by, "each connection is served by the worker that accepted it");
    assert_eq!(accepted.iter().sum::<usize>(), CLIENTS);
    // 64 connections over 4 listeners: a worker with none would mean the
    // address is not shared (chance (3/4)^64 otherwise).
    assert!(accepted.iter().all(|&n| n > 0), "connections per worker: {accepted:?}");

    drop(clients);
    let summaries = group.shutdown(STEP).expect("shutdown");
    assert_eq!(summaries.len(), WORKERS);
    assert!(summaries.iter().all(|s| s.servers == 1), "{summaries:?}");
}

#[test]
fn a_failing_or_panicking_setup_is_an_error_and_the_others_are_stopped() {
    let started = Instant::now();
    let error = Workers::new()
        .threads(3)
        .start(|_, worker| if worker == 1 { Err("no config file".into()) } else { Ok(()) })
        .expect_err("setup failed");
    assert!(matches!(&error, WorkersError::Setup { worker: 1, source } if source.to_string() == "no config file"));
    assert_eq!(error.to_string(), "worker 1: setup failed: no config file");

    let error = Workers::new()
        .threads(2)
        .start(|_, worker| {
            assert!(worker != 0, "worker 0 cannot start");
            Ok(())
        })
        .expect_err("setup panicked");
    assert!(
        matches!(&error, WorkersError::Panicked { worker: 0, message } if message.contains("worker 0 cannot start")),
        "{error:?}"
    );
    assert!(started.elapsed() < STEP, "start returned at once, not after a hang");
}

#[test]
fn shutdown_drains_every_worker_flushing_what_was_queued() {
    flood_then_shutdown(false);
}

/// A group stopped first (a signal thread's `Stopper`, say) is still
/// drained by `shutdown`.
#[test]
fn shutdown_after_stop_still_drains() {
    flood_then_shutdown(true);
}

fn flood_then_shutdown(stop_first: bool) {
    const BIG: usize = 4 << 20;
    /// Queues 4 MiB on connect, more than loopback takes before the peer reads.
    struct Flood;
    impl Handler for Flood {
        fn on_connect(&mut self, stream: &mut Stream<Self>) {
            let _ = stream.write(vec![b'x'; BIG]);
        }
    }
    impl Read<Until> for Flood {
        fn on_read(&mut self, _: &mut Stream<Self, Until>, _: &[u8]) {}
    }
    let port = free_port();
    let connected = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connected);
    let group = Workers::new()
        .threads(2)
        .start(move |engine, _| {
            let seen = Arc::clone(&seen);
            Server::from_fn(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
                Some(Stream::new(Flood).read_delimiter(Until::lf()))
            })
            .reuse_port(true)
            .listen(engine, ("127.0.0.1", port))?;
            Ok(())
        })
        .expect("start");
    let clients: Vec<TcpStream> = (0..8).map(|_| connect(port)).collect();
    let deadline = Instant::now() + STEP;
    while connected.load(Ordering::Relaxed) < clients.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Read everything while the group drains: every byte arrives, then EOF.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                client.read_to_end(&mut all).map(|_| all.len())
            })
        })
        .collect();
    if stop_first {
        group.stopper().stop();
        std::thread::sleep(Duration::from_millis(50));
    }
    let summaries = group.shutdown(STEP).expect("shutdown");
    for reader in readers {
        assert_eq!(reader.join().unwrap().expect("read"), BIG);
    }
    let flushed: usize = summaries.iter().map(|s| s.flushed).sum();
    let cut_off: usize = summaries.iter().map(|s| s.cut_off).sum();
    assert_eq!((flushed, cut_off), (8, 0), "{summaries:?}");
}

#[test]
fn a_panicking_handler_leaves_its_worker_and_the_others_running() {
    let ports = [free_port(), free_port()];
    let group = Workers::new()
        .threads(2)
        .start(move |engine, worker| {
            tagged(engine, worker, ports[worker], None);
            Ok(())
        })
        .expect("start");
    let mut doomed = connect(ports[0]);
    doomed.write_all(b"boom\n").unwrap();
    let mut rest = Vec::new();
    assert_eq!(doomed.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0), 0, "closed without a reply");
    assert_eq!(ask(&mut connect(ports[1]), "still there"), "1 still there\n");
    assert_eq!(ask(&mut connect(ports[0]), "and here"), "0 and here\n");
    group.stop();
    group.join().expect("clean exit");
}

#[test]
fn a_handler_reaches_streams_on_other_workers_by_their_worker_stream_ids() {
    /// A chat: every line goes to every member, on whichever worker.
    struct Member {
        members: Arc<Mutex<Vec<WorkerStreamId>>>,
    }
    impl Handler for Member {
        fn on_connect(&mut self, stream: &mut Stream<Self>) {
            let id = stream.engine().worker_stream_id(stream.id());
            self.members.lock().unwrap().push(id);
            let _ = stream.write(format!("joined {}\n", id.worker()));
        }
    }
    impl Read<Until> for Member {
        fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
            for &member in self.members.lock().unwrap().iter() {
                stream.engine().write_to_worker(member, [line, b"\n"].concat()).expect("a worker of the group");
            }
        }
    }
    let ports = [free_port(), free_port()];
    let members = Arc::new(Mutex::new(Vec::new()));
    let m = Arc::clone(&members);
    let group = Workers::new()
        .threads(2)
        .start(move |engine, worker| {
            let members = Arc::clone(&m);
            Server::from_fn(move |_| {
                Some(Stream::new(Member { members: Arc::clone(&members) }).read_delimiter(Until::lf()))
            })
            .listen(engine, ("127.0.0.1", ports[worker]))?;
            Ok(())
        })
        .expect("start");

    let mut on_zero = BufReader::new(connect(ports[0]));
    let mut on_one = BufReader::new(connect(ports[1]));
    let mut line = String::new();
    for (worker, reader) in [&mut on_zero, &mut on_one].into_iter().enumerate() {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, format!("joined {worker}\n"));
    }
    // In order from one worker, whole lines.
    on_zero.get_mut().write_all(b"one\ntwo\nthree\n").unwrap();
    for reader in [&mut on_zero, &mut on_one] {
        for expected in ["one\n", "two\n", "three\n"] {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, expected);
        }
    }
    drop((on_zero, on_one));
    group.shutdown(STEP).expect("shutdown");
}

#[test]
fn every_setup_can_reach_every_worker() {
    let reached = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&reached);
    let group = Workers::new()
        .threads(3)
        .start(move |engine, worker| {
            assert_eq!(engine.workers(), 3);
            assert!(engine.worker_remote(3).is_none());
            let next = (worker + 1) % 3;
            let reached = Arc::clone(&r);
            // Runs on the next worker once it runs: every engine exists
            // before any setup starts.
            engine.worker_remote(next).expect("every worker's remote").post(move |engine| {
                reached.lock().unwrap().push((worker, engine.worker().unwrap()));
            });
            // A stream id to name on a worker that does not exist.
            let server =
                Server::from_fn(|_| None::<pants::StreamBuilder<Refused, Until>>).listen(engine, "127.0.0.1:0")?;
            let elsewhere = WorkerStreamId::new(7, server);
            assert!(matches!(engine.write_to_worker(elsewhere, b"x".as_slice()), Err(StreamError::NoSuchWorker(7))));
            Ok(())
        })
        .expect("start");
    let deadline = Instant::now() + STEP;
    while reached.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut reached = reached.lock().unwrap().clone();
    reached.sort_unstable();
    assert_eq!(reached, [(0, 1), (1, 2), (2, 0)]);
    group.stop();
    group.join().expect("join");
}

/// A handler that never runs (for a listener that refuses everyone).
struct Refused;
impl Handler for Refused {}
impl Read<Until> for Refused {
    fn on_read(&mut self, _: &mut Stream<Self, Until>, _: &[u8]) {}
}

/// Counts the connections each worker serves; echoes lines tagged with
/// the worker's index.
fn round_robin_spread(group: &pants::WorkerGroup, address: pants::Address, clients: usize) -> Vec<usize> {
    let mut served = vec![0; group.len()];
    let mut open = Vec::new();
    for i in 0..clients {
        // One at a time, so that the order of accepts is the order of connects.
        let reply = match &address {
            pants::Address::Unix(path) => {
                let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect");
                s.set_read_timeout(Some(STEP)).unwrap();
                s.write_all(format!("n{i}\n").as_bytes()).unwrap();
                let mut line = String::new();
                BufReader::new(s.try_clone().unwrap()).read_line(&mut line).unwrap();
                open.push(Box::new(s) as Box<dyn std::any::Any>);
                line
            }
            other => {
                let mut s = TcpStream::connect(other.to_string()).expect("connect");
                s.set_read_timeout(Some(STEP)).unwrap();
                let line = ask(&mut s, &format!("n{i}"));
                open.push(Box::new(s));
                line
            }
        };
        let (worker, rest) = reply.trim_end().split_once(' ').expect("tagged reply");
        assert_eq!(rest, format!("n{i}"));
        served[worker.parse::<usize>().unwrap()] += 1;
    }
    served
}

#[test]
fn one_listener_hands_connections_to_the_workers_in_turn_over_tcp_and_unix_sockets() {
    const WORKERS: usize = 3;
    let group = Workers::new().threads(WORKERS).start(|_, _| Ok(())).expect("start");
    // Which worker a stream runs on: the thread's name says.
    fn tagged_here(_: &pants::Address) -> Option<pants::StreamBuilder<Tagged, Until>> {
        let name = std::thread::current().name().unwrap_or_default().to_string();
        let worker = name.rsplit('-').next().and_then(|n| n.parse().ok()).expect("a worker thread");
        Some(Stream::new(Tagged { worker }).read_delimiter(Until::lf()))
    }
    let tcp = group.listen_round_robin("127.0.0.1:0", tagged_here).expect("listen tcp");
    assert_eq!(round_robin_spread(&group, tcp, 3 * WORKERS), vec![3; WORKERS]);

    let dir = std::env::temp_dir().join(format!("pants-workers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rr.sock");
    let unix = group.listen_round_robin(path.as_path(), tagged_here).expect("listen unix");
    assert_eq!(round_robin_spread(&group, unix, 2 * WORKERS), vec![2; WORKERS]);

    let summaries = group.shutdown(STEP).expect("shutdown");
    assert_eq!(summaries.iter().map(|s| s.servers).sum::<usize>(), 2, "{summaries:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
