//! The `Framer` contract of `src/framer.rs`, documented by tests: overflow,
//! sticky errors and recovery, `finish`, `read_from` and the limit, the
//! incremental `Until` scan, misbehaving user delimiters, constructor checks,
//! and switching delimiters mid-buffer. No sockets and no timing.

use std::io::Read;

use binrw::BinRead;
use pants::delimiter::{Binrw, Count, Fixed, Packed, Raw, RegexMatch, RegexSearch, Until};
use pants::framer::DEFAULT_BUFFER_SIZE;
use pants::{Decoded, Delimiter, DelimiterError, FrameError, Framer, Needed, NetStruct};
use zerocopy::big_endian::U16;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// A u32 length prefix: a peer can announce 4 GiB.
#[derive(NetStruct, Debug, PartialEq)]
struct Big<'a> {
    #[netstruct(len = u32)]
    body: &'a [u8],
}

/// A signed length prefix, a string and a bool: the ways a NetStruct is invalid.
#[derive(NetStruct, Debug, PartialEq)]
struct Strict<'a> {
    #[netstruct(len = i16)]
    text: &'a str,
    flag: bool,
}

#[derive(NetStruct, Debug, PartialEq)]
struct Move<'a> {
    player: u8,
    #[netstruct(len = u8)]
    square: &'a str,
}

#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Header {
    kind: u8,
    len: U16,
}

#[derive(BinRead, Debug, PartialEq)]
#[br(big, magic = b"BR")]
struct Msg {
    len: u8,
    #[br(count = len)]
    body: Vec<u8>,
}

/// Calls `next_frame` a few more times: the same error each time, and nothing
/// consumed.
fn assert_sticky<D: Delimiter>(framer: &mut Framer<D>, error: &FrameError) {
    let buffered = framer.buffered().to_vec();
    for _ in 0..3 {
        assert_eq!(framer.next_frame().map(|frame| frame.is_some()).as_ref(), Err(error));
        assert_eq!(framer.buffered(), buffered, "an error consumed bytes");
    }
}

// ---------------------------------------------------------------------------
// Overflow
// ---------------------------------------------------------------------------

#[test]
fn a_length_prefix_over_the_limit_overflows_as_soon_as_it_arrives() {
    const MIB: u32 = 1 << 20;
    let mut framer = Framer::new(Packed::<Big>::new()).with_buffer_size(1024);
    assert_eq!(framer.limit(), 1024);
    let prefix = MIB.to_be_bytes();

    // Half a prefix says nothing yet.
    framer.push(&prefix[..2]);
    assert_eq!(framer.next_frame(), Ok(None));
    framer.push(&prefix[2..]);
    let overflow = FrameError::Overflow { limit: 1024, needed: 4 + MIB as usize };
    assert_eq!(framer.next_frame(), Err(overflow.clone()));
    // Raised on the 4-byte prefix alone: nothing of the body was buffered.
    assert_eq!(framer.buffered(), prefix);
    assert_sticky(&mut framer, &overflow);

    // Reading from a peer that would send the whole MiB stops at the limit.
    let mut peer = Endless::new(10 << 20);
    while framer.read_from(&mut peer, usize::MAX).unwrap() > 0 {}
    assert_eq!((framer.len(), peer.handed), (1024, 1020));
    assert_sticky(&mut framer, &overflow);

    // Raising the limit lets the frame through.
    framer.set_buffer_size(2 << 20);
    assert_eq!(framer.next_frame(), Ok(None));
    while framer.len() < 4 + MIB as usize {
        framer.read_from(&mut peer, 4 + MIB as usize - framer.len()).unwrap();
    }
    assert_eq!(framer.len(), 4 + MIB as usize, "read_from reads no more than `max`");
    let frame = framer.next_frame().unwrap().unwrap();
    assert_eq!(frame.body.len(), MIB as usize);
    assert!(framer.is_empty());
}

