//! The harness shared by the pants fuzz targets.
//!
//! Every framer target parses a [`Plan`] from the first [`Plan::HEADER`]
//! bytes of the fuzz input (buffer limit, chunk sizes, how bytes are fed, what
//! to do after an error), reads its own selector bytes, and hands the rest of
//! the input to [`Plan::run`] as the byte stream.
//!
//! [`Plan::run`] feeds the stream to a [`Framer`] in chunks and, in lock step,
//! to a reference model: a plain `Vec<u8>` buffer decoded with a *fresh*
//! delimiter on every call (so no incremental scan state), following the
//! contract in the `pants::delimiter` docs (wait for `Needed::Exactly(n)`
//! more bytes, overflow once the need exceeds the limit). After every step it
//! asserts that
//!
//! * the framer returns the same frame (compared by `Debug`) or error as the model,
//! * the framer buffers exactly the bytes the model buffers,
//! * `framer.len() <= limit + chunk.len()` while draining, `< limit` after,
//! * the buffer's memory stays within `max(4096, 4 * (limit + largest chunk))`,
//! * `finish()` reports exactly the bytes left over.
//!
//! Any panic (an assertion here or a panic in pants) is a finding.

use core::fmt::Debug;

use pants::{Decoded, Delimiter, FrameError, Framer, Needed};

/// How the stream is cut into chunks and fed to the framer.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The framer's buffer size, 64..=4096.
    pub buffer_size: usize,
    /// Chunks are 1..=max_chunk bytes (1..=8129).
    max_chunk: usize,
    feed: Feed,
    on_error: OnError,
    /// Call `release_memory` after each drain.
    release: bool,
    /// Drain with the batch path (`for_each_frame`) instead of `next_frame`.
    batch: bool,
    rng: u32,
}

/// How bytes get into the framer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// `Framer::push` (always accepted).
    Push,
    /// `Framer::read_from` (never past the limit).
    ReadFrom,
    /// `Framer::spare_capacity` + `Framer::commit`.
    Spare,
}

/// What the caller does after `next_frame` returned an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    /// `clear()`, then wait for the next chunk (no `next_frame` in between).
    Clear,
    /// `discard(k)` for a pseudo-random `k`, then keep draining.
    Discard,
}

impl Plan {
    /// How many input bytes the plan takes.
    pub const HEADER: usize = 4;

    /// Splits the plan off the front of the fuzz input.
    pub fn parse(data: &[u8]) -> Option<(Plan, &[u8])> {
        let (&[b0, b1, b2, b3], rest) = data.split_first_chunk::<4>()?;
        let buffer_size = 64 + usize::from(u16::from_le_bytes([b0, b1])) % (4096 - 64 + 1);
        let max_chunk = 1 + usize::from(b2) * usize::from(b2) / 8;
        let feed = match b3 & 3 {
            1 => Feed::ReadFrom,
            2 => Feed::Spare,
            _ => Feed::Push,
        };
        let on_error = if b3 & 4 == 0 { OnError::Clear } else { OnError::Discard };
        let release = b3 & 8 != 0;
        let batch = b3 & 0x10 != 0;
        // Never zero: xorshift would stay at zero.
        let rng = (u32::from(b3 >> 4) << 8 | u32::from(b2)).wrapping_mul(2654435761) | 1;
        Some((Plan { buffer_size, max_chunk, feed, on_error, release, batch, rng }, rest))
    }

    fn next_random(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        self.rng
    }

    fn next_chunk(&mut self) -> usize {
        1 + self.next_random() as usize % self.max_chunk
    }

