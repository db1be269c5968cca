use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u32, max = 16)]
    #[netstruct(max = 32)]
    data: &'a [u8],
}

fn main() {}
