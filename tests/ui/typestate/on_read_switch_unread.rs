// Inside `on_read`, a running stream cannot switch to a delimiter its
// handler does not read either.
use pants::delimiter::{Count, Raw, Until};
use pants::{Handler, Read, Stream};

struct Lines;

impl Handler for Lines {}

// Two `Read` impls here; `one_impl_on_read_switch.rs` is the case with one
// (where the compiler once inferred the delimiter from the only impl).
impl Read<Raw> for Lines {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

impl Read<Until> for Lines {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        if line == b"BODY" {
            stream.read_delimiter(Count::new(1).unwrap());
        }
    }
}

fn main() {}
