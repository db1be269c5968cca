use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(length = u8)]
    data: &'a [u8],
}

fn main() {}
