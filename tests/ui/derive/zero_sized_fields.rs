// A struct whose every field is zero-sized has no bytes on the wire: like
// an empty struct, it is refused (its framer could never make progress).
use pants::netstruct::Pad;
use pants::NetStruct;

#[derive(NetStruct)]
struct Nothing {
    gap: Pad<0>,
    none: [u8; 0],
}

#[derive(NetStruct)]
struct Inner<'a> {
    #[netstruct(len = u8)]
    name: &'a str,
}

// A struct of non-zero-sized parts is fine, borrowed or not.
#[derive(NetStruct)]
struct Fine<'a> {
    inner: Inner<'a>,
    gap: Pad<0>,
}

fn main() {
    let _ = Fine::MIN_SIZE;
}