    /// Frames `stream` with the delimiter `make` builds, checking it against a
    /// model that decodes with a fresh delimiter from `make_model` each time
    /// (pass `&make` again for stateless delimiters). Panics on any mismatch.
    pub fn run<D, R>(mut self, stream: &[u8], make: impl Fn() -> D, make_model: impl Fn() -> R)
    where
        D: Delimiter,
        R: Delimiter,
        for<'a> D::Output<'a>: Debug,
        for<'a> R::Output<'a>: Debug,
    {
        let mut framer = Framer::new(make()).with_buffer_size(self.buffer_size);
        let limit = framer.limit();
        assert_eq!(limit, self.buffer_size.max(framer.delimiter().min_buffer()).max(1));
        let mut model = Model { make: make_model, buf: Vec::new(), wait: 0, limit };
        let mut largest_chunk = 0;
        let mut rest = stream;

        while !rest.is_empty() {
            let want = self.next_chunk().min(rest.len());
            let fed = match self.feed {
                Feed::Push => {
                    framer.push(&rest[..want]);
                    want
                }
                Feed::ReadFrom => {
                    let mut source = &rest[..want];
                    let n = framer.read_from(&mut source, want).expect("reading a slice cannot fail");
                    assert!(n > 0, "read_from made no progress: {} buffered, limit {limit}", framer.len());
                    n
                }
                Feed::Spare => {
                    let space = framer.spare_capacity(want);
                    assert!(space.len() >= want, "spare_capacity({want}) gave {}", space.len());
                    space[..want].copy_from_slice(&rest[..want]);
                    framer.commit(want);
                    want
                }
            };
            let chunk = &rest[..fed];
            rest = &rest[fed..];
            model.buf.extend_from_slice(chunk);
            largest_chunk = largest_chunk.max(fed);
            assert!(framer.len() <= limit + fed, "{} buffered after a {fed}-byte chunk, limit {limit}", framer.len());

            loop {
                let got = if self.batch {
                    // Every frame the batch cut, then what stopped it.
                    let mut frames = Vec::new();
                    let result = framer.for_each_frame(|f| frames.push(format!("{f:?}")));
                    for frame in frames {
                        assert_eq!(Ok(Some(frame)), model.next_frame(), "batch and model disagree (limit {limit})");
                    }
                    result.map(|_| None)
                } else {
                    framer.next_frame().map(|frame| frame.map(|f| format!("{f:?}")))
                };
                let expected = model.next_frame();
                assert_eq!(got, expected, "framer and model disagree (limit {limit})");
                assert_eq!(framer.buffered(), &model.buf[..], "framer and model buffer different bytes");
                assert!(framer.len() <= limit + fed, "{} buffered while draining, limit {limit}", framer.len());
                match got {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => match self.on_error {
                        OnError::Clear => {
                            framer.clear();
                            model.clear();
                            break;
                        }
                        OnError::Discard if framer.is_empty() => {
                            model.clear();
                            break;
                        }
                        OnError::Discard => {
                            let k = 1 + self.next_random() as usize % framer.len().max(1);
                            framer.discard(k);
                            model.discard(k);
                        }
                    },
                }
            }
            assert!(framer.len() < limit, "{} bytes left buffered after draining, limit {limit}", framer.len());
            if self.release {
                framer.release_memory();
                assert!(framer.capacity() <= 2 * framer.len().max(4096));
            }
            let bound = 4096usize.max(4 * (limit + largest_chunk));
            assert!(framer.capacity() <= bound, "capacity {} > {bound}", framer.capacity());
        }

        let leftover = framer.len();
        assert_eq!(
            framer.finish(),
            if leftover == 0 { Ok(()) } else { Err(FrameError::Truncated { buffered: leftover }) }
        );
    }
}

/// The reference framer: a `Vec` buffer and a fresh delimiter per decode.
struct Model<M> {
    make: M,
    buf: Vec<u8>,
    wait: usize,
    limit: usize,
}

