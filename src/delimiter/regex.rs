//! Regular-expression delimiters: Pants' compiled-regex `read_delimiter`.

use alloc::{format, string::ToString};

use regex::bytes::{Captures, Regex};

use super::{Decoded, Delimiter, Needed};
use crate::error::{DelimiterError, FrameError};

/// Compiles `pattern`, refusing one that can match the empty string (it could
/// cut a frame without consuming input; Pants hangs on such patterns).
fn compile(pattern: &str, anchored: bool) -> Result<Regex, DelimiterError> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| DelimiterError::InvalidRegex(e.to_string()))?;
    if hir.properties().minimum_len().unwrap_or(1) == 0 {
        return Err(DelimiterError::EmptyMatch(pattern.to_string()));
    }
    let invalid = |e: regex::Error| DelimiterError::InvalidRegex(e.to_string());
    if !anchored {
        return Regex::new(pattern).map_err(invalid);
    }
    // `pattern` parsed on its own, so wrapping it fails only if it ends in an
    // `(?x)` comment that swallows the closing `)`. A newline ends the comment
    // and, in `x` mode, matches nothing.
    Regex::new(&format!(r"\A(?:{pattern})")).or_else(|_| Regex::new(&format!("\\A(?:{pattern}\n)"))).map_err(invalid)
}

/// Cuts the bytes before the first match of a regular expression; the match
/// itself is dropped (Pants' regex `read_delimiter` with `regex_search =
/// True`). A generalised [`Until`](super::Until): `\r?\n` accepts both line
/// ends.
///
/// The pattern runs on bytes (`regex::bytes`), so it can match any byte
/// sequence, UTF-8 or not. Unicode mode is on by default, as in the `regex`
/// crate: `\xff` means the character U+00FF (two bytes in UTF-8); write
/// `(?-u:\xff)` for the single byte 0xFF. The first match in the buffer is taken as it
/// stands when found: a pattern whose match could grow with more input
/// (`\n+`) cuts at the bytes buffered so far, as in Pants. End such patterns
/// with something fixed.
///
/// Cost: unlike [`Until`](super::Until), a match can start anywhere, so each
/// retry searches the whole buffered frame again; the buffer limit bounds the
/// work (at worst quadratic in the limit for a frame that trickles in).
///
/// ```
/// use pants::{delimiter::RegexSearch, Framer};
///
/// let mut framer = Framer::new(RegexSearch::new(r"\r?\n")?);
/// framer.push(b"unix\nwindows\r\nrest");
/// assert_eq!(framer.next_frame()?, Some(&b"unix"[..]));
/// assert_eq!(framer.next_frame()?, Some(&b"windows"[..]));
/// assert_eq!(framer.next_frame()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegexSearch {
    regex: Regex,
}

impl RegexSearch {
    /// Compiles the delimiter. A pattern that can match the empty string
    /// (`x*`, `a|`) is refused with [`DelimiterError::EmptyMatch`].
    ///
    /// ```
    /// use pants::{delimiter::RegexSearch, DelimiterError};
    /// assert!(matches!(RegexSearch::new("x*"), Err(DelimiterError::EmptyMatch(_))));
    /// assert!(matches!(RegexSearch::new("("), Err(DelimiterError::InvalidRegex(_))));
    /// ```
    pub fn new(pattern: &str) -> Result<Self, DelimiterError> {
        compile(pattern, false).map(|regex| RegexSearch { regex })
    }

    /// The compiled expression.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl Delimiter for RegexSearch {
    type Output<'a> = &'a [u8];

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
        Ok(match self.regex.find(buf) {
            Some(m) if m.end() > 0 => Decoded::Frame { frame: &buf[..m.start()], consumed: m.end() },
            _ => Decoded::Incomplete(Needed::Unknown),
        })
    }
}

