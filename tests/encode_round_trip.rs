//! The typed write side, checked with proptest: for every built-in encoder,
//! what it writes is cut back out by the same delimiter as the same values,
//! however the bytes are split; what it refuses is refused with a typed
//! error and writes nothing.

use binrw::{BinRead, BinWrite};
use pants::delimiter::{Array, Binrw, Count, Fixed, Packed, Raw, Until};
use pants::{Delimiter, Encode, Framer, NetStruct, PackError};
use proptest::prelude::*;
use zerocopy::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Feeds `wire` to a framer over `delimiter` in chunks of the given sizes
/// (cycled), collecting every frame through `own`.
fn decode_split<D: Delimiter, T>(
    delimiter: D,
    wire: &[u8],
    chunks: &[usize],
    mut own: impl FnMut(D::Output<'_>) -> T,
) -> Vec<T> {
    let mut framer = Framer::new(delimiter).with_buffer_size(1 << 20);
    let mut frames = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        framer.push(&rest[..n]);
        rest = &rest[n..];
        while let Some(frame) = framer.next_frame().unwrap() {
            frames.push(own(frame));
        }
    }
    framer.finish().unwrap();
    frames
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..8)
}

#[derive(NetStruct, Debug, Clone, PartialEq)]
struct Note<'a> {
    id: u32,
    #[netstruct(len = u16)]
    text: &'a str,
    #[netstruct(len = u8)]
    tags: &'a [u8],
}

#[derive(NetStruct, Debug, Clone, PartialEq)]
#[netstruct(little_endian)]
struct LittleNote {
    id: u32,
    #[netstruct(len = u16)]
    body: Vec<u8>,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, PartialEq)]
#[repr(C)]
struct Header {
    kind: u8,
    len: U16,
    value: U32,
}

#[derive(BinRead, BinWrite, Debug, Clone, PartialEq)]
#[brw(big, magic = b"BW")]
struct Msg {
    tag: u8,
    len: u16,
    #[br(count = len)]
    body: Vec<u8>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Every line `Until` accepts comes back as itself; a refused one is
    /// `TerminatorInFrame` and writes nothing.
    #[test]
    fn until_lines_round_trip(
        terminator in prop::collection::vec(prop::sample::select(b"ab\r\n".to_vec()), 1..5),
        lines in prop::collection::vec(prop::collection::vec(prop::sample::select(b"ab\r\nx".to_vec()), 0..12), 1..12),
        chunks in chunk_sizes(),
    ) {
        let until = Until::new(&terminator).unwrap();
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for line in &lines {
            let before = wire.len();
            match until.encode(line, &mut wire) {
                Ok(()) => sent.push(line.clone()),
                Err(PackError::TerminatorInFrame { at }) => {
                    prop_assert_eq!(wire.len(), before, "a refused line wrote nothing");
                    prop_assert!(at < line.len());
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
        let frames = decode_split(until, &wire, &chunks, <[u8]>::to_vec);
        prop_assert_eq!(frames, sent);
    }

    /// Count and Array write exactly their length, and refuse any other.
    #[test]
    fn counted_bodies_round_trip(
        n in 1usize..40,
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 1..10),
        chunks in chunk_sizes(),
    ) {
        let count = Count::new(n).unwrap();
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for body in &bodies {
            match count.encode(body, &mut wire) {
                Ok(()) => sent.push(body.clone()),
                Err(error) => prop_assert_eq!(error, PackError::WrongLength { expected: n, len: body.len() }),
            }
        }
        prop_assert_eq!(wire.len(), sent.len() * n);
        prop_assert_eq!(decode_split(count, &wire, &chunks, <[u8]>::to_vec), sent);

        let mut wire = Vec::new();
        for body in &bodies {
            let array: [u8; 4] = std::array::from_fn(|i| body.get(i).copied().unwrap_or(0));
            Array::<4>.encode(array, &mut wire).unwrap();
        }
        prop_assert_eq!(decode_split(Array::<4>, &wire, &chunks, |frame| *frame).len(), bodies.len());
    }

    /// Packed writes NetStructs of any lifetime, in their own byte order;
    /// eq_frame compares each decoded frame with the value sent.
    #[test]
    fn packed_structs_round_trip(
        notes in prop::collection::vec((any::<u32>(), "[a-zé]{0,20}", prop::collection::vec(any::<u8>(), 0..10)), 1..10),
        chunks in chunk_sizes(),
    ) {
        let mut wire = Vec::new();
        for (id, text, tags) in &notes {
            // Borrowing locals: Packed<Note<'_>> encodes a Note of any lifetime.
            Packed::<Note>::new().encode(&Note { id: *id, text, tags }, &mut wire).unwrap();
        }
        let mut sent = notes.iter();
        let frames = decode_split(Packed::<Note>::new(), &wire, &chunks, |frame| {
            let (id, text, tags) = sent.next().unwrap();
            Note { id: *id, text, tags }.eq_frame(&frame)
        });
        prop_assert!(frames.iter().all(|same| *same));
        prop_assert_eq!(frames.len(), notes.len());

        let mut wire = Vec::new();
        let values: Vec<LittleNote> = notes.iter().map(|(id, _, tags)| LittleNote { id: *id, body: tags.clone() }).collect();
        for value in &values {
            Packed::<LittleNote>::new().encode(value, &mut wire).unwrap();
        }
        prop_assert_eq!(&wire[..4], &values[0].id.to_le_bytes());
        prop_assert_eq!(decode_split(Packed::<LittleNote>::new(), &wire, &chunks, |frame| frame), values);
    }

    /// Fixed and Binrw write what they read.
    #[test]
    fn fixed_and_binrw_round_trip(
        headers in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u32>()), 1..10),
        chunks in chunk_sizes(),
    ) {
        let headers: Vec<Header> =
            headers.iter().map(|&(kind, len, value)| Header { kind, len: U16::new(len), value: U32::new(value) }).collect();
        let mut wire = Vec::new();
        for header in &headers {
            Fixed::<Header>::new().encode(header, &mut wire).unwrap();
        }
        prop_assert_eq!(decode_split(Fixed::<Header>::new(), &wire, &chunks, Header::clone), headers.clone());

        let msgs: Vec<Msg> = headers.iter().map(|h| Msg { tag: h.kind, len: 4, body: h.value.get().to_be_bytes().to_vec() }).collect();
        let mut wire = Vec::new();
        for msg in &msgs {
            Binrw::<Msg>::new().encode(msg, &mut wire).unwrap();
        }
        prop_assert_eq!(decode_split(Binrw::<Msg>::new(), &wire, &chunks, |frame| frame), msgs);
    }
}

#[test]
fn raw_writes_bytes_as_they_are() {
    assert_eq!(Raw.to_bytes(b"any\r\nbytes").unwrap(), b"any\r\nbytes");
}

#[test]
fn eq_frame_tells_different_values_apart() {
    let wire = Note { id: 1, text: "a", tags: b"" }.to_bytes().unwrap();
    let mut framer = Framer::new(Packed::<Note>::new());
    framer.push(&wire);
    let frame = framer.next_frame().unwrap().unwrap();
    assert!(Note { id: 1, text: "a", tags: b"" }.eq_frame(&frame));
    assert!(!Note { id: 2, text: "a", tags: b"" }.eq_frame(&frame));
    assert!(!Note { id: 1, text: "b", tags: b"" }.eq_frame(&frame));
}
