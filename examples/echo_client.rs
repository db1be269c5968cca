//! An echo client: sends lines, prints what comes back, exits.
//!
//! ```sh
//! cargo run --example echo_client -- --addr 127.0.0.1:7000 hello world
//! printf 'one\ntwo\n' | cargo run --example echo_client -- --addr 127.0.0.1:7000
//! ```
//!
//! The lines are the arguments after the options or, if there are none, the
//! lines of standard input, read on a thread and handed to the event loop
//! through the engine's `Remote` as they come (so it works interactively
//! too). Each echoed line is printed as it arrives; the client exits once
//! every line sent has come back (status 0), or with status 1 if the
//! connection fails or closes first.

use std::cell::Cell;
use std::io::{BufRead as _, Write as _};
use std::rc::Rc;

use pants::delimiter::Until;
use pants::{Engine, Handler, Read, Stream, StreamError};

const USAGE: &str = "usage: echo_client [--addr HOST:PORT] [LINE...]   (default 127.0.0.1:7000; no LINE: stdin)";

struct Client {
    /// Lines given as arguments (`None`: read standard input).
    lines: Option<Vec<String>>,
    sent: usize,
    received: usize,
    /// No more lines will be sent.
    input_done: bool,
    /// Set once every line has come back.
    ok: Rc<Cell<bool>>,
}

impl Client {
    fn send<D>(&mut self, stream: &mut Stream<Self, D>, line: &[u8]) {
        if stream.write([line, b"\n"].concat()).is_ok() {
            self.sent += 1;
        }
    }

    fn finish_if_done<D>(&mut self, stream: &mut Stream<Self, D>) {
        if self.input_done && self.received == self.sent {
            self.ok.set(true);
            stream.close();
        }
    }
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        match self.lines.take() {
            Some(lines) => {
                for line in lines {
                    self.send(stream, line.as_bytes());
                }
                self.input_done = true;
                self.finish_if_done(stream);
            }
            None => {
                // Standard input blocks: read it on a thread, and run each
                // line on the engine's thread, against this stream.
                let remote = stream.engine().remote();
                let id = stream.id();
                std::thread::spawn(move || {
                    for line in std::io::stdin().lock().split(b'\n') {
                        let Ok(mut line) = line else { break };
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        remote.post(move |engine| {
                            let _ = engine.with_stream::<Client, _>(id, |client, stream| client.send(stream, &line));
                        });
                    }
                    remote.post(move |engine| {
                        let _ = engine.with_stream::<Client, _>(id, |client, stream| {
                            client.input_done = true;
                            client.finish_if_done(stream);
                        });
                    });
                });
            }
        }
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        eprintln!("echo_client: {error}");
        stream.close();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        stream.engine().stop();
    }
}

impl Read<Until> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.received += 1;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
        self.finish_if_done(stream);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:7000".to_string();
    let mut lines = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or(USAGE)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--" => lines.extend(args.by_ref()),
            other if other.starts_with("--") => return Err(format!("unknown option {other:?}\n{USAGE}").into()),
            _ => lines.push(arg),
        }
    }

    let engine = Engine::new()?;
    let ok = Rc::new(Cell::new(false));
    let client =
        Client { lines: (!lines.is_empty()).then_some(lines), sent: 0, received: 0, input_done: false, ok: ok.clone() };
    Stream::new(client).read_delimiter(Until::lf()).connect(&engine, addr.as_str())?;
    engine.run()?;
    if !ok.get() {
        return Err("the connection closed before every line came back".into());
    }
    Ok(())
}