#[test]
fn a_frame_of_unknown_size_overflows_when_the_buffer_reaches_the_limit() {
    let mut framer = Framer::new(Until::crlf()).with_buffer_size(16);
    framer.push(&[b'a'; 15]);
    assert_eq!(framer.next_frame(), Ok(None));
    // 16 bytes ending in half a terminator: the frame needs at least 17.
    framer.push(b"\r");
    let overflow = FrameError::Overflow { limit: 16, needed: 17 };
    assert_eq!(framer.next_frame(), Err(overflow.clone()));
    assert_sticky(&mut framer, &overflow);

    // A frame that fits exactly, terminator included, is fine.
    let mut framer = Framer::new(Until::crlf()).with_buffer_size(16);
    framer.push(&[b'a'; 14]);
    framer.push(b"\r\n");
    assert_eq!(framer.next_frame(), Ok(Some(&[b'a'; 14][..])));

    // The same for the other delimiters that cannot know a frame's size.
    let mut framer = Framer::new(RegexSearch::new(r"\r?\n").unwrap()).with_buffer_size(8);
    framer.push(b"12345678");
    assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 8, needed: 9 }));

    // A buffer that does not start with a match never becomes a frame.
    let mut framer = Framer::new(RegexMatch::new(r"(\d+)\n").unwrap()).with_buffer_size(8);
    framer.push(b"x1\n2\n");
    assert!(matches!(framer.next_frame(), Ok(None)));
    framer.push(b"3\n4");
    assert!(matches!(framer.next_frame(), Err(FrameError::Overflow { limit: 8, needed: 9 })));

    let mut framer = Framer::new(Binrw::<Msg>::new()).with_buffer_size(8);
    framer.push(b"BR\xff12345");
    assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 8, needed: 9 }));
}

#[test]
fn the_limit_applies_to_what_cannot_be_cut() {
    // `push` always accepts bytes, and a frame that is buffered whole is cut
    // even if it is longer than the limit: several frames may arrive at once.
    let mut framer = Framer::new(Until::lf()).with_buffer_size(16);
    let mut input = vec![b'x'; 100];
    input.extend_from_slice(b"\nshort\n");
    framer.push(&input);
    assert_eq!(framer.next_frame().unwrap().map(<[u8]>::len), Some(100));
    assert_eq!(framer.next_frame(), Ok(Some(&b"short"[..])));

    // `read_from` is how a stream reads, and it never buffers past the limit:
    // the same frame is an overflow there.
    let mut framer = Framer::new(Until::lf()).with_buffer_size(16);
    let mut source = &input[..];
    while framer.read_from(&mut source, usize::MAX).unwrap() > 0 {}
    assert_eq!(framer.len(), 16);
    assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 16, needed: 17 }));
}

#[test]
fn the_limit_is_raised_to_what_the_delimiter_needs() {
    let framer = Framer::new(Until::lf()).with_buffer_size(4);
    assert_eq!(framer.limit(), 4);
    let framer = framer.read_delimiter(Count::new(100).unwrap());
    assert_eq!((framer.buffer_size(), framer.limit()), (4, 100));
    let framer = framer.read_delimiter(Fixed::<Header>::new());
    assert_eq!(framer.limit(), 4);
    let framer = framer.read_delimiter(Packed::<Move>::new()).with_buffer_size(0);
    assert_eq!(framer.limit(), 2); // Move's fixed part: u8 + u8 prefix
    let framer = framer.read_delimiter(Raw);
    assert_eq!(framer.limit(), 1);
}

// ---------------------------------------------------------------------------
// Errors: sticky, consume nothing, and how to recover
// ---------------------------------------------------------------------------

