//! A line-based chat server: each line a client sends goes to every other
//! client.
//!
//! ```sh
//! cargo run --example chat -- --addr 127.0.0.1:7001
//! nc 127.0.0.1 7001        # in two or more terminals
//! ```
//!
//! The first line a client sends is its name (an empty line: its address).
//! Then every line goes to the others as `NAME: text`; `/who` lists who is
//! here, `/quit` leaves. Joins and leaves are announced as `* NAME joined` and
//! `* NAME left`. Lines end with `\n` (a `\r` before it is dropped) and are at
//! most 4 KiB.
//!
//! The connections share one room of names by `StreamId`, and a handler
//! writes to the *other* streams with `Engine::write_to`.
//!
//! `--threads N` serves on `N` engines, one per thread ([`pants::Workers`],
//! all listening on the same address). The room is then shared between
//! threads (an `Arc<Mutex<..>>`), each member is known by its
//! [`WorkerStreamId`] (its worker and its `StreamId` there), and
//! [`Engine::write_to_worker`] writes a line to a member on another worker
//! through that worker's [`Remote`](pants::Remote). Lines
//! from one member reach each other member in the order they were sent.

#[path = "common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pants::delimiter::Until;
use pants::{Engine, FrameError, Handler, Read, Server, Stream, StreamError, StreamId, WorkerStreamId};

const USAGE: &str = "usage: chat [--addr HOST:PORT] [--threads N]   (default 127.0.0.1:7001, 1 thread)";
const MAX_LINE: usize = 4096;
const MAX_NAME: usize = 32;

/// A member's address: the worker whose engine holds its stream, and the
/// stream's id there.
type Seat = WorkerStreamId;

/// Who is in the room: seats and names, in the order they joined.
#[derive(Default)]
struct Room {
    members: Vec<(Seat, String)>,
}

impl Room {
    fn names(&self, except: Seat) -> Vec<String> {
        self.members.iter().filter(|(seat, _)| *seat != except).map(|(_, name)| name.clone()).collect()
    }
}

/// What every connection shares, on every worker.
#[derive(Default)]
struct Shared {
    room: Mutex<Room>,
}

impl Shared {
    fn room(&self) -> MutexGuard<'_, Room> {
        self.room.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One client's connection.
struct Member {
    shared: Arc<Shared>,
    peer: String,
    /// `None` until the client has sent its name.
    name: Option<String>,
}

impl Member {
    fn seat<D>(&self, stream: &Stream<Self, D>) -> Seat {
        stream.engine().worker_stream_id(stream.id())
    }

    /// Sends `line` to everyone in the room but `from`.
    fn broadcast(&self, engine: &Engine, from: Seat, line: &str) {
        let others: Vec<Seat> =
            self.shared.room().members.iter().map(|(seat, _)| *seat).filter(|s| *s != from).collect();
        let line = format!("{line}\n");
        for seat in others {
            // Queued on that stream (here, or on its worker); a stream that
            // closed meanwhile is an error we can ignore (its own on_close
            // announces it).
            let _ = engine.write_to_worker(seat, line.as_bytes());
        }
    }

    fn choose_name(&mut self, stream: &mut Stream<Self, Until>, text: &str) {
        let name = if text.is_empty() { self.peer.clone() } else { text.to_string() };
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            let _ = stream.send(format!("* names are at most {MAX_NAME} printable characters; your name?"));
            return;
        }
        let id = self.seat(stream);
        let others = {
            let mut room = self.shared.room();
            if room.members.iter().any(|(_, n)| *n == name) {
                drop(room);
                let _ = stream.send(format!("* {name} is taken; your name?"));
                return;
            }
            room.members.push((id, name.clone()));
            room.names(id)
        };
        let greeting = match others.is_empty() {
            true => format!("* hello, {name}! nobody else is here yet"),
            false => format!("* hello, {name}! here: {}", others.join(", ")),
        };
        // `send` ends the line with the delimiter's terminator.
        let _ = stream.send(greeting);
        self.broadcast(stream.engine(), id, &format!("* {name} joined"));
        println!("{} joined as {name}", self.peer);
        self.name = Some(name);
    }
}

impl Handler for Member {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let _ = stream.send_with(&Until::lf(), b"* welcome to pants chat; your name? (empty: your address)");
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        if let Some(name) = self.name.take() {
            let seat = self.seat(stream);
            self.shared.room().members.retain(|(id, _)| *id != seat);
            self.broadcast(stream.engine(), seat, &format!("* {name} left"));
            println!("{name} left");
        }
    }

    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, _error: FrameError) {
        let _ = stream.send_with(&Until::lf(), format!("* lines are at most {MAX_LINE} bytes; bye"));
        stream.close();
    }
}

impl Read<Until> for Member {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        let Some(name) = &self.name else { return self.choose_name(stream, text) };
        match text {
            "" => {}
            "/quit" => {
                let _ = stream.send(b"* bye");
                stream.close();
            }
            "/who" => {
                let mut names = vec![format!("{name} (you)")];
                names.extend(self.shared.room().names(self.seat(stream)));
                let _ = stream.send(format!("* here: {}", names.join(", ")));
            }
            _ => {
                println!("{name}: {text}");
                self.broadcast(stream.engine(), self.seat(stream), &format!("{name}: {text}"));
            }
        }
    }
}

/// Worker `worker`'s chat server on `addr`.
/// (`SO_REUSEPORT` with more than one worker.)
fn listen(engine: &Engine, addr: &str, shared: &Arc<Shared>, reuse_port: bool) -> Result<StreamId, StreamError> {
    let shared = Arc::clone(shared);
    Server::from_fn(move |peer| {
        let member = Member { shared: Arc::clone(&shared), peer: peer.to_string(), name: None };
        Some(Stream::new(member).read_delimiter(Until::lf()).buffer_size(MAX_LINE))
    })
    .reuse_port(reuse_port)
    .listen(engine, addr)
}

const SHUTTING_DOWN: &str = "* the server is shutting down\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some((addr, threads)) = common::server_options(USAGE, "127.0.0.1:7001")? else { return Ok(()) };
    let shared = Arc::new(Shared::default());
    if threads > 1 {
        let signals = common::catch_signals()?;
        let for_workers = Arc::clone(&shared);
        let (group, local) =
            common::start_workers(&addr, threads, move |engine, addr, _| listen(engine, addr, &for_workers, true))?;
        common::print_listening(&local)?;
        common::wait_for_signal(signals);
        // Tell everyone (and no one who leaves now), on every worker; then
        // drain them.
        shared.room().members.clear();
        for remote in group.remotes() {
            remote.post(|engine| {
                for id in engine.ids() {
                    let _ = engine.write_to(id, SHUTTING_DOWN);
                }
            });
        }
        return common::shut_down_workers(group);
    }
    let engine = Engine::new()?;
    let server = listen(&engine, &addr, &shared, false)?;
    common::print_listening(&common::local_address(&engine, server)?)?;
    common::run_until_signal(&engine)?;

    // Tell everyone (and no one who leaves now), then stop listening and
    // close the connections once they have flushed.
    shared.room().members.clear();
    for id in engine.connections(server).unwrap_or_default() {
        let _ = engine.write_to(id, SHUTTING_DOWN);
    }
    common::shut_down(&engine)?;
    Ok(())
}
