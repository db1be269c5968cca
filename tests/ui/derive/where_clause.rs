use pants::NetStruct;

#[derive(NetStruct)]
struct Msg<'a>
where
    'a: 'static,
{
    #[netstruct(len = u8)]
    data: &'a [u8],
}

fn main() {}
