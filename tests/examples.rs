//! Runs the examples as a user would, against real clients: each server
//! example starts on port 0, prints its address, is driven by `curl`,
//! `openssl s_client`, the example clients or plain `TcpStream`s, and must
//! then stop by itself, with status 0, on SIGINT.
//!
//! The example binaries are the ones `cargo test` builds next to this test
//! (`target/<profile>/examples/`); with `cargo test --test examples` alone,
//! build them first with `cargo build --examples`. `curl` and `openssl` must
//! be installed (Debian/Ubuntu packages `curl` and `openssl`): without them
//! these tests fail, naming the package.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// How long any one step may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGINT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

// ---- Helpers ----

/// The path of an example binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/examples-xxxx -> target/<profile>/examples/<name>
    let path = exe.parent().and_then(Path::parent).expect("target dir").join("examples").join(name);
    let build_hint = "`cargo test` builds the examples; with `cargo test --test examples` alone, run \
                      `cargo build --examples` first";
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let Ok(built) = built else { panic!("{} is missing: {build_hint}", path.display()) };
    // Never test a stale binary (`--test examples` does not rebuild them).
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = manifest.join("examples").join(format!("{name}.rs"));
    let newest = [source, manifest.join("src")].iter().map(|p| newest_change(p)).max().unwrap();
    assert!(built >= newest, "{} is older than its sources: {build_hint}", path.display());
    path
}

/// When the file, or the newest file under the directory, last changed.
fn newest_change(path: &Path) -> SystemTime {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut newest = metadata.modified().unwrap();
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            newest = newest.max(newest_change(&entry.unwrap().path()));
        }
    }
    newest
}

/// Fails (does not skip) when a peer program is missing.
fn require(tool: &str, version_arg: &str, package: &str) {
    match Command::new(tool).arg(version_arg).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            panic!("`{tool} {version_arg}` failed ({status}): reinstall the Debian/Ubuntu package `{package}`")
        }
        Err(e) => panic!(
            "`{tool}` is needed by this test but could not be run ({e}): install the Debian/Ubuntu package \
             `{package}` (apt-get install {package})"
        ),
    }
}

/// A child process, killed (and reaped) when dropped if it still runs: no
/// example outlives a failed test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Guard {
    /// Waits at most `timeout` for the process to exit.
    fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads `source` to the end on a thread, collecting into a shared buffer.
fn collect(mut source: impl std::io::Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let handle = thread::spawn(move || {
        let mut chunk = [0; 8192];
        while let Ok(n @ 1..) = source.read(&mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, handle)
}

/// Sends each line of `source` to a channel, on a thread.
fn line_channel(source: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            // Keep draining even when no one listens any more, so that the
            // child never blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
    rx
}

/// A running server example.
struct Server {
    name: String,
    child: Guard,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    fn start(name: &str, args: &[&str]) -> Server {
        let mut child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = line_channel(child.stdout.take().unwrap());
        let (stderr, _) = collect(child.stderr.take().unwrap());
        Server { name: name.to_string(), child: Guard(child), stdout, stderr }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for a line of standard output starting with `prefix`; returns
    /// the rest of it. Earlier lines are skipped.
    fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(e) => panic!("{}: no line starting with {prefix:?} ({e}); stderr:\n{}", self.name, self.stderr()),
            }
        }
    }

    /// The address from `listening on <address>`.
    fn address(&self) -> SocketAddr {
        let address = self.expect_line("listening on ");
        address.parse().unwrap_or_else(|e| panic!("{}: bad address {address:?}: {e}", self.name))
    }

    /// Sends SIGINT (as Ctrl-C does) and checks that the server exits by
    /// itself, with status 0, in time.
    fn interrupt(mut self) {
        let pid = self.child.0.id().to_string();
        let kill = Command::new("kill").args(["-INT", &pid]).status().expect("run kill");
        assert!(kill.success(), "kill -INT {pid} failed");
        match self.child.wait_for_exit(EXIT_TIMEOUT) {
            Some(status) => {
                assert!(status.success(), "{} exited with {status} after SIGINT; stderr:\n{}", self.name, self.stderr())
            }
            None => panic!("{} still runs {EXIT_TIMEOUT:?} after SIGINT; stderr:\n{}", self.name, self.stderr()),
        }
    }
}

