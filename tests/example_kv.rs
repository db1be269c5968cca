//! Runs the `kv` example (a Redis-compatible server) and talks to it with the
//! real Redis tools, `redis-cli` and `redis-benchmark`, and with raw sockets.
//!
//! The Redis tools come with the Debian/Ubuntu package `redis-tools`
//! (`apt-get install redis-tools`); without them these tests fail, saying so.
//!
//! Every wait is bounded: a broken server fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest any single step (a command, a connection's reply) may take.
const STEP: Duration = Duration::from_secs(60);
/// The longest a redis-benchmark run may take (a debug build, a busy machine).
const BENCHMARK: Duration = Duration::from_secs(300);

/// The example binary, built (or brought up to date) once per test run:
/// `cargo test` builds examples, but `cargo test --test example_kv` does not.
fn kv_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // target/<profile>/deps/example_kv-<hash> -> target/<profile>/examples/kv
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
        let binary = profile_dir.join("examples").join(format!("kv{}", std::env::consts::EXE_SUFFIX));

        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--example", "kv", "--manifest-path"]);
        cargo.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        if let Some(target_dir) = profile_dir.parent() {
            cargo.arg("--target-dir").arg(target_dir);
        }
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => drop(cargo.arg("--release")),
            Some(profile) => drop(cargo.args(["--profile", profile])),
        }
        let built = run(&mut cargo, None, Duration::from_secs(900));
        assert!(
            built.status.success(),
            "building the kv example failed ({cargo:?}):\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        assert!(binary.exists(), "the kv example is not at {}", binary.display());
        binary
    })
}

/// Fails, saying what to install, unless `tool` runs.
fn require(tool: &str) {
    let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        matches!(found, Ok(status) if status.success()),
        "`{tool}` is needed by this test but could not be run: install the `redis-tools` package \
         (Debian/Ubuntu: `apt-get install redis-tools`)"
    );
}

/// Runs `command` to completion with `stdin` as its input, killing it (and
/// failing) after `timeout`.
fn run(command: &mut Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {description}: {e}"));
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// A running kv server. Dropping it kills it (when a test failed midway);
/// [`KvServer::stop`] stops it with SIGINT and checks it exits cleanly.
struct KvServer {
    child: Child,
    addr: SocketAddr,
    /// Lines the server printed after `listening on ...`.
    stdout: Receiver<String>,
}

impl KvServer {
    fn start() -> KvServer {
        KvServer::start_with(&[])
    }

    /// With `--threads threads`.
    fn start_threads(threads: usize) -> KvServer {
        KvServer::start_with(&["--threads", &threads.to_string()])
    }

    fn start_with(extra: &[&str]) -> KvServer {
        let mut child = Command::new(kv_binary())
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the kv example");
        let (tx, stdout) = mpsc::channel();
        let pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = match stdout.recv_timeout(STEP) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the kv example printed no address: {e}");
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from kv: {first:?}"));
        KvServer { child, addr, stdout }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// `redis-cli -p <port> args...`: its standard output (redis-cli prints
    /// replies, errors included, there; without a terminal, raw).
    fn cli(&self, args: &[&str]) -> String {
        self.cli_with_input(args, None)
    }

    fn cli_with_input(&self, args: &[&str], stdin: Option<Vec<u8>>) -> String {
        let output =
            run(Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &self.port()]).args(args), stdin, STEP);
        assert!(output.status.success(), "redis-cli {args:?} failed: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// One reply line, for commands that answer with one.
    fn cli1(&self, args: &[&str]) -> String {
        self.cli(args).trim_end_matches('\n').to_string()
    }

    /// Sends SIGINT and checks that the server exits by itself, with
    /// status 0, after saying so.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("sh").args(["-c", "kill -INT \"$0\"", &pid]).status().expect("running kill");
        assert!(killed.success(), "kill -INT {pid} failed");
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for kv") {
                break status;
            }
            assert!(Instant::now() < deadline, "kv did not stop within {STEP:?} of SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "kv exited with {status} after SIGINT");
        // Everything it printed: the reader thread may not have passed the
        // last lines on yet when the process is seen to exit, so read until
        // the pipe's end.
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            rest.push(line);
        }
        assert!(rest.iter().any(|l| l == "stopped"), "kv printed {rest:?} after its address");
    }
}

impl Drop for KvServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A value of `INFO stats`.
fn stat(server: &KvServer, name: &str) -> u64 {
    let info = server.cli(&["INFO", "stats"]);
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO: {info:?}"))
}

#[test]
#[ignore = "needs redis-cli and redis-benchmark (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_cli_commands() {
    redis_cli_commands_on(1);
}

#[test]
#[ignore = "needs redis-cli (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_cli_commands_threads_2() {
    redis_cli_commands_on(2);
}

