//! Delimiters: types that cut a byte stream into typed frames.
//!
//! A [`Delimiter`] looks at the bytes buffered so far and either cuts one frame
//! off the front ([`Decoded::Frame`]), says it needs more bytes
//! ([`Decoded::Incomplete`], with the exact count when it knows it), or returns a
//! typed [`FrameError`]. The frame type is the associated
//! [`Output<'a>`](Delimiter::Output), which may borrow the receive buffer: a
//! line is a `&[u8]` pointing into it, a zerocopy header is a `&Header` laid
//! over it, a derived [`NetStruct`](crate::NetStruct) holds `&[u8]`/`&str`
//! fields that point into it. Nothing is copied.
//!
//! Each built-in delimiter is the typed counterpart of one value Python's Pants
//! accepted for `read_delimiter`:
//!
//! | Pants `read_delimiter` | pants type | frame |
//! |---|---|---|
//! | `None` | [`Raw`] | `&[u8]`, everything buffered |
//! | `b"\r\n"` | [`Until`] | `&[u8]`, the bytes before the terminator |
//! | `1024` | [`Count`], [`Array<N>`] | `&[u8]`, `&[u8; N]` |
//! | `re.compile(..)`, `regex_search = True` | `RegexSearch` (feature `regex`) | `&[u8]` before the match |
//! | `re.compile(..)`, `regex_search = False` | `RegexMatch` (feature `regex`) | `regex::bytes::Captures` |
//! | `struct.Struct(..)` | [`Fixed<T>`] | `&T` for a zerocopy type |
//! | — | `Binrw<T>` (feature `binrw`) | `T: binrw::BinRead` |
//! | `netstruct.NetStruct(..)` | [`Packed<T>`] | a `#[derive(NetStruct)]` type |
//!
//! ```
//! use pants::{delimiter::Until, Decoded, Delimiter};
//!
//! let mut lines = Until::new(b"\r\n").unwrap();
//! assert_eq!(lines.decode(b"PING\r\nPI").unwrap(), Decoded::Frame { frame: &b"PING"[..], consumed: 6 });
//! assert!(matches!(lines.decode(b"PI").unwrap(), Decoded::Incomplete(_)));
//! ```
//!
//! # Writing your own
//!
//! Implement [`Delimiter`] for your type. The contract, which the
//! [`Framer`](crate::Framer) keeps on its side:
//!
//! * `buf` always starts at the first byte of the next frame.
//! * After `decode` returned [`Decoded::Incomplete`], the next call sees the
//!   same bytes with more appended (never fewer, never different), unless
//!   [`Delimiter::reset`] was called in between. A delimiter may therefore keep
//!   state to avoid rescanning (as [`Until`] does). If it said it needs
//!   [`Needed::Exactly(n)`](Needed::Exactly), it is not called again before
//!   `n` more bytes are buffered; after [`Needed::Unknown`], not before at least
//!   one more byte arrives.
//! * After `decode` returned a frame, the next call starts at the next frame:
//!   the delimiter must have reset whatever per-frame state it keeps.
//! * A frame must consume at least one byte, and no more than `buf.len()`;
//!   the framer turns a violation into [`FrameError::NoProgress`] or
//!   [`FrameError::OverConsumed`] rather than looping or panicking.
//!
//! ```
//! use pants::{Decoded, Delimiter, FrameError, Framer, Needed};
//!
//! /// A frame is one length byte followed by that many bytes.
//! struct ShortPascal;
//!
//! impl Delimiter for ShortPascal {
//!     type Output<'a> = &'a [u8];
//!     fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
//!         let Some(&len) = buf.first() else { return Ok(Decoded::Incomplete(Needed::Exactly(1))) };
//!         let total = 1 + len as usize;
//!         match buf.get(1..total) {
//!             Some(body) => Ok(Decoded::Frame { frame: body, consumed: total }),
//!             None => Ok(Decoded::Incomplete(Needed::Exactly(total - buf.len()))),
//!         }
//!     }
//! }
//!
//! let mut framer = Framer::new(ShortPascal);
//! framer.push(b"\x02hi\x03yo!");
//! assert_eq!(framer.next_frame().unwrap(), Some(&b"hi"[..]));
//! assert_eq!(framer.next_frame().unwrap(), Some(&b"yo!"[..]));
//! assert_eq!(framer.next_frame().unwrap(), None);
//! ```

