use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    id: u8,
    values: Vec<u32>,
}

fn main() {}
