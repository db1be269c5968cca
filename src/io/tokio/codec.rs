//! pants' delimiters and encoders as a tokio-util [`Decoder`] and
//! [`Encoder`], for code built on [`Framed`](tokio_util::codec::Framed).

use ::bytes::{Buf, BytesMut};
use ::tokio_util::codec::{Decoder, Encoder};

use crate::delimiter::{Array, Count, Decoded, Delimiter, Fixed, Needed, Packed, Raw, Until};
use crate::encode::Encode;
use crate::error::FrameError;
use crate::framer::DEFAULT_BUFFER_SIZE;
use crate::io::{ReadError, WriteError};
use crate::netstruct::NetStruct;

/// A pants delimiter (and encoder) as a tokio-util codec: an existing
/// [`Framed`](tokio_util::codec::Framed) user adopts pants' framing in one
/// line, `Framed::new(socket, Codec::new(Until::lf()))`.
///
/// A [`Decoder`] hands out owned items, so `Codec<D>` decodes with the
/// delimiters whose frames can be owned ([`OwnedFrames`]): byte-string
/// frames ([`Until`], [`Count`], [`Raw`], `RegexSearch`) become [`BytesMut`]
/// cut out of the read buffer without a copy, [`Packed<T>`] frames of a
/// [`NetStruct`] without borrowed fields become `T`. For borrowed frames
/// (a `NetStruct` with `&str` fields, `RegexMatch` captures) use the lending
/// [`Reader`](super::Reader) instead. It encodes every item its delimiter
/// can [`Encode`] (each frame is encoded into a scratch buffer kept by the
/// codec, then copied into the write buffer).
///
/// The buffer limit is the [`Framer`](crate::Framer)'s: the default
/// [`DEFAULT_BUFFER_SIZE`], raised to the delimiter's
/// [`min_buffer`](Delimiter::min_buffer); once the read buffer holds that
/// much without a whole frame, or a length prefix announces more, decoding
/// fails with [`FrameError::Overflow`] (so `Framed` stops reading; it
/// reads into its own buffer, which passes the limit by at most one read).
/// At the end of the input, bytes that never became a frame are
/// [`FrameError::Truncated`].
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use pants::{delimiter::Until, io::tokio::Codec};
/// use tokio_util::codec::Framed;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (client, server) = tokio::io::duplex(1024);
/// let mut client = Framed::new(client, Codec::new(Until::lf()));
/// let mut server = Framed::new(server, Codec::new(Until::lf()));
///
/// client.send(b"PING").await?; // encoded by `Until`: "PING\n"
/// let line = server.next().await.unwrap()?; // a BytesMut cut from the read buffer
/// assert_eq!(&line[..], b"PING");
/// server.send(b"PONG").await?;
/// assert_eq!(&client.next().await.unwrap()?[..], b"PONG");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Codec<D> {
    delimiter: D,
    buffer_size: usize,
    /// Do not decode again before this many bytes are buffered (what the
    /// delimiter said it needs), as in the framer.
    wait_for: usize,
    /// Where items are encoded before they are copied into the write buffer.
    scratch: Vec<u8>,
}

impl<D: Delimiter> Codec<D> {
    /// A codec with `delimiter` and the default buffer limit.
    pub fn new(mut delimiter: D) -> Self {
        delimiter.reset();
        Codec { delimiter, buffer_size: DEFAULT_BUFFER_SIZE, wait_for: 0, scratch: Vec::new() }
    }

    /// Sets the buffer limit, builder style (see
    /// [`Framer::with_buffer_size`](crate::Framer::with_buffer_size)).
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.buffer_size = buffer_size;
        self
    }

    /// Sets the buffer limit.
    pub fn set_buffer_size(&mut self, buffer_size: usize) {
        self.buffer_size = buffer_size;
    }

    /// The buffer limit as set.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// The effective limit: the buffer size raised to the delimiter's
    /// [`min_buffer`](Delimiter::min_buffer), and at least 1.
    pub fn limit(&self) -> usize {
        self.buffer_size.max(self.delimiter.min_buffer()).max(1)
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &D {
        &self.delimiter
    }

    /// Switches to a delimiter of another type, keeping the limit: with
    /// [`Framed::map_codec`](tokio_util::codec::Framed::map_codec), the
    /// bytes `Framed` has buffered are cut with the new delimiter.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use pants::{delimiter::{Count, Until}, io::tokio::Codec};
    /// use tokio_util::codec::FramedRead;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut lines = FramedRead::new(&b"SIZE 3\nabc"[..], Codec::new(Until::lf()));
    /// assert_eq!(&lines.next().await.unwrap()?[..], b"SIZE 3");
    /// let mut body = lines.map_decoder(|codec| codec.read_delimiter(Count::new(3).unwrap()));
    /// assert_eq!(&body.next().await.unwrap()?[..], b"abc");
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_delimiter<D2: Delimiter>(self, delimiter: D2) -> Codec<D2> {
        let mut codec = Codec::new(delimiter).with_buffer_size(self.buffer_size);
        codec.scratch = self.scratch;
        codec
    }

    /// Replaces the delimiter with another of the same type.
    pub fn set_delimiter(&mut self, mut delimiter: D) {
        delimiter.reset();
        self.delimiter = delimiter;
        self.wait_for = 0;
    }

    fn overflow_check(&self, needed: usize) -> Result<(), FrameError> {
        let limit = self.limit();
        if needed > limit {
            Err(FrameError::Overflow { limit, needed })
        } else {
            Ok(())
        }
    }
}

