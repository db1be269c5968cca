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
//! connection fails or closes first. The client itself is in
//! `common/line_client.rs`, shared with `tls_echo --client`.

#[path = "common/mod.rs"]
mod common;

const USAGE: &str = "usage: echo_client [--addr HOST:PORT] [LINE...]   (default 127.0.0.1:7000; no LINE: stdin)";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:7000".to_string();
    let mut lines = Vec::new();
    if !common::parse_args(USAGE, &mut addr, |arg, args| common::line_argument(arg, args, &mut lines))? {
        return Ok(());
    }
    common::line_client::run("echo_client", &addr, lines, None)
}
