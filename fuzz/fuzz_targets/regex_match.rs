//! `RegexMatch` (anchored, capture groups) with a fixed set of patterns, or a
//! short pattern taken from the input.
//!
//! Input and checks: see `pants_fuzz::run_regex_target`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::RegexMatch;
use pants_fuzz::run_regex_target;

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
    run_regex_target(data, PATTERNS, RegexMatch::new, |d| d.regex().is_match(b""));
});
