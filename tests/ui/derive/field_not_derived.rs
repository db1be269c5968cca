use pants::NetStruct;

struct Header {
    kind: u8,
}

#[derive(NetStruct)]
struct Msg {
    header: Header,
}

fn main() {}
