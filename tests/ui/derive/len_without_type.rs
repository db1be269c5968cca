use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len)]
    data: &'a [u8],
}

fn main() {}
