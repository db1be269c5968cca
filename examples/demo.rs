//! The pants demo: one process, one event loop, a server and three clients.
//!
//! Each client greets the server with a text line, asks for binary mode, and
//! then sends game moves as `#[derive(NetStruct)]` messages. The server's
//! handler reads lines (`Until`) and, after `BINARY`, switches its stream to
//! `Packed<Move>`: a typestate transition the compiler checks (the handler
//! implements `Read<Packed<Move>>`). Everything is printed as it happens, and
//! the demo exits by itself.
//!
//! Run it with `cargo run --example demo`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::{Packed, Until};
use pants::{Address, Engine, Handler, NetStruct, Read, Server, Stream};

/// A move in a game: netstruct format `"!BB$"`.
#[derive(NetStruct, Debug, PartialEq)]
struct Move<'a> {
    player: u8,
    #[netstruct(len = u8)]
    square: &'a str,
}

/// The server's reply to each move: netstruct format `"!IH"`.
#[derive(NetStruct, Debug)]
struct Ack {
    moves_seen: u32,
    checksum: u16,
}

/// Server side of one connection.
struct Referee {
    moves: u32,
}

impl Handler for Referee {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        println!("[server] {} connected", stream.remote_address().map(|a| a.to_string()).unwrap_or_default());
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        println!("[server] stream {} closed after {} moves", stream.id(), self.moves);
    }
}

impl Read<Until> for Referee {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        println!("[server] line frame  {:?}", String::from_utf8_lossy(line));
        if line == b"BINARY" {
            // From the next frame on, this stream reads Move structs.
            stream.read_delimiter(Packed::<Move>::new());
            // `send` writes a frame of the protocol being read: "OK binary\r\n".
            let _ = stream.send(b"OK binary");
        } else {
            let _ = stream.send(b"OK hello");
        }
    }
}

impl Read<Packed<Move<'_>>> for Referee {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Move<'_>>>, mv: Move<'_>) {
        self.moves += 1;
        println!("[server] Move frame  player {} plays {}", mv.player, mv.square);
        let checksum = mv.square.bytes().map(u16::from).sum();
        // The reply is another struct: name its encoder.
        let _ = stream.send_with(&Packed::<Ack>::new(), &Ack { moves_seen: self.moves, checksum });
    }
}

/// One client: a greeting, then binary moves, then done.
struct Player {
    id: u8,
    name: &'static str,
    squares: Vec<&'static str>,
    finished: Rc<RefCell<usize>>,
}

impl Handler for Player {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        let lines = Until::crlf();
        let _ = stream.send_with(&lines, format!("HELLO {}", self.name));
        let _ = stream.send_with(&lines, b"BINARY");
    }

    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        *self.finished.borrow_mut() += 1;
    }
}

impl Read<Until> for Player {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        println!("[{}] line frame  {:?}", self.name, String::from_utf8_lossy(line));
        if line == b"OK binary" {
            stream.read_delimiter(Packed::<Ack>::new());
            let moves = Packed::<Move>::new();
            for square in &self.squares {
                let _ = stream.send_with(&moves, &Move { player: self.id, square });
            }
        }
    }
}

impl Read<Packed<Ack>> for Player {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Ack>>, ack: Ack) {
        println!("[{}] Ack frame   {ack:?}", self.name);
        if ack.moves_seen as usize == self.squares.len() {
            stream.close();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let server = Server::from_fn(|_peer| Some(Stream::new(Referee { moves: 0 }).read_delimiter(Until::crlf())))
        .listen(&engine, "127.0.0.1:0")?;
    let address = engine.local_address(server)?;
    println!("[server] listening on {address}");

    let finished = Rc::new(RefCell::new(0));
    let players = [("ann", vec!["e4", "Nf3"]), ("bob", vec!["e5", "Nc6", "Bb5"]), ("cy", vec!["d4"])];
    for (id, (name, squares)) in (1..).zip(players.clone()) {
        let player = Player { id, name, squares, finished: finished.clone() };
        Stream::new(player).read_delimiter(Until::crlf()).connect(&engine, Address::from(&address))?;
    }

    let done = engine.run_until(Duration::from_secs(10), || *finished.borrow() == players.len())?;
    // Let the server see the last closes, then stop.
    engine.run_until(Duration::from_millis(200), || engine.connections(server).map_or(true, |c| c.is_empty()))?;
    if !done {
        return Err("the demo did not finish in time".into());
    }
    println!("all {} players finished; every frame was typed and nothing was left over", players.len());
    Ok(())
}
