use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    flags: [bool; 4],
}

fn main() {}
