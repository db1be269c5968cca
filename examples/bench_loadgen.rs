//! A verifying load generator for `bench_pants_server` and
//! `bench_tokio_server` (see `scripts/bench_engine.sh`).
//!
//! It opens `--conns` connections over loopback and keeps `--inflight`
//! requests in flight on each (pipelined), every request a `--size`-byte
//! message numbered per connection: `raw` bytes, a `lines` line ending in
//! `\n`, or a `len` frame (big-endian u32 length, then the body). Every reply
//! is checked against the request it answers, byte for byte and in order. It
//! runs single-threaded on `mio` (edge-triggered), so that it costs little per
//! message, for `--warmup` seconds, then measures for `--duration` seconds or
//! until `--messages` replies, then stops sending and waits for the replies
//! still in flight (all checked).
//!
//! With `--server-pid`, the server's CPU time (utime + stime from
//! `/proc/PID/stat`) over the measured interval is reported per message.
//!
//! Prints one line of `key=value` pairs; exits non-zero on a wrong or missing
//! reply.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Raw,
    Lines,
    Len,
}

struct Options {
    addr: SocketAddr,
    proto: Proto,
    conns: usize,
    inflight: u64,
    size: usize,
    messages: u64,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:7000".parse().unwrap(),
        proto: Proto::Raw,
        conns: 64,
        inflight: 16,
        size: 64,
        messages: u64::MAX,
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        server_pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--addr" => o.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--proto" => {
                o.proto = match value()?.as_str() {
                    "raw" => Proto::Raw,
                    "lines" => Proto::Lines,
                    "len" => Proto::Len,
                    other => return Err(format!("unknown protocol {other}; use raw, lines or len")),
                }
            }
            "--conns" => o.conns = number(value()?)? as usize,
            "--inflight" => o.inflight = number(value()?)? as u64,
            "--size" => o.size = number(value()?)? as usize,
            "--messages" => o.messages = number(value()?)? as u64,
            "--warmup" => o.warmup = Duration::from_secs_f64(number(value()?)?),
            "--duration" => o.duration = Duration::from_secs_f64(number(value()?)?),
            "--server-pid" => o.server_pid = Some(number(value()?)? as u32),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.conns == 0 || o.inflight == 0 {
        return Err("--conns and --inflight must be at least 1".into());
    }
    let min = match o.proto {
        Proto::Raw => 16,
        Proto::Lines => 26,
        Proto::Len => 4 + 24,
    };
    if o.size < min {
        return Err(format!("--size must be at least {min} for this protocol"));
    }
    Ok(o)
}

/// Builds request `seq` of connection `conn`; replies must equal it.
struct Messages {
    proto: Proto,
    size: usize,
    /// Filler bytes (printable, no `\n`), `size` plus 64 long.
    pattern: Vec<u8>,
}

impl Messages {
    fn new(proto: Proto, size: usize) -> Self {
        let pattern = (0..size + 64).map(|i| b'a' + (i % 26) as u8).collect();
        Messages { proto, size, pattern }
    }

    fn append(&self, conn: usize, seq: u64, out: &mut Vec<u8>) {
        let start = out.len();
        let shift = (seq % 64) as usize;
        out.extend_from_slice(&self.pattern[shift..shift + self.size]);
        let msg = &mut out[start..];
        let body = match self.proto {
            Proto::Raw => {
                msg[..8].copy_from_slice(&(conn as u64).to_le_bytes());
                msg[8..16].copy_from_slice(&seq.to_le_bytes());
                return;
            }
            Proto::Lines => {
                msg[self.size - 1] = b'\n';
                &mut msg[..]
            }
            Proto::Len => {
                msg[..4].copy_from_slice(&((self.size - 4) as u32).to_be_bytes());
                &mut msg[4..]
            }
        };
        // A printable stamp: connection and sequence number in hex.
        let hex = |v: u64, out: &mut [u8]| {
            let n = out.len();
            for (i, b) in out.iter_mut().enumerate() {
                let nibble = ((v >> (4 * (n - 1 - i))) & 0xf) as u8;
                *b = if nibble < 10 { b'0' + nibble } else { b'a' + nibble - 10 };
            }
        };
        hex(conn as u64, &mut body[..8]);
        hex(seq, &mut body[8..24]);
    }
}

struct Conn {
    socket: TcpStream,
    out: Vec<u8>,
    out_pos: usize,
    inb: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// Requests queued so far (the next request's number).
    sent: u64,
    /// Replies checked so far (the next reply's number).
    received: u64,
}

/// Utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