/// Runs a client to completion with `input` on its standard input, killing
/// it (and failing) if it takes longer than `TIMEOUT`.
fn run(command: &mut Command, input: &[u8]) -> Output {
    let what = format!("{command:?}");
    let mut child = Guard(
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}")),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (stdout, out_done) = collect(child.0.stdout.take().unwrap());
    let (stderr, err_done) = collect(child.0.stderr.take().unwrap());
    let Some(status) = child.wait_for_exit(TIMEOUT) else {
        drop(child);
        panic!("{what} did not finish in {TIMEOUT:?}; stderr:\n{}", String::from_utf8_lossy(&stderr.lock().unwrap()));
    };
    let _ = (writer.join(), out_done.join(), err_done.join());
    let stdout = std::mem::take(&mut *stdout.lock().unwrap());
    let stderr = std::mem::take(&mut *stderr.lock().unwrap());
    Output { status, stdout, stderr }
}

/// Runs a client that must succeed; returns its standard output.
fn run_ok(command: &mut Command, input: &[u8]) -> String {
    let what = format!("{command:?}");
    let output = run(command, input);
    assert!(
        output.status.success(),
        "{what} failed ({}); stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
        let path = std::env::temp_dir().join(format!("pants-examples-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

// ---- echo_server + echo_client ----

#[test]
fn echo_server_and_client() {
    let server = Server::start("echo_server", &["--addr", "127.0.0.1:0"]);
    let socket_address = server.address();
    let address = socket_address.to_string();
    let client = example("echo_client");

    // Lines as arguments (an empty one included).
    let out = run_ok(Command::new(&client).args(["--addr", &address, "hello", "two words", "", "last"]), b"");
    assert_eq!(out, "hello\ntwo words\n\nlast\n");

    // Lines on standard input, CRLF or LF, many of them.
    let out = run_ok(Command::new(&client).args(["--addr", &address]), b"one\r\ntwo\nthree\n");
    assert_eq!(out, "one\ntwo\nthree\n");
    let many: String = (0..3000).map(|i| format!("line {i} {}\n", "x".repeat(i % 200))).collect();
    let out = run_ok(Command::new(&client).args(["--addr", &address]), many.as_bytes());
    assert_eq!(out, many);

    // A plain TCP peer, left connected across the shutdown: the server still
    // exits, and the peer sees the end of the stream.
    let mut peer = connect(socket_address);
    peer.write_all(b"raw bytes \x00\xff").unwrap();
    let mut echo = [0; 12];
    peer.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"raw bytes \x00\xff");
    server.interrupt();
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0), 0);

    // Nothing listens any more: the client fails, with a non-zero status.
    let output = run(Command::new(&client).args(["--addr", &address, "anyone?"]), b"");
    assert!(!output.status.success(), "echo_client succeeded with no server");
}

#[test]
fn echo_server_on_several_workers() {
    let server = Server::start("echo_server", &["--addr", "127.0.0.1:0", "--threads", "4"]);
    let address = server.address();
    // Many connections, so that every worker gets some; each one echoes.
    let mut peers: Vec<TcpStream> = (0..32).map(|_| connect(address)).collect();
    for (i, peer) in peers.iter_mut().enumerate() {
        let message = format!("peer {i}");
        peer.write_all(message.as_bytes()).unwrap();
        let mut echo = vec![0; message.len()];
        peer.read_exact(&mut echo).unwrap();
        assert_eq!(echo, message.as_bytes());
    }
    // Left connected across the shutdown: every worker drains, and the
    // peers see the end of the stream.
    server.interrupt();
    for mut peer in peers {
        let mut rest = Vec::new();
        assert_eq!(peer.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0), 0);
    }
    let bad = run(Command::new(example("echo_server")).args(["--threads", "0"]), b"");
    assert!(!bad.status.success(), "--threads 0 accepted");
}

// ---- chat ----

struct ChatClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    name: &'static str,
}

impl ChatClient {
    /// Connects, answers the name prompt, and returns the greeting too.
    fn join(address: SocketAddr, name: &'static str, line_end: &str) -> (ChatClient, String) {
        let stream = connect(address);
        let writer = stream.try_clone().unwrap();
        let mut client = ChatClient { reader: BufReader::new(stream), writer, name };
        let prompt = client.line();
        assert!(prompt.starts_with("* welcome to pants chat"), "{prompt:?}");
        client.writer.write_all(format!("{name}{line_end}").as_bytes()).unwrap();
        let greeting = client.line();
        (client, greeting)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("{}: the server closed the connection", self.name),
            Ok(_) => line.strip_suffix('\n').unwrap_or_else(|| panic!("{}: partial line {line:?}", self.name)).into(),
            Err(e) => panic!("{}: no line in time: {e}", self.name),
        }
    }

    fn say(&mut self, text: &str) {
        self.writer.write_all(format!("{text}\n").as_bytes()).unwrap();
    }

    /// Nothing more arrives before the end of the stream.
    fn expect_end(&mut self) {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "", "{}: unexpected lines", self.name);
    }
}

