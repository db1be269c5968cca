use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    #[netstruct(len = u16)]
    count: u32,
}

fn main() {}
