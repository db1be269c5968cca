//! `#[netstruct(len = L, max = N)]`: a per-field length limit. A prefix over
//! `max` is `FrameError::FieldTooLong` as soon as the prefix is buffered (the
//! body is never needed, even when fixed fields follow it), the same error at
//! the same byte however the input is split; a value of exactly `max` bytes
//! decodes; encoding refuses what decoding would refuse; nested structs keep
//! their own limits.

use pants::delimiter::Packed;
use pants::{Decoded, Delimiter, FrameError, Framer, Needed, NetStruct, Pack, PackError};
use proptest::prelude::*;

/// A limited byte string with fixed fields on both sides: `!HI$I`.
#[derive(NetStruct, Debug, PartialEq)]
struct Limited<'a> {
    id: u16,
    #[netstruct(len = u32, max = 8)]
    body: &'a [u8],
    tail: u32,
}

const NAME_MAX: usize = 4;

/// Two limits (one a constant), an unlimited string before them, owned types
/// and a signed prefix: `!B$H$?h$B`.
#[derive(NetStruct, Debug, PartialEq)]
struct Two<'a> {
    #[netstruct(len = u8)]
    free: &'a str,
    #[netstruct(len = u16, max = NAME_MAX)]
    name: String,
    flag: bool,
    #[netstruct(len = i16, max = 3)]
    data: Vec<u8>,
    end: u8,
}

/// Nested in [`Outer`], with its own limit.
#[derive(NetStruct, Debug, PartialEq)]
#[netstruct(little_endian)]
struct Inner<'a> {
    tag: u8,
    #[netstruct(len = u8, max = 2)]
    name: &'a str,
    on: bool,
}

/// A nested limited struct, then a limit of its own.
#[derive(NetStruct, Debug, PartialEq)]
struct Outer<'a> {
    head: u8,
    inner: Inner<'a>,
    #[netstruct(len = u16, max = 5)]
    data: &'a [u8],
    tail: u16,
}

/// The same layout as `Limited`, without the limit.
#[derive(NetStruct, Debug, PartialEq)]
struct Unlimited<'a> {
    id: u16,
    #[netstruct(len = u32)]
    body: &'a [u8],
    tail: u32,
}

/// A prefix type behind an alias: the `max` is checked by a `const` assertion.
type Len = u16;

#[derive(NetStruct, Debug, PartialEq)]
struct Aliased<'a> {
    #[netstruct(len = Len, max = 2 * NAME_MAX)]
    text: &'a str,
}

fn too_long(field: &'static str, len: u64, max: u64) -> FrameError {
    FrameError::FieldTooLong { field, len, max }
}

/// `Limited` bytes: id 7, a prefix announcing `len`, then `body` and the tail
/// (whatever the prefix says).
fn limited_bytes(len: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 7];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&[0, 0, 0, 9]);
    bytes
}

/// Pushes `bytes` one at a time; returns where `next_frame` first returned
/// something other than `Ok(None)` (the number of bytes pushed) and what.
fn byte_by_byte<T: NetStruct>(bytes: &[u8]) -> (usize, Result<String, FrameError>)
where
    for<'a> T::Frame<'a>: std::fmt::Debug,
{
    let mut framer = Framer::new(Packed::<T>::new());
    for (i, &byte) in bytes.iter().enumerate() {
        framer.push(&[byte]);
        match framer.next_frame() {
            Ok(None) => {}
            Ok(Some(frame)) => return (i + 1, Ok(format!("{frame:?}"))),
            Err(error) => return (i + 1, Err(error)),
        }
    }
    panic!("{} bytes pushed and nothing came out", bytes.len());
}

#[test]
fn a_prefix_over_max_is_an_error_once_only_the_prefix_is_buffered() {
    // Only id and prefix: the body and the tail are never pushed.
    let header = &limited_bytes(9, b"")[..6];
    let mut framer = Framer::new(Packed::<Limited>::new());
    framer.push(header);
    let error = too_long("body", 9, 8);
    assert_eq!(framer.next_frame().map(|f| f.is_some()), Err(error.clone()));
    // Sticky and consuming nothing, like every decode error.
    for _ in 0..3 {
        assert_eq!(framer.next_frame().map(|f| f.is_some()), Err(error.clone()));
        assert_eq!(framer.buffered(), header);
    }
    assert_eq!(Limited::decode(header), Err(error.clone()));
    assert_eq!(error.to_string(), "field `body` announces 9 bytes, more than its limit of 8");
    // A 4 GiB announcement too, whatever the buffer limit.
    assert_eq!(Limited::decode(&limited_bytes(u32::MAX, b"")[..6]), Err(too_long("body", u32::MAX as u64, 8)));
    // Without `max`, the same bytes wait for the body.
    assert_eq!(Unlimited::decode(header), Ok(Decoded::Incomplete(Needed::Exactly(13))));
}

