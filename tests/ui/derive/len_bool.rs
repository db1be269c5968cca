// netstruct `?$`: a bool cannot be a length.
use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = bool)]
    data: &'a [u8],
}

fn main() {}
