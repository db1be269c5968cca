// netstruct `0B$`: a zero count leaves no integer for the length.
use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = [u8; 0])]
    data: &'a [u8],
}

fn main() {}
