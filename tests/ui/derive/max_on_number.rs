use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    #[netstruct(max = 16)]
    count: u32,
}

fn main() {}
