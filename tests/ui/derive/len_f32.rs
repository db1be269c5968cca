use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = f32)]
    data: &'a [u8],
}

fn main() {}
