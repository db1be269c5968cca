use pants::NetStruct;

#[derive(NetStruct)]
struct Msg;

fn main() {}
