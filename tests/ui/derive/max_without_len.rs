use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(max = 16)]
    data: &'a [u8],
}

fn main() {}