#[test]
fn chat_broadcasts_to_the_others() {
    chat_scenario(&[]);
}

/// On three workers, the members land on different engines (the kernel
/// spreads them): every line still reaches every other member, in order.
#[test]
fn chat_on_several_workers_broadcasts_across_them() {
    chat_scenario(&["--threads", "3"]);
}

fn chat_scenario(extra: &[&str]) {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start("chat", &args);
    let address = server.address();

    let (mut alice, greeting) = ChatClient::join(address, "alice", "\n");
    assert_eq!(greeting, "* hello, alice! nobody else is here yet");
    let (mut bob, greeting) = ChatClient::join(address, "bob", "\n");
    assert_eq!(greeting, "* hello, bob! here: alice");
    assert_eq!(alice.line(), "* bob joined");
    // A telnet-style client: CRLF line ends.
    let (mut carol, greeting) = ChatClient::join(address, "carol", "\r\n");
    assert_eq!(greeting, "* hello, carol! here: alice, bob");
    assert_eq!(alice.line(), "* carol joined");
    assert_eq!(bob.line(), "* carol joined");

    // A taken name is refused; the client may try again.
    let stream = connect(address);
    let mut dave = ChatClient { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream, name: "dave" };
    dave.line();
    dave.say("alice");
    assert_eq!(dave.line(), "* alice is taken; your name?");
    dave.say("dave");
    assert_eq!(dave.line(), "* hello, dave! here: alice, bob, carol");
    for member in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(member.line(), "* dave joined");
    }

    // A line goes to every other member, not back to its sender: alice's
    // next line is bob's message, not her own.
    alice.say("hello everyone");
    for member in [&mut bob, &mut carol, &mut dave] {
        assert_eq!(member.line(), "alice: hello everyone");
    }
    bob.say("hi alice\r");
    assert_eq!(alice.line(), "bob: hi alice");
    assert_eq!(carol.line(), "bob: hi alice");
    assert_eq!(dave.line(), "bob: hi alice");

    carol.say("/who");
    assert_eq!(carol.line(), "* here: carol (you), alice, bob, dave");

    // Leaving, by /quit or by hanging up, is announced.
    dave.say("/quit");
    assert_eq!(dave.line(), "* bye");
    dave.expect_end();
    for member in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(member.line(), "* dave left");
    }
    carol.writer.shutdown(Shutdown::Both).unwrap();
    drop(carol);
    assert_eq!(alice.line(), "* carol left");
    assert_eq!(bob.line(), "* carol left");

    // Shutting down with members connected: they are told, then closed.
    server.interrupt();
    for member in [&mut alice, &mut bob] {
        assert_eq!(member.line(), "* the server is shutting down");
        member.expect_end();
    }
}

// ---- netstruct_server + netstruct_client ----

#[test]
fn netstruct_request_response() {
    netstruct_scenario(&[]);
}

/// On three workers the client's connections land on different engines;
/// the store is shared between them.
#[test]
fn netstruct_server_on_several_workers_shares_its_store() {
    netstruct_scenario(&["--threads", "3"]);
}

