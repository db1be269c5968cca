use pants::NetStruct;

#[derive(NetStruct)]
union Msg {
    a: u32,
    b: f32,
}

fn main() {}
