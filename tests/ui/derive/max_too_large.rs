use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u8, max = 256)]
    data: &'a [u8],
}

fn main() {}
