// A handler with a single `Read` impl: switching to a delimiter it does not
// read must name the missing `Read<Count>` impl (not "mismatched types,
// expected `Until`", which the compiler says if it infers the delimiter
// from the only impl there is).
use pants::delimiter::{Count, Until};
use pants::{Handler, Read, Stream};

struct Lines;

impl Handler for Lines {}

impl Read<Until> for Lines {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        if line == b"BODY" {
            stream.read_delimiter(Count::new(4).unwrap());
        }
    }
}

fn main() {}
