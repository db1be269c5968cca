//! A byte-string terminator: Pants' `read_delimiter = b"\r\n"`.

#[cfg(feature = "alloc")]
use alloc::boxed::Box;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
use memchr::memmem::Finder;

use super::{Decoded, Delimiter, Needed};
#[cfg(feature = "alloc")]
use crate::encode::Encode;
#[cfg(feature = "alloc")]
use crate::error::PackError;
use crate::error::{DelimiterError, FrameError};

/// Cuts the bytes before a terminator; the terminator itself is dropped (Pants'
/// string `read_delimiter`). Back-to-back terminators give empty frames, and a
/// terminator split across reads is found once it is complete.
///
/// Scanning is incremental: bytes already searched are never searched again,
/// so a 60 KiB line that arrives one byte at a time costs linear time, not
/// quadratic. One-byte terminators use `memchr`, longer ones `memchr::memmem`.
///
/// ```
/// use pants::{delimiter::Until, Framer};
///
/// let mut framer = Framer::new(Until::new(b"\r\n")?);
/// framer.push(b"GET / HTTP/1.1\r\nHost: a\r");
/// assert_eq!(framer.next_frame()?, Some(&b"GET / HTTP/1.1"[..]));
/// assert_eq!(framer.next_frame()?, None);
/// framer.push(b"\n\r\n");
/// assert_eq!(framer.next_frame()?, Some(&b"Host: a"[..]));
/// assert_eq!(framer.next_frame()?, Some(&b""[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Until {
    search: Search,
    /// How many leading bytes of the current frame were searched without
    /// finding a whole terminator.
    scanned: usize,
}

#[derive(Debug, Clone)]
enum Search {
    Byte(ByteFinder),
    /// 2 to 4 bytes (`\r\n`, `\r\n\r\n`): `memchr` for the last byte,
    /// then a comparison, beats a `memmem` search on short lines.
    /// Two bytes (`\r\n`): the last one searched for, the first compared.
    Pair([u8; 2], ByteFinder),
    Short([u8; 4], usize, ByteFinder),
    /// Boxed: a `memmem` finder is 288 bytes, which every `Until` would
    /// carry otherwise, and a stream moves its delimiter twice per batch of
    /// frames (lending it to the typed stream `on_read` sees). One pointer
    /// more per search of a long terminator costs nothing measurable.
    #[cfg(feature = "alloc")]
    Bytes(Box<Finder<'static>>),
    /// Without an allocator: up to [`INLINE_MAX`] bytes held inline,
    /// searched like `Short`.
    #[cfg(not(feature = "alloc"))]
    Inline([u8; INLINE_MAX], usize, ByteFinder),
}

/// The longest terminator a build without `alloc` supports (held inline).
#[cfg(not(feature = "alloc"))]
const INLINE_MAX: usize = 32;

/// `memchr` for one byte, with the SIMD searcher set up once: the free
/// function picks and sets one up on every call, which is most of the cost
/// of finding a terminator 64 bytes away.
#[derive(Debug, Clone, Copy)]
struct ByteFinder {
    byte: u8,
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl ByteFinder {
    fn new(byte: u8) -> Self {
        ByteFinder {
            byte,
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(byte),
        }
    }

    #[inline]
    fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(one) = &self.avx2 {
            return one.find(haystack);
        }
        memchr::memchr(self.byte, haystack)
    }
}

/// The start of the first `needle` in `buf` starting at `from` or later;
/// `last` finds its last byte.
/// Where `first` followed by `last`'s byte starts in `buf`, searching from
/// `from` (a terminator may start there).
#[inline(always)]
fn find_pair(buf: &[u8], from: usize, first: u8, last: &ByteFinder) -> Option<usize> {
    let mut end = from + 1;
    while end < buf.len() {
        end += last.find(&buf[end..])?;
        if buf[end - 1] == first {
            return Some(end - 1);
        }
        end += 1;
    }
    None
}

#[inline(always)]
fn find_short(buf: &[u8], from: usize, needle: &[u8], last: &ByteFinder) -> Option<usize> {
    let head = &needle[..needle.len() - 1];
    let mut end = from + head.len();
    while end < buf.len() {
        end += last.find(&buf[end..])?;
        let start = end - head.len();
        // At most 3 bytes (31 for `Inline`, without `alloc`): a byte
        // loop, not a call to `memcmp`.
        if buf[start..end].iter().zip(head).all(|(a, b)| a == b) {
            return Some(start);
        }
        end += 1;
    }
    None
}

impl Until {
    /// A terminator delimiter. An empty terminator is refused: it would cut
    /// empty frames forever (Pants hangs on it).
    ///
    /// ```
    /// use pants::{delimiter::Until, DelimiterError};
    /// assert!(Until::new("\n").is_ok());
    /// assert_eq!(Until::new("").unwrap_err(), DelimiterError::EmptyTerminator);
    /// ```
    pub fn new(terminator: impl AsRef<[u8]>) -> Result<Self, DelimiterError> {
        let terminator = terminator.as_ref();
        let search = match terminator {
            [] => return Err(DelimiterError::EmptyTerminator),
            [byte] => Search::Byte(ByteFinder::new(*byte)),
            [first, last] => Search::Pair([*first, *last], ByteFinder::new(*last)),
            bytes if bytes.len() <= 4 => {
                let mut needle = [0; 4];
                needle[..bytes.len()].copy_from_slice(bytes);
                Search::Short(needle, bytes.len(), ByteFinder::new(bytes[bytes.len() - 1]))
            }
            #[cfg(feature = "alloc")]
            bytes => Search::Bytes(Box::new(Finder::new(bytes).into_owned())),
            #[cfg(not(feature = "alloc"))]
            bytes if bytes.len() <= INLINE_MAX => {
                let mut needle = [0; INLINE_MAX];
                needle[..bytes.len()].copy_from_slice(bytes);
                Search::Inline(needle, bytes.len(), ByteFinder::new(bytes[bytes.len() - 1]))
            }
            #[cfg(not(feature = "alloc"))]
            bytes => return Err(DelimiterError::TerminatorTooLong { len: bytes.len(), max: INLINE_MAX }),
        };
        Ok(Until { search, scanned: 0 })
    }