fn redis_cli_commands_on(threads: usize) {
    require("redis-cli");
    let server = KvServer::start_threads(threads);
    let cli = |args: &[&str]| server.cli1(args);

    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["PING", "hello"]), "hello");
    assert_eq!(cli(&["ECHO", "hello world"]), "hello world");

    assert_eq!(cli(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(cli(&["GET", "greeting"]), "hello");
    assert_eq!(cli(&["GET", "missing"]), "", "a missing key is nil");
    assert_eq!(cli(&["EXISTS", "greeting", "missing", "greeting"]), "2");
    assert_eq!(cli(&["DEL", "greeting", "missing"]), "1");
    assert_eq!(cli(&["EXISTS", "greeting"]), "0");
    assert_eq!(cli(&["GET", "greeting"]), "");

    assert_eq!(cli(&["INCR", "counter"]), "1");
    assert_eq!(cli(&["INCR", "counter"]), "2");
    assert_eq!(cli(&["INCRBY", "counter", "40"]), "42");
    assert_eq!(cli(&["DECR", "counter"]), "41");
    assert_eq!(cli(&["SET", "word", "abc"]), "OK");
    assert_eq!(cli(&["INCR", "word"]), "ERR value is not an integer or out of range");
    assert_eq!(cli(&["SET", "max", "9223372036854775807"]), "OK");
    assert_eq!(cli(&["INCR", "max"]), "ERR increment or decrement would overflow");

    assert_eq!(cli(&["MSET", "a", "1", "b", "2", "c", "3"]), "OK");
    assert_eq!(server.cli(&["MGET", "a", "missing", "c"]), "1\n\n3\n");
    assert_eq!(cli(&["MSET", "a", "1", "b"]), "ERR wrong number of arguments for 'mset' command");

    // SET options.
    assert_eq!(cli(&["SET", "a", "x", "NX"]), "", "NX on an existing key: nil");
    assert_eq!(cli(&["SET", "new", "x", "XX"]), "", "XX on a missing key: nil");
    assert_eq!(cli(&["SET", "a", "y", "XX", "GET"]), "1");
    assert_eq!(cli(&["GET", "a"]), "y");
    assert_eq!(cli(&["SET", "t", "v", "EX", "100"]), "OK");
    let ttl: i64 = cli(&["TTL", "t"]).parse().expect("TTL is an integer");
    assert!((1..=100).contains(&ttl), "TTL {ttl}");
    assert_eq!(cli(&["SET", "t", "v", "PX", "1"]), "OK");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(cli(&["GET", "t"]), "", "expired");
    assert_eq!(cli(&["SET", "t", "v", "EX", "0"]), "ERR invalid expire time in 'set' command");
    assert_eq!(cli(&["SET", "t", "v", "EX", "soon"]), "ERR value is not an integer or out of range");
    assert_eq!(cli(&["SET", "t", "v", "NX", "XX"]), "ERR syntax error");

    // Errors keep the connection: several commands on one connection (redis-cli
    // reads them from its input, one per line).
    let session = server.cli_with_input(
        &[],
        Some(b"NOSUCHCMD x y\nGET\nSET k\nCLIENT SETNAME tester\nCLIENT GETNAME\nHELLO 3\nPING\n".to_vec()),
    );
    let lines: Vec<&str> = session.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' 'y' ",
            "ERR wrong number of arguments for 'get' command",
            "ERR wrong number of arguments for 'set' command",
            "OK",
            "tester",
            "ERR unknown command 'HELLO', with args beginning with: '3' ",
            "PONG",
        ]
    );

    // What clients and tools ask on connecting.
    assert_eq!(server.cli(&["CONFIG", "GET", "save"]), "save\n\n");
    assert_eq!(server.cli(&["CONFIG", "GET", "appendonly"]), "appendonly\nno\n");
    assert_eq!(server.cli(&["CONFIG", "GET", "port"]), format!("port\n{}\n", server.port()));
    assert_eq!(cli(&["COMMAND", "DOCS"]), "");
    assert_eq!(cli(&["SELECT", "0"]), "OK");
    assert_eq!(cli(&["SELECT", "1"]), "ERR DB index is out of range");
    assert!(server.cli(&["INFO"]).contains("redis_version:"));
    assert_eq!(cli(&["QUIT"]), "OK");

    // The keyspace.
    assert_eq!(cli(&["DBSIZE"]), "6"); // counter word max a b c
    let mut keys: Vec<String> = server.cli(&["KEYS", "*"]).lines().map(String::from).collect();
    keys.sort();
    assert_eq!(keys, ["a", "b", "c", "counter", "max", "word"]);
    assert_eq!(server.cli(&["--scan", "--pattern", "c*"]).lines().count(), 2);
    assert_eq!(cli(&["FLUSHALL"]), "OK");
    assert_eq!(cli(&["DBSIZE"]), "0");

    // Pipelined mass insertion: redis-cli --pipe writes every command before
    // reading any reply.
    let mut commands = Vec::new();
    for i in 0..10_000 {
        let (key, value) = (format!("key:{i}"), format!("value {i}"));
        write!(commands, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()).unwrap();
    }
    let piped = server.cli_with_input(&["--pipe"], Some(commands));
    assert!(piped.contains("errors: 0, replies: 10000"), "{piped}");
    assert_eq!(cli(&["DBSIZE"]), "10000");
    assert_eq!(cli(&["GET", "key:9999"]), "value 9999");

    server.stop();
}

/// Runs redis-benchmark with `extra` options and checks its output and what
/// it did to the keyspace.
fn benchmark(server: &KvServer, requests: u64, extra: &[&str]) {
    assert_eq!(server.cli1(&["FLUSHALL"]), "OK");
    let processed_before = stat(server, "total_commands_processed");
    let n = requests.to_string();
    let output = run(
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &server.port(), "-t", "set,get,incr,ping,mset", "-n", &n, "-q"])
            .args(extra),
        None,
        BENCHMARK,
    );
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "redis-benchmark {extra:?} failed: {text}");
    for bad in ["ERR", "Error", "error", "WARNING", "Could not"] {
        assert!(!text.contains(bad), "redis-benchmark {extra:?} reported {bad:?}: {text}");
    }
    // -q prints progress lines ended by \r, then one result line per test.
    let results: Vec<&str> = text.split(['\r', '\n']).filter(|l| l.contains("requests per second")).collect();
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"] {
        assert!(
            results.iter().any(|l| l.trim_start().starts_with(&format!("{test}: "))),
            "no result for {test} from redis-benchmark {extra:?}: {text}"
        );
    }
    println!("redis-benchmark -n {n} {}:\n  {}", extra.join(" "), results.join("\n  "));

    // Every INCR ran exactly once, and every request was served.
    assert_eq!(server.cli1(&["GET", "counter:__rand_int__"]), n);
    assert_eq!(server.cli1(&["DBSIZE"]), "2", "key:__rand_int__ and counter:__rand_int__");
    let processed = stat(server, "total_commands_processed") - processed_before;
    assert!(processed >= 6 * requests, "{processed} commands processed for 6 x {requests} requests");
}

