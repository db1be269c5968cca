// A builder cannot start (connect) with a first delimiter its handler does
// not read: `Stream::new` starts with `Raw`, which `Lines` does not read.
use pants::delimiter::Until;
use pants::{Engine, Handler, Read, Stream};

struct Lines;

impl Handler for Lines {}

impl Read<Until> for Lines {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

fn main() {
    let engine = Engine::new().unwrap();
    let _ = Stream::new(Lines).connect(&engine, "127.0.0.1:7");
}