#[test]
fn a_value_of_exactly_max_bytes_decodes_and_one_more_fails() {
    let bytes = limited_bytes(8, b"12345678");
    let mut framer = Framer::new(Packed::<Limited>::new());
    framer.push(&bytes);
    assert_eq!(framer.next_frame(), Ok(Some(Limited { id: 7, body: b"12345678", tail: 9 })));
    assert!(framer.is_empty());

    let bytes = limited_bytes(9, b"123456789");
    let mut framer = Framer::new(Packed::<Limited>::new());
    framer.push(&bytes);
    assert_eq!(framer.next_frame(), Err(too_long("body", 9, 8)));
    assert_eq!(framer.len(), bytes.len());

    // `max = 0` allows only the empty value; a constant works like a literal.
    let mut two = vec![0, 0, 4];
    two.extend_from_slice(b"abcd\x00\x00\x03xyz\x01");
    assert_eq!(
        Two::decode(&two),
        Ok(Decoded::Frame {
            frame: Two { free: "", name: "abcd".into(), flag: false, data: b"xyz".to_vec(), end: 1 },
            consumed: two.len()
        })
    );
    assert_eq!(Two::decode(b"\x00\x00\x05"), Err(too_long("name", 5, NAME_MAX as u64)));
    // An expression, and a prefix type behind an alias.
    assert_eq!(Aliased::decode(b"\x00\x09"), Err(too_long("text", 9, 8)));
    assert_eq!(Aliased { text: "12345678" }.to_bytes().map(|b| b.len()), Ok(10));
}

#[test]
fn split_input_gives_the_same_error_at_the_same_byte() {
    // Limited: the error comes with byte 6, the prefix's last.
    let bytes = limited_bytes(9, b"123456789");
    assert_eq!(byte_by_byte::<Limited>(&bytes), (6, Err(too_long("body", 9, 8))));
    // Every split: the same error once the first 6 bytes are in, never later.
    for cut in 0..=bytes.len() {
        let mut framer = Framer::new(Packed::<Limited>::new());
        framer.push(&bytes[..cut]);
        let first = framer.next_frame().map(|f| f.is_some());
        framer.push(&bytes[cut..cut.max(6)]);
        assert_eq!(framer.next_frame().map(|f| f.is_some()), Err(too_long("body", 9, 8)), "cut at {cut}");
        if cut < 6 {
            assert_eq!(first, Ok(false), "cut at {cut}");
        }
    }

    // Two: the second limit, after an unlimited string, a limited one and a
    // bool: at its prefix's last byte (1 + 2, 2 + 1, 1, then 2: byte 9).
    let mut two = vec![2, b'h', b'i', 0, 1, b'n', 1];
    two.extend_from_slice(&4i16.to_be_bytes());
    two.extend_from_slice(b"wxyz\x05");
    assert_eq!(byte_by_byte::<Two>(&two), (9, Err(too_long("data", 4, 3))));
    // The first limit, right after the unlimited string.
    assert_eq!(byte_by_byte::<Two>(b"\x02hi\x00\x05abcde"), (5, Err(too_long("name", 5, 4))));

    // Nested: the inner limit at byte 3 (head, tag, prefix)...
    assert_eq!(byte_by_byte::<Outer>(b"\x01\x02\x03abc\x01"), (3, Err(too_long("name", 3, 2))));
    // ...and the outer one after it: head, 5 bytes of Inner, the prefix: byte 8.
    assert_eq!(byte_by_byte::<Outer>(b"\x01\x02\x02ab\x01\x00\x06abcdef\x00\x00"), (8, Err(too_long("data", 6, 5))));
    // A valid Outer comes out with its last byte.
    let outer = b"\x01\x02\x02ab\x01\x00\x05abcde\x00\x09";
    assert_eq!(
        byte_by_byte::<Outer>(outer),
        (
            outer.len(),
            Ok(format!(
                "{:?}",
                Outer { head: 1, inner: Inner { tag: 2, name: "ab", on: true }, data: b"abcde", tail: 9 }
            ))
        )
    );
    // The nested struct alone keeps its limit.
    assert_eq!(Inner::decode(b"\x02\x03"), Err(too_long("name", 3, 2)));
}

/// Counts the decodes of a `Packed<T>`.
struct Counting<T>(Packed<T>, usize);

impl<T: NetStruct> Delimiter for Counting<T> {
    type Output<'a> = T::Frame<'a>;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<T::Frame<'a>>, FrameError> {
        self.1 += 1;
        self.0.decode(buf)
    }
}

