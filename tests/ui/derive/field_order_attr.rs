use pants::NetStruct;

#[derive(NetStruct)]
struct Msg {
    #[netstruct(little_endian)]
    id: u32,
}

fn main() {}
