//! The pants demo: typed frames cut from one byte stream, with a delimiter
//! switch from a line protocol to a derived NetStruct protocol.
//!
//! Run it with `cargo run --example demo`.

use pants::delimiter::{Packed, Until};
use pants::{Framer, NetStruct};

/// A binary move in a game: netstruct format `"!BB$"`.
#[derive(NetStruct, Debug, PartialEq)]
struct Move<'a> {
    player: u8,
    #[netstruct(len = u8)]
    square: &'a str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What a peer might send: a text greeting, then binary moves.
    let mut wire = b"HELLO chess\r\nBINARY\r\n".to_vec();
    for (player, square) in [(1, "e4"), (2, "e5"), (1, "Nf3")] {
        Move { player, square }.encode(&mut wire)?;
    }

    // Feed it one byte at a time, as a slow network would.
    let mut lines = Framer::new(Until::crlf());
    let mut rest = &wire[..];
    'text: while let Some((byte, tail)) = rest.split_first() {
        rest = tail;
        lines.push(&[*byte]);
        while let Some(line) = lines.next_frame()? {
            println!("line frame:   {:?}", String::from_utf8_lossy(line));
            if line == b"BINARY" {
                break 'text;
            }
        }
    }

    // Switch delimiter: Framer<Until> becomes Framer<Packed<Move>>.
    let mut moves = lines.read_delimiter(Packed::<Move>::new());
    for byte in rest {
        moves.push(&[*byte]);
        while let Some(mv) = moves.next_frame()? {
            println!("Move frame:   player {} plays {}", mv.player, mv.square);
        }
    }
    moves.finish()?;
    println!("all frames decoded, nothing left over");
    Ok(())
}
