use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = i32, max = -1)]
    data: &'a [u8],
}

fn main() {}
