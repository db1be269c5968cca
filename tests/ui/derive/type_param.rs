use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<T> {
    value: T,
}

fn main() {}