#[test]
#[ignore = "needs redis-cli and redis-benchmark (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_benchmark() {
    require("redis-cli");
    require("redis-benchmark");
    let server = KvServer::start();
    // Request counts are multiples of the pipeline depth: redis-benchmark
    // issues whole pipelines, so INCR runs exactly `-n` times.
    benchmark(&server, 20_000, &["-P", "16"]);
    benchmark(&server, 4_000, &["-c", "50"]);
    benchmark(&server, 1_000, &["-c", "1"]);
    server.stop();
}

#[test]
#[ignore = "needs redis-cli and redis-benchmark (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_benchmark_threads_2() {
    require("redis-cli");
    require("redis-benchmark");
    let server = KvServer::start_threads(2);
    benchmark(&server, 20_000, &["-P", "16"]);
    benchmark(&server, 4_000, &["-c", "50"]);
    benchmark(&server, 1_000, &["-c", "1"]);
    // Random keys (-r): every connection's requests go to both workers,
    // and each MSET is split between them.
    benchmark_spread(&server, 20_000, &["-P", "16"]);
    benchmark_spread(&server, 4_000, &["-c", "50"]);
    server.stop();
}

/// Runs redis-benchmark with random keys (`-r 1000`) and checks that every
/// INCR ran once: the counters add up to the requests.
fn benchmark_spread(server: &KvServer, requests: u64, extra: &[&str]) {
    assert_eq!(server.cli1(&["FLUSHALL"]), "OK");
    let n = requests.to_string();
    let output = run(
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &server.port(), "-t", "set,get,incr,mset", "-r", "1000", "-n", &n, "-q"])
            .args(extra),
        None,
        BENCHMARK,
    );
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "redis-benchmark -r {extra:?} failed: {text}");
    for bad in ["ERR", "Error", "error", "WARNING", "Could not", "CROSSSLOT"] {
        assert!(!text.contains(bad), "redis-benchmark -r {extra:?} reported {bad:?}: {text}");
    }
    let results: Vec<&str> = text.split(['\r', '\n']).filter(|l| l.contains("requests per second")).collect();
    println!("redis-benchmark -r 1000 -n {n} {}:\n  {}", extra.join(" "), results.join("\n  "));
    let counters: Vec<String> = server.cli(&["KEYS", "counter:*"]).lines().map(String::from).collect();
    assert!(counters.len() > 100, "{} counters", counters.len());
    let mut mget = vec!["MGET"];
    mget.extend(counters.iter().map(String::as_str));
    let total: u64 = server.cli(&mget).lines().map(|v| v.parse::<u64>().expect("a counter")).sum();
    assert_eq!(total, requests, "the INCRs of {} counters", counters.len());
    let forwarded = stat(server, "pants_kv_forwarded_commands");
    assert!(forwarded > 0, "nothing forwarded");
}

#[test]
#[ignore = "needs redis-cli (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_cli_collections() {
    redis_cli_collections_on(1);
}

#[test]
#[ignore = "needs redis-cli (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_cli_collections_threads_2() {
    redis_cli_collections_on(2);
}

fn redis_cli_collections_on(threads: usize) {
    require("redis-cli");
    let server = KvServer::start_threads(threads);
    let cli = |args: &[&str]| server.cli1(args);
    let lines = |args: &[&str]| server.cli(args).lines().map(String::from).collect::<Vec<_>>();

    // Lists.
    assert_eq!(cli(&["RPUSH", "l", "a", "b", "c"]), "3");
    assert_eq!(cli(&["LPUSH", "l", "z"]), "4");
    assert_eq!(lines(&["LRANGE", "l", "0", "-1"]), ["z", "a", "b", "c"]);
    assert_eq!(lines(&["LRANGE", "l", "1", "2"]), ["a", "b"]);
    assert_eq!(lines(&["LRANGE", "l", "-2", "100"]), ["b", "c"]);
    assert_eq!(cli(&["LRANGE", "l", "3", "1"]), "");
    assert_eq!(cli(&["LPOP", "l"]), "z");
    assert_eq!(lines(&["RPOP", "l", "2"]), ["c", "b"]);
    assert_eq!(cli(&["LLEN", "l"]), "1");
    assert_eq!(cli(&["TYPE", "l"]), "list");
    assert_eq!(cli(&["RPOP", "l"]), "a");
    assert_eq!(cli(&["EXISTS", "l"]), "0", "an emptied list is removed");
    assert_eq!(cli(&["LPOP", "l"]), "");

    // Sets.
    assert_eq!(cli(&["SADD", "s", "m1", "m2", "m1"]), "2");
    assert_eq!(cli(&["SISMEMBER", "s", "m2"]), "1");
    assert_eq!(cli(&["SCARD", "s"]), "2");
    let mut popped = lines(&["SPOP", "s", "5"]);
    popped.sort();
    assert_eq!(popped, ["m1", "m2"]);
    assert_eq!(cli(&["TYPE", "s"]), "none");
    assert_eq!(cli(&["SPOP", "s", "2"]), "", "an empty array for a missing key");
    assert_eq!(cli(&["LPOP", "s", "x"]), "ERR value is not an integer or out of range");

    // Hashes.
    assert_eq!(cli(&["HSET", "h", "f1", "v1", "f2", "v2"]), "2");
    assert_eq!(cli(&["HSET", "h", "f1", "w1"]), "0");
    assert_eq!(cli(&["HGET", "h", "f1"]), "w1");
    assert_eq!(cli(&["HLEN", "h"]), "2");
    assert_eq!(cli(&["HSET", "h", "odd"]), "ERR wrong number of arguments for 'hset' command");

    // Sorted sets.
    assert_eq!(cli(&["ZADD", "z", "2", "b", "1", "a", "3.5", "c"]), "3");
    assert_eq!(cli(&["ZADD", "z", "0", "b"]), "0");
    assert_eq!(lines(&["ZPOPMIN", "z"]), ["b", "0"]);
    assert_eq!(lines(&["ZPOPMIN", "z", "5"]), ["a", "1", "c", "3.5"]);
    assert_eq!(cli(&["ZCARD", "z"]), "0");
    assert_eq!(cli(&["ZADD", "z", "nan", "x"]), "ERR value is not a valid float");

    // Types are kept apart.
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(cli(&["SET", "str", "x"]), "OK");
    assert_eq!(cli(&["LPUSH", "str", "y"]), wrongtype);
    assert_eq!(cli(&["RPUSH", "list", "y"]), "1");
    assert_eq!(cli(&["GET", "list"]), wrongtype);
    assert_eq!(cli(&["INCR", "list"]), wrongtype);
    assert_eq!(cli(&["SADD", "list", "y"]), wrongtype);
    assert_eq!(cli(&["SET", "list", "now a string"]), "OK");
    assert_eq!(cli(&["TYPE", "list"]), "string");
    server.stop();
}