fn netstruct_scenario(extra: &[&str]) {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start("netstruct_server", &args);
    let address = server.address().to_string();
    let client = example("netstruct_client");

    // The built-in demo script.
    let out = run_ok(Command::new(&client).args(["--addr", &address]), b"");
    assert_eq!(
        out,
        "#1 SET greeting -> OK\n\
         #2 GET greeting -> OK \"hello-pants\"\n\
         #3 GET missing -> NOT_FOUND\n\
         #4 SET greeting -> OK \"hello-pants\"\n\
         #5 DEL greeting -> OK \"bye\"\n\
         #6 GET greeting -> NOT_FOUND\n"
    );

    // The store outlives connections; values may be larger than the default
    // 64 KiB buffer.
    let big = "v".repeat(100_000);
    let out = run_ok(
        Command::new(&client).args(["--addr", &address, "set", "lang", "rust, then pants", "set", "big", &big]),
        b"",
    );
    assert_eq!(out, "#1 SET lang -> OK\n#2 SET big -> OK\n");
    let out = run_ok(
        Command::new(&client).args(["--addr", &address, "get", "lang", "del", "lang", "get", "lang", "get", "big"]),
        b"",
    );
    assert_eq!(out, format!("#1 GET lang -> OK \"rust, then pants\"\n#2 DEL lang -> OK \"rust, then pants\"\n#3 GET lang -> NOT_FOUND\n#4 GET big -> OK \"{big}\"\n"));

    // The wire format, by hand: netstruct "!IBH$I$" in, "!IBI$" out. An
    // unknown op (9) is answered with status 2, keeping the request id.
    let mut peer = connect(address.parse().unwrap());
    peer.write_all(b"\x00\x00\x00\x07\x09\x00\x01k\x00\x00\x00\x00").unwrap();
    let mut response = [0; 9];
    peer.read_exact(&mut response).unwrap();
    assert_eq!(&response, b"\x00\x00\x00\x07\x02\x00\x00\x00\x00");
    // A key that is not UTF-8 is a malformed frame: the server closes.
    peer.write_all(b"\x00\x00\x00\x08\x01\x00\x01\xff\x00\x00\x00\x00").unwrap();
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0), 0);

    server.interrupt();
}

#[test]
fn netstruct_server_refuses_a_value_over_max_value_at_its_prefix() {
    const MAX_VALUE: u32 = 1 << 20;
    let server = Server::start("netstruct_server", &["--addr", "127.0.0.1:0"]);
    let address = server.address();

    // A value of exactly MAX_VALUE bytes is stored.
    let mut peer = connect(address);
    let mut request = b"\x00\x00\x00\x01\x02\x00\x01k".to_vec();
    request.extend_from_slice(&MAX_VALUE.to_be_bytes());
    request.resize(request.len() + MAX_VALUE as usize, b'v');
    peer.write_all(&request).unwrap();
    let mut response = [0; 9];
    peer.read_exact(&mut response).unwrap();
    assert_eq!(&response, b"\x00\x00\x00\x01\x00\x00\x00\x00\x00");

    // A request whose value prefix announces MAX_VALUE + 1 bytes, and no
    // value: the server refuses it and closes at once. The connection stays
    // open on this side, so the close is not a reaction to end of input, and
    // a server that waited for the value would let the read time out.
    let mut peer = connect(address);
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let local = peer.local_addr().unwrap();
    let mut request = b"\x00\x00\x00\x02\x02\x00\x01k".to_vec();
    request.extend_from_slice(&(MAX_VALUE + 1).to_be_bytes());
    peer.write_all(&request).unwrap();
    let mut rest = Vec::new();
    match peer.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "a reply to a refused request: {rest:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "the server did not close: {e}"),
    }
    assert_eq!(
        server.expect_line(&format!("{local}: ")),
        "refusing an oversized request (field `value` announces 1048577 bytes, more than its limit of 1048576)"
    );

    server.interrupt();
}

// ---- tls_echo ----

#[test]
#[ignore = "needs a real client (curl or openssl): `cargo test --test examples -- --ignored`; CI runs it"]
fn tls_echo_with_openssl_s_client() {
    require("openssl", "version", "openssl");
    let server = Server::start("tls_echo", &["--server", "--addr", "127.0.0.1:0"]);
    let ca = PathBuf::from(server.expect_line("CA certificate: "));
    let address = server.address();
    assert!(ca.is_file(), "{} does not exist", ca.display());

    // openssl verifies the chain against the printed CA, and the IP address.
    let mut s_client = Guard(
        Command::new("openssl")
            .args(["s_client", "-connect", &address.to_string(), "-CAfile"])
            .arg(&ca)
            .args(["-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run openssl s_client"),
    );
    let mut stdin = s_client.0.stdin.take().unwrap();
    let echoes = line_channel(s_client.0.stdout.take().unwrap());
    let (stderr, _) = collect(s_client.0.stderr.take().unwrap());
    for line in ["hello over tls", "and a second line"] {
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        match echoes.recv_timeout(TIMEOUT) {
            Ok(echo) => assert_eq!(echo, line),
            Err(e) => panic!(
                "no echo from s_client ({e}); s_client stderr:\n{}\nserver stderr:\n{}",
                String::from_utf8_lossy(&stderr.lock().unwrap()),
                server.stderr()
            ),
        }
    }
    drop(stdin);
    drop(s_client);

    // Without the CA, verification fails and nothing is echoed.
    let output = run(
        Command::new("openssl").args(["s_client", "-connect", &address.to_string(), "-verify_return_error", "-quiet"]),
        b"secret\n",
    );
    assert!(!output.status.success(), "s_client trusted a throw-away CA it was not given");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("secret"));

    // The example's own client, by IP address and by host name.
    let tls_echo = example("tls_echo");
    let out = run_ok(
        Command::new(&tls_echo)
            .args(["--client", "--addr", &address.to_string(), "--ca"])
            .arg(&ca)
            .args(["one", "two"]),
        b"",
    );
    assert_eq!(out, "one\ntwo\n");
    let by_name = format!("localhost:{}", address.port());
    let out = run_ok(Command::new(&tls_echo).args(["--client", "--addr", &by_name, "--ca"]).arg(&ca), b"from stdin\n");
    assert_eq!(out, "from stdin\n");

    server.interrupt();
    assert!(!ca.exists(), "the CA's temporary directory was not removed");
}

