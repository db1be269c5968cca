//! Values that can be sent as packed binary: the other half of the binary
//! delimiters.
//!
//! `write_packed` on a stream accepts any [`Pack`] value: every derived
//! [`NetStruct`], a `zerocopy` struct wrapped in
//! [`Zerocopy`], and (feature `binrw`) a `binrw::BinWrite` value wrapped in
//! [`Binrw`]. Encoding never panics: an unrepresentable value is a
//! [`PackError`].
#![cfg_attr(not(feature = "binrw"), doc = "\n\n[`Binrw`]: https://docs.rs/pants/latest/pants/pack/struct.Binrw.html")]
//!
//! ```
//! use pants::{pack::Zerocopy, NetStruct, Pack};
//! use zerocopy::{big_endian::U16, Immutable, IntoBytes};
//!
//! #[derive(NetStruct)]
//! struct Hello<'a> {
//!     #[netstruct(len = u8)]
//!     name: &'a str,
//! }
//!
//! #[derive(IntoBytes, Immutable)]
//! #[repr(C)]
//! struct Header { kind: u8, len: U16 }
//!
//! let mut out = Vec::new();
//! Hello { name: "hi" }.pack(&mut out)?;
//! Zerocopy(&Header { kind: 9, len: U16::new(3) }).pack(&mut out)?;
//! assert_eq!(out, b"\x02hi\x09\x00\x03");
//! # Ok::<(), pants::PackError>(())
//! ```

use alloc::vec::Vec;

use crate::error::PackError;
use crate::netstruct::NetStruct;

/// A value that can be encoded and appended to an outgoing buffer.
pub trait Pack {
    /// How many bytes [`pack`](Pack::pack) will append, if known (used to
    /// reserve space; 0 means unknown).
    fn size_hint(&self) -> usize {
        0
    }

    /// Appends the encoding to `out`. On error nothing is appended.
    fn pack(&self, out: &mut Vec<u8>) -> Result<(), PackError>;
}

impl<T: NetStruct + ?Sized> Pack for T {
    fn size_hint(&self) -> usize {
        self.encoded_len()
    }

    fn pack(&self, out: &mut Vec<u8>) -> Result<(), PackError> {
        let start = out.len();
        self.encode(out).inspect_err(|_| out.truncate(start))
    }
}

/// Sends a `zerocopy` value as its in-memory bytes (its layout is its wire
/// format: use zerocopy's byte-order types for multi-byte fields).
#[derive(Debug, Clone, Copy)]
pub struct Zerocopy<'a, T: ?Sized>(pub &'a T);

impl<T: zerocopy::IntoBytes + zerocopy::Immutable + ?Sized> Pack for Zerocopy<'_, T> {
    fn size_hint(&self) -> usize {
        size_of_val(self.0)
    }

    fn pack(&self, out: &mut Vec<u8>) -> Result<(), PackError> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(())
    }
}

/// Sends a `binrw::BinWrite` value (built with its default arguments),
/// big-endian unless the type declares its byte order.
#[cfg(feature = "binrw")]
#[derive(Debug, Clone, Copy)]
pub struct Binrw<'a, T: ?Sized>(pub &'a T);

#[cfg(feature = "binrw")]
impl<T> Pack for Binrw<'_, T>
where
    T: binrw::BinWrite + ?Sized,
    for<'b> T::Args<'b>: Default,
{
    fn pack(&self, out: &mut Vec<u8>) -> Result<(), PackError> {
        write_binrw(self.0, binrw::Endian::Big, out)
    }
}

/// Appends `value` written by binrw in `endian` (for fields that do not
/// declare one); on error nothing is appended.
#[cfg(feature = "binrw")]
pub(crate) fn write_binrw<T>(value: &T, endian: binrw::Endian, out: &mut Vec<u8>) -> Result<(), PackError>
where
    T: binrw::BinWrite + ?Sized,
    for<'b> T::Args<'b>: Default,
{
    use alloc::string::ToString;
    let start = out.len();
    let mut cursor = binrw::io::Cursor::new(&mut *out);
    cursor.set_position(start as u64);
    value.write_options(&mut cursor, endian, Default::default()).map_err(|e| {
        out.truncate(start);
        PackError::Binrw(e.to_string())
    })
}