#[test]
fn errors_are_sticky_and_consume_nothing() {
    let mut framer = Framer::new(Packed::<Strict>::new());
    framer.push(b"\xff\xfe\x01");
    let error = FrameError::NegativeLength { field: "text", length: -2 };
    assert_eq!(framer.next_frame(), Err(error.clone()));
    assert_sticky(&mut framer, &error);
    // More bytes do not skip it either.
    framer.push(b"\x00\x01a\x01");
    assert_sticky(&mut framer, &error);

    let mut framer = Framer::new(Packed::<Strict>::new());
    framer.push(b"\x00\x02\xc3\x28\x01");
    let error = FrameError::InvalidUtf8 { field: "text", valid_up_to: 0 };
    assert_eq!(framer.next_frame(), Err(error.clone()));
    assert_sticky(&mut framer, &error);

    let mut framer = Framer::new(Packed::<Strict>::new());
    framer.push(b"\x00\x01a\x02");
    let error = FrameError::InvalidBool { field: "flag", value: 2 };
    assert_eq!(framer.next_frame(), Err(error.clone()));
    assert_sticky(&mut framer, &error);

    let mut framer = Framer::new(Binrw::<Msg>::new());
    framer.push(b"XX\x00");
    let error = framer.next_frame().unwrap_err();
    assert!(matches!(error, FrameError::Malformed(_)), "{error:?}");
    assert_sticky(&mut framer, &error);
}

#[test]
fn discard_skips_a_bad_frame() {
    let mut framer = Framer::new(Packed::<Strict>::new());
    // good, bad (negative length), good
    framer.push(b"\x00\x02ok\x01");
    framer.push(b"\x80\x00\x00");
    framer.push(b"\x00\x03yes\x00");
    assert_eq!(framer.next_frame(), Ok(Some(Strict { text: "ok", flag: true })));
    assert_eq!(framer.next_frame(), Err(FrameError::NegativeLength { field: "text", length: -32768 }));
    framer.discard(3);
    assert_eq!(framer.next_frame(), Ok(Some(Strict { text: "yes", flag: false })));
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.finish(), Ok(()));
}

#[test]
fn clear_recovers_from_an_overflow() {
    let mut framer = Framer::new(Until::lf()).with_buffer_size(8);
    framer.push(b"abcdefgh");
    assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 8, needed: 9 }));
    framer.clear();
    assert!(framer.is_empty());
    framer.push(b"x\ny\n");
    assert_eq!(framer.next_frame(), Ok(Some(&b"x"[..])));
    assert_eq!(framer.next_frame(), Ok(Some(&b"y"[..])));
}

#[test]
fn raising_the_limit_recovers_from_an_overflow() {
    let mut framer = Framer::new(Until::crlf()).with_buffer_size(8);
    framer.push(b"abcdefgh");
    let overflow = FrameError::Overflow { limit: 8, needed: 9 };
    assert_eq!(framer.next_frame(), Err(overflow.clone()));
    assert_sticky(&mut framer, &overflow);
    framer.set_buffer_size(32);
    assert_eq!(framer.next_frame(), Ok(None));
    framer.push(b"ijkl\r");
    assert_eq!(framer.next_frame(), Ok(None));
    framer.push(b"\nrest");
    assert_eq!(framer.next_frame(), Ok(Some(&b"abcdefghijkl"[..])));
    assert_eq!(framer.buffered(), b"rest");
}

/// Regression: `discard` and `clear` did not reset the delimiter, so `Until`
/// went on from the scan offset of bytes that were gone, and skipped
/// terminators in the bytes that replaced them.
#[test]
fn dropping_bytes_resets_the_until_scan() {
    // clear after a partial line: the scan restarts at the new bytes.
    let mut framer = Framer::new(Until::lf());
    framer.push(b"abcdef");
    assert_eq!(framer.next_frame(), Ok(None));
    framer.clear();
    framer.push(b"x\ny\n");
    assert_eq!(framer.next_frame(), Ok(Some(&b"x"[..])));
    assert_eq!(framer.next_frame(), Ok(Some(&b"y"[..])));

    // discard part of an overflowed line: the kept bytes are scanned again.
    let mut framer = Framer::new(Until::lf()).with_buffer_size(4);
    framer.push(b"abcd");
    assert!(matches!(framer.next_frame(), Err(FrameError::Overflow { .. })));
    framer.discard(2);
    framer.push(b"\nxy\n");
    assert_eq!(framer.next_frame(), Ok(Some(&b"cd"[..])));
    assert_eq!(framer.next_frame(), Ok(Some(&b"xy"[..])));

    // A multi-byte terminator, and take_buffered.
    let mut framer = Framer::new(Until::new("<END>").unwrap());
    framer.push(b"0123456789<EN");
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.take_buffered(), b"0123456789<EN");
    framer.push(b"a<END>b<END>");
    assert_eq!(framer.next_frame(), Ok(Some(&b"a"[..])));
    assert_eq!(framer.next_frame(), Ok(Some(&b"b"[..])));
}