#[test]
fn the_framer_decodes_at_each_check_point_and_no_more() {
    // decode(&[]) asks for the bytes up to the end of the limited prefix,
    // not for the whole fixed part (10 bytes): the next step of decoding.
    assert_eq!(Limited::decode(&[]), Ok(Decoded::Incomplete(Needed::Exactly(6))));
    assert_eq!(Limited::decode(&[0, 7, 0, 0, 0, 3]), Ok(Decoded::Incomplete(Needed::Exactly(7))));
    assert_eq!(Unlimited::decode(&[]), Ok(Decoded::Incomplete(Needed::Exactly(10))));

    // One byte at a time, a 13-byte frame is decoded three times: on the
    // first byte, when the prefix is in, and when the frame is.
    let bytes = limited_bytes(3, b"abc");
    let mut framer = Framer::new(Counting(Packed::<Limited>::new(), 0));
    for (i, byte) in bytes.iter().enumerate() {
        framer.push(&[*byte]);
        let got = framer.next_frame().unwrap().is_some();
        assert_eq!(got, i + 1 == bytes.len());
    }
    assert_eq!(framer.delimiter().1, 3);
}

#[test]
fn encoding_refuses_what_decoding_would_refuse() {
    let at_max = Limited { id: 1, body: b"12345678", tail: 2 };
    let bytes = at_max.to_bytes().unwrap();
    assert_eq!(Limited::decode(&bytes), Ok(Decoded::Frame { frame: at_max, consumed: bytes.len() }));

    let over = Limited { id: 1, body: b"123456789", tail: 2 };
    assert_eq!(over.to_bytes(), Err(PackError::TooLong { field: "body", len: 9, max: 8 }));
    let mut out = b"kept".to_vec();
    assert_eq!(over.encode(&mut out), Err(PackError::TooLong { field: "body", len: 9, max: 8 }));
    assert_eq!(out, b"kept", "a refused encoding appends nothing");
    assert_eq!(Pack::pack(&over, &mut out), Err(PackError::TooLong { field: "body", len: 9, max: 8 }));
    assert_eq!(out, b"kept");

    let two = Two { free: "", name: "abcde".into(), flag: true, data: vec![], end: 0 };
    assert_eq!(two.to_bytes(), Err(PackError::TooLong { field: "name", len: 5, max: 4 }));
    let two = Two { free: "", name: "abcd".into(), flag: true, data: vec![0; 4], end: 0 };
    assert_eq!(two.to_bytes(), Err(PackError::TooLong { field: "data", len: 4, max: 3 }));

    // Nested: the inner struct's own limit.
    let outer = Outer { head: 0, inner: Inner { tag: 0, name: "abc", on: false }, data: b"", tail: 0 };
    assert_eq!(outer.to_bytes(), Err(PackError::TooLong { field: "name", len: 3, max: 2 }));
}

#[test]
fn negative_lengths_are_reported_before_the_limit() {
    // `data` has an i16 prefix and max 3: -1 is a negative length, as without max.
    let mut two = b"\x00\x00\x00\x00".to_vec();
    two.extend_from_slice(&(-1i16).to_be_bytes());
    assert_eq!(Two::decode(&two), Err(FrameError::NegativeLength { field: "data", length: -1 }));
    let mut two = b"\x00\x00\x00\x00".to_vec();
    two.extend_from_slice(&i16::MIN.to_be_bytes());
    assert_eq!(Two::decode(&two), Err(FrameError::NegativeLength { field: "data", length: i16::MIN as i64 }));
    let mut two = b"\x00\x00\x00\x00".to_vec();
    two.extend_from_slice(&i16::MAX.to_be_bytes());
    assert_eq!(Two::decode(&two), Err(too_long("data", i16::MAX as u64, 3)));
}

#[test]
fn stream_errors_name_the_field() {
    // What a stream's `on_error` receives.
    let error = pants::StreamError::Frame(too_long("value", 1_048_577, 1_048_576));
    assert_eq!(error.to_string(), "field `value` announces 1048577 bytes, more than its limit of 1048576");
    let error = PackError::TooLong { field: "value", len: 1_048_577, max: 1_048_576 };
    assert_eq!(error.to_string(), "field `value` is 1048577 bytes long, but its length prefix allows at most 1048576");
}

proptest! {
    /// Any length, any split: a length over max is refused once the 6 header
    /// bytes are in (nothing after them is ever pushed); one within max
    /// decodes once the whole frame is in, and not before.
    #[test]
    fn any_length_any_split(len in 0u32..20, cuts in prop::collection::vec(0usize..32, 0..6)) {
        let body: Vec<u8> = (0..len.min(8) as u8).collect();
        let bytes = limited_bytes(len, &body);
        let input = if len > 8 { &bytes[..6] } else { &bytes[..] };
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut framer = Framer::new(Packed::<Limited>::new());
        let mut pushed = 0;
        let mut outcome = None;
        for cut in cuts {
            framer.push(&input[pushed..cut]);
            pushed = cut;
            match framer.next_frame() {
                Ok(None) => {}
                Ok(Some(frame)) => { outcome = Some(Ok(frame.body.len())); break; }
                Err(error) => { outcome = Some(Err(error)); break; }
            }
        }
        prop_assert_eq!(pushed, input.len(), "an outcome before the input was all in");
        if len > 8 {
            prop_assert_eq!(outcome, Some(Err(too_long("body", len as u64, 8))));
        } else {
            prop_assert_eq!(outcome, Some(Ok(len as usize)));
        }
    }
}