/// The names `redis-benchmark` gives the tests of its default suite (no
/// `-t`), as redis-tools 7.0 runs it.
const DEFAULT_SUITE: &[&str] = &[
    "PING_INLINE",
    "PING_MBULK",
    "SET",
    "GET",
    "INCR",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "HSET",
    "SPOP",
    "ZADD",
    "ZPOPMIN",
    "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)",
    "LRANGE_300 (first 300 elements)",
    "LRANGE_500 (first 500 elements)",
    "LRANGE_600 (first 600 elements)",
    "MSET (10 keys)",
];

#[test]
#[ignore = "needs redis-benchmark (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_benchmark_default_suite() {
    redis_benchmark_default_suite_on(1);
}

#[test]
#[ignore = "needs redis-benchmark (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_benchmark_default_suite_threads_2() {
    redis_benchmark_default_suite_on(2);
}

fn redis_benchmark_default_suite_on(threads: usize) {
    require("redis-cli");
    require("redis-benchmark");
    let server = KvServer::start_threads(threads);
    for extra in [&["-P", "16"][..], &["-c", "20"]] {
        let output = run(
            Command::new("redis-benchmark")
                .args(["-h", "127.0.0.1", "-p", &server.port(), "-n", "2000", "-q"])
                .args(extra),
            None,
            BENCHMARK,
        );
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "redis-benchmark {extra:?} failed: {text}");
        for bad in ["ERR", "Error", "error", "WRONGTYPE"] {
            assert!(!text.contains(bad), "redis-benchmark {extra:?} reported {bad:?}: {text}");
        }
        let results: Vec<&str> = text.split(['\r', '\n']).filter(|l| l.contains("requests per second")).collect();
        for test in DEFAULT_SUITE {
            assert!(
                results.iter().any(|l| l.trim_start().starts_with(&format!("{test}: "))),
                "no result for {test} from redis-benchmark {extra:?}: {text}"
            );
        }
    }
    server.stop();
}

/// Sends `input` on a new connection and reads until the server closes it.
fn reply_then_close(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connecting to kv");
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    // The server may close before reading everything: a failed write is fine.
    let _ = s.write_all(input);
    let mut reply = Vec::new();
    match s.read_to_end(&mut reply) {
        Ok(_) => reply,
        Err(e) => panic!(
            "no close after {:?}: {e} (read {:?})",
            String::from_utf8_lossy(&input[..input.len().min(40)]),
            reply
        ),
    }
}

/// Sends `input` on `s` and reads exactly `expected.len()` bytes.
fn exchange(s: &mut TcpStream, input: &[u8], expected: &[u8]) {
    s.write_all(input).unwrap();
    let mut reply = vec![0; expected.len()];
    s.read_exact(&mut reply)
        .unwrap_or_else(|e| panic!("reading the reply to {:?}: {e}", String::from_utf8_lossy(input)));
    assert_eq!(String::from_utf8_lossy(&reply), String::from_utf8_lossy(expected));
}

#[test]
fn malformed_input_gets_errors_and_never_crashes() {
    malformed_input_on(1);
}