#[test]
fn switching_delimiter_recovers_from_an_error() {
    let mut framer = Framer::new(Binrw::<Msg>::new());
    framer.push(b"not binrw");
    assert!(matches!(framer.next_frame(), Err(FrameError::Malformed(_))));
    let mut framer = framer.read_delimiter(Raw);
    assert_eq!(framer.next_frame(), Ok(Some(&b"not binrw"[..])));
}

// ---------------------------------------------------------------------------
// finish
// ---------------------------------------------------------------------------

#[test]
fn finish_reports_what_never_became_a_frame() {
    let mut framer = Framer::new(Until::lf());
    assert_eq!(framer.finish(), Ok(()));
    framer.push(b"one\ntw");
    // finish does not cut frames: the caller drains first.
    assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: 6 }));
    assert_eq!(framer.next_frame(), Ok(Some(&b"one"[..])));
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: 2 }));
    // The bytes stay buffered.
    assert_eq!(framer.buffered(), b"tw");
    framer.push(b"o\n");
    assert_eq!(framer.next_frame(), Ok(Some(&b"two"[..])));
    assert_eq!(framer.finish(), Ok(()));

    let mut framer = Framer::new(Packed::<Move>::new());
    framer.push(b"\x01\x02e4\x02\x02e");
    assert_eq!(framer.next_frame(), Ok(Some(Move { player: 1, square: "e4" })));
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: 3 }));

    let mut framer = Framer::new(Fixed::<Header>::new());
    framer.push(&[1, 0, 2, 9]);
    let header = framer.next_frame().unwrap().unwrap();
    assert_eq!((header.kind, header.len.get()), (1, 2));
    assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: 1 }));

    // Raw hands everything over, so it never leaves anything.
    let mut framer = Framer::new(Raw);
    framer.push(b"abc");
    assert!(framer.next_frame().unwrap().is_some());
    assert_eq!(framer.finish(), Ok(()));
}

// ---------------------------------------------------------------------------
// read_from
// ---------------------------------------------------------------------------

/// A peer that sends `left` bytes of `x`, as much as each read asks for.
struct Endless {
    left: usize,
    handed: usize,
    largest_read: usize,
}

impl Endless {
    fn new(total: usize) -> Self {
        Endless { left: total, handed: 0, largest_read: 0 }
    }
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest_read = self.largest_read.max(buf.len());
        let n = buf.len().min(self.left);
        buf[..n].fill(b'x');
        self.left -= n;
        self.handed += n;
        Ok(n)
    }
}

#[test]
fn read_from_never_reads_past_the_limit() {
    let mut peer = Endless::new(10 << 20);
    let mut framer = Framer::new(Until::lf()).with_buffer_size(4096);
    let mut reads = 0;
    while framer.read_from(&mut peer, usize::MAX).unwrap() > 0 {
        reads += 1;
        assert!(reads < 10, "read_from keeps reading");
    }
    assert_eq!((framer.len(), peer.handed, peer.largest_read), (4096, 4096, 4096));
    assert!(framer.capacity() <= 8192, "capacity {}", framer.capacity());
    assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 4096, needed: 4097 }));
    // Full: nothing more is read, the peer's bytes stay with the peer.
    assert_eq!(framer.read_from(&mut peer, usize::MAX).unwrap(), 0);
    assert_eq!(peer.handed, 4096);

    // `max` caps a single read too.
    let mut framer = Framer::new(Until::lf()).with_buffer_size(4096);
    assert_eq!(framer.read_from(&mut Endless::new(10 << 20), 100).unwrap(), 100);
}