impl<M, R> Model<M>
where
    M: Fn() -> R,
    R: Delimiter,
    for<'a> R::Output<'a>: Debug,
{
    fn check(&self) -> Result<(), FrameError> {
        if self.wait > self.limit {
            Err(FrameError::Overflow { limit: self.limit, needed: self.wait })
        } else {
            Ok(())
        }
    }

    fn next_frame(&mut self) -> Result<Option<String>, FrameError> {
        let len = self.buf.len();
        if len < self.wait {
            return self.check().map(|()| None);
        }
        let mut delimiter = (self.make)();
        let (frame, consumed) = match delimiter.decode(&self.buf)? {
            Decoded::Frame { frame, consumed } => (format!("{frame:?}"), consumed),
            Decoded::Incomplete(needed) => {
                let more = match needed {
                    Needed::Exactly(n) => {
                        assert!(n > 0, "a built-in delimiter said it needs exactly 0 more bytes");
                        n
                    }
                    Needed::Unknown => 1,
                };
                self.wait = len.saturating_add(more);
                return self.check().map(|()| None);
            }
        };
        assert!((1..=len).contains(&consumed), "a built-in delimiter consumed {consumed} of {len} bytes");
        self.buf.drain(..consumed);
        self.wait = 0;
        Ok(Some(frame))
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.wait = 0;
    }

    fn discard(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.wait = 0;
    }
}

/// A byte-at-a-time terminator search, the model for `Until`.
#[derive(Debug, Clone)]
pub struct NaiveUntil(pub Vec<u8>);

impl Delimiter for NaiveUntil {
    type Output<'a> = &'a [u8];

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
        let n = self.0.len();
        Ok(match (0..buf.len()).find(|&i| buf[i..].starts_with(&self.0)) {
            Some(at) => Decoded::Frame { frame: &buf[..at], consumed: at + n },
            None => Decoded::Incomplete(Needed::Unknown),
        })
    }
}

/// Takes `n` bytes off the front of `data`, if there are that many.
pub fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = data.split_at_checked(n)?;
    *data = tail;
    Some(head)
}

/// Takes one byte off the front of `data`.
pub fn byte(data: &mut &[u8]) -> Option<u8> {
    take(data, 1).map(|b| b[0])
}

/// `#[derive(NetStruct)]` types for the `packed` and `netstruct_decode` targets.
pub mod types {
    use pants::{netstruct::Pad, NetStruct};

    /// A little-endian struct nested in the big-endian [`Message`].
    #[derive(NetStruct, Debug, PartialEq)]
    #[netstruct(little_endian)]
    pub struct Inner<'a> {
        /// A little-endian number.
        pub tag: u16,
        /// A signed little-endian length prefix.
        #[netstruct(len = i16)]
        pub name: &'a str,
        /// Strictly 0 or 1.
        pub on: bool,
    }

    /// Every field kind: each prefix width, signed and unsigned, borrowed and
    /// owned byte strings, a nested struct, bools, arrays, floats, padding.
    #[derive(NetStruct, Debug)]
    pub struct Message<'a> {
        /// Bytes 0..4.
        pub id: u32,
        /// Bytes 4..6: skipped when read, zeros when written.
        pub pad: Pad<2>,
        /// A signed byte.
        pub kind: i8,
        /// Fixed bytes.
        pub flags: [u8; 3],
        /// `B$`.
        #[netstruct(len = u8)]
        pub short: &'a [u8],
        /// `b$`, UTF-8.
        #[netstruct(len = i8)]
        pub tiny: &'a str,
        /// `H$`, UTF-8.
        #[netstruct(len = u16)]
        pub text: &'a str,
        /// `i$`, copied.
        #[netstruct(len = i32)]
        pub owned: Vec<u8>,
        /// Nested, in its own byte order.
        pub inner: Inner<'a>,
        /// `Q$`: a length that may not fit any buffer.
        #[netstruct(len = u64)]
        pub blob: &'a [u8],
        /// `q$`, copied, UTF-8.
        #[netstruct(len = i64)]
        pub label: String,
        /// Strictly 0 or 1.
        pub ok: bool,
        /// An array of numbers.
        pub scores: [i16; 3],
        /// A float (any bit pattern, NaNs included).
        pub ratio: f64,
        /// `I$` last, so a frame ends with variable bytes.
        #[netstruct(len = u32)]
        pub tail: &'a [u8],
    }

    /// The message of the benchmarks: one `u32`-prefixed body.
    #[derive(NetStruct, Debug, PartialEq)]
    pub struct Body<'a> {
        /// `I$`.
        #[netstruct(len = u32)]
        pub body: &'a [u8],
    }

    /// `max` limits: on a nested struct's field, on an owned string after an
    /// unlimited one, on a signed prefix (a constant), with fixed fields
    /// after each limited prefix, so a framer must decode at each prefix.
    #[derive(NetStruct, Debug, PartialEq)]
    pub struct Limited<'a> {
        /// Byte 0.
        pub head: u8,
        /// Nested, with its own limit.
        pub inner: LimitedInner<'a>,
        /// Unlimited, before a limited one.
        #[netstruct(len = u8)]
        pub free: &'a [u8],
        /// `H$`, at most 40 bytes, UTF-8.
        #[netstruct(len = u16, max = 40)]
        pub name: String,
        /// Strictly 0 or 1.
        pub on: bool,
        /// `i$`, at most `LIMITED_DATA_MAX` bytes; negative is still an error.
        #[netstruct(len = i32, max = LIMITED_DATA_MAX)]
        pub data: &'a [u8],
        /// Fixed bytes after the last limit.
        pub tail: u32,
    }

    /// The `max` of [`Limited::data`].
    pub const LIMITED_DATA_MAX: usize = 300;

    /// Nested in [`Limited`], little-endian.
    #[derive(NetStruct, Debug, PartialEq)]
    #[netstruct(little_endian)]
    pub struct LimitedInner<'a> {
        /// A little-endian number.
        pub tag: u16,
        /// At most 3 bytes.
        #[netstruct(len = u8, max = 3)]
        pub code: &'a [u8],
        /// After the limited prefix.
        pub flags: [u8; 2],
    }

    /// No lifetime, no byte strings: a fixed-size struct.
    #[derive(NetStruct, Debug, PartialEq)]
    #[netstruct(little_endian)]
    pub struct Plain {
        /// Byte 0.
        pub a: u8,
        /// Bytes 1..9.
        pub b: [u32; 2],
        /// Byte 9.
        pub pad: Pad<1>,
        /// Byte 10.
        pub c: bool,
        /// Bytes 11..19.
        pub d: i64,
    }
}

