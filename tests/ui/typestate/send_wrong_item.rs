// A frame of the wrong type for the stream's delimiter does not compile,
// and the error names the missing `Encode` impl.
use pants::delimiter::Count;
use pants::{Handler, Read, Stream};

struct Bodies;

impl Handler for Bodies {}

impl Read<Count> for Bodies {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, _body: &[u8]) {
        let _ = stream.send(42u32);
    }
}

fn main() {}
