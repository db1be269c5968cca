// netstruct `@`/`=` (native order) has no counterpart.
use pants::NetStruct;

#[derive(NetStruct)]
#[netstruct(native)]
struct Msg {
    id: u32,
}

fn main() {}