#[test]
fn read_from_streams_ten_megabytes_in_bounded_memory() {
    let mut peer = Endless::new(10 << 20);
    let mut framer = Framer::new(Count::new(1000).unwrap());
    let (mut frames, mut bytes) = (0, 0);
    while framer.read_from(&mut peer, usize::MAX).unwrap() > 0 {
        assert!(framer.len() <= DEFAULT_BUFFER_SIZE);
        while let Some(frame) = framer.next_frame().unwrap() {
            frames += 1;
            bytes += frame.len();
        }
    }
    assert_eq!((peer.handed, peer.left), (10 << 20, 0));
    assert_eq!((frames, bytes), ((10 << 20) / 1000, (10 << 20) / 1000 * 1000));
    assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: (10 << 20) % 1000 }));
    assert!(peer.largest_read <= DEFAULT_BUFFER_SIZE);
    assert!(framer.capacity() <= 2 * DEFAULT_BUFFER_SIZE, "capacity {}", framer.capacity());
}

// ---------------------------------------------------------------------------
// The incremental Until scan (no timing: the work is bounded by the results)
// ---------------------------------------------------------------------------

/// Wraps a delimiter and records the length of every buffer it is shown.
struct Recording<D> {
    inner: D,
    seen: Vec<usize>,
}

impl<D: Delimiter> Delimiter for Recording<D> {
    type Output<'a> = D::Output<'a>;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<D::Output<'a>>, FrameError> {
        self.seen.push(buf.len());
        self.inner.decode(buf)
    }

    fn min_buffer(&self) -> usize {
        self.inner.min_buffer()
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// A 60 KiB line arriving one byte at a time: the framer asks `Until` once
/// per byte, each time with exactly one new byte.
#[test]
fn a_long_line_byte_by_byte_is_decoded_once_per_byte() {
    const LINE: usize = 60 * 1024;
    let mut framer = Framer::new(Recording { inner: Until::crlf(), seen: Vec::new() });
    for _ in 0..LINE {
        framer.push(b"x");
        assert_eq!(framer.next_frame(), Ok(None));
    }
    framer.push(b"\r");
    assert_eq!(framer.next_frame(), Ok(None));
    framer.push(b"\n");
    let frame = framer.next_frame().unwrap().unwrap();
    assert!(frame.len() == LINE && frame.iter().all(|&b| b == b'x'));
    let seen = &framer.delimiter().seen;
    assert!(seen.iter().copied().eq(1..=LINE + 2), "the delimiter was not called once per new byte");
}

/// `Until` never searches the bytes it has searched before, but for the last
/// `terminator.len() - 1` of them (which may start a terminator split across
/// reads): a white-box check that breaks the "same bytes" contract on
/// purpose. Before each call, a whole terminator is planted just before that
/// window, in bytes an earlier call has searched; a delimiter that searched
/// them again would cut a frame there. So each call searches at most
/// `2 * terminator.len()` bytes and a line costs linear time.
#[test]
fn until_does_not_search_bytes_twice() {
    const LINE: usize = 60 * 1024;
    for terminator in [&b"\n"[..], b"\r\n", b"<END>", b"abab", b"aab"] {
        let t = terminator.len();
        let mut until = Until::new(terminator).unwrap();
        let mut buf = Vec::with_capacity(LINE + t);
        for k in 1..=LINE {
            buf.push(b'x');
            // The previous call saw k - 1 bytes and keeps the last t - 1 of
            // them for later, so a terminator starting at k - 2t lies wholly
            // in what it searched.
            let planted = k.checked_sub(2 * t).map(|at| at..at + t);
            if let Some(range) = planted.clone() {
                buf[range].copy_from_slice(terminator);
            }
            assert_eq!(
                until.decode(&buf).unwrap(),
                Decoded::Incomplete(Needed::Unknown),
                "terminator {terminator:?} searched again at {k}"
            );
            if let Some(range) = planted {
                buf[range].fill(b'x');
            }
        }
        buf.extend_from_slice(terminator);
        assert_eq!(until.decode(&buf).unwrap(), Decoded::Frame { frame: &buf[..LINE], consumed: LINE + t });
    }
}

// ---------------------------------------------------------------------------
// User delimiters that break the contract
// ---------------------------------------------------------------------------

/// Cuts empty frames without consuming anything.
struct Stuck;

impl Delimiter for Stuck {
    type Output<'a> = &'a [u8];

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
        Ok(Decoded::Frame { frame: &buf[..0], consumed: 0 })
    }
}

