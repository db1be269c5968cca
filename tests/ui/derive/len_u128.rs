use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u128)]
    data: &'a [u8],
}

fn main() {}
