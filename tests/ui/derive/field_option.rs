use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    id: u8,
    maybe: Option<u8>,
}

fn main() {}
