use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u8, len = u16)]
    data: &'a [u8],
}

fn main() {}
