// A builder cannot switch to a delimiter its handler does not read:
// `Lines` reads `Raw` and `Until`, not `Count`.
use pants::delimiter::{Count, Raw, Until};
use pants::{Handler, Read, Stream};

struct Lines;

impl Handler for Lines {}

// Two `Read` impls, so that the compiler names the missing one instead of
// inferring the only one there is.
impl Read<Raw> for Lines {
    fn on_read(&mut self, _stream: &mut Stream<Self, Raw>, _data: &[u8]) {}
}

impl Read<Until> for Lines {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

fn main() {
    let _builder = Stream::new(Lines).read_delimiter(Count::new(1).unwrap());
}
