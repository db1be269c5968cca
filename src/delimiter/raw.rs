//! Raw chunks: Pants' `read_delimiter = None`.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::{Decoded, Delimiter, Needed};
#[cfg(feature = "alloc")]
use crate::encode::Encode;
use crate::error::FrameError;
#[cfg(feature = "alloc")]
use crate::error::PackError;

/// Hands over everything buffered, as one `&[u8]` frame (Pants'
/// `read_delimiter = None`).
///
/// How much arrives at once depends on how the peer's bytes were split by the
/// network; use it for streaming data with no framing of its own (proxies,
/// file transfers), never for messages.
///
/// ```
/// use pants::{delimiter::Raw, Framer};
///
/// let mut framer = Framer::new(Raw);
/// framer.push(b"some ");
/// framer.push(b"bytes");
/// assert_eq!(framer.next_frame().unwrap(), Some(&b"some bytes"[..]));
/// assert_eq!(framer.next_frame().unwrap(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Raw;

impl Delimiter for Raw {
    type Output<'a> = &'a [u8];

    #[inline]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
        Ok(if buf.is_empty() {
            Decoded::Incomplete(Needed::Exactly(1))
        } else {
            Decoded::Frame { frame: buf, consumed: buf.len() }
        })
    }
}

/// Writes the bytes as they are.
#[cfg(feature = "alloc")]
impl<T: AsRef<[u8]>> Encode<T> for Raw {
    #[inline]
    fn encode(&self, item: T, out: &mut Vec<u8>) -> Result<(), PackError> {
        out.extend_from_slice(item.as_ref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_buffer_is_incomplete() {
        assert_eq!(Raw.decode(b"").unwrap(), Decoded::Incomplete(Needed::Exactly(1)));
    }

    #[test]
    fn takes_everything() {
        assert_eq!(Raw.decode(b"abc").unwrap(), Decoded::Frame { frame: &b"abc"[..], consumed: 3 });
    }
}
