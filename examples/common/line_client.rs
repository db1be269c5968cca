//! The client of `echo_client` and `tls_echo --client`: sends lines, prints
//! what comes back, exits.
//!
//! The lines are the command line's or, if there are none, the lines of
//! standard input, read on a thread and handed to the event loop through the
//! engine's `Remote` as they come (so it works interactively too). Each
//! echoed line is printed as it arrives; the client is done once every line
//! sent has come back.

use std::cell::Cell;
use std::error::Error;
use std::io::{BufRead as _, Write as _};
use std::rc::Rc;

use pants::delimiter::Until;
use pants::tls::{TlsClient, TlsError};
use pants::{Engine, Handler, Read, Stream, StreamError};

/// Connects to `addr` (over TLS with `tls`), sends `lines` (none: standard
/// input) and prints the echoes. Errors are printed as `<prog>: <error>`;
/// an error is returned unless every line came back.
pub fn run(prog: &'static str, addr: &str, lines: Vec<String>, tls: Option<TlsClient>) -> Result<(), Box<dyn Error>> {
    let engine = Engine::new()?;
    let ok = Rc::new(Cell::new(false));
    let client = LineClient {
        prog,
        lines: (!lines.is_empty()).then_some(lines),
        sent: 0,
        received: 0,
        input_done: false,
        ok: ok.clone(),
    };
    let mut stream = Stream::new(client).read_delimiter(Until::lf());
    if let Some(tls) = tls {
        stream = stream.tls(tls);
    }
    stream.connect(&engine, addr)?;
    super::run_client(&engine, &ok, "the connection closed before every line came back")
}

struct LineClient {
    /// The program's name, before the errors it prints.
    prog: &'static str,
    /// Lines given as arguments (`None`: read standard input).
    lines: Option<Vec<String>>,
    sent: usize,
    received: usize,
    /// No more lines will be sent.
    input_done: bool,
    /// Set once every line has come back.
    ok: Rc<Cell<bool>>,
}

impl LineClient {
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

impl Handler for LineClient {
    /// Runs once connected (over TLS: after the handshake, the server
    /// verified).
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
                            let _ =
                                engine.with_stream::<LineClient, _>(id, |client, stream| client.send(stream, &line));
                        });
                    }
                    remote.post(move |engine| {
                        let _ = engine.with_stream::<LineClient, _>(id, |client, stream| {
                            client.input_done = true;
                            client.finish_if_done(stream);
                        });
                    });
                });
            }
        }
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        eprintln!("{}: {error}", self.prog);
        stream.close();
    }

    fn on_ssl_handshake_error(&mut self, stream: &mut Stream<Self>, error: TlsError) {
        eprintln!("{}: TLS handshake failed: {error}", self.prog);
        stream.close_now();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        stream.engine().stop();
    }
}

impl Read<Until> for LineClient {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.received += 1;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
        self.finish_if_done(stream);
    }
}