    /// Lines ended by `\n` (a preceding `\r` is kept in the frame).
    ///
    /// ```
    /// use pants::delimiter::Until;
    /// assert_eq!(Until::lf().terminator(), b"\n");
    /// ```
    pub fn lf() -> Self {
        Until { search: Search::Byte(ByteFinder::new(b'\n')), scanned: 0 }
    }

    /// Lines ended by `\r\n`, as in most text protocols (HTTP, SMTP, RESP).
    ///
    /// ```
    /// use pants::delimiter::Until;
    /// assert_eq!(Until::crlf().terminator(), b"\r\n");
    /// ```
    pub fn crlf() -> Self {
        Until { search: Search::Pair(*b"\r\n", ByteFinder::new(b'\n')), scanned: 0 }
    }

    /// The terminator this delimiter looks for.
    pub fn terminator(&self) -> &[u8] {
        match &self.search {
            Search::Byte(finder) => core::slice::from_ref(&finder.byte),
            Search::Pair(pair, _) => pair,
            Search::Short(needle, len, _) => &needle[..*len],
            #[cfg(feature = "alloc")]
            Search::Bytes(finder) => finder.needle(),
            #[cfg(not(feature = "alloc"))]
            Search::Inline(needle, len, _) => &needle[..*len],
        }
    }
}

impl Delimiter for Until {
    type Output<'a> = &'a [u8];

    #[inline(always)]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
        // Where the terminator starts, searching from `scanned`.
        let from = self.scanned;
        // `\r\n` tested first, on its own: one compare and a branch the
        // predictor learns, where a `match` is an indirect jump per frame.
        let (found, overlap) = if let Search::Pair([first, _], last) = &self.search {
            (find_pair(buf, from, *first, last), 2)
        } else {
            self.find_other(buf, from)
        };
        match found {
            Some(end) => {
                self.scanned = 0;
                Ok(Decoded::Frame { frame: &buf[..end], consumed: end + overlap })
            }
            None => {
                // The last `overlap - 1` bytes may be the start of a terminator
                // split across reads: search them again next time.
                self.scanned = buf.len().saturating_sub(overlap - 1);
                Ok(Decoded::Incomplete(Needed::Unknown))
            }
        }
    }

    fn reset(&mut self) {
        self.scanned = 0;
    }
}

impl Until {
    /// [`decode`](Delimiter::decode)'s search for the terminators other than
    /// a pair: where the terminator starts, and its length.
    #[inline(always)]
    fn find_other(&self, buf: &[u8], from: usize) -> (Option<usize>, usize) {
        match &self.search {
            Search::Byte(finder) => (buf.get(from..).and_then(|rest| finder.find(rest)).map(|at| from + at), 1),
            Search::Pair([first, _], last) => (find_pair(buf, from, *first, last), 2),
            Search::Short(needle, len, last) => (find_short(buf, from, &needle[..*len], last), *len),
            #[cfg(feature = "alloc")]
            Search::Bytes(finder) => {
                (buf.get(from..).and_then(|rest| finder.find(rest)).map(|at| from + at), finder.needle().len())
            }
            #[cfg(not(feature = "alloc"))]
            Search::Inline(needle, len, last) => (find_short(buf, from, &needle[..*len], last), *len),
        }
    }
}

#[cfg(feature = "alloc")]
impl Until {
    /// Where the peer would first find the terminator in `frame` followed by
    /// the terminator, if before the end of `frame`: inside it, or starting
    /// in its last bytes and running into the terminator (for terminators
    /// that overlap themselves, such as `aba`).
    fn early_terminator(&self, frame: &[u8]) -> Option<usize> {
        let inside = match &self.search {
            Search::Byte(finder) => finder.find(frame),
            Search::Pair([first, _], last) => find_pair(frame, 0, *first, last),
            Search::Short(needle, len, last) => find_short(frame, 0, &needle[..*len], last),
            #[cfg(feature = "alloc")]
            Search::Bytes(finder) => finder.find(frame),
            #[cfg(not(feature = "alloc"))]
            Search::Inline(needle, len, last) => find_short(frame, 0, &needle[..*len], last),
        };
        if inside.is_some() {
            return inside;
        }
        let terminator = self.terminator();
        // A match starting `k` bytes before the end of the frame: the
        // frame ends with the terminator's first `k` bytes, and the rest
        // of the terminator is also its start.
        (1..terminator.len().min(frame.len() + 1))
            .rev()
            .find(|&k| frame.ends_with(&terminator[..k]) && terminator[k..] == terminator[..terminator.len() - k])
            .map(|k| frame.len() - k)
    }
}

