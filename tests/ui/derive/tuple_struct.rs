use pants::NetStruct;

#[derive(NetStruct)]
struct Msg(u8, u16);

fn main() {}
