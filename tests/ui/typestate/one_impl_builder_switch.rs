// A handler with a single `Read` impl: the builder's first delimiter must be
// one it reads, and the error names the missing `Read<Count>` impl.
use pants::delimiter::{Count, Until};
use pants::{Handler, Read, Stream};

struct Lines;

impl Handler for Lines {}

impl Read<Until> for Lines {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

fn main() {
    let _builder = Stream::new(Lines).read_delimiter(Count::new(4).unwrap());
}
