use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u8)]
    name: &'a str,
    #[netstruct(len = u8)]
    data: &'static [u8],
}

fn main() {}
