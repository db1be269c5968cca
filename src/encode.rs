//! The write side of framing: encoders that turn a value into one frame of
//! a protocol.
//!
//! A [`Delimiter`](crate::Delimiter) cuts frames out of the bytes a peer
//! sends; its [`Encode`] impls write frames the same delimiter cuts back
//! out. Each built-in delimiter is its own encoder:
//!
//! | delimiter | encodes | writes |
//! |---|---|---|
//! | [`Raw`](crate::delimiter::Raw) | any `AsRef<[u8]>` | the bytes as they are |
//! | [`Until`](crate::delimiter::Until) | any `AsRef<[u8]>` | the bytes, then the terminator ([`PackError::TerminatorInFrame`] if the peer would cut the frame earlier) |
//! | [`Count`](crate::delimiter::Count), [`Array<N>`](crate::delimiter::Array) | any `AsRef<[u8]>` | the bytes, which must be exactly the count long ([`PackError::WrongLength`]) |
//! | [`Fixed<T>`](crate::delimiter::Fixed) | `&T` | `T`'s bytes (a zerocopy `IntoBytes` type) |
//! | [`Packed<T>`](crate::delimiter::Packed) | `&T`, for `T` of any lifetime | the [`NetStruct`](crate::NetStruct) encoding |
//! | `Binrw<T>` (feature `binrw`) | `&T` | the `binrw::BinWrite` encoding, in the delimiter's byte order |
//!
//! The regex delimiters have no encoder: a pattern says how to find the end
//! of a frame, not how to write one.
//!
//! Encoding is sans-IO, like framing: an encoder appends to a `Vec<u8>`
//! (`#![no_std]` with `alloc` included), and on a stream
//! [`Stream::send`][send] appends straight to the send queue, with no
//! buffer of its own and no allocation per frame.
#![cfg_attr(feature = "std", doc = "\n\n[send]: crate::Stream::send")]
#![cfg_attr(
    not(feature = "std"),
    doc = "\n\n[send]: https://docs.rs/pants/latest/pants/stream/struct.Stream.html#method.send"
)]
//!
//! ```
//! use pants::{delimiter::{Count, Packed, Until}, Encode, Framer, NetStruct, PackError};
//!
//! #[derive(NetStruct, Debug, PartialEq)]
//! struct Move<'a> {
//!     player: u8,
//!     #[netstruct(len = u8)]
//!     square: &'a str,
//! }
//!
//! let mut wire = Vec::new();
//! Until::crlf().encode(b"HELLO chess", &mut wire)?;
//! Packed::<Move>::new().encode(&Move { player: 1, square: "e4" }, &mut wire)?;
//! assert_eq!(wire, b"HELLO chess\r\n\x01\x02e4");
//!
//! // The framer reads back what the encoders wrote.
//! let mut framer = Framer::new(Until::crlf());
//! framer.push(&wire);
//! assert_eq!(framer.next_frame()?, Some(&b"HELLO chess"[..]));
//! let mut framer = framer.read_delimiter(Packed::<Move>::new());
//! assert_eq!(framer.next_frame()?, Some(Move { player: 1, square: "e4" }));
//!
//! // A frame the peer could not cut back out is refused, and nothing written.
//! assert_eq!(Count::new(4)?.encode(b"abc", &mut wire), Err(PackError::WrongLength { expected: 4, len: 3 }));
//! assert_eq!(Until::crlf().encode(b"two\r\nlines", &mut wire), Err(PackError::TerminatorInFrame { at: 3 }));
//! assert_eq!(wire.len(), 17);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing your own
//!
//! Implement [`Encode`] for your delimiter, once per item type it writes.
//! The contract: append one whole frame, which the delimiter's `decode`
//! cuts back out as the same value (for a delimiter with frames of their
//! own: [`Raw`](crate::delimiter::Raw) has none, so what it writes arrives
//! in whatever chunks the network makes); on error, leave `out` as it was (the
//! stream methods also truncate what a failed encoder appended, but the
//! sans-IO caller relies on it).
//!
//! ```
//! use pants::{Encode, PackError};
//!
//! /// A frame is one length byte followed by that many bytes.
//! struct ShortPascal;
//!
//! impl<T: AsRef<[u8]>> Encode<T> for ShortPascal {
//!     fn encode(&self, item: T, out: &mut Vec<u8>) -> Result<(), PackError> {
//!         let body = item.as_ref();
//!         let len = u8::try_from(body.len())
//!             .map_err(|_| PackError::TooLong { field: "body", len: body.len(), max: u8::MAX.into() })?;
//!         out.push(len);
//!         out.extend_from_slice(body);
//!         Ok(())
//!     }
//! }
//!
//! assert_eq!(ShortPascal.to_bytes("hi")?, b"\x02hi");
//! # Ok::<(), PackError>(())
//! ```

use alloc::vec::Vec;

use crate::error::PackError;

/// Encodes an `I` as one frame: the write half of a delimiter. See the
/// [module docs](self) for the built-in encoders and the contract.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot encode `{I}` as a frame",
    label = "no `impl Encode<{I}> for {Self}`",
    note = "see the table in `pants::encode` for what each delimiter encodes; `write` sends raw bytes and `write_packed` any `Pack` value"
)]
pub trait Encode<I> {
    /// Appends the frame for `item` to `out`. On error, `out` is left as it
    /// was.
    fn encode(&self, item: I, out: &mut Vec<u8>) -> Result<(), PackError>;

    /// The frame for `item` as a new vector.
    fn to_bytes(&self, item: I) -> Result<Vec<u8>, PackError> {
        let mut out = Vec::new();
        self.encode(item, &mut out)?;
        Ok(out)
    }
}

impl<E: Encode<I> + ?Sized, I> Encode<I> for &E {
    #[inline]
    fn encode(&self, item: I, out: &mut Vec<u8>) -> Result<(), PackError> {
        (**self).encode(item, out)
    }
}
