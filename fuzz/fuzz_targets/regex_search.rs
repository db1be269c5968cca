//! `RegexSearch` with a fixed set of patterns, or a short pattern taken from
//! the input (patterns that can match empty must be refused).
//!
//! Input: plan, selector, [pattern], stream. Selector bits 0-3 pick a fixed
//! pattern, or (values past the list) a pattern of 1..=16 input bytes; bit 7
//! maps the stream onto the pattern's alphabet so matches are common.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::RegexSearch;
use pants::DelimiterError;
use pants_fuzz::{byte, take, Plan};

const PATTERNS: &[(&str, &[u8])] = &[
    (r"\r?\n", b"\r\nx"),
    (r"[,;]+ ", b",; x"),
    (r"(?-u:\xff\x00)", b"\xff\x00x"),
    (r"END|STOP", b"ENDSTOPx"),
    (r"\d{3}-\d", b"0123-x"),
    (r"a+b", b"abx"),
    (r"(?-u:[\x80-\xff]{2})", b"\x80\xffx"),
    (r"\n\n", b"\nx"),
    (r"(?i)k\w+y", b"kKzyY x"),
    (r"\r\n\r\n", b"\r\nx"),
];

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    let index = usize::from(selector & 0xf);
    let (pattern, alphabet): (String, Vec<u8>) = match PATTERNS.get(index) {
        Some(&(p, a)) => (p.to_owned(), a.to_vec()),
        None => {
            let Some(bytes) = take(&mut data, 1 + usize::from(selector >> 4 & 7) * 2) else { return };
            let Ok(p) = core::str::from_utf8(bytes) else { return };
            let mut alphabet = bytes.to_vec();
            alphabet.push(b'x');
            (p.to_owned(), alphabet)
        }
    };
    let delimiter = match RegexSearch::new(&pattern) {
        Ok(d) => d,
        Err(DelimiterError::EmptyMatch(_) | DelimiterError::InvalidRegex(_)) => {
            assert!(index >= PATTERNS.len(), "built-in pattern {pattern:?} refused");
            return;
        }
        Err(e) => panic!("unexpected error {e:?}"),
    };
    assert!(!delimiter.regex().is_match(b""), "{pattern:?} matches the empty string but was accepted");
    let stream: Vec<u8> = if selector & 0x80 != 0 {
        data.iter().map(|&b| alphabet[usize::from(b) % alphabet.len()]).collect()
    } else {
        data.to_vec()
    };
    plan.run(&stream, || delimiter.clone(), || delimiter.clone());
});
