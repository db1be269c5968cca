//! `Fixed<T>` for zerocopy structs: a mixed-endian header, a one-byte struct,
//! and a 5000-byte struct (bigger than most buffer sizes: `min_buffer`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Fixed;
use pants_fuzz::{byte, Plan};
use zerocopy::{big_endian, little_endian, FromBytes, Immutable, KnownLayout, Unaligned};

#[derive(FromBytes, KnownLayout, Immutable, Unaligned, Debug)]
#[repr(C)]
struct Header {
    kind: u8,
    len: big_endian::U16,
    flags: [u8; 3],
    seq: little_endian::U32,
    stamp: big_endian::U64,
    delta: little_endian::I16,
}

#[derive(FromBytes, KnownLayout, Immutable, Unaligned, Debug)]
#[repr(C)]
struct Tiny {
    b: u8,
}

#[derive(FromBytes, KnownLayout, Immutable, Unaligned, Debug)]
#[repr(C)]
struct Big {
    head: [u8; 16],
    body: [u8; 4984],
}

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    match selector % 3 {
        0 => plan.run(data, Fixed::<Header>::new, Fixed::<Header>::new),
        1 => plan.run(data, Fixed::<Tiny>::new, Fixed::<Tiny>::new),
        _ => plan.run(data, Fixed::<Big>::new, Fixed::<Big>::new),
    }
});
