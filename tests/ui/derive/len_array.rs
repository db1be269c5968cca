// netstruct `3s$`: a fixed string cannot be a length.
use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = [u8; 3])]
    data: &'a [u8],
}

fn main() {}
