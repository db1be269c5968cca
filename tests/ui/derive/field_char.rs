use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    letter: char,
}

fn main() {}
