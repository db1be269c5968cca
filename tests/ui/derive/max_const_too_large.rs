use pants::NetStruct;

/// One more than a u16 prefix can hold.
const LIMIT: usize = 65_536;

#[derive(NetStruct)]
struct Msg<'a> {
    #[netstruct(len = u16, max = LIMIT)]
    data: &'a str,
}

fn main() {}