/// Cuts a match anchored at the start of the buffer and hands over its
/// capture groups (Pants' regex `read_delimiter` with `regex_search =
/// False`). The matched bytes are consumed.
///
/// If the buffer does not start with a match, nothing is delivered, even when
/// a match exists further on: the framer waits for more bytes and reports an
/// overflow once the buffer limit is reached, as Pants does. A match is taken
/// as soon as one exists, so a pattern whose match could still grow (`\d+`
/// on `"12"` when `"3"` is on its way) cuts at what is buffered: end such
/// patterns with something fixed (`(\d+)\r\n`).
///
/// ```
/// use pants::{delimiter::RegexMatch, Framer};
///
/// let mut framer = Framer::new(RegexMatch::new(r"(?<key>\w+)=(?<value>\w+);")?);
/// framer.push(b"name=pants;lang=rust;");
/// let caps = framer.next_frame()?.unwrap();
/// assert_eq!(&caps["key"], b"name");
/// assert_eq!(&caps["value"], b"pants");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegexMatch {
    regex: Regex,
}

impl RegexMatch {
    /// Compiles the delimiter, anchored at the start of the buffer. A pattern
    /// that can match the empty string is refused with
    /// [`DelimiterError::EmptyMatch`]. Capture group names and numbers are
    /// those of `pattern`.
    ///
    /// ```
    /// use pants::{delimiter::RegexMatch, DelimiterError};
    /// assert!(matches!(RegexMatch::new(r"\d*"), Err(DelimiterError::EmptyMatch(_))));
    /// ```
    pub fn new(pattern: &str) -> Result<Self, DelimiterError> {
        compile(pattern, true).map(|regex| RegexMatch { regex })
    }

    /// The compiled expression (with the `\A` anchor added).
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl Delimiter for RegexMatch {
    type Output<'a> = Captures<'a>;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<Captures<'a>>, FrameError> {
        match self.regex.captures(buf) {
            Some(caps) => {
                let consumed = caps.get_match().end();
                Ok(if consumed == 0 {
                    Decoded::Incomplete(Needed::Unknown)
                } else {
                    Decoded::Frame { frame: caps, consumed }
                })
            }
            None => Ok(Decoded::Incomplete(Needed::Unknown)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_matching_patterns() {
        for p in ["", "x*", "a|", "(?:)", r"\b", "^", "$", "a?"] {
            assert!(matches!(RegexSearch::new(p), Err(DelimiterError::EmptyMatch(_))), "{p}");
            assert!(matches!(RegexMatch::new(p), Err(DelimiterError::EmptyMatch(_))), "{p}");
        }
    }

    #[test]
    fn search_cuts_before_match() {
        let mut d = RegexSearch::new(r"[,;]+").unwrap();
        assert_eq!(d.decode(b"a,;b").unwrap(), Decoded::Frame { frame: &b"a"[..], consumed: 3 });
        assert_eq!(d.decode(b"ab").unwrap(), Decoded::Incomplete(Needed::Unknown));
    }

    #[test]
    fn match_is_anchored() {
        let mut d = RegexMatch::new(r"(\d+)\n").unwrap();
        assert!(matches!(d.decode(b"x12\n").unwrap(), Decoded::Incomplete(Needed::Unknown)));
        let Decoded::Frame { frame, consumed } = d.decode(b"12\nx").unwrap() else { panic!() };
        assert_eq!((&frame[1], consumed), (&b"12"[..], 3));
    }

    #[test]
    fn anchoring_survives_trailing_comment() {
        let mut d = RegexMatch::new("(?x) (a) b # a comment").unwrap();
        assert!(matches!(d.decode(b"xab").unwrap(), Decoded::Incomplete(Needed::Unknown)));
        let Decoded::Frame { frame, consumed } = d.decode(b"abx").unwrap() else { panic!() };
        assert_eq!((&frame[1], consumed), (&b"a"[..], 2));
    }

    #[test]
    fn non_utf8_bytes_are_fine() {
        let mut d = RegexSearch::new(r"(?-u:\xff)").unwrap();
        assert_eq!(d.decode(b"\x80\xff").unwrap(), Decoded::Frame { frame: &b"\x80"[..], consumed: 2 });
    }
}