impl<D: OwnedFrames> Decoder for Codec<D> {
    type Item = D::Item;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D::Item>, ReadError> {
        let len = src.len();
        if len < self.wait_for {
            self.overflow_check(self.wait_for)?;
            return Ok(None);
        }
        // What the delimiter found, kept without a borrow of `src`.
        let found = match self.delimiter.decode(&src[..])? {
            Decoded::Frame { frame, consumed } => {
                if consumed == 0 {
                    return Err(FrameError::NoProgress.into());
                }
                let Some(frame_bytes) = src.get(..consumed) else {
                    return Err(FrameError::OverConsumed { consumed, buffered: len }.into());
                };
                Ok((D::detach(frame, frame_bytes), consumed))
            }
            Decoded::Incomplete(needed) => Err(needed),
        };
        match found {
            Ok((detached, consumed)) => {
                self.wait_for = 0;
                Ok(Some(D::attach(detached, src.split_to(consumed))))
            }
            Err(needed) => {
                let more = match needed {
                    Needed::Exactly(n) => n.max(1),
                    Needed::Unknown => 1,
                };
                self.wait_for = len.saturating_add(more);
                self.overflow_check(self.wait_for)?;
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<D::Item>, ReadError> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated { buffered: src.len() }.into()),
        }
    }
}

impl<D: Encode<I>, I> Encoder<I> for Codec<D> {
    type Error = WriteError;

    fn encode(&mut self, item: I, dst: &mut BytesMut) -> Result<(), WriteError> {
        self.scratch.clear();
        self.delimiter.encode(item, &mut self.scratch)?;
        dst.extend_from_slice(&self.scratch);
        Ok(())
    }
}

/// A delimiter whose frames can be handed out owned, for [`Codec`]'s
/// [`Decoder`]: in two steps, because the frame borrows the read buffer
/// that the codec then cuts.
///
/// Implemented for the built-in delimiters whose frames can be owned; implement
/// it for your own delimiter to use it in a [`Codec`]:
///
/// ```
/// use bytes::BytesMut;
/// use pants::{io::tokio::OwnedFrames, Decoded, Delimiter, FrameError, Needed};
///
/// /// A frame is one byte: its value.
/// struct Byte;
/// impl Delimiter for Byte {
///     type Output<'a> = u8;
///     fn decode(&mut self, buf: &[u8]) -> Result<Decoded<u8>, FrameError> {
///         Ok(match buf.first() {
///             Some(&b) => Decoded::Frame { frame: b, consumed: 1 },
///             None => Decoded::Incomplete(Needed::Exactly(1)),
///         })
///     }
/// }
/// impl OwnedFrames for Byte {
///     type Item = u8;
///     type Detached = u8;
///     fn detach(frame: u8, _consumed: &[u8]) -> u8 {
///         frame
///     }
///     fn attach(frame: u8, _consumed: BytesMut) -> u8 {
///         frame
///     }
/// }
/// ```
pub trait OwnedFrames: Delimiter {
    /// The owned frame the codec hands out.
    type Item;
    /// What [`detach`](OwnedFrames::detach) keeps of a frame: no borrow of
    /// the buffer (a range of it, or the frame's value).
    type Detached;