#[test]
fn a_delimiter_that_consumes_nothing_is_an_error_not_a_hang() {
    let mut framer = Framer::new(Stuck);
    framer.push(b"abc");
    assert_eq!(framer.next_frame(), Err(FrameError::NoProgress));
    assert_sticky(&mut framer, &FrameError::NoProgress);
    assert_eq!(framer.len(), 3);
    // The way out: another delimiter.
    let mut framer = framer.read_delimiter(Raw);
    assert_eq!(framer.next_frame(), Ok(Some(&b"abc"[..])));
}

/// Claims more bytes than it was given.
struct Greedy;

impl Delimiter for Greedy {
    type Output<'a> = ();

    fn decode(&mut self, buf: &[u8]) -> Result<Decoded<()>, FrameError> {
        Ok(Decoded::Frame { frame: (), consumed: buf.len() + 10 })
    }
}

#[test]
fn a_delimiter_that_consumes_too_much_is_an_error_not_a_panic() {
    let mut framer = Framer::new(Greedy);
    framer.push(b"ab");
    let error = FrameError::OverConsumed { consumed: 12, buffered: 2 };
    assert_eq!(framer.next_frame(), Err(error.clone()));
    assert_sticky(&mut framer, &error);
}

/// Says it needs zero more bytes (the docs say never zero), and counts calls.
struct NeedsNothing(usize);

impl Delimiter for NeedsNothing {
    type Output<'a> = ();

    fn decode(&mut self, _buf: &[u8]) -> Result<Decoded<()>, FrameError> {
        self.0 += 1;
        Ok(Decoded::Incomplete(Needed::Exactly(0)))
    }
}

#[test]
fn needing_zero_bytes_waits_for_one_instead_of_spinning() {
    let mut framer = Framer::new(NeedsNothing(0));
    framer.push(b"a");
    for _ in 0..5 {
        assert_eq!(framer.next_frame(), Ok(None));
    }
    assert_eq!(framer.delimiter().0, 1);
    framer.push(b"b");
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.delimiter().0, 2);
}

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

#[test]
fn constructors_refuse_degenerate_delimiters() {
    // Each of these would cut empty frames forever (Pants hangs on them).
    // `Array::<0>` and `Fixed` of a zero-sized type do not compile.
    assert_eq!(Until::new("").unwrap_err(), DelimiterError::EmptyTerminator);
    assert_eq!(Until::new(b"").unwrap_err(), DelimiterError::EmptyTerminator);
    assert_eq!(Until::new(Vec::<u8>::new()).unwrap_err(), DelimiterError::EmptyTerminator);
    assert_eq!(Count::new(0).unwrap_err(), DelimiterError::ZeroCount);
    assert_eq!(RegexSearch::new("x*").unwrap_err(), DelimiterError::EmptyMatch("x*".into()));
    assert_eq!(RegexMatch::new("a?").unwrap_err(), DelimiterError::EmptyMatch("a?".into()));
    for pattern in ["", "a|", "(?:)", r"\b", "^", "$", r"\d*"] {
        assert_eq!(RegexSearch::new(pattern).unwrap_err(), DelimiterError::EmptyMatch(pattern.into()));
        assert_eq!(RegexMatch::new(pattern).unwrap_err(), DelimiterError::EmptyMatch(pattern.into()));
    }
    assert!(matches!(RegexSearch::new("("), Err(DelimiterError::InvalidRegex(_))));
    assert!(matches!(RegexMatch::new("[z-a]"), Err(DelimiterError::InvalidRegex(_))));

    // What they accept.
    assert_eq!(Until::new("\n").unwrap().terminator(), b"\n");
    assert_eq!(Count::new(1).unwrap().size(), 1);
    assert!(RegexSearch::new("x+").is_ok());
}

