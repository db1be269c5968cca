//! `NetStruct::decode` called directly on the input.
//!
//! When a struct decodes, it must re-encode to exactly the bytes it consumed
//! (padding written as zeros), decode again to the same value, and report
//! `encoded_len` right. Every shorter prefix of those bytes must be
//! `Incomplete(Exactly(n))` with `n >= 1` and `prefix + n <= consumed`: the
//! framer trusts that count and would otherwise wait for bytes that never come.
//!
//! When the input is refused for a `max` ([`FrameError::FieldTooLong`]),
//! following the `Exactly` counts from an empty buffer (what a framer fed one
//! byte at a time does) must reach that same error without asking for a byte
//! past the input: the limit is checked once the prefix is in, never after
//! bytes of the body were needed.
#![no_main]

use core::fmt::Debug;
use core::ops::Range;

use libfuzzer_sys::fuzz_target;
use pants::{Decoded, FrameError, Needed, NetStruct};
use pants_fuzz::byte;
use pants_fuzz::types::{Body, Inner, Limited, LimitedInner, Message, Plain};

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some(selector) = byte(&mut data) else { return };
    match selector % 6 {
        0 => check::<Message>(data, Some(4..6)),
        1 => check::<Inner>(data, None),
        2 => check::<Body>(data, None),
        3 => check::<Limited>(data, None),
        4 => check::<LimitedInner>(data, None),
        _ => check::<Plain>(data, Some(9..10)),
    }
});

/// `padding`: where the struct's `Pad` bytes are (at a fixed offset).
fn check<T>(input: &[u8], padding: Option<Range<usize>>)
where
    T: NetStruct,
    for<'a> T::Frame<'a>: NetStruct + Debug,
{
    let (shown, consumed) = match T::decode(input) {
        Ok(Decoded::Frame { frame, consumed }) => {
            assert!(consumed >= T::MIN_SIZE && consumed <= input.len(), "consumed {consumed} of {}", input.len());
            assert_eq!(frame.encoded_len(), consumed, "encoded_len");
            let encoded = frame.to_bytes().expect("a decoded struct re-encodes");
            let mut expected = input[..consumed].to_vec();
            if let Some(pad) = padding {
                expected[pad].fill(0);
            }
            assert_eq!(encoded, expected, "re-encoding differs from the bytes consumed");
            let shown = format!("{frame:?}");
            match T::decode(&encoded) {
                Ok(Decoded::Frame { frame: again, consumed: n }) => {
                    assert_eq!(n, encoded.len());
                    assert_eq!(format!("{again:?}"), shown, "decode(encode(x)) != x");
                }
                other => panic!("re-encoded bytes do not decode: {other:?}"),
            }
            (shown, consumed)
        }
        Ok(Decoded::Incomplete(Needed::Exactly(n))) => {
            assert!(n >= 1, "needs exactly 0 more bytes");
            return;
        }
        Ok(Decoded::Incomplete(Needed::Unknown)) => panic!("a NetStruct always knows how many bytes it needs"),
        Err(error @ FrameError::FieldTooLong { .. }) => {
            let mut have = 0;
            loop {
                match T::decode(&input[..have]) {
                    Ok(Decoded::Incomplete(Needed::Exactly(n))) => {
                        assert!(n >= 1);
                        have += n;
                        assert!(
                            have <= input.len(),
                            "{error:?} comes at most at byte {}, but asked for {have}",
                            input.len()
                        );
                    }
                    Err(again) => {
                        assert_eq!(again, error, "a different error at byte {have}");
                        // At the byte that completes the prefix, not later.
                        let before = T::decode(&input[..have - 1]);
                        assert!(matches!(before, Ok(Decoded::Incomplete(_))), "{error:?} already at byte {}", have - 1);
                        return;
                    }
                    other => panic!("{other:?} at byte {have} of an input that is {error:?}"),
                }
            }
        }
        Err(_) => return,
    };

    // Decoding must not depend on bytes after the struct.
    match T::decode(&input[..consumed]) {
        Ok(Decoded::Frame { frame, consumed: n }) => {
            assert_eq!((n, format!("{frame:?}")), (consumed, shown.clone()), "trailing bytes changed the result")
        }
        other => panic!("the struct's own bytes do not decode: {other:?}"),
    }

    // Every prefix is incomplete, and never asks for more than the rest.
    let prefixes: Vec<usize> = if consumed <= 300 {
        (0..consumed).collect()
    } else {
        (0..300).chain((300..consumed).step_by(consumed / 64 + 1)).chain(consumed - 8..consumed).collect()
    };
    for p in prefixes {
        match T::decode(&input[..p]) {
            Ok(Decoded::Incomplete(Needed::Exactly(n))) => {
                assert!(n >= 1 && p + n <= consumed, "prefix {p} of a {consumed}-byte struct asks for {n} more bytes")
            }
            other => panic!("prefix {p} of a {consumed}-byte struct: {other:?}"),
        }
    }
}