use crate::error::FrameError;

/// `new`, `Default`, `Clone`, `Copy` and `Debug` for a delimiter that is only
/// a type marker (`struct Name<T>(PhantomData<fn() -> T>)`), without the
/// bounds on `T` that derives would add.
macro_rules! type_marker_impls {
    ($name:ident) => {
        impl<T> $name<T> {
            /// The delimiter for `T`.
            pub const fn new() -> Self {
                $name(PhantomData)
            }
        }

        impl<T> Default for $name<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<T> Copy for $name<T> {}

        impl<T> core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "<{}>"), core::any::type_name::<T>())
            }
        }
    };
}
pub(crate) use type_marker_impls;

mod count;
mod fixed;
mod packed;
mod raw;
mod until;

#[cfg(feature = "binrw")]
mod binrw;
#[cfg(feature = "regex")]
mod regex;

#[cfg(feature = "binrw")]
pub use self::binrw::Binrw;
#[cfg(feature = "regex")]
pub use self::regex::{RegexMatch, RegexSearch};
pub use count::{Array, Count};
pub use fixed::Fixed;
pub use packed::Packed;
pub use raw::Raw;
pub use until::Until;

/// How many more bytes a delimiter needs before it can cut a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Needed {
    /// Exactly this many more bytes complete the frame, or at least complete
    /// the next step of decoding it (a length prefix, say). Never zero.
    Exactly(usize),
    /// The delimiter cannot tell (a terminator not seen yet): try again once
    /// at least one more byte has arrived.
    Unknown,
}

/// The result of one [`Delimiter::decode`] step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole frame was cut from the front of the buffer.
    Frame {
        /// The frame handed to `on_read`.
        frame: T,
        /// How many bytes of the buffer the frame used up (terminators and
        /// length prefixes included). At least 1.
        consumed: usize,
    },
    /// The buffer does not yet hold a whole frame.
    Incomplete(Needed),
}

impl<T> Decoded<T> {
    /// Maps the frame, keeping `consumed` and `Incomplete` as they are.
    ///
    /// ```
    /// use pants::Decoded;
    /// let d = Decoded::Frame { frame: 2, consumed: 3 }.map(|n| n * 10);
    /// assert_eq!(d, Decoded::Frame { frame: 20, consumed: 3 });
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        match self {
            Decoded::Frame { frame, consumed } => Decoded::Frame { frame: f(frame), consumed },
            Decoded::Incomplete(needed) => Decoded::Incomplete(needed),
        }
    }
}

/// A way of cutting a byte stream into frames; see the [module docs](self) for
/// the contract between a delimiter and the [`Framer`](crate::Framer).
pub trait Delimiter {
    /// The frame type handed to `on_read`. It may borrow the buffer (`'a`).
    type Output<'a>;

    /// Tries to cut one frame off the front of `buf`.
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<Self::Output<'a>>, FrameError>;

    /// The smallest buffer limit this delimiter needs: the framer raises its
    /// limit to at least this much (Pants does this for integer and struct
    /// delimiters). Defaults to 0.
    fn min_buffer(&self) -> usize {
        0
    }

    /// Forgets any per-frame progress (a scan offset, say): the next call to
    /// [`decode`](Delimiter::decode) starts afresh. The framer calls it when a
    /// delimiter is installed and when the buffer is discarded. Defaults to
    /// doing nothing, for stateless delimiters.
    fn reset(&mut self) {}
}

/// Cuts `n` bytes off `buf` as a frame, or reports how many are missing.
#[inline]
pub(crate) fn take_exact(buf: &[u8], n: usize) -> Decoded<&[u8]> {
    match buf.get(..n) {
        Some(frame) => Decoded::Frame { frame, consumed: n },
        None => missing(n, buf.len()),
    }
}

/// `Incomplete`: `n` bytes are needed and `len` are buffered. Out of line and
/// cold, so that a loop cutting many frames does not compute it for every
/// frame it cuts (LLVM otherwise merges it with the frame's size).
#[cold]
#[inline]
fn missing<T>(n: usize, len: usize) -> Decoded<T> {
    Decoded::Incomplete(Needed::Exactly(n - len))
}