fn malformed_input_on(threads: usize) {
    let server = KvServer::start_threads(threads);
    let addr = server.addr;

    // A client that stays connected throughout, served before, between and after.
    let mut steady = TcpStream::connect(addr).unwrap();
    steady.set_read_timeout(Some(STEP)).unwrap();
    exchange(&mut steady, b"*3\r\n$3\r\nSET\r\n$6\r\nsteady\r\n$3\r\nyes\r\n", b"+OK\r\n");

    let protocol_errors: &[(&[u8], &str)] = &[
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),
        (b"*-5\r\n", "invalid multibulk length"),
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*99999999999\r\n", "invalid multibulk length"),
        (b"*1\r\nPING\r\n", "expected '$', got 'P'"),
        (b"*2\r\n$4\r\nECHO\r\n$3\r\nabcXY", "expected CRLF after a bulk string"),
        (b"SET k \"unbalanced\r\n", "unbalanced quotes in request"),
        (b"GET 'a'b\r\n", "unbalanced quotes in request"),
    ];
    for (input, message) in protocol_errors {
        let reply = reply_then_close(addr, input);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            format!("-ERR Protocol error: {message}\r\n"),
            "for {:?}",
            String::from_utf8_lossy(input)
        );
    }

    // Replies to what came before the error are sent first.
    let reply = reply_then_close(addr, b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\nPING\r\n");
    assert_eq!(reply, b"+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");

    // Over-long lines: an inline command or a header line over 64 KiB.
    let reply = reply_then_close(addr, &vec![b'x'; 100_000]);
    assert_eq!(reply, b"-ERR Protocol error: too big inline request\r\n");
    let mut long_header = b"*1\r\n$".to_vec();
    long_header.extend_from_slice(&[b'1'; 100_000]);
    let reply = reply_then_close(addr, &long_header);
    assert_eq!(reply, b"-ERR Protocol error: too big bulk count string\r\n");

    // Binary garbage is an (unknown) inline command or a protocol error,
    // never a crash; the connection may survive it.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..200 {
        let len = 1 + (round * 37) % 300;
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let _ = s.write_all(&garbage);
        let _ = s.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        for line in reply.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(line.starts_with(b"-ERR ") || line == b"+PONG\r", "reply {:?}", String::from_utf8_lossy(line));
        }
    }

    // Well-formed but unusual: empty requests, bare LF, quoting, an empty and a
    // binary bulk string, a large value, pipelining; the connection survives.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    exchange(&mut s, b"*0\r\n*-1\r\n\r\nPING\n", b"+PONG\r\n");
    exchange(&mut s, b"ECHO \"a\\x00b\\n\" 'c d'\r\n", b"-ERR wrong number of arguments for 'echo' command\r\n");
    exchange(&mut s, b"ECHO \"a\\x00b\\n\"\r\n", b"$4\r\na\x00b\n\r\n");
    exchange(&mut s, b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", b"$0\r\n\r\n");
    exchange(&mut s, b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n", b"$4\r\n\r\n\x00\xff\r\n");
    let big = vec![b'v'; 3 * 1024 * 1024];
    let mut set = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$3145728\r\n".to_vec();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\n");
    exchange(&mut s, &set, b"+OK\r\n");
    let mut expected = b"$3145728\r\n".to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"\r\n");
    exchange(&mut s, b"GET big\r\n", &expected);
    exchange(&mut s, &b"*1\r\n$4\r\nPING\r\n".repeat(100), &b"+PONG\r\n".repeat(100));
    // A request split byte by byte.
    for &byte in b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r".iter() {
        s.write_all(&[byte]).unwrap();
    }
    exchange(&mut s, b"\n", b"$2\r\nhi\r\n");

    // A peer that half-closes in the middle of a request still gets the
    // replies to the requests before it.
    let mut half = TcpStream::connect(addr).unwrap();
    half.set_read_timeout(Some(STEP)).unwrap();
    half.write_all(b"PING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nab").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    half.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"+PONG\r\n");

    // A peer that leaves in the middle of a request, or of a huge announced
    // bulk string, takes nothing down.
    for partial in [&b"*3\r\n$3\r\nSET\r\n$1\r\nk"[..], b"*2\r\n$3\r\nGET\r\n$536870912\r\nabc"] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(partial).unwrap();
    }

    exchange(&mut steady, b"GET steady\r\n", b"$3\r\nyes\r\n");
    exchange(&mut s, b"PING\r\n", b"+PONG\r\n");
    server.stop();
}

#[test]
fn command_line() {
    let output = run(Command::new(kv_binary()).arg("--help"), None, STEP);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("--addr"));
    assert!(String::from_utf8_lossy(&output.stdout).contains("--threads"));
    for bad in [
        &["--addr"][..],
        &["--addr", "nonsense"],
        &["--bogus"],
        &["--threads", "0"],
        &["--threads", "x"],
        &["--threads"],
    ] {
        let output = run(Command::new(kv_binary()).args(bad), None, STEP);
        assert_eq!(output.status.code(), Some(2), "kv {bad:?}: {output:?}");
    }
    // Listening fails (the port is taken): an error, not a panic.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(Command::new(kv_binary()).args(["--addr", &addr]), None, STEP);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not listen"), "{output:?}");
}

// ---------------------------------------------------------------------------
// Several workers (`--threads N`): the keyspace sharded, requests forwarded.

