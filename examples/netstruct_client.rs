//! A binary key-value protocol defined only by `#[derive(NetStruct)]`
//! structs: the client. See `netstruct_server.rs`.
//!
//! ```sh
//! cargo run --example netstruct_client -- --addr 127.0.0.1:7002                  # a demo script
//! cargo run --example netstruct_client -- --addr 127.0.0.1:7002 set k v get k del k
//! ```
//!
//! Sends every request at once (pipelined), then prints each response as it
//! arrives, decoded by the stream's `Packed::<Response>` delimiter, and exits
//! once all have arrived.

#[path = "common/mod.rs"]
mod common;
#[path = "common/netstruct_proto.rs"]
mod proto;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use pants::delimiter::Packed;
use pants::{Engine, Handler, NetStruct, Read, Stream, StreamError};
use proto::{Request, Response, MAX_VALUE, OP_DEL, OP_GET, OP_SET, STATUS_BAD_OP, STATUS_NOT_FOUND, STATUS_OK};

const USAGE: &str = "usage: netstruct_client [--addr HOST:PORT] [get KEY | set KEY VALUE | del KEY]...
  (default 127.0.0.1:7002; no command: a demo script)";

/// One command to send.
struct Command {
    op: u8,
    key: String,
    value: Vec<u8>,
}

impl Command {
    fn name(&self) -> &'static str {
        match self.op {
            OP_GET => "GET",
            OP_SET => "SET",
            OP_DEL => "DEL",
            _ => "?",
        }
    }
}

struct Client {
    commands: Vec<Command>,
    /// Commands sent and not answered yet, by request id.
    waiting: HashMap<u32, Command>,
    done: Rc<Cell<bool>>,
}

impl Handler for Client {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        for (id, command) in (1..).zip(self.commands.drain(..)) {
            let request = Request { id, op: command.op, key: &command.key, value: &command.value };
            if let Err(e) = stream.send_with(&Packed::<Request>::new(), &request) {
                eprintln!("netstruct_client: cannot send {request:?}: {e}");
                stream.close();
                return;
            }
            self.waiting.insert(id, command);
        }
        if self.waiting.is_empty() {
            self.done.set(true);
            stream.close();
        }
    }

    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        eprintln!("netstruct_client: {error}");
        stream.close();
    }

    fn on_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        eprintln!("netstruct_client: {error}");
        stream.close_now();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        stream.engine().stop();
    }
}

impl Read<Packed<Response<'_>>> for Client {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Response<'_>>>, response: Response<'_>) {
        let Some(command) = self.waiting.remove(&response.id) else {
            eprintln!("netstruct_client: a response to no request: {response:?}");
            return stream.close_now();
        };
        let status = match response.status {
            STATUS_OK => "OK",
            STATUS_NOT_FOUND => "NOT_FOUND",
            STATUS_BAD_OP => "BAD_OP",
            _ => "?",
        };
        let mut line = format!("#{} {} {} -> {status}", response.id, command.name(), command.key);
        if !response.value.is_empty() {
            line += &format!(" {:?}", String::from_utf8_lossy(response.value));
        }
        println!("{line}");
        if self.waiting.is_empty() {
            self.done.set(true);
            stream.close();
        }
    }
}

fn parse_commands(words: &[String]) -> Result<Vec<Command>, String> {
    let mut commands = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let mut next = |what: &str| words.next().cloned().ok_or(format!("{word}: missing {what}\n{USAGE}"));
        let command = match word.to_ascii_lowercase().as_str() {
            "get" => Command { op: OP_GET, key: next("KEY")?, value: Vec::new() },
            "set" => Command { op: OP_SET, key: next("KEY")?, value: next("VALUE")?.into_bytes() },
            "del" => Command { op: OP_DEL, key: next("KEY")?, value: Vec::new() },
            _ => return Err(format!("unknown command {word:?}\n{USAGE}")),
        };
        commands.push(command);
    }
    Ok(commands)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:7002".to_string();
    let mut words = Vec::new();
    // Every argument but `--addr` and `-h` is a word of the commands.
    let go_on = common::parse_args(USAGE, &mut addr, |arg, _| {
        words.push(arg);
        Ok(())
    })?;
    if !go_on {
        return Ok(());
    }
    if words.is_empty() {
        let script = "set greeting hello-pants get greeting get missing set greeting bye del greeting get greeting";
        words = script.split(' ').map(String::from).collect();
    }
    let commands = parse_commands(&words)?;

    let engine = Engine::new()?;
    let done = Rc::new(Cell::new(false));
    let client = Client { commands, waiting: HashMap::new(), done: done.clone() };
    Stream::new(client)
        .read_delimiter(Packed::<Response>::new())
        .buffer_size(Response::MIN_SIZE + MAX_VALUE)
        .connect(&engine, addr.as_str())?;
    common::run_client(&engine, &done, "the connection closed before every response arrived")
}
