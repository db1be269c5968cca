//! Exact byte counts: Pants' integer `read_delimiter`.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::num::NonZeroUsize;

use super::{take_exact, Decoded, Delimiter};
#[cfg(feature = "alloc")]
use crate::encode::Encode;
#[cfg(feature = "alloc")]
use crate::error::PackError;
use crate::error::{DelimiterError, FrameError};

/// Cuts frames of exactly `n` bytes (Pants' integer `read_delimiter`). The
/// framer's buffer limit is raised to at least `n`.
///
/// ```
/// use pants::{delimiter::Count, Framer};
///
/// let mut framer = Framer::new(Count::new(4)?);
/// framer.push(b"abcdefg");
/// assert_eq!(framer.next_frame()?, Some(&b"abcd"[..]));
/// assert_eq!(framer.next_frame()?, None); // "efg" waits for one more byte
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(NonZeroUsize);

impl Count {
    /// Frames of `n` bytes. Zero is refused: it would cut empty frames
    /// forever (Pants hangs on it).
    ///
    /// ```
    /// use pants::{delimiter::Count, DelimiterError};
    /// assert_eq!(Count::new(0).unwrap_err(), DelimiterError::ZeroCount);
    /// ```
    pub fn new(n: usize) -> Result<Self, DelimiterError> {
        NonZeroUsize::new(n).map(Count).ok_or(DelimiterError::ZeroCount)
    }

    /// The frame length.
    pub fn size(&self) -> usize {
        self.0.get()
    }
}

impl Delimiter for Count {
    type Output<'a> = &'a [u8];

    #[inline]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
        Ok(take_exact(buf, self.0.get()))
    }

    fn min_buffer(&self) -> usize {
        self.0.get()
    }
}

/// Cuts frames of exactly `N` bytes, typed as `&[u8; N]`: the length is part of
/// the type, so `on_read` needs no length check. `N = 0` does not compile.
///
/// ```
/// use pants::{delimiter::Array, Framer};
///
/// let mut framer = Framer::new(Array::<2>);
/// framer.push(&[0x01, 0x02, 0x03]);
/// let frame: &[u8; 2] = framer.next_frame()?.unwrap();
/// assert_eq!(u16::from_be_bytes(*frame), 0x0102);
/// # Ok::<(), pants::FrameError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Array<const N: usize>;

impl<const N: usize> Array<N> {
    const NOT_EMPTY: () = assert!(N > 0, "Array<0> would cut empty frames forever");
}

impl<const N: usize> Delimiter for Array<N> {
    type Output<'a> = &'a [u8; N];

    #[inline]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8; N]>, FrameError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::NOT_EMPTY;
        Ok(match buf.first_chunk::<N>() {
            Some(frame) => Decoded::Frame { frame, consumed: N },
            None => Decoded::Incomplete(super::Needed::Exactly(N - buf.len())),
        })
    }

    fn min_buffer(&self) -> usize {
        N
    }
}

/// Appends `bytes` if it is `expected` long.
#[cfg(feature = "alloc")]
#[inline]
fn encode_exact(bytes: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<(), PackError> {
    if bytes.len() != expected {
        return Err(PackError::WrongLength { expected, len: bytes.len() });
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes the bytes, which must be exactly [`size`](Count::size) long
/// ([`PackError::WrongLength`] otherwise).
///
/// ```
/// use pants::{delimiter::Count, Encode, PackError};
/// let body = Count::new(3)?;
/// assert_eq!(body.to_bytes(b"abc")?, b"abc");
/// assert_eq!(body.to_bytes(b"ab"), Err(PackError::WrongLength { expected: 3, len: 2 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "alloc")]
impl<T: AsRef<[u8]>> Encode<T> for Count {
    #[inline]
    fn encode(&self, item: T, out: &mut Vec<u8>) -> Result<(), PackError> {
        encode_exact(item.as_ref(), self.0.get(), out)
    }
}

/// Writes the bytes, which must be exactly `N` long (always so for a
/// `[u8; N]`; [`PackError::WrongLength`] otherwise).
#[cfg(feature = "alloc")]
impl<const N: usize, T: AsRef<[u8]>> Encode<T> for Array<N> {
    #[inline]
    fn encode(&self, item: T, out: &mut Vec<u8>) -> Result<(), PackError> {
        encode_exact(item.as_ref(), N, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Needed;

    #[test]
    fn count_reports_exact_need() {
        let mut d = Count::new(5).unwrap();
        assert_eq!(d.decode(b"ab").unwrap(), Decoded::Incomplete(Needed::Exactly(3)));
        assert_eq!(d.decode(b"abcdef").unwrap(), Decoded::Frame { frame: &b"abcde"[..], consumed: 5 });
    }

    #[test]
    fn array_reports_exact_need() {
        let mut d = Array::<3>;
        assert_eq!(d.decode(b"a").unwrap(), Decoded::Incomplete(Needed::Exactly(2)));
        assert_eq!(d.decode(b"abcd").unwrap(), Decoded::Frame { frame: b"abc", consumed: 3 });
    }
}
