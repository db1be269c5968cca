//! Fixed binary structs laid over the buffer: Pants' `struct.Struct`.

use core::marker::PhantomData;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
use zerocopy::IntoBytes;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::{Decoded, Delimiter, Needed};
#[cfg(feature = "alloc")]
use crate::encode::Encode;
use crate::error::FrameError;
#[cfg(feature = "alloc")]
use crate::error::PackError;

/// Cuts a fixed-size binary struct and hands it over as `&T`, laid over the
/// receive buffer in place (Pants' `struct.Struct` delimiter, without the
/// copy). `T` is any `zerocopy` type that is `FromBytes + KnownLayout +
/// Immutable + Unaligned`; byte order is part of the field types
/// (`zerocopy::big_endian::U32` and friends). The buffer limit is raised to
/// at least `size_of::<T>()`. A zero-sized `T` does not compile. `zerocopy`
/// is re-exported as [`pants::zerocopy`](crate::zerocopy), for protocols
/// that do not depend on it themselves.
///
/// ```
/// use pants::{delimiter::Fixed, Framer};
/// use zerocopy::{big_endian::U16, FromBytes, Immutable, KnownLayout, Unaligned};
///
/// #[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
/// #[repr(C)]
/// struct Header {
///     kind: u8,
///     len: U16,
/// }
///
/// let mut framer = Framer::new(Fixed::<Header>::new());
/// framer.push(&[7, 0x01, 0x00, 0xff]);
/// let header: &Header = framer.next_frame()?.unwrap();
/// assert_eq!((header.kind, header.len.get()), (7, 256));
/// # Ok::<(), pants::FrameError>(())
/// ```
pub struct Fixed<T>(PhantomData<fn() -> T>);

super::type_marker_impls!(Fixed);

impl<T: FromBytes + KnownLayout + Immutable + Unaligned> Fixed<T> {
    const SIZE: usize = {
        assert!(size_of::<T>() > 0, "Fixed<T> needs a T of at least one byte");
        size_of::<T>()
    };
}

impl<T: FromBytes + KnownLayout + Immutable + Unaligned + 'static> Delimiter for Fixed<T> {
    type Output<'a> = &'a T;

    #[inline]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a T>, FrameError> {
        let size = Self::SIZE;
        Ok(match T::ref_from_prefix(buf) {
            Ok((frame, _rest)) => Decoded::Frame { frame, consumed: size },
            Err(_) => Decoded::Incomplete(Needed::Exactly(size - buf.len())),
        })
    }

    fn min_buffer(&self) -> usize {
        Self::SIZE
    }
}

/// Writes `T`'s bytes (`T` must also be zerocopy's `IntoBytes`): what
/// `Fixed<T>` lays back over the peer's buffer.
///
/// ```
/// use pants::zerocopy::{big_endian::U16, FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};
/// use pants::{delimiter::Fixed, Encode};
///
/// #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
/// #[zerocopy(crate = "pants::zerocopy")]
/// #[repr(C)]
/// struct Header { kind: u8, len: U16 }
///
/// let wire = Fixed::<Header>::new().to_bytes(&Header { kind: 7, len: U16::new(256) })?;
/// assert_eq!(wire, [7, 1, 0]);
/// # Ok::<(), pants::PackError>(())
/// ```
#[cfg(feature = "alloc")]
impl<T: IntoBytes + Immutable> Encode<&T> for Fixed<T> {
    #[inline]
    fn encode(&self, item: &T, out: &mut Vec<u8>) -> Result<(), PackError> {
        out.extend_from_slice(item.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::little_endian::U32;

    #[derive(FromBytes, KnownLayout, Immutable, Unaligned, Debug)]
    #[repr(C)]
    struct Pair {
        a: U32,
        b: u8,
    }

    #[test]
    fn lays_struct_over_buffer() {
        let mut d = Fixed::<Pair>::new();
        assert_eq!(d.min_buffer(), 5);
        assert!(matches!(d.decode(&[1, 0]).unwrap(), Decoded::Incomplete(Needed::Exactly(3))));
        let Decoded::Frame { frame, consumed } = d.decode(&[1, 0, 0, 0, 9, 9]).unwrap() else { panic!() };
        assert_eq!((frame.a.get(), frame.b, consumed), (1, 9, 5));
    }
}
