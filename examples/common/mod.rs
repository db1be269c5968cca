//! What the examples share: reading the command line, running a server until
//! Ctrl-C or SIGTERM and shutting it down, and running a client to the end.
//!
//! Not an example itself (Cargo builds only `examples/*.rs` and
//! `examples/*/main.rs`): each example includes it with
//! `#[path = "common/mod.rs"] mod common;`. Each example uses only some of
//! it, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod line_client;

use std::cell::Cell;
use std::error::Error;
use std::io::Write as _;
use std::os::raw::c_int;
use std::thread::JoinHandle;
use std::time::Duration;

use pants::{Address, Engine, StreamId};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

// ---- The command line ----

/// The arguments after the program name, as [`parse_args`] hands them out.
pub struct Args {
    rest: std::iter::Skip<std::env::Args>,
    usage: &'static str,
}

impl Args {
    /// The value of an option (`--dir DIR`): the next argument. Missing, the
    /// error is the usage.
    pub fn value(&mut self) -> Result<String, &'static str> {
        self.rest.next().ok_or(self.usage)
    }

    /// Every argument not read yet (those after `--`).
    pub fn rest(&mut self) -> &mut impl Iterator<Item = String> {
        &mut self.rest
    }

    /// The usage text given to [`parse_args`].
    pub fn usage(&self) -> &'static str {
        self.usage
    }
}

/// Reads the command line in order: `--addr HOST:PORT` sets `addr`;
/// `-h` or `--help` prints `usage` and returns `false` (the program has
/// nothing more to do); any other argument goes to `other`, which may read
/// an option's value from the [`Args`]. `true`: go on.
pub fn parse_args(
    usage: &'static str,
    addr: &mut String,
    mut other: impl FnMut(String, &mut Args) -> Result<(), Box<dyn Error>>,
) -> Result<bool, Box<dyn Error>> {
    let mut args = Args { rest: std::env::args().skip(1), usage };
    while let Some(arg) = args.rest.next() {
        match arg.as_str() {
            "--addr" => *addr = args.value()?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(false);
            }
            _ => other(arg, &mut args)?,
        }
    }
    Ok(true)
}

/// For [`parse_args`]: a server taking no other argument.
pub fn no_other_argument(arg: String, args: &mut Args) -> Result<(), Box<dyn Error>> {
    Err(format!("unknown argument {arg:?}\n{}", args.usage).into())
}

/// For [`parse_args`]: a client sending lines. The arguments after `--`, and
/// those not starting with `--`, are lines; an unknown `--option` is an error.
pub fn line_argument(arg: String, args: &mut Args, lines: &mut Vec<String>) -> Result<(), Box<dyn Error>> {
    match arg.as_str() {
        "--" => lines.extend(args.rest()),
        other if other.starts_with("--") => return Err(format!("unknown option {other:?}\n{}", args.usage).into()),
        _ => lines.push(arg),
    }
    Ok(())
}

/// The address a server takes only `--addr` for (`default` without it), or
/// `None` once `-h` printed the usage.
pub fn server_address(usage: &'static str, default: &str) -> Result<Option<String>, Box<dyn Error>> {
    let mut addr = default.to_string();
    Ok(parse_args(usage, &mut addr, no_other_argument)?.then_some(addr))
}

/// `--addr HOST:PORT` (`default` without it) and `--threads N` (default 1)
/// for a server that can run on several workers; `None` once `-h` printed
/// the usage.
pub fn server_options(usage: &'static str, default: &str) -> Result<Option<(String, usize)>, Box<dyn Error>> {
    let mut addr = default.to_string();
    let mut threads = 1;
    let go = parse_args(usage, &mut addr, |arg, args| match arg.as_str() {
        "--threads" => {
            threads = args.value()?.parse().map_err(|_| format!("--threads takes a number\n{usage}"))?;
            if threads == 0 {
                return Err(format!("--threads must be at least 1\n{usage}").into());
            }
            Ok(())
        }
        _ => no_other_argument(arg, args),
    })?;
    Ok(go.then_some((addr, threads)))
}

// ---- Servers ----

/// Starts `threads` workers ([`pants::Workers`]), each listening on `addr`
/// with `SO_REUSEPORT`: `listen(engine, addr, worker)` builds each worker's
/// server. Port 0 is replaced by one free port for all of them. Returns the
/// group and the address they listen on.
pub fn start_workers(
    addr: &str,
    threads: usize,
    listen: impl Fn(&Engine, &str, usize) -> Result<StreamId, pants::StreamError> + Send + Sync + 'static,
) -> Result<(pants::WorkerGroup, Address), Box<dyn Error>> {
    // Port 0: every worker must listen on the same port, so pick one, and
    // hold it (bound with `SO_REUSEPORT`, not listening) until they all
    // listen on it: a free port picked and let go could be taken meanwhile.
    let (addr, _hold) = match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) if socket.port() == 0 => {
            let hold = hold_port(socket)?;
            (hold.local_addr()?.to_string(), Some(hold))
        }
        _ => (addr.to_string(), None),
    };
    let address = std::sync::Arc::new(std::sync::Mutex::new(None));
    let first = std::sync::Arc::clone(&address);
    let group = pants::Workers::new().threads(threads).start(move |engine, worker| {
        let server = listen(engine, &addr, worker)?;
        if worker == 0 {
            *first.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(engine.local_address(server)?);
        }
        Ok(())
    })?;
    let local = address.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().ok_or("no address")?;
    Ok((group, local))
}

