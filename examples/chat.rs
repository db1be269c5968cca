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
//! The connections share one room, an `Rc<RefCell<..>>` of names by
//! `StreamId` (everything runs on the engine's one thread), and a handler
//! writes to the *other* streams with `Engine::write_to`.

#[path = "common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::rc::Rc;

use pants::delimiter::Until;
use pants::{Engine, FrameError, Handler, Read, Server, Stream, StreamId};

const USAGE: &str = "usage: chat [--addr HOST:PORT]   (default 127.0.0.1:7001)";
const MAX_LINE: usize = 4096;
const MAX_NAME: usize = 32;

/// Who is in the room: streams and names, in the order they joined.
#[derive(Default)]
struct Room {
    members: Vec<(StreamId, String)>,
}

impl Room {
    fn names(&self, except: StreamId) -> Vec<String> {
        self.members.iter().filter(|(id, _)| *id != except).map(|(_, name)| name.clone()).collect()
    }
}

/// One client's connection.
struct Member {
    room: Rc<RefCell<Room>>,
    peer: String,
    /// `None` until the client has sent its name.
    name: Option<String>,
}

impl Member {
    /// Sends `line` to everyone in the room but `from`.
    fn broadcast(&self, engine: &Engine, from: StreamId, line: &str) {
        let others: Vec<StreamId> =
            self.room.borrow().members.iter().map(|(id, _)| *id).filter(|id| *id != from).collect();
        let line = format!("{line}\n");
        for id in others {
            // Queued on that stream; a stream that closed meanwhile is an
            // error we can ignore (its own on_close announces it).
            let _ = engine.write_to(id, &line);
        }
    }

    fn choose_name(&mut self, stream: &mut Stream<Self, Until>, text: &str) {
        let name = if text.is_empty() { self.peer.clone() } else { text.to_string() };
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            let _ = stream.send(format!("* names are at most {MAX_NAME} printable characters; your name?"));
            return;
        }
        let id = stream.id();
        let others = {
            let mut room = self.room.borrow_mut();
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
            self.room.borrow_mut().members.retain(|(id, _)| *id != stream.id());
            self.broadcast(stream.engine(), stream.id(), &format!("* {name} left"));
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
                names.extend(self.room.borrow().names(stream.id()));
                let _ = stream.send(format!("* here: {}", names.join(", ")));
            }
            _ => {
                println!("{name}: {text}");
                self.broadcast(stream.engine(), stream.id(), &format!("{name}: {text}"));
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(addr) = common::server_address(USAGE, "127.0.0.1:7001")? else { return Ok(()) };
    let engine = Engine::new()?;
    let room = Rc::new(RefCell::new(Room::default()));
    let members = room.clone();
    let server = Server::from_fn(move |peer| {
        let member = Member { room: room.clone(), peer: peer.to_string(), name: None };
        Some(Stream::new(member).read_delimiter(Until::lf()).buffer_size(MAX_LINE))
    })
    .listen(&engine, addr.as_str())?;
    common::print_listening(&common::local_address(&engine, server)?)?;
    common::run_until_signal(&engine)?;

    // Tell everyone (and no one who leaves now), then stop listening and
    // close the connections once they have flushed.
    for id in engine.connections(server).unwrap_or_default() {
        let _ = engine.write_to(id, "* the server is shutting down\n");
    }
    members.borrow_mut().members.clear();
    common::shut_down(&engine)?;
    Ok(())
}
