use pants::NetStruct;

#[derive(NetStruct)]
enum Msg {
    Ping,
    Pong(u8),
}

fn main() {}
