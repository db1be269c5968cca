use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a, 'b> {
    #[netstruct(len = u8)]
    a: &'a [u8],
    #[netstruct(len = u8)]
    b: &'b [u8],
}

fn main() {}
