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
        let mut child = Command::new(kv_binary())
            .args(["--addr", "127.0.0.1:0"])
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
        let rest: Vec<String> = self.stdout.try_iter().collect();
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
    require("redis-cli");
    let server = KvServer::start();
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
#[ignore = "needs redis-cli (apt-get install redis-tools): `cargo test --test example_kv -- --ignored`; CI runs it"]
fn redis_cli_collections() {
    require("redis-cli");
    let server = KvServer::start();
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
    require("redis-cli");
    require("redis-benchmark");
    let server = KvServer::start();
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
    let server = KvServer::start();
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
    for bad in [&["--addr"][..], &["--addr", "nonsense"], &["--bogus"]] {
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