    /// Step one, while the frame still borrows the buffer: keep what the
    /// item needs. `consumed` is the bytes the frame used up, at the front
    /// of the buffer.
    fn detach(frame: Self::Output<'_>, consumed: &[u8]) -> Self::Detached;

    /// Step two: the item, given those bytes, now cut off the read buffer
    /// (a [`BytesMut`] sharing its memory, no copy).
    fn attach(detached: Self::Detached, consumed: BytesMut) -> Self::Item;
}

/// Where a byte-string frame lies within the bytes it consumed: the
/// [`OwnedFrames::Detached`] of the byte-string delimiters, for your own too
/// ([`SliceAt::of`] in `detach`, [`SliceAt::cut`] in `attach`).
#[derive(Debug)]
pub enum SliceAt {
    /// At `start`, `len` bytes long: cut out without a copy.
    Within {
        /// Offset from the front of the consumed bytes.
        start: usize,
        /// The frame's length.
        len: usize,
    },
    /// Not within them (a delimiter returning other bytes): copied.
    Copied(BytesMut),
}

impl SliceAt {
    /// Where `frame` lies within `consumed` ([`OwnedFrames::detach`] for a
    /// byte-string frame); a copy of it if it is not within them.
    #[inline]
    pub fn of(frame: &[u8], consumed: &[u8]) -> SliceAt {
        // Addresses compared as numbers: no pointer is made from them.
        let start = (frame.as_ptr() as usize).wrapping_sub(consumed.as_ptr() as usize);
        if start <= consumed.len() && frame.len() <= consumed.len() - start {
            SliceAt::Within { start, len: frame.len() }
        } else {
            SliceAt::Copied(BytesMut::from(frame))
        }
    }

