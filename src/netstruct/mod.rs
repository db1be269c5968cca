//! Variable-length binary structs, wire-compatible with Python's `netstruct`.
//!
//! Python's [`netstruct`](https://pypi.org/project/netstruct/) extends
//! `struct` formats with `$`: the integer before it is the length of the byte
//! string after it, so `"H$"` is "a big-endian u16 length, then that many
//! bytes". Pants (the Python library) accepted a `NetStruct` as a
//! `read_delimiter`. Here the format is a Rust struct:
//!
//! ```
//! use pants::{delimiter::Packed, Framer, NetStruct};
//!
//! /// netstruct format `"!IH$5b"`.
//! #[derive(NetStruct, Debug, PartialEq)]
//! struct Greeting<'a> {
//!     id: u32,
//!     #[netstruct(len = u16)]
//!     name: &'a str,
//!     scores: [i8; 5],
//! }
//!
//! let hello = Greeting { id: 7, name: "pants", scores: [1, -2, 3, -4, 5] };
//! let bytes = hello.to_bytes()?;
//! assert_eq!(bytes.len(), Greeting::MIN_SIZE + 5);
//!
//! let mut framer = Framer::new(Packed::<Greeting>::new());
//! framer.push(&bytes);
//! assert_eq!(framer.next_frame()?, Some(hello));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Field types
//!
//! | Rust field | netstruct | notes |
//! |---|---|---|
//! | `u8` `u16` `u32` `u64`, `i8` .. `i64` | `B H I Q`, `b h i q` (also `L`/`l` = 4 bytes) | |
//! | `f32`, `f64` | `f`, `d` | |
//! | `bool` | `?` | strict: a byte other than 0 or 1 is [`FrameError::InvalidBool`](crate::FrameError) |
//! | `[u8; N]` | `Ns` | fixed bytes, kept as sent (padding included) |
//! | `[T; N]` for a number type `T` | `Nb`, `NH`, ... | |
//! | [`Pad<N>`] | `Nx` | skipped when read, zeros when written |
//! | another `#[derive(NetStruct)]` type | its format, inlined | in its own byte order |
//! | `&'a [u8]`, `&'a str`, `Vec<u8>`, `String` with `#[netstruct(len = L)]` | `L$` | `L` is any integer type above |
//! | the same with `#[netstruct(len = L, max = N)]` | `L$` | at most `N` bytes: see [Length limits](#length-limits) |
//!
//! Borrowed fields point into the receive buffer; `str` and `String`
//! fields must be UTF-8 ([`FrameError::InvalidUtf8`](crate::FrameError)).
//! A negative length (signed `L`) is [`FrameError::NegativeLength`](crate::FrameError):
//! netstruct slices from the end of the buffer there, pants refuses.
//!
//! Byte order is network order (big-endian, netstruct `!` or `>`) unless the
//! struct says `#[netstruct(little_endian)]` (netstruct `<`) or
//! `#[netstruct(native_endian)]` (netstruct `=`: this host's order,
//! [`NativeEndian`], with standard sizes). netstruct `@` also pads each field
//! to its C alignment (within each `$`-separated segment); pants never
//! inserts padding, so a `@` format is written as `native_endian` with the
//! padding spelled out as [`Pad<N>`] fields: `"@BI$"` is `b: u8`,
//! `_pad: Pad<3>`, then a `u32`-prefixed string. Native layouts only fit
//! peers on the same kind of machine; protocols between machines use `!`.
//!
//! # Incremental decoding
//!
//! [`NetStruct::decode`] on a partial buffer returns
//! [`Needed::Exactly(n)`](crate::Needed::Exactly) with the same `n` that
//! netstruct's `iter_unpack` yields: the fixed size of the whole struct plus
//! every length learnt so far, minus what is buffered. The
//! [`Framer`](crate::Framer) waits for exactly that many bytes before decoding
//! again, and a length that cannot fit under its buffer limit is an overflow
//! error as soon as the prefix is read, before anything is buffered for it.
//! In a struct with a `max` field the count stops at the end of the next
//! limited prefix (the next step of decoding), so that the limit is checked
//! as soon as that prefix is in.
//!
//! # Length limits
//!
//! The buffer limit bounds a whole frame. To bound one field, give it a
//! `max`: `#[netstruct(len = u32, max = 1048576)]`, or any constant
//! expression of an integer type, `#[netstruct(len = u32, max = MAX_VALUE)]`.
//! A prefix announcing more than `max` bytes is
//! [`FrameError::FieldTooLong`], naming the
//! field, as soon as the prefix is read: a [`Framer`](crate::Framer) reports
//! it once the bytes up to and including the prefix are buffered, even when
//! fixed fields follow the byte string, and never waits for the body. It is
//! sticky, like every decode error. Encoding a value longer than `max` is
//! [`PackError::TooLong`] (with the field's `max`),
//! so a pants peer never sends what it would refuse. A nested struct keeps
//! its own limits. The check is one comparison per limited field, right
//! after its prefix; fields without `max` cost nothing more. `max` without
//! `len`, a negative `max`, or one larger than the prefix type can hold, does
//! not compile.
//!
//! ```
//! use pants::{delimiter::Packed, FrameError, Framer, NetStruct, PackError};
//!
//! const MAX_VALUE: usize = 1 << 20;
//!
//! #[derive(NetStruct, Debug)]
//! struct Put<'a> {
//!     id: u32,
//!     #[netstruct(len = u32, max = MAX_VALUE)]
//!     value: &'a [u8],
//!     flags: u8,
//! }
//!
//! let mut framer = Framer::new(Packed::<Put>::new()).with_buffer_size(16 << 20);
//! // The id, then a prefix announcing one byte more than the limit; no body.
//! framer.push(&7u32.to_be_bytes());
//! assert_eq!(framer.next_frame().map(|put| put.is_some()), Ok(false));
//! framer.push(&(MAX_VALUE as u32 + 1).to_be_bytes());
//! let error = FrameError::FieldTooLong { field: "value", len: MAX_VALUE as u64 + 1, max: MAX_VALUE as u64 };
//! assert_eq!(framer.next_frame().map(|put| put.is_some()), Err(error.clone()));
//! assert_eq!(framer.len(), 8, "nothing consumed: the error is sticky");
//! assert_eq!(error.to_string(), "field `value` announces 1048577 bytes, more than its limit of 1048576");
//!
//! // A pants peer cannot send it either.
//! let big = vec![0; MAX_VALUE + 1];
//! let put = Put { id: 7, value: &big, flags: 0 };
//! assert_eq!(put.to_bytes(), Err(PackError::TooLong { field: "value", len: MAX_VALUE + 1, max: MAX_VALUE as u64 }));
//! ```

