//! `RegexMatch` (anchored, capture groups) with a fixed set of patterns, or a
//! short pattern taken from the input.
//!
//! Input: plan, selector, [pattern], stream; the selector as in `regex_search`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::RegexMatch;
use pants::DelimiterError;
use pants_fuzz::{byte, take, Plan};

const PATTERNS: &[(&str, &[u8])] = &[
    (r"(\d+)\r\n", b"0129\r\nx"),
    (r"(?<key>\w+)=(?<value>\w*);", b"ab=;x"),
    (r"(?-u:(\x00)([\x01-\xff]{1,4}))", b"\x00\x01\xffx"),
    (r"(GET|POST) (\S+) HTTP/1\.[01]\r\n", b"GETPOST /HTP1.01\r\nx"),
    (r"(a)|(b)(c)?", b"abcx"),
    (r"(?-u:[\x00-\x7f]+)\n", b"\n\x7f\x80x"),
    (r"(?s)(.)(.)\.", b".\n\xffx"),
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
    let delimiter = match RegexMatch::new(&pattern) {
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
