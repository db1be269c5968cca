// `Array<0>` would cut empty frames forever: using it in a framer fails to
// compile (a const assertion, checked when the framer is instantiated).
use pants::delimiter::Array;
use pants::Framer;

fn main() {
    let mut framer = Framer::new(Array::<0>);
    framer.push(b"x");
    let _ = framer.next_frame();
}