/// A reply, as a RESP client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The strings of an array of bulk strings.
    fn strings(&self) -> Vec<String> {
        match self {
            Reply::Array(items) => items
                .iter()
                .map(|item| match item {
                    Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                    other => panic!("not a bulk string: {other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// One request as RESP.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        write!(out, "${}\r\n{arg}\r\n", arg.len()).unwrap();
    }
    out
}

/// Reads one reply.
fn read_reply(r: &mut impl BufRead) -> Reply {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).expect("reading a reply");
    assert!(line.ends_with(b"\r\n"), "a reply line: {:?}", String::from_utf8_lossy(&line));
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    match line[0] {
        b'+' => Reply::Simple(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Int(text.parse().expect("an integer")),
        b'$' if text == "-1" => Reply::Bulk(None),
        b'$' => {
            let mut body = vec![0; text.parse::<usize>().expect("a length") + 2];
            r.read_exact(&mut body).expect("reading a bulk string");
            body.truncate(body.len() - 2);
            Reply::Bulk(Some(body))
        }
        b'*' => Reply::Array((0..text.parse::<usize>().expect("a count")).map(|_| read_reply(r)).collect()),
        other => panic!("unexpected reply type {:?}", other as char),
    }
}

/// A connection speaking RESP.
struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(server: &KvServer) -> Conn {
        let writer = TcpStream::connect(server.addr).expect("connecting to kv");
        writer.set_read_timeout(Some(STEP)).unwrap();
        writer.set_write_timeout(Some(STEP)).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        Conn { writer, reader }
    }

    /// Sends one request and reads its reply.
    fn call(&mut self, args: &[&str]) -> Reply {
        self.writer.write_all(&encode(args)).unwrap();
        read_reply(&mut self.reader)
    }

    fn read(&mut self) -> Reply {
        read_reply(&mut self.reader)
    }
}

/// The `pants_kv_workerN:...` lines of INFO stats: each worker's fields.
fn worker_stats(conn: &mut Conn) -> Vec<std::collections::HashMap<String, u64>> {
    let Reply::Bulk(Some(info)) = conn.call(&["INFO", "stats"]) else { panic!("INFO is a bulk string") };
    String::from_utf8_lossy(&info)
        .lines()
        .filter(|l| l.starts_with("pants_kv_worker"))
        .map(|l| {
            let (_, fields) = l.trim_end().split_once(':').unwrap();
            fields
                .split(',')
                .map(|f| {
                    let (k, v) = f.split_once('=').unwrap();
                    (k.to_string(), v.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// Keys set from several connections land on every worker, and every
/// connection finds every key; DBSIZE, KEYS, SCAN and INFO see them all.
fn keys_on_every_worker(threads: usize) {
    let server = KvServer::start_threads(threads);
    let mut conns: Vec<Conn> = (0..8).map(|_| Conn::open(&server)).collect();
    for (c, conn) in conns.iter_mut().enumerate() {
        for i in 0..50 {
            assert_eq!(conn.call(&["SET", &format!("k:{c}:{i}"), &format!("v{c}.{i}")]), Reply::ok());
        }
    }
    for (c, conn) in conns.iter_mut().enumerate() {
        let other = (c + 3) % 8;
        for i in 0..50 {
            assert_eq!(conn.call(&["GET", &format!("k:{other}:{i}")]), Reply::bulk(&format!("v{other}.{i}")));
        }
    }
    let conn = &mut conns[0];
    assert_eq!(conn.call(&["DBSIZE"]), Reply::Int(400));
    let stats = worker_stats(conn);
    assert_eq!(stats.len(), threads);
    for (w, worker) in stats.iter().enumerate() {
        assert!(worker["keys"] > 20, "worker {w} holds {} keys: {stats:?}", worker["keys"]);
    }
    assert_eq!(stats.iter().map(|w| w["keys"]).sum::<u64>(), 400);
    let mut keys = conn.call(&["KEYS", "k:7:*"]).strings();
    keys.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("k:7:{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected);
    let Reply::Array(scan) = conn.call(&["SCAN", "0", "MATCH", "k:1:*", "COUNT", "10"]) else { panic!("SCAN") };
    assert_eq!((scan[0].clone(), scan[1].strings().len()), (Reply::bulk("0"), 50));
    let Reply::Bulk(Some(info)) = conn.call(&["INFO", "keyspace"]) else { panic!("INFO") };
    assert!(String::from_utf8_lossy(&info).contains("db0:keys=400,expires=0"), "{}", String::from_utf8_lossy(&info));
    // Client ids are unique across workers.
    let mut ids: Vec<i64> = conns.iter_mut().map(|c| c.call(&["CLIENT", "ID"]).int()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "{ids:?}");
    // CONFIG RESETSTAT resets every worker's counters.
    assert_eq!(conns[4].call(&["CONFIG", "RESETSTAT"]), Reply::ok());
    let stats = worker_stats(&mut conns[4]);
    assert_eq!(stats.iter().map(|w| w["commands"]).sum::<u64>(), 1, "the INFO itself: {stats:?}");
    assert_eq!(conns[1].call(&["FLUSHALL"]), Reply::ok());
    assert_eq!(conns[2].call(&["DBSIZE"]), Reply::Int(0));
    assert!(worker_stats(&mut conns[3]).iter().all(|w| w["keys"] == 0));
    drop(conns);
    server.stop();
}

#[test]
fn threads_2_keys_land_on_every_worker() {
    keys_on_every_worker(2);
}

#[test]
fn threads_4_keys_land_on_every_worker() {
    keys_on_every_worker(4);
}

/// 1000 requests in one write, on keys that live everywhere: every reply
/// comes back, in order.
fn pipelined_in_order(threads: usize) {
    let server = KvServer::start_threads(threads);
    let mut conn = Conn::open(&server);
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let key = format!("p:{i}");
        let request: Vec<String> = match i % 5 {
            0 => vec!["SET".into(), key.clone(), format!("value {i}")],
            1 => vec!["GET".into(), format!("p:{}", i - 1)],
            2 => vec!["INCR".into(), format!("n:{}", i % 7)],
            3 => vec!["PING".into()],
            _ => vec!["MGET".into(), format!("p:{}", i - 4), "missing".into(), format!("p:{}", i - 4)],
        };
        let reply = match i % 5 {
            0 => Reply::ok(),
            1 => Reply::bulk(&format!("value {}", i - 1)),
            2 => Reply::Int(i64::from(i / 7 + 1)), // counters n:0..n:6, each INCR'd in turn
            3 => Reply::Simple("PONG".into()),
            _ => {
                let value = Reply::bulk(&format!("value {}", i - 4));
                Reply::Array(vec![value.clone(), Reply::Bulk(None), value])
            }
        };
        let args: Vec<&str> = request.iter().map(String::as_str).collect();
        requests.extend(encode(&args));
        expected.push(reply);
    }
    // INCR n:(i % 7) for i = 2, 7, 12...: count how often each was seen.
    let mut seen = [0i64; 7];
    for (i, reply) in expected.iter_mut().enumerate() {
        if i % 5 == 2 {
            seen[i % 7] += 1;
            *reply = Reply::Int(seen[i % 7]);
        }
    }
    conn.writer.write_all(&requests).unwrap();
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&conn.read(), want, "reply {i}");
    }
    // The same again, pipelined from several connections at once.
    let mut conns: Vec<Conn> = (0..4).map(|_| Conn::open(&server)).collect();
    for conn in &mut conns {
        conn.writer.write_all(&requests).unwrap();
    }
    for (c, conn) in conns.iter_mut().enumerate() {
        for (i, want) in expected.iter().enumerate() {
            let got = conn.read();
            if i % 5 == 2 {
                assert!(matches!(got, Reply::Int(n) if n > 0), "connection {c}, reply {i}: {got:?}");
            } else {
                assert_eq!(&got, want, "connection {c}, reply {i}");
            }
        }
    }
    let stats = worker_stats(&mut conn);
    assert!(stats.iter().map(|w| w["forwarded"]).sum::<u64>() > 0, "{stats:?}");
    // Fewer posts than forwarded jobs: requests were batched.
    let (jobs, posts) =
        (stats.iter().map(|w| w["jobs_out"]).sum::<u64>(), stats.iter().map(|w| w["posts_out"]).sum::<u64>());
    assert!(posts * 2 < jobs, "{jobs} jobs in {posts} posts");
    drop((conn, conns));
    server.stop();
}

#[test]
fn threads_2_pipelined_replies_come_back_in_order() {
    pipelined_in_order(2);
}

#[test]
fn threads_4_pipelined_replies_come_back_in_order() {
    pipelined_in_order(4);
}

/// MSET, MGET, DEL, UNLINK and EXISTS are split by owner and their replies
/// gathered; MSETNX across workers is CROSSSLOT; hash tags put keys
/// together.
fn multi_key_commands(threads: usize) {
    let server = KvServer::start_threads(threads);
    let mut conn = Conn::open(&server);
    let keys: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for (i, key) in keys.iter().enumerate() {
        mset.extend([key.clone(), format!("{i}")]);
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(conn.call(&mset), Reply::ok());
    assert!(worker_stats(&mut conn).iter().all(|w| w["keys"] > 0), "MSET reached every worker");
    let mut mget = vec!["MGET", "nope"];
    mget.extend(keys.iter().rev().map(String::as_str));
    let mut want = vec![Reply::Bulk(None)];
    want.extend((0..20).rev().map(|i| Reply::bulk(&i.to_string())));
    assert_eq!(conn.call(&mget), Reply::Array(want));
    let mut exists = vec!["EXISTS", "nope", "m1", "m1"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(conn.call(&exists), Reply::Int(22));
    assert_eq!(conn.call(&["DEL", "m0", "m1", "m2", "m3", "m4", "nope", "m0"]), Reply::Int(5));
    assert_eq!(conn.call(&["UNLINK", "m5", "m6", "m7", "m8", "m9"]), Reply::Int(5));
    assert_eq!(conn.call(&["DBSIZE"]), Reply::Int(10));
    // A wrong type in MGET reads as nil, wherever it is.
    assert_eq!(
        conn.call(&["RPUSH", "m10", "x"]),
        Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    );
    assert_eq!(conn.call(&["DEL", "m10"]), Reply::Int(1));
    assert_eq!(conn.call(&["RPUSH", "m10", "x"]), Reply::Int(1));
    let Reply::Array(values) = conn.call(&["MGET", "m10", "m11", "m12", "m13", "m14", "m15"]) else { panic!("MGET") };
    assert_eq!(values[0], Reply::Bulk(None));
    assert_eq!(values[5], Reply::bulk("15"));
    // Errors are as with one worker.
    assert_eq!(
        conn.call(&["MSET", "a", "1", "b"]),
        Reply::Error("ERR wrong number of arguments for 'mset' command".into())
    );
    assert_eq!(conn.call(&["MGET"]), Reply::Error("ERR wrong number of arguments for 'mget' command".into()));
    // MSETNX: all or nothing, so only on one worker.
    let crossslot = Reply::Error("CROSSSLOT Keys in request don't hash to the same slot".into());
    let mut msetnx = vec!["MSETNX"];
    for key in ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10"] {
        msetnx.extend([key, "v"]);
    }
    assert_eq!(conn.call(&msetnx), crossslot);
    assert_eq!(conn.call(&["EXISTS", "x1", "x2"]), Reply::Int(0), "nothing set");
    assert_eq!(conn.call(&["MSETNX", "{u}x1", "1", "{u}x2", "2", "{u}x3", "3"]), Reply::Int(1));
    assert_eq!(conn.call(&["MSETNX", "{u}x1", "1", "{u}x4", "4"]), Reply::Int(0));
    // Hash tags: 50 keys with one tag all live on one worker.
    assert_eq!(conn.call(&["FLUSHDB"]), Reply::ok());
    for i in 0..50 {
        assert_eq!(conn.call(&["SET", &format!("{{user:7}}:{i}"), "x"]), Reply::ok());
    }
    let held: Vec<u64> = worker_stats(&mut conn).iter().map(|w| w["keys"]).collect();
    assert_eq!((held.iter().sum::<u64>(), held.iter().filter(|&&n| n > 0).count()), (50, 1), "{held:?}");
    // An empty tag does not count: `{}` keys spread.
    for i in 0..50 {
        assert_eq!(conn.call(&["SET", &format!("{{}}:{i}"), "x"]), Reply::ok());
    }
    assert!(worker_stats(&mut conn).iter().all(|w| w["keys"] > 0));
    drop(conn);
    server.stop();
}

#[test]
fn threads_2_multi_key_commands_are_split_and_gathered() {
    multi_key_commands(2);
}

#[test]
fn threads_4_multi_key_commands_are_split_and_gathered() {
    multi_key_commands(4);
}

/// Connections that leave while they are owed replies take nothing down;
/// a half-closing peer, QUIT and a protocol error still get what they are
/// owed first.
fn leaving_with_replies_owed(threads: usize) {
    let server = KvServer::start_threads(threads);
    let mut steady = Conn::open(&server);
    assert_eq!(steady.call(&["SET", "steady", "yes"]), Reply::ok());
    let mut pipeline = Vec::new();
    for i in 0..20_000 {
        pipeline.extend(encode(&["SET", &format!("gone:{i}"), "some value"]));
        pipeline.extend(encode(&["GET", &format!("gone:{}", i / 2)]));
    }
    for round in 0..10 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_write_timeout(Some(STEP)).unwrap();
        // Closed at once: with unread replies (a reset), or before they came.
        let _ = s.write_all(&pipeline[..pipeline.len() / (round + 1)]);
        drop(s);
    }
    // A peer that half-closes gets every reply, forwarded or not.
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.set_read_timeout(Some(STEP)).unwrap();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        input.extend(encode(&["SET", &format!("h:{i}"), &i.to_string()]));
        input.extend(encode(&["GET", &format!("h:{i}")]));
        input.extend(encode(&["PING"]));
        expected.extend_from_slice(format!("+OK\r\n${}\r\n{i}\r\n+PONG\r\n", i.to_string().len()).as_bytes());
    }
    let writer = half.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut writer = writer;
        writer.write_all(&input).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reply = Vec::new();
    half.read_to_end(&mut reply).unwrap();
    sender.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&reply), String::from_utf8_lossy(&expected));
    // QUIT, and a protocol error, after forwarded requests: their replies
    // first, then QUIT's OK (or the error), then the close; what follows
    // is ignored.
    let mut input = Vec::new();
    let mut before = Vec::new();
    for i in 0..100 {
        input.extend(encode(&["GET", &format!("h:{i}")]));
        before.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
    }
    let mut quit = input.clone();
    quit.extend(encode(&["QUIT"]));
    quit.extend(encode(&["SET", "after-quit", "x"]));
    let mut want = before.clone();
    want.extend_from_slice(b"+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&reply_then_close(server.addr, &quit)), String::from_utf8_lossy(&want));
    let mut bad = input.clone();
    bad.extend_from_slice(b"*1\r\n$x\r\n");
    bad.extend(encode(&["SET", "after-error", "x"]));
    let mut want = before.clone();
    want.extend_from_slice(b"-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(String::from_utf8_lossy(&reply_then_close(server.addr, &bad)), String::from_utf8_lossy(&want));
    assert_eq!(steady.call(&["EXISTS", "after-quit", "after-error"]), Reply::Int(0));

    // Everyone else is still served, and the leavers are gone.
    assert_eq!(steady.call(&["GET", "steady"]), Reply::bulk("yes"));
    let mut fresh = Conn::open(&server);
    for i in 0..100 {
        assert_eq!(fresh.call(&["SET", &format!("after:{i}"), "1"]), Reply::ok());
        assert_eq!(fresh.call(&["GET", &format!("after:{i}")]), Reply::bulk("1"));
    }
    let deadline = Instant::now() + STEP;
    loop {
        let Reply::Bulk(Some(info)) = steady.call(&["INFO", "clients"]) else { panic!("INFO") };
        if String::from_utf8_lossy(&info).contains("connected_clients:2\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "connections left open: {}", String::from_utf8_lossy(&info));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop((steady, fresh));
    server.stop();
}

#[test]
fn threads_2_connections_leaving_with_replies_owed() {
    leaving_with_replies_owed(2);
}

#[test]
fn threads_4_connections_leaving_with_replies_owed() {
    leaving_with_replies_owed(4);
}

#[test]
fn threads_2_malformed_input_gets_errors_and_never_crashes() {
    malformed_input_on(2);
}

/// The server's resident memory, from /proc (Linux).
fn resident_kib(server: &KvServer) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A client that pipelines requests for large values and does not read
/// the replies: with one thread the write limit stops the reading; with
/// several, replies owed by other workers are not queued yet, and the
/// connection pauses its reading at a bound instead. Then every reply still
/// comes, in order.
fn unread_replies_are_bounded(threads: usize) {
    const VALUE: usize = 256 * 1024;
    const REQUESTS: usize = 4000; // 1 GiB of replies if nothing held back
    let server = KvServer::start_threads(threads);
    let mut setter = Conn::open(&server);
    let values: Vec<String> = (0..8).map(|k| char::from(b'a' + k).to_string().repeat(VALUE)).collect();
    for (k, value) in values.iter().enumerate() {
        assert_eq!(setter.call(&["SET", &format!("big:{k}"), value]), Reply::ok());
    }
    let before = resident_kib(&server);
    let mut conn = Conn::open(&server);
    let requests: Vec<u8> = (0..REQUESTS).flat_map(|i| encode(&["GET", &format!("big:{}", i % 8)])).collect();
    let mut writer = conn.writer.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&requests));
    let mut most = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        most = most.max(resident_kib(&server).unwrap_or(0));
    }
    if let Some(before) = before {
        // 128 owed replies of 256 KiB and a write limit's worth are 33 MiB.
        assert!(most < before + 128 * 1024, "kv grew from {before} KiB to {most} KiB");
    }
    for i in 0..REQUESTS {
        assert_eq!(conn.read(), Reply::bulk(&values[i % 8]), "reply {i}");
    }
    sender.join().unwrap().unwrap();
    drop((conn, setter));
    server.stop();
}

#[test]
fn unread_replies_are_bounded_with_one_thread() {
    unread_replies_are_bounded(1);
}

#[test]
fn threads_2_unread_replies_are_bounded() {
    unread_replies_are_bounded(2);
}