// ---- fileserve ----

/// One HTTP response, parsed from a byte stream.
struct HttpResponse {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Parses one response off the front of `bytes`; `head_only` for the
    /// answer to a HEAD (no body whatever Content-Length says).
    fn parse(bytes: &mut &[u8], head_only: bool) -> HttpResponse {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
        let head = std::str::from_utf8(&bytes[..end]).unwrap().to_string();
        *bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("a header");
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let mut response = HttpResponse { status_line, headers, body: Vec::new() };
        let len: usize = response.header("Content-Length").expect("Content-Length").parse().unwrap();
        if !head_only {
            response.body = bytes[..len].to_vec();
            *bytes = &bytes[len..];
        }
        response
    }
}

/// Sends `request` on a fresh connection and reads until the server closes
/// (well before its 30 s idle timeout would).
fn raw_exchange(address: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(address);
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("the server closes the connection");
    response
}

#[test]
#[ignore = "needs a real client (curl or openssl): `cargo test --test examples -- --ignored`; CI runs it"]
fn fileserve_with_curl() {
    require("curl", "--version", "curl");
    let temp = TempDir::new("fileserve");
    let www = temp.0.join("www");
    let out = temp.0.join("out");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let big = random_bytes(5 * 1024 * 1024 + 12_345, 0x5eed);
    std::fs::write(www.join("big.bin"), &big).unwrap();
    std::fs::write(www.join("small.txt"), b"hello, pants\n").unwrap();
    std::fs::write(www.join("empty.txt"), b"").unwrap();
    std::fs::write(www.join("sub/inner.txt"), b"inside sub\n").unwrap();
    std::fs::write(temp.0.join("secret.txt"), b"TOP SECRET\n").unwrap();

    let server = Server::start("fileserve", &["--dir", www.to_str().unwrap(), "--addr", "127.0.0.1:0"]);
    let address = server.address();
    let url = |path: &str| format!("http://{address}{path}");
    let curl = || {
        let mut command = Command::new("curl");
        command.args(["--silent", "--show-error", "--max-time", "30"]);
        command
    };

    // A multi-MiB download (sendfile) and a small one, byte for byte.
    let code = run_ok(curl().arg("-o").arg(out.join("big.bin")).args(["-w", "%{http_code}", &url("/big.bin")]), b"");
    assert_eq!(code, "200");
    assert!(std::fs::read(out.join("big.bin")).unwrap() == big, "big.bin differs");
    let small = run_ok(curl().arg(url("/small.txt")), b"");
    assert_eq!(small, "hello, pants\n");
    let empty = run_ok(curl().args(["-w", "%{http_code} %{size_download}", &url("/empty.txt")]), b"");
    assert_eq!(empty, "200 0");

    // Keep-alive: two URLs in one curl run share one connection (the second
    // transfer makes no new connection).
    let report = run_ok(
        curl().arg("-o").arg(out.join("a")).arg("-o").arg(out.join("b")).args([
            "-w",
            "%{http_code} %{num_connects}\n",
            &url("/small.txt"),
            &url("/big.bin"),
        ]),
        b"",
    );
    assert_eq!(report, "200 1\n200 0\n");
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"hello, pants\n");
    assert!(std::fs::read(out.join("b")).unwrap() == big, "big.bin differs on the reused connection");

    // HEAD: the headers a GET would get, no body.
    let head = run_ok(curl().args(["--head", &url("/big.bin")]), b"");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", big.len())), "{head}");
    assert!(head.contains("\r\nContent-Type: application/octet-stream\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
    let head = run_ok(curl().args(["--head", &url("/small.txt")]), b"");
    assert!(head.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 13\r\n"), "{head}");

    // A range, sent with sendfile from an offset.
    let code = run_ok(
        curl().args(["-r", "1000-1999", "-o"]).arg(out.join("range")).args(["-w", "%{http_code}", &url("/big.bin")]),
        b"",
    );
    assert_eq!(code, "206");
    assert_eq!(std::fs::read(out.join("range")).unwrap(), &big[1000..2000]);

    // Errors.
    let status = |args: &[&str]| run_ok(curl().args(["-o", "/dev/null", "-w", "%{http_code}"]).args(args), b"");
    assert_eq!(status(&[&url("/missing.txt")]), "404");
    assert_eq!(status(&[&url("/small.txt/x")]), "404");
    assert_eq!(status(&["-X", "DELETE", &url("/small.txt")]), "405");
    assert_eq!(status(&["-d", "a body", &url("/small.txt")]), "405");
    assert_eq!(status(&["-r", "99999999-", &url("/big.bin")]), "416");
    let redirect = run_ok(curl().args(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", &url("/sub")]), b"");
    assert_eq!(redirect, format!("301 {}", url("/sub/")));

    // Path traversal, plain and percent-encoded: refused, the secret stays.
    for path in ["/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt"] {
        let response = run_ok(curl().args(["--path-as-is", "-i", &url(path)]), b"");
        assert!(response.starts_with("HTTP/1.1 400 "), "{path}: {response}");
        assert!(!response.contains("TOP SECRET"), "{path}: {response}");
    }

    // A directory listing.
    let listing = run_ok(curl().arg(url("/")), b"");
    for name in ["big.bin", "small.txt", "sub/"] {
        assert!(listing.contains(&format!(">{name}</a>")), "{listing}");
    }
    assert_eq!(run_ok(curl().arg(url("/sub/inner.txt")), b""), "inside sub\n");

    // Pipelining (curl no longer pipelines): three requests in one write,
    // answered in order on one connection, which closes after the last.
    let bytes = raw_exchange(
        address,
        b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /sub/inner.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let mut rest = &bytes[..];
    let first = HttpResponse::parse(&mut rest, false);
    assert_eq!(first.status_line, "HTTP/1.1 200 OK");
    assert_eq!(first.body, b"hello, pants\n");
    let second = HttpResponse::parse(&mut rest, true);
    assert_eq!(second.status_line, "HTTP/1.1 200 OK");
    assert_eq!(second.header("Content-Length"), Some(big.len().to_string().as_str()));
    let third = HttpResponse::parse(&mut rest, false);
    assert_eq!(third.body, b"inside sub\n");
    assert_eq!(third.header("Connection"), Some("close"));
    assert!(rest.is_empty(), "bytes after the last response");

    // HTTP/1.0 closes unless asked to keep alive.
    let bytes = raw_exchange(address, b"GET /small.txt HTTP/1.0\r\n\r\n");
    let mut rest = &bytes[..];
    assert_eq!(HttpResponse::parse(&mut rest, false).body, b"hello, pants\n");
    assert!(rest.is_empty());

    // Malformed requests get 400 and a closed connection; an oversized
    // header line gets 431.
    for request in [
        &b"NONSENSE\r\n\r\n"[..],
        b"GET /small.txt HTTP/1.1\r\n\r\n",
        b"GET /small.txt HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    ] {
        let bytes = raw_exchange(address, request);
        assert!(bytes.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{}", String::from_utf8_lossy(&bytes));
    }
    let bytes = raw_exchange(address, b"GET /small.txt HTTP/2.0\r\nHost: x\r\n\r\n");
    assert!(bytes.starts_with(b"HTTP/1.1 505 "), "{}", String::from_utf8_lossy(&bytes));
    let huge = format!("GET /small.txt HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n", "a".repeat(10_000));
    let bytes = raw_exchange(address, huge.as_bytes());
    assert!(bytes.starts_with(b"HTTP/1.1 431 "), "{}", String::from_utf8_lossy(&bytes));

    // A keep-alive connection still open at shutdown does not hold it up.
    let mut idle = connect(address);
    idle.write_all(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = vec![0; 1];
    idle.read_exact(&mut response).unwrap();
    server.interrupt();
}
