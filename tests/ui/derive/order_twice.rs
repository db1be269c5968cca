use pants::NetStruct;

#[derive(NetStruct)]
#[netstruct(little_endian)]
#[netstruct(big_endian)]
struct Msg {
    id: u32,
}

fn main() {}
