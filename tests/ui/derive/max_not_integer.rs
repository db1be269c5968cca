use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u32, max = "1 MiB")]
    data: &'a [u8],
}

fn main() {}
