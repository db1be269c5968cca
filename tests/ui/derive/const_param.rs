use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<const N: usize> {
    values: [u8; N],
}

fn main() {}
