//! `Until`'s encoder: every frame it accepts is cut back out as itself, and
//! it refuses exactly the frames in which the peer would find the
//! terminator early, at the place a naive search finds it.
//!
//! Input: selector byte, terminator bytes (1..=8), then frames separated by
//! `0xff`. Selector bits 0-2: the terminator length - 1; bit 7 maps the
//! frames onto the terminator's bytes plus `x`, so that partial and
//! overlapping terminators are common.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Until;
use pants::{Encode, Framer, PackError};
use pants_fuzz::{byte, take};

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some(selector) = byte(&mut data) else { return };
    let Some(terminator) = take(&mut data, 1 + usize::from(selector & 7)) else { return };
    let terminator = terminator.to_vec();
    let until = Until::new(&terminator).unwrap();
    let mut alphabet = terminator.clone();
    alphabet.push(b'x');
    let mut wire = Vec::new();
    let mut accepted = Vec::new();
    for frame in data.split(|&b| b == 0xff) {
        let frame: Vec<u8> = if selector & 0x80 != 0 {
            frame.iter().map(|&b| alphabet[usize::from(b) % alphabet.len()]).collect()
        } else {
            frame.to_vec()
        };
        let before = wire.len();
        let with_terminator = [&frame[..], &terminator[..]].concat();
        let first = with_terminator.windows(terminator.len()).position(|w| w == &terminator[..]);
        match until.encode(&frame, &mut wire) {
            Ok(()) => {
                assert_eq!(first, Some(frame.len()), "accepted a frame the peer cuts early");
                assert_eq!(wire[before..], with_terminator[..]);
                accepted.push(frame);
            }
            Err(PackError::TerminatorInFrame { at }) => {
                assert_eq!(first, Some(at), "refused at the wrong place");
                assert_eq!(wire.len(), before, "a refused frame wrote something");
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    let mut framer = Framer::new(Until::new(&terminator).unwrap()).with_buffer_size(1 << 20);
    framer.push(&wire);
    for frame in &accepted {
        assert_eq!(framer.next_frame().unwrap(), Some(&frame[..]));
    }
    assert_eq!(framer.next_frame().unwrap(), None);
    assert!(framer.is_empty());
});