mod field;
mod sink;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

pub use field::{read_prefixed, write_prefixed, ByteString, Field, LenPrefix, Number, Reader, Stop};
pub use sink::{Sink, SliceSink};

use crate::delimiter::{Decoded, Needed};
use crate::error::{FrameError, PackError};

/// A variable-length binary struct, usually made with
/// [`#[derive(NetStruct)]`](derive@crate::NetStruct); see the [module docs](self).
///
/// Frame with [`delimiter::Packed<T>`](crate::delimiter::Packed), send with
/// `write_packed` (with the `alloc` feature, every `NetStruct` is `Pack`).
pub trait NetStruct {
    /// This type with its borrowed fields tied to a buffer of lifetime `'a`
    /// (`Msg<'a>` for `Msg<'x>`; `Self` for a type that borrows nothing).
    type Frame<'a>: Field<'a> + NetStruct;

    /// The fixed part of the encoding: every field's size, with each byte
    /// string counted as its length prefix alone (netstruct `minimum_size`).
    const MIN_SIZE: usize;

    /// Decodes one struct from the front of `buf`, borrowing from it.
    ///
    /// ```
    /// use pants::{Decoded, NetStruct, Needed};
    ///
    /// #[derive(NetStruct, Debug, PartialEq)]
    /// struct Line<'a> {
    ///     #[netstruct(len = u8)]
    ///     text: &'a [u8],
    /// }
    ///
    /// assert_eq!(Line::decode(b"\x03ab")?, Decoded::Incomplete(Needed::Exactly(1)));
    /// assert_eq!(Line::decode(b"\x03abc!")?, Decoded::Frame { frame: Line { text: b"abc" }, consumed: 4 });
    /// # Ok::<(), pants::FrameError>(())
    /// ```
    fn decode<'a>(buf: &'a [u8]) -> Result<Decoded<Self::Frame<'a>>, FrameError> {
        let mut reader = Reader::new(buf, Self::MIN_SIZE);
        if <Self::Frame<'a> as Field<'a>>::CHECK_AT != usize::MAX {
            reader.check_ahead(<Self::Frame<'a> as Field<'a>>::CHECK_AT);
        }
        match <Self::Frame<'a> as Field<'a>>::read::<BigEndian>(&mut reader, "") {
            Ok(frame) => Ok(Decoded::Frame { frame, consumed: reader.position() }),
            Err(Stop::Short) => Ok(Decoded::Incomplete(Needed::Exactly(reader.missing()))),
            Err(Stop::Invalid(error)) => Err(error),
        }
    }

    /// The number of bytes the encoding takes.
    fn encoded_len(&self) -> usize;

    /// Writes the encoding, length prefixes included, to `out` (what the
    /// derive implements; `encode` (with `alloc`) and
    /// [`encode_into`](NetStruct::encode_into) are built on it). A byte
    /// string too long for its prefix is [`PackError::TooLong`]; bytes
    /// before it may have been written.
    fn write_to<S: Sink + ?Sized>(&self, out: &mut S) -> Result<(), PackError>;

    /// Appends the encoding to `out`, length prefixes included. A byte string
    /// too long for its prefix is [`PackError::TooLong`], and then nothing
    /// is appended.
    #[cfg(feature = "alloc")]
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), PackError> {
        let start = out.len();
        let result = self.write_to(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Writes the encoding to the front of `buf` and returns its length:
    /// the write side without an allocator. A buffer shorter than
    /// [`encoded_len`](NetStruct::encoded_len) is
    /// [`PackError::BufferTooSmall`] (checked first, so nothing is written;
    /// only a hand-written `Field` whose `encoded_len` undercounts what it
    /// writes is caught afterwards, with `buf` written up to its end).
    ///
    /// ```
    /// use pants::{NetStruct, PackError};
    ///
    /// #[derive(NetStruct)]
    /// struct Reading<'a> {
    ///     sensor: u8,
    ///     #[netstruct(len = u8)]
    ///     unit: &'a str,
    /// }
    ///
    /// let mut buf = [0u8; 8];
    /// let n = Reading { sensor: 3, unit: "mV" }.encode_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"\x03\x02mV");
    /// assert_eq!(
    ///     Reading { sensor: 3, unit: "millivolt" }.encode_into(&mut buf),
    ///     Err(PackError::BufferTooSmall { needed: 11, available: 8 })
    /// );
    /// # Ok::<(), PackError>(())
    /// ```
    fn encode_into(&self, buf: &mut [u8]) -> Result<usize, PackError> {
        let needed = self.encoded_len();
        if needed > buf.len() {
            return Err(PackError::BufferTooSmall { needed, available: buf.len() });
        }
        let mut sink = SliceSink::new(buf);
        self.write_to(&mut sink)?;
        match sink.overflowed() {
            // A `Field` whose `encoded_len` undercounts what it writes.
            // Bytes up to the end of `buf` were written.
            true => Err(PackError::BufferTooSmall { needed: sink.written(), available: sink.capacity() }),
            false => Ok(sink.written()),
        }
    }

    /// The encoding as a new vector.
    ///
    /// ```
    /// use pants::NetStruct;
    ///
    /// #[derive(NetStruct)]
    /// struct Pair { a: u8, b: u16 }
    ///
    /// assert_eq!(Pair { a: 1, b: 2 }.to_bytes()?, [1, 0, 2]);
    /// # Ok::<(), pants::PackError>(())
    /// ```
    #[cfg(feature = "alloc")]
    fn to_bytes(&self) -> Result<Vec<u8>, PackError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Whether `frame` (a value of this struct borrowing any buffer, as
    /// decoded) is this value on the wire: both encode to the same bytes.
    /// The comparison a test needs between an expected value and a decoded
    /// frame, even where their types differ only in lifetime and no
    /// `PartialEq` connects them (in code generic over the struct, where
    /// `T` and `T::Frame<'a>` are different types to the compiler). Two
    /// values that cannot be encoded (a field too long) are not equal.
    ///
    /// ```
    /// use core::fmt::Debug;
    /// use pants::{delimiter::Packed, Framer, NetStruct};
    ///
    /// /// Decodes `value`'s encoding fed in every split: a helper for any
    /// /// NetStruct (the `Debug` bounds only serve the failure message).
    /// fn assert_round_trip<T>(value: &T)
    /// where
    ///     T: NetStruct + Debug,
    ///     for<'a> T::Frame<'a>: Debug,
    /// {
    ///     let wire = value.to_bytes().unwrap();
    ///     for split in 0..=wire.len() {
    ///         let mut framer = Framer::new(Packed::<T>::new());
    ///         framer.push(&wire[..split]);
    ///         if split < wire.len() {
    ///             assert!(framer.next_frame().unwrap().is_none());
    ///         }
    ///         framer.push(&wire[split..]);
    ///         let frame = framer.next_frame().unwrap().unwrap();
    ///         assert!(value.eq_frame(&frame), "{value:?} came back as {frame:?}");
    ///     }
    /// }
    ///
    /// #[derive(NetStruct, Debug)]
    /// struct Note<'a> {
    ///     id: u32,
    ///     #[netstruct(len = u8)]
    ///     text: &'a str,
    /// }
    ///
    /// #[derive(NetStruct, Debug)]
    /// struct Owned {
    ///     #[netstruct(len = u16)]
    ///     body: Vec<u8>,
    /// }
    ///
    /// assert_round_trip(&Note { id: 7, text: "hi" });
    /// assert_round_trip(&Owned { body: vec![1, 2, 3] });
    /// ```
    #[cfg(feature = "alloc")]
    fn eq_frame<'f>(&self, frame: &Self::Frame<'f>) -> bool {
        let (mut mine, mut theirs) = (Vec::with_capacity(self.encoded_len()), Vec::new());
        self.encode(&mut mine).is_ok() && frame.encode(&mut theirs).is_ok() && mine == theirs
    }
}

/// Byte order of a struct's numbers. Sealed: [`BigEndian`] or [`LittleEndian`].
pub trait Order: sealed::Sealed {
    /// Whether this is big-endian.
    const BIG: bool;
}

/// Network byte order (netstruct `!` and `>`, and the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BigEndian {}

/// Little-endian byte order (netstruct `<`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LittleEndian {}

/// This host's byte order (netstruct `=`): [`LittleEndian`] on
/// little-endian targets (x86_64, aarch64, riscv64...), [`BigEndian`] on
/// big-endian ones. What `#[netstruct(native_endian)]` uses.
///
/// ```
/// use pants::NetStruct;
///
/// /// netstruct `"=HI"`.
/// #[derive(NetStruct, Debug, PartialEq)]
/// #[netstruct(native_endian)]
/// struct Sample {
///     channel: u16,
///     value: u32,
/// }
///
/// let bytes = Sample { channel: 1, value: 2 }.to_bytes()?;
/// assert_eq!(bytes, [&1u16.to_ne_bytes()[..], &2u32.to_ne_bytes()[..]].concat());
/// # Ok::<(), pants::PackError>(())
/// ```
#[cfg(target_endian = "little")]
pub type NativeEndian = LittleEndian;

/// This host's byte order (netstruct `=`): [`LittleEndian`] on
/// little-endian targets (x86_64, aarch64, riscv64...), [`BigEndian`] on
/// big-endian ones. What `#[netstruct(native_endian)]` uses.
#[cfg(target_endian = "big")]
pub type NativeEndian = BigEndian;

impl Order for BigEndian {
    const BIG: bool = true;
}

impl Order for LittleEndian {
    const BIG: bool = false;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::BigEndian {}
    impl Sealed for super::LittleEndian {}
}

/// `N` bytes of padding (netstruct `Nx`): skipped when read, zeros when
/// written.
///
/// ```
/// use pants::{netstruct::Pad, NetStruct};
///
/// #[derive(NetStruct, Debug, PartialEq)]
/// struct Aligned { tag: u8, _pad: Pad<3>, value: u32 }
///
/// let bytes = Aligned { tag: 1, _pad: Pad, value: 2 }.to_bytes()?;
/// assert_eq!(bytes, [1, 0, 0, 0, 0, 0, 0, 2]);
/// # Ok::<(), pants::PackError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Pad<const N: usize>;

/// Re-exports for the code `#[derive(NetStruct)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use super::field::{check_max, check_max_pack, check_step};
}
