use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    #[netstruct(len = u8)]
    data: &'static [u8],
}

fn main() {}