/// The shared body of the regex targets: input is plan, selector, [pattern],
/// stream. Selector bits 0-3 pick one of `patterns` (each with an alphabet
/// that makes matches common), or (values past the list) a pattern of
/// 1..=16 input bytes; bit 7 maps the stream onto the pattern's alphabet.
/// Patterns that are invalid or can match empty must be refused by `build`
/// (never a built-in one); `matches_empty` checks an accepted one.
pub fn run_regex_target<D>(
    data: &[u8],
    patterns: &[(&str, &[u8])],
    build: impl Fn(&str) -> Result<D, pants::DelimiterError>,
    matches_empty: impl Fn(&D) -> bool,
) where
    D: Delimiter + Clone,
    for<'a> D::Output<'a>: Debug,
{
    use pants::DelimiterError;
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    let index = usize::from(selector & 0xf);
    let (pattern, alphabet): (String, Vec<u8>) = match patterns.get(index) {
        Some(&(p, a)) => (p.to_owned(), a.to_vec()),
        None => {
            let Some(bytes) = take(&mut data, 1 + usize::from(selector >> 4 & 7) * 2) else { return };
            let Ok(p) = core::str::from_utf8(bytes) else { return };
            let mut alphabet = bytes.to_vec();
            alphabet.push(b'x');
            (p.to_owned(), alphabet)
        }
    };
    let delimiter = match build(&pattern) {
        Ok(d) => d,
        Err(DelimiterError::EmptyMatch(_) | DelimiterError::InvalidRegex(_)) => {
            assert!(index >= patterns.len(), "built-in pattern {pattern:?} refused");
            return;
        }
        Err(e) => panic!("unexpected error {e:?}"),
    };
    assert!(!matches_empty(&delimiter), "{pattern:?} matches the empty string but was accepted");
    let stream: Vec<u8> = if selector & 0x80 != 0 {
        data.iter().map(|&b| alphabet[usize::from(b) % alphabet.len()]).collect()
    } else {
        data.to_vec()
    };
    plan.run(&stream, || delimiter.clone(), || delimiter.clone());
}