/// Writes the bytes, then the terminator: `PONG` becomes `PONG\r\n` for
/// [`Until::crlf`]. Bytes in which the peer would find the terminator
/// before the end are [`PackError::TerminatorInFrame`] (a line holding a
/// line break would arrive as two frames).
///
/// ```
/// use pants::{delimiter::Until, Encode, PackError};
/// let lines = Until::crlf();
/// assert_eq!(lines.to_bytes(b"PONG")?, b"PONG\r\n");
/// assert_eq!(lines.to_bytes("a\r\nb"), Err(PackError::TerminatorInFrame { at: 1 }));
/// # Ok::<(), PackError>(())
/// ```
#[cfg(feature = "alloc")]
impl<T: AsRef<[u8]>> Encode<T> for Until {
    #[inline]
    fn encode(&self, item: T, out: &mut Vec<u8>) -> Result<(), PackError> {
        let frame = item.as_ref();
        if let Some(at) = self.early_terminator(frame) {
            return Err(PackError::TerminatorInFrame { at });
        }
        let terminator = self.terminator();
        out.reserve(frame.len() + terminator.len());
        out.extend_from_slice(frame);
        out.extend_from_slice(terminator);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(d: Decoded<&[u8]>) -> (&[u8], usize) {
        match d {
            Decoded::Frame { frame, consumed } => (frame, consumed),
            Decoded::Incomplete(_) => panic!("incomplete"),
        }
    }

    #[test]
    fn refuses_empty() {
        assert_eq!(Until::new(b"").unwrap_err(), DelimiterError::EmptyTerminator);
    }

    #[test]
    fn split_terminator_is_found() {
        let mut d = Until::new(b"\r\n").unwrap();
        assert_eq!(d.decode(b"ab\r").unwrap(), Decoded::Incomplete(Needed::Unknown));
        assert_eq!(d.scanned, 2);
        assert_eq!(frame(d.decode(b"ab\r\n").unwrap()), (&b"ab"[..], 4));
        assert_eq!(d.scanned, 0);
    }

    #[test]
    fn long_terminator_split_everywhere() {
        let input = b"hello<END>world<END>";
        for split in 0..input.len() {
            let mut d = Until::new(b"<END>").unwrap();
            if let Decoded::Frame { frame, .. } = d.decode(&input[..split]).unwrap() {
                assert_eq!(frame, b"hello");
                continue;
            }
            assert_eq!(frame(d.decode(input).unwrap()), (&b"hello"[..], 10));
        }
    }

    #[test]
    fn encoding_refuses_what_the_peer_would_cut_early() {
        let crlf = Until::crlf();
        assert_eq!(crlf.to_bytes(b"ab\r").unwrap(), b"ab\r\r\n");
        assert_eq!(crlf.to_bytes(b"").unwrap(), b"\r\n");
        assert_eq!(crlf.to_bytes(b"a\nb").unwrap(), b"a\nb\r\n");
        let aba = Until::new(b"aba").unwrap();
        // "xab" + "aba" = "xababa": the peer finds "aba" at 1.
        assert_eq!(aba.to_bytes(b"xab"), Err(PackError::TerminatorInFrame { at: 1 }));
        assert_eq!(aba.to_bytes(b"xa").unwrap(), b"xaaba");
        assert_eq!(aba.to_bytes(b"xb").unwrap(), b"xbaba");
        let long = Until::new(b"<END>").unwrap();
        assert_eq!(long.to_bytes(b"a<END"), Ok(b"a<END<END>".to_vec()));
        assert_eq!(long.to_bytes(b"a<END>b"), Err(PackError::TerminatorInFrame { at: 1 }));
        // Whatever is accepted decodes back to itself.
        for body in [&b"xb"[..], b"xa", b"b", b"bb", b""] {
            let wire = aba.to_bytes(body).unwrap();
            let mut d = Until::new(b"aba").unwrap();
            assert_eq!(frame(d.decode(&wire).unwrap()), (body, wire.len()));
        }
    }

    #[test]
    fn byte_terminator() {
        let mut d = Until::lf();
        assert_eq!(frame(d.decode(b"\nx").unwrap()), (&b""[..], 1));
        assert_eq!(d.decode(b"x").unwrap(), Decoded::Incomplete(Needed::Unknown));
        assert_eq!(d.scanned, 1);
        assert_eq!(frame(d.decode(b"xy\n").unwrap()), (&b"xy"[..], 3));
    }
}
