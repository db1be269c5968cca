// The positive control: switching among delimiters the handler reads
// compiles, in the builder and inside callbacks. (Having a passing case
// also makes trybuild build the cases instead of only checking them, which
// is what reports the post-monomorphisation error of `array_zero.rs`.)
use pants::delimiter::{Array, Count, Until};
use pants::{Framer, Handler, Read, Stream};

struct Protocol;

impl Handler for Protocol {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.read_delimiter(Until::crlf());
    }
}

impl Read<Until> for Protocol {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        match line {
            b"HEADER" => stream.read_delimiter(Array::<4>),
            _ => stream.read_delimiter(Count::new(line.len().max(1)).unwrap()),
        }
    }
}

impl Read<Count> for Protocol {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, _body: &[u8]) {
        stream.read_delimiter(Until::crlf());
    }
}

impl Read<Array<4>> for Protocol {
    fn on_read(&mut self, stream: &mut Stream<Self, Array<4>>, _header: &[u8; 4]) {
        stream.read_delimiter(Until::crlf());
    }
}

fn main() {
    let builder = Stream::new(Protocol).read_delimiter(Array::<4>).read_delimiter(Until::lf()).buffer_size(1024);
    assert_eq!(builder.handler() as *const Protocol, builder.handler() as *const Protocol);

    let mut framer = Framer::new(Until::lf());
    framer.push(b"one\ntwo\n");
    let first = framer.next_frame().unwrap().unwrap().to_vec();
    let second = framer.next_frame().unwrap().unwrap();
    assert_eq!((first.as_slice(), second), (&b"one"[..], &b"two"[..]));

    let mut framer = Framer::new(Array::<1>);
    framer.push(b"x");
    assert_eq!(framer.next_frame().unwrap(), Some(b"x"));
}