/// Regression: `RegexMatch` anchors the pattern by wrapping it in a group,
/// and a trailing `(?x)` comment swallowed the closing parenthesis, so a
/// valid pattern was refused as `InvalidRegex`.
#[test]
fn regex_match_accepts_a_trailing_verbose_comment() {
    let mut framer = Framer::new(RegexMatch::new(r"(?x) (?<n> \d+ ) \n  # a number per line").unwrap());
    framer.push(b"12\n34\nx5\n");
    assert_eq!(&framer.next_frame().unwrap().unwrap()["n"], b"12");
    assert_eq!(&framer.next_frame().unwrap().unwrap()["n"], b"34");
    // Still anchored.
    assert!(framer.next_frame().unwrap().is_none());
}

// ---------------------------------------------------------------------------
// Switching delimiters
// ---------------------------------------------------------------------------

#[test]
fn switching_delimiters_cuts_the_buffered_bytes_at_once() {
    let mut input = b"HELLO chess\r\n".to_vec();
    input.extend_from_slice(&Move { player: 1, square: "e4" }.to_bytes().unwrap());
    input.extend_from_slice(&[7, 0x01, 0x00]); // Header { kind: 7, len: 256 }
    input.extend_from_slice(b"the rest");

    // Everything arrives in one push, before any switch.
    let mut framer = Framer::new(Until::crlf());
    framer.push(&input);
    assert_eq!(framer.next_frame(), Ok(Some(&b"HELLO chess"[..])));
    let mut framer = framer.read_delimiter(Packed::<Move>::new());
    assert_eq!(framer.next_frame(), Ok(Some(Move { player: 1, square: "e4" })));
    let mut framer = framer.read_delimiter(Fixed::<Header>::new());
    let header = framer.next_frame().unwrap().unwrap();
    assert_eq!((header.kind, header.len.get()), (7, 256));
    let mut framer = framer.read_delimiter(Raw);
    assert_eq!(framer.next_frame(), Ok(Some(&b"the rest"[..])));
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.finish(), Ok(()));
}

#[test]
fn switching_forgets_what_the_old_delimiter_was_waiting_for() {
    // Count(10) waits for 10 bytes; Count(3), set in its place, does not.
    let mut framer = Framer::new(Count::new(10).unwrap());
    framer.push(b"abcde");
    assert_eq!(framer.next_frame(), Ok(None));
    framer.set_delimiter(Count::new(3).unwrap());
    assert_eq!(framer.next_frame(), Ok(Some(&b"abc"[..])));

    // An overflow of the old delimiter is not carried over.
    let mut framer = Framer::new(Packed::<Big>::new()).with_buffer_size(16);
    framer.push(b"\x00\x00\x01\x00a\nb\n");
    assert!(matches!(framer.next_frame(), Err(FrameError::Overflow { .. })));
    let mut framer = framer.read_delimiter(Until::lf());
    assert_eq!(framer.next_frame(), Ok(Some(&b"\x00\x00\x01\x00a"[..])));

    // A half-scanned line is scanned again by the new terminator.
    let mut framer = Framer::new(Until::new("<END>").unwrap());
    framer.push(b"ab\ncd\n<EN");
    assert_eq!(framer.next_frame(), Ok(None));
    let mut framer = framer.read_delimiter(Until::lf());
    assert_eq!(framer.next_frame(), Ok(Some(&b"ab"[..])));
    assert_eq!(framer.next_frame(), Ok(Some(&b"cd"[..])));
    assert_eq!(framer.buffered(), b"<EN");
}
