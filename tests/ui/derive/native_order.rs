// netstruct `@`/`=` (native layouts): `native` alone is ambiguous, and the
// error says to write `native_endian` (netstruct `=`), with `Pad<N>` fields
// for `@`'s alignment.
use pants::NetStruct;

#[derive(NetStruct)]
#[netstruct(native)]
struct Msg {
    id: u32,
}

fn main() {}
