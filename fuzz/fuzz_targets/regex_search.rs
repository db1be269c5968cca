//! `RegexSearch` with a fixed set of patterns, or a short pattern taken from
//! the input (patterns that can match empty must be refused).
//!
//! Input and checks: see `pants_fuzz::run_regex_target`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::RegexSearch;
use pants_fuzz::run_regex_target;

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
    run_regex_target(data, PATTERNS, RegexSearch::new, |d| d.regex().is_match(b""));
});
