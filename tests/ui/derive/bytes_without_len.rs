// netstruct `!$`: a byte string needs a length before it.
use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    data: &'a [u8],
}

fn main() {}
