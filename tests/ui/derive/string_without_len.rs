use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    id: u8,
    name: String,
}

fn main() {}
