//! `Until` with one-byte (`lf`, any byte) and multi-byte (`crlf`, 2..=8 bytes
//! from the input) terminators, checked against a naive search.
//!
//! Input: plan, selector byte, terminator bytes, stream. Selector bits 0-1:
//! `lf()`, `crlf()`, one byte, 2..=8 bytes (bits 2-4); bit 7 maps the stream
//! onto the terminator's bytes plus `x`, so partial and overlapping
//! terminators (`\r\r\n`) split across chunks are common.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Until;
use pants_fuzz::{byte, take, NaiveUntil, Plan};

/// Builds the delimiter from the terminator.
type Make = fn(&[u8]) -> Until;

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    let (terminator, make): (Vec<u8>, Make) = match selector & 3 {
        0 => (b"\n".to_vec(), |_| Until::lf()),
        1 => (b"\r\n".to_vec(), |_| Until::crlf()),
        2 => match take(&mut data, 1) {
            Some(t) => (t.to_vec(), |t| Until::new(t).unwrap()),
            None => return,
        },
        _ => match take(&mut data, 2 + usize::from(selector >> 2 & 7) % 7) {
            Some(t) => (t.to_vec(), |t| Until::new(t).unwrap()),
            None => return,
        },
    };
    assert_eq!(make(&terminator).terminator(), &terminator[..]);
    let stream: Vec<u8> = if selector & 0x80 != 0 {
        let mut alphabet = terminator.clone();
        alphabet.push(b'x');
        data.iter().map(|&b| alphabet[usize::from(b) % alphabet.len()]).collect()
    } else {
        data.to_vec()
    };
    plan.run(&stream, || make(&terminator), || NaiveUntil(terminator.clone()));
});
