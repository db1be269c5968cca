//! `#[derive(NetStruct)]` messages: Pants' `netstruct.NetStruct` delimiter.

use core::marker::PhantomData;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::{Decoded, Delimiter};
#[cfg(feature = "alloc")]
use crate::encode::Encode;
use crate::error::FrameError;
#[cfg(feature = "alloc")]
use crate::error::PackError;
use crate::netstruct::NetStruct;
#[cfg(feature = "alloc")]
use crate::Pack;

/// Cuts one `#[derive(NetStruct)]` message per frame (Pants'
/// `netstruct.NetStruct` delimiter). Borrowed fields point into the receive
/// buffer. The framer waits for exactly the bytes the message is known to
/// need, so each frame is decoded at most once per length prefix, and a
/// length that cannot fit under the buffer limit is an overflow error as soon
/// as its prefix arrives, as is a length over a field's
/// `#[netstruct(max = ..)]` ([`FrameError::FieldTooLong`]). The buffer limit
/// is raised to at least [`NetStruct::MIN_SIZE`].
///
/// Name the type without a lifetime in expressions, `Packed::<Login>::new()`,
/// and with `'_` in types: `impl Read<Packed<Login<'_>>>`,
/// `Stream<Self, Packed<Login<'_>>>` (frames borrow the buffer, whatever its
/// lifetime; the guide, `pants::guide`, says why).
/// It is also the encoder of `Login`s (`Encode`, with the `alloc` feature), for `Stream::send`.
///
/// ```
/// use pants::{delimiter::Packed, Framer, NetStruct};
///
/// #[derive(NetStruct, Debug, PartialEq)]
/// struct Login<'a> {
///     #[netstruct(len = u8)]
///     user: &'a str,
///     #[netstruct(len = u8)]
///     password: &'a [u8],
/// }
///
/// let mut framer = Framer::new(Packed::<Login>::new());
/// framer.push(b"\x04anna\x02pw\x03bob");
/// assert_eq!(framer.next_frame()?, Some(Login { user: "anna", password: b"pw" }));
/// assert_eq!(framer.next_frame()?, None);
/// # Ok::<(), pants::FrameError>(())
/// ```
pub struct Packed<T>(PhantomData<fn() -> T>);

super::type_marker_impls!(Packed);

impl<T: NetStruct> Delimiter for Packed<T> {
    type Output<'a> = T::Frame<'a>;

    #[inline]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<T::Frame<'a>>, FrameError> {
        T::decode(buf)
    }

    fn min_buffer(&self) -> usize {
        T::MIN_SIZE
    }
}

/// Writes a `T` of any lifetime (`Packed<Login<'_>>` sends a `&Login`
/// borrowing anything): its [`NetStruct`] encoding, length prefixes
/// included; [`PackError::TooLong`] for a byte string too long for its
/// prefix or `max`.
///
/// ```
/// use pants::{delimiter::Packed, Encode, NetStruct};
///
/// #[derive(NetStruct)]
/// struct Login<'a> {
///     #[netstruct(len = u8)]
///     user: &'a str,
/// }
///
/// let user = String::from("anna");
/// let wire = Packed::<Login>::new().to_bytes(&Login { user: &user })?;
/// assert_eq!(wire, b"\x04anna");
/// # Ok::<(), pants::PackError>(())
/// ```
#[cfg(feature = "alloc")]
impl<T, V> Encode<&V> for Packed<T>
where
    T: NetStruct,
    V: NetStruct<Frame<'static> = T::Frame<'static>> + ?Sized,
{
    #[inline]
    fn encode(&self, item: &V, out: &mut Vec<u8>) -> Result<(), PackError> {
        item.pack(out)
    }
}