    /// The frame cut out of `consumed` ([`OwnedFrames::attach`] for a
    /// byte-string frame), without a copy.
    #[inline]
    pub fn cut(self, mut consumed: BytesMut) -> BytesMut {
        match self {
            SliceAt::Within { start, len } => {
                consumed.truncate(start + len);
                consumed.advance(start);
                consumed
            }
            SliceAt::Copied(bytes) => bytes,
        }
    }
}

/// Byte-string delimiters: frames become [`BytesMut`] without a copy.
macro_rules! slice_frames {
    ($($(#[$attr:meta])* $delimiter:ty),* $(,)?) => {$(
        $(#[$attr])*
        impl OwnedFrames for $delimiter {
            type Item = BytesMut;
            type Detached = SliceAt;

            #[inline]
            fn detach(frame: &[u8], consumed: &[u8]) -> SliceAt {
                SliceAt::of(frame, consumed)
            }

            #[inline]
            fn attach(at: SliceAt, consumed: BytesMut) -> BytesMut {
                at.cut(consumed)
            }
        }
    )*};
}

slice_frames!(
    /// Lines (the bytes before the terminator) as [`BytesMut`], without a copy.
    Until,
    /// Frames of the count as [`BytesMut`], without a copy.
    Count,
    /// Whatever was buffered, as [`BytesMut`], without a copy.
    Raw,
);

#[cfg(feature = "regex")]
slice_frames!(
    /// The bytes before each match as [`BytesMut`], without a copy.
    crate::delimiter::RegexSearch,
);

/// `[u8; N]` frames, copied out (N bytes).
impl<const N: usize> OwnedFrames for Array<N> {
    type Item = [u8; N];
    type Detached = [u8; N];

    #[inline]
    fn detach(frame: &[u8; N], _consumed: &[u8]) -> [u8; N] {
        *frame
    }

    #[inline]
    fn attach(frame: [u8; N], _consumed: BytesMut) -> [u8; N] {
        frame
    }
}

/// A [`NetStruct`] without borrowed fields (`T::Frame<'a>` is `T`) as `T`.
///
/// ```
/// use futures_util::StreamExt;
/// use pants::{delimiter::Packed, io::tokio::Codec, NetStruct};
/// use tokio_util::codec::FramedRead;
///
/// #[derive(NetStruct, Debug, PartialEq)]
/// struct Score {
///     player: u8,
///     points: u32,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut scores = FramedRead::new(&b"\x01\x00\x00\x00\x07"[..], Codec::new(Packed::<Score>::new()));
/// assert_eq!(scores.next().await.unwrap()?, Score { player: 1, points: 7 });
/// assert!(scores.next().await.is_none());
/// # Ok(())
/// # }
/// ```
impl<T> OwnedFrames for Packed<T>
where
    T: for<'a> NetStruct<Frame<'a> = T>,
{
    type Item = T;
    type Detached = T;

    #[inline]
    fn detach(frame: T, _consumed: &[u8]) -> T {
        frame
    }

    #[inline]
    fn attach(frame: T, _consumed: BytesMut) -> T {
        frame
    }
}

/// A zerocopy struct, cloned out of the buffer.
impl<T> OwnedFrames for Fixed<T>
where
    T: zerocopy::FromBytes + zerocopy::KnownLayout + zerocopy::Immutable + zerocopy::Unaligned + Clone + 'static,
{
    type Item = T;
    type Detached = T;

    #[inline]
    fn detach(frame: &T, _consumed: &[u8]) -> T {
        frame.clone()
    }

    #[inline]
    fn attach(frame: T, _consumed: BytesMut) -> T {
        frame
    }
}

/// A binrw type, which is owned already.
#[cfg(feature = "binrw")]
impl<T> OwnedFrames for crate::delimiter::Binrw<T>
where
    crate::delimiter::Binrw<T>: for<'a> Delimiter<Output<'a> = T>,
{
    type Item = T;
    type Detached = T;

    #[inline]
    fn detach(frame: T, _consumed: &[u8]) -> T {
        frame
    }

    #[inline]
    fn attach(frame: T, _consumed: BytesMut) -> T {
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_without_copy() {
        let mut codec = Codec::new(Until::crlf());
        let mut src = BytesMut::from(&b"one\r\ntwo\r\nth"[..]);
        let base = src.as_ptr() as usize;
        let one = codec.decode(&mut src).unwrap().unwrap();
        assert_eq!(&one[..], b"one");
        assert_eq!(one.as_ptr() as usize, base);
        let two = codec.decode(&mut src).unwrap().unwrap();
        assert_eq!((&two[..], two.as_ptr() as usize), (&b"two"[..], base + 5));
        assert!(codec.decode(&mut src).unwrap().is_none());
        assert!(matches!(codec.decode_eof(&mut src), Err(ReadError::Frame(FrameError::Truncated { buffered: 2 }))));
    }

    #[test]
    fn overflow_at_the_limit() {
        let mut codec = Codec::new(Until::lf()).with_buffer_size(4);
        let mut src = BytesMut::from(&b"abc"[..]);
        assert!(codec.decode(&mut src).unwrap().is_none());
        src.extend_from_slice(b"d");
        assert!(matches!(codec.decode(&mut src), Err(ReadError::Frame(FrameError::Overflow { limit: 4, needed: 5 }))));
        // Sticky.
        assert!(matches!(codec.decode(&mut src), Err(ReadError::Frame(FrameError::Overflow { .. }))));
    }

    #[test]
    fn frames_not_in_the_buffer_are_copied() {
        struct Constant;
        impl Delimiter for Constant {
            type Output<'a> = &'a [u8];
            fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
                Ok(match buf.is_empty() {
                    true => Decoded::Incomplete(Needed::Unknown),
                    false => Decoded::Frame { frame: b"static", consumed: 1 },
                })
            }
        }
        impl OwnedFrames for Constant {
            type Item = BytesMut;
            type Detached = SliceAt;
            fn detach(frame: &[u8], consumed: &[u8]) -> SliceAt {
                SliceAt::of(frame, consumed)
            }
            fn attach(at: SliceAt, consumed: BytesMut) -> BytesMut {
                at.cut(consumed)
            }
        }
        let mut codec = Codec::new(Constant);
        let mut src = BytesMut::from(&b"xy"[..]);
        assert_eq!(&codec.decode(&mut src).unwrap().unwrap()[..], b"static");
        assert_eq!(&src[..], b"y");
    }

    #[test]
    fn arrays_and_fixed_structs_are_copied_out() {
        use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

        #[derive(FromBytes, KnownLayout, Immutable, Unaligned, Clone, Debug, PartialEq)]
        #[repr(C)]
        struct Pair {
            a: u8,
            b: u8,
        }

        let mut src = BytesMut::from(&b"abcde"[..]);
        let mut arrays = Codec::new(Array::<2>);
        assert_eq!(arrays.decode(&mut src).unwrap(), Some(*b"ab"));
        let mut pairs = arrays.read_delimiter(Fixed::<Pair>::new());
        assert_eq!(pairs.decode(&mut src).unwrap(), Some(Pair { a: b'c', b: b'd' }));
        assert_eq!(pairs.decode(&mut src).unwrap(), None);
        assert!(matches!(pairs.decode_eof(&mut src), Err(ReadError::Frame(FrameError::Truncated { buffered: 1 }))));
    }

    #[test]
    fn encoder_failure_writes_nothing() {
        let mut codec = Codec::new(Count::new(3).unwrap());
        let mut dst = BytesMut::new();
        codec.encode(b"abc", &mut dst).unwrap();
        assert!(matches!(codec.encode(b"ab", &mut dst), Err(WriteError::Pack(_))));
        assert_eq!(&dst[..], b"abc");
    }
}
