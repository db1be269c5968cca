// netstruct `@n` (native ssize_t) is out of scope: sizes depend on the machine.
use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    size: usize,
}

fn main() {}
