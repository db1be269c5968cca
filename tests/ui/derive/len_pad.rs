// netstruct `x$`: padding cannot be a length.
use pants::{netstruct::Pad, NetStruct};

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = Pad<1>)]
    data: &'a [u8],
}

fn main() {}
