//! `Binrw<T>` for binrw types: a length-prefixed packet with a magic number,
//! a little-endian record with a bounded `u32` length, a magic-dispatched
//! enum, and a struct with trailing padding.
//!
//! Besides the framer checks, when the stream starts with a whole frame,
//! every shorter prefix must decode as incomplete (never as malformed): the
//! framer would otherwise reject a frame that is merely split across reads.
#![no_main]
// The frames' fields are only read through `Debug`, which dead-code analysis ignores.
#![allow(dead_code)]

use core::fmt::Debug;

use binrw::{BinRead, Endian, NullString};
use libfuzzer_sys::fuzz_target;
use pants::delimiter::Binrw;
use pants::{Decoded, Delimiter};
use pants_fuzz::{byte, Plan};

/// A length-prefixed packet, byte order declared.
#[derive(BinRead, Debug)]
#[br(big, magic = b"PK")]
struct Packet {
    kind: u8,
    len: u16,
    #[br(count = len)]
    body: Vec<u8>,
    crc: u32,
}

/// A record in the delimiter's byte order, with a bounded `u32` length (an
/// unbounded one lets binrw reserve up to 4 GiB per attempt: see the
/// `Binrw` docs).
#[derive(BinRead, Debug)]
struct Record {
    tag: u8,
    #[br(assert(len <= 1 << 16, "record too long"))]
    len: u32,
    #[br(count = len)]
    data: Vec<u8>,
    #[br(count = 2)]
    pair: Vec<u16>,
}

/// Variants picked by a magic byte.
#[derive(BinRead, Debug)]
enum Command {
    #[br(magic = 1u8)]
    Ping { id: u16 },
    #[br(magic = 2u8)]
    Data {
        len: u8,
        #[br(count = len)]
        bytes: Vec<u8>,
    },
    #[br(magic = 3u8)]
    Name { name: NullString },
}

/// Padding after the last field.
#[derive(BinRead, Debug)]
struct Trailer {
    a: u8,
    #[br(pad_after = 3)]
    b: u16,
}

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    let endian = if selector & 0x80 == 0 { Endian::Big } else { Endian::Little };
    match selector & 3 {
        0 => go::<Packet>(plan, data, endian),
        1 => go::<Record>(plan, data, endian),
        2 => go::<Command>(plan, data, endian),
        _ => go::<Trailer>(plan, data, endian),
    }
});

fn go<T>(plan: Plan, stream: &[u8], endian: Endian)
where
    T: BinRead + Debug,
    for<'b> T::Args<'b>: Default,
{
    let make = || Binrw::<T>::with_endian(endian);
    if let Ok(Decoded::Frame { consumed, .. }) = make().decode(stream) {
        assert!(consumed <= stream.len(), "consumed {consumed} of {} bytes", stream.len());
        for p in 0..consumed.min(512) {
            match make().decode(&stream[..p]) {
                Ok(Decoded::Incomplete(_)) => {}
                other => panic!("prefix {p} of a {consumed}-byte frame: {other:?}"),
            }
        }
    }
    plan.run(stream, make, make);
}
