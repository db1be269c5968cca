// A frame borrows the framer's buffer: it cannot be used after the next
// `next_frame` call (which may overwrite or move the bytes).
use pants::delimiter::Until;
use pants::Framer;

fn main() {
    let mut framer = Framer::new(Until::lf());
    framer.push(b"one\ntwo\n");
    let first = framer.next_frame().unwrap().unwrap();
    let second = framer.next_frame().unwrap().unwrap();
    assert_ne!(first, second);
}
