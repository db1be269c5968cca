use pants::NetStruct;

#[derive(NetStruct)]
#[netstruct(packed)]
struct Msg {
    id: u32,
}

fn main() {}