struct Snapshot {
    at: Instant,
    done: u64,
    server_cpu: Option<f64>,
    own_cpu: Option<f64>,
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_loadgen: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options) {
        eprintln!("bench_loadgen: {e}");
        std::process::exit(1);
    }
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let ticks = clock_ticks();
    let own_pid = std::process::id();
    let snapshot = |done: u64| Snapshot {
        at: Instant::now(),
        done,
        server_cpu: o.server_pid.and_then(|pid| cpu_seconds(pid, ticks)),
        own_cpu: cpu_seconds(own_pid, ticks),
    };
    let messages = Messages::new(o.proto, o.size);
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(o.conns);
    let in_capacity = (2 * o.size).max(64 * 1024);
    for i in 0..o.conns {
        let socket = std::net::TcpStream::connect(o.addr).map_err(|e| format!("connection {i}: {e}"))?;
        socket.set_nodelay(true)?;
        socket.set_nonblocking(true)?;
        let mut socket = TcpStream::from_std(socket);
        poll.registry().register(&mut socket, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        conns.push(Conn {
            socket,
            out: Vec::with_capacity(o.size * o.inflight as usize),
            out_pos: 0,
            inb: vec![0; in_capacity],
            in_start: 0,
            in_end: 0,
            sent: 0,
            received: 0,
        });
    }

    let started = Instant::now();
    let start = snapshot(0);
    let measure_from = started + o.warmup;
    let measure_until = measure_from + o.duration;
    let mut sending = true;
    let mut done: u64 = 0;
    let mut first: Option<Snapshot> = None;
    let mut last: Option<Snapshot> = None;
    let mut drain_deadline = None;

    for (i, conn) in conns.iter_mut().enumerate() {
        while conn.sent < o.inflight {
            messages.append(i, conn.sent, &mut conn.out);
            conn.sent += 1;
        }
        service(conn, i, &messages, o, sending, &mut done)?;
    }

    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for event in events.iter() {
            let i = event.token().0;
            service(&mut conns[i], i, &messages, o, sending, &mut done)?;
        }
        let now = Instant::now();
        if first.is_none() && now >= measure_from {
            first = Some(snapshot(done));
        }
        if sending && (now >= measure_until || done >= o.messages) {
            sending = false;
            last = Some(snapshot(done));
            drain_deadline = Some(now + Duration::from_secs(10));
        }
        if !sending {
            let missing: u64 = conns.iter().map(|c| c.sent - c.received).sum();
            if missing == 0 {
                break;
            }
            if drain_deadline.is_some_and(|d| now >= d) {
                return Err(format!("{missing} replies missing 10 s after the run").into());
            }
        }
    }

    let last = last.expect("set when sending stopped");
    // Stopped by --messages before the warm-up ended: measure everything.
    let first = first.unwrap_or(start);
    let secs = (last.at - first.at).as_secs_f64();
    let count = last.done - first.done;
    let rate = count as f64 / secs;
    let mut line = format!(
        "proto={} conns={} inflight={} size={} msgs={} secs={:.3} msgs_per_sec={:.0} mb_per_sec={:.1}",
        match o.proto {
            Proto::Raw => "raw",
            Proto::Lines => "lines",
            Proto::Len => "len",
        },
        o.conns,
        o.inflight,
        o.size,
        count,
        secs,
        rate,
        rate * o.size as f64 / 1e6,
    );
    if let (Some(a), Some(b)) = (first.server_cpu, last.server_cpu) {
        let cpu = b - a;
        line += &format!(
            " server_cpu_s={:.3} server_cpu_us_per_msg={:.3} server_cpu_util={:.2}",
            cpu,
            cpu * 1e6 / count as f64,
            cpu / secs
        );
    }
    if let (Some(a), Some(b)) = (first.own_cpu, last.own_cpu) {
        line += &format!(" loadgen_cpu_util={:.2}", (b - a) / secs);
    }
    line += &format!(" checked={}", conns.iter().map(|c| c.received).sum::<u64>());
    println!("{line}");
    Ok(())
}

/// Reads and checks every reply available, queues new requests for them,
/// and writes what is queued, until the socket would block.
fn service(
    conn: &mut Conn,
    index: usize,
    messages: &Messages,
    o: &Options,
    sending: bool,
    done: &mut u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let size = o.size;
    let mut expected = Vec::with_capacity(size);
    loop {
        if conn.inb.len() - conn.in_end < size {
            conn.inb.copy_within(conn.in_start..conn.in_end, 0);
            conn.in_end -= conn.in_start;
            conn.in_start = 0;
        }
        let n = match conn.socket.read(&mut conn.inb[conn.in_end..]) {
            Ok(0) => return Err(format!("connection {index}: closed by the server").into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("connection {index}: read: {e}").into()),
        };
        conn.in_end += n;
        while conn.in_end - conn.in_start >= size {
            if conn.received >= conn.sent {
                return Err(format!("connection {index}: a reply nobody asked for").into());
            }
            expected.clear();
            messages.append(index, conn.received, &mut expected);
            if conn.inb[conn.in_start..conn.in_start + size] != expected[..] {
                return Err(format!(
                    "connection {index}: reply {} differs from its request: {:?}",
                    conn.received,
                    String::from_utf8_lossy(&conn.inb[conn.in_start..conn.in_start + size])
                )
                .into());
            }
            conn.in_start += size;
            conn.received += 1;
            *done += 1;
            if sending {
                messages.append(index, conn.sent, &mut conn.out);
                conn.sent += 1;
            }
        }
        if conn.in_start == conn.in_end {
            conn.in_start = 0;
            conn.in_end = 0;
        }
    }
    while conn.out_pos < conn.out.len() {
        match conn.socket.write(&conn.out[conn.out_pos..]) {
            Ok(0) => return Err(format!("connection {index}: write returned 0").into()),
            Ok(n) => conn.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("connection {index}: write: {e}").into()),
        }
    }
    if conn.out_pos == conn.out.len() {
        conn.out.clear();
        conn.out_pos = 0;
    } else if conn.out_pos > conn.out.len() / 2 {
        conn.out.drain(..conn.out_pos);
        conn.out_pos = 0;
    }
    Ok(())
}