/// A socket bound to a free port at `socket`'s address with `SO_REUSEPORT`,
/// and not listening: no connection reaches it, and no other socket but one
/// with `SO_REUSEPORT` (the workers') can bind the port while it is held.
fn hold_port(socket: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let family = if socket.is_ipv6() { AddressFamily::INET6 } else { AddressFamily::INET };
    let fd = rustix::net::socket(family, SocketType::STREAM, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &socket)?;
    Ok(std::net::TcpListener::from(fd))
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from now on: [`wait_for_signal`]
/// waits for one. Set up before printing `listening on`, so that a signal
/// sent as soon as the line is read is not lost.
pub fn catch_signals() -> std::io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM])
}

/// Blocks until Ctrl-C or SIGTERM, then prints `signal <n>: shutting down`
/// on standard error.
pub fn wait_for_signal(mut signals: Signals) {
    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: shutting down");
    }
}

/// Drains every worker (as [`shut_down`] does for one engine: 2 seconds at
/// most) and prints `stopped`.
pub fn shut_down_workers(group: pants::WorkerGroup) -> Result<(), Box<dyn Error>> {
    let summaries = group.shutdown(Duration::from_secs(2))?;
    let cut_off: usize = summaries.iter().map(|s| s.cut_off).sum();
    if cut_off > 0 {
        let unsent: u64 = summaries.iter().map(|s| s.unsent).sum();
        eprintln!("{cut_off} connections cut off, {unsent} bytes unsent");
    }
    println!("stopped");
    Ok(())
}

/// A server on `threads` workers, start to end: [`start_workers`], then
/// `listening on <address>`, serving until Ctrl-C or SIGTERM, and
/// [`shut_down_workers`].
pub fn serve_on_workers(
    addr: &str,
    threads: usize,
    listen: impl Fn(&Engine, &str, usize) -> Result<StreamId, pants::StreamError> + Send + Sync + 'static,
) -> Result<(), Box<dyn Error>> {
    let signals = catch_signals()?;
    let (group, local) = start_workers(addr, threads, listen)?;
    print_listening(&local)?;
    wait_for_signal(signals);
    shut_down_workers(group)
}

/// The address `server` listens on (the port chosen, for port 0).
pub fn local_address(engine: &Engine, server: StreamId) -> Result<Address, Box<dyn Error>> {
    Ok(engine.local_address(server)?)
}

/// Prints `listening on <address>` and flushes it at once: a script (or a
/// test) that started the server waits for this line to learn the address.
pub fn print_listening(local: &Address) -> std::io::Result<()> {
    println!("listening on {local}");
    std::io::stdout().flush()
}

/// A thread waiting for Ctrl-C (SIGINT) or SIGTERM; see [`stop_on_signal`].
pub struct SignalWatch {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl SignalWatch {
    /// Stops waiting (if no signal came) and joins the thread. Dropping the
    /// watch instead leaves the thread waiting, which is fine at exit.
    pub fn close(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

/// Stops the engine on Ctrl-C or SIGTERM, after `announce(signal)`. The
/// engine is single-threaded; a signal thread reaches it through its
/// `Remote`.
pub fn stop_on_signal(engine: &Engine, announce: impl FnOnce(c_int) + Send + 'static) -> std::io::Result<SignalWatch> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let remote = engine.remote();
    let thread = std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            announce(signal);
            remote.stop();
        }
    });
    Ok(SignalWatch { handle, thread })
}

/// Runs the engine until Ctrl-C or SIGTERM, which print
/// `signal <n>: shutting down` on standard error.
pub fn run_until_signal(engine: &Engine) -> std::io::Result<()> {
    stop_on_signal(engine, |signal| eprintln!("signal {signal}: shutting down"))?;
    engine.run()
}

/// After [`run_until_signal`]: shuts the engine down ([`Engine::shutdown`]):
/// stops listening, closes the connections once they have flushed what they
/// were sent (waiting 2 seconds at most, then cutting off the rest), and
/// prints `stopped`, with what was cut off if anything was.
pub fn shut_down(engine: &Engine) -> std::io::Result<()> {
    let summary = engine.shutdown(Duration::from_secs(2))?;
    if summary.cut_off > 0 {
        eprintln!("{} connections cut off, {} bytes unsent", summary.cut_off, summary.unsent);
    }
    println!("stopped");
    Ok(())
}

/// A listening server, start to end: prints what `intro` prints, then
/// `listening on <address>`, runs until Ctrl-C or SIGTERM, and shuts down
/// (see [`shut_down`]).
pub fn serve(engine: &Engine, server: StreamId, intro: impl FnOnce()) -> Result<(), Box<dyn Error>> {
    let local = local_address(engine, server)?;
    intro();
    print_listening(&local)?;
    run_until_signal(engine)?;
    shut_down(engine)?;
    Ok(())
}

// ---- Clients ----

/// Runs a client's engine until its handler stops it (on close); an error
/// saying `unfinished` unless the handler set `done` first.
pub fn run_client(engine: &Engine, done: &Cell<bool>, unfinished: &'static str) -> Result<(), Box<dyn Error>> {
    engine.run()?;
    if !done.get() {
        return Err(unfinished.into());
    }
    Ok(())
}
