//! Frames of any `binrw::BinRead` type.

use alloc::string::ToString;
use core::marker::PhantomData;

use alloc::vec::Vec;

use binrw::{io::Cursor, BinRead, BinWrite, Endian};

use super::{Decoded, Delimiter, Needed};
use crate::encode::Encode;
use crate::error::{FrameError, PackError};

/// Parses each frame as a `binrw` type `T` (built with its default
/// arguments), for formats `#[derive(NetStruct)]` cannot express (magic
/// numbers, enums, computed counts). The frame is an owned `T`.
///
/// binrw running out of input means the frame is incomplete, never an error;
/// any other parse failure is [`FrameError::Malformed`]. binrw can only parse
/// from the start, so an incomplete frame is parsed again from its first byte
/// when more bytes arrive (never before): a frame that trickles in a byte at a
/// time costs quadratic time, bounded by the buffer limit. Prefer
/// [`Packed`](super::Packed) or [`Fixed`](super::Fixed) for large frames.
///
/// Byte order: types that declare one (`#[br(big)]`) use it; for the others
/// the delimiter's endian applies, big-endian (network order) by default.
///
/// Untrusted counts: binrw reserves a `Vec<u8>`'s whole `count` before reading
/// it, so a peer announcing a huge `u32`/`u64` count makes it allocate that
/// much (for a `u64`, the allocation fails and the process aborts), before the
/// framer's buffer limit can help. Bound such counts in the type
/// (`#[br(assert(len <= 65_536))]` on the length field, which turns a larger
/// one into [`FrameError::Malformed`]) or use a `u16` count.
///
/// ```
/// use binrw::BinRead;
/// use pants::{delimiter::Binrw, Framer};
///
/// #[derive(BinRead, Debug, PartialEq)]
/// #[br(big, magic = b"PK")]
/// struct Packet {
///     len: u8,
///     #[br(count = len)]
///     body: Vec<u8>,
/// }
///
/// let mut framer = Framer::new(Binrw::<Packet>::new());
/// framer.push(b"PK\x02h");
/// assert_eq!(framer.next_frame()?, None);
/// framer.push(b"i");
/// assert_eq!(framer.next_frame()?, Some(Packet { len: 2, body: b"hi".to_vec() }));
/// # Ok::<(), pants::FrameError>(())
/// ```
pub struct Binrw<T> {
    endian: Endian,
    _frame: PhantomData<fn() -> T>,
}

impl<T> Binrw<T> {
    /// The delimiter for `T`, big-endian unless `T` says otherwise.
    pub const fn new() -> Self {
        Binrw { endian: Endian::Big, _frame: PhantomData }
    }

    /// The delimiter for `T` with `endian` for fields that do not declare one.
    pub const fn with_endian(endian: Endian) -> Self {
        Binrw { endian, _frame: PhantomData }
    }
}

impl<T> Default for Binrw<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Binrw<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Binrw<T> {}

impl<T> core::fmt::Debug for Binrw<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Binrw<{}>({:?})", core::any::type_name::<T>(), self.endian)
    }
}

impl<T> Delimiter for Binrw<T>
where
    T: BinRead,
    for<'b> T::Args<'b>: Default,
{
    type Output<'a> = T;

    fn decode(&mut self, buf: &[u8]) -> Result<Decoded<T>, FrameError> {
        let mut cursor = Cursor::new(buf);
        match T::read_options(&mut cursor, self.endian, Default::default()) {
            Ok(frame) => {
                // binrw's cursor can seek past the end without an error
                // (`pad_after`, `seek_before`): then the frame is not all here.
                let consumed = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
                Ok(match consumed.checked_sub(buf.len()) {
                    Some(missing) if missing > 0 => Decoded::Incomplete(Needed::Exactly(missing)),
                    _ => Decoded::Frame { frame, consumed },
                })
            }
            Err(e) if needs_more(&e) => Ok(Decoded::Incomplete(Needed::Unknown)),
            Err(e) => Err(FrameError::malformed(e.to_string())),
        }
    }
}

/// Whether a parse failed for want of bytes. Unlike binrw's `is_eof`, an enum
/// needs more if *any* variant ran out of input (once one variant's magic has
/// arrived, the others fail on it, yet the frame is only incomplete).
fn needs_more(error: &binrw::Error) -> bool {
    match error {
        binrw::Error::Io(e) => e.kind() == binrw::io::ErrorKind::UnexpectedEof,
        binrw::Error::EnumErrors { variant_errors, .. } => variant_errors.iter().any(|(_, e)| needs_more(e)),
        binrw::Error::Backtrace(bt) => needs_more(&bt.error),
        _ => false,
    }
}

/// Writes a `T` with `binrw::BinWrite` (built with its default arguments),
/// in this delimiter's byte order for fields that do not declare one.
impl<T> Encode<&T> for Binrw<T>
where
    T: BinWrite,
    for<'b> <T as BinWrite>::Args<'b>: Default,
{
    fn encode(&self, item: &T, out: &mut Vec<u8>) -> Result<(), PackError> {
        crate::pack::write_binrw(item, self.endian, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(BinRead, Debug, PartialEq)]
    #[br(magic = b"M")]
    struct Msg {
        a: u16,
        b: u8,
    }

    #[test]
    fn eof_is_incomplete() {
        let mut d = Binrw::<Msg>::new();
        assert_eq!(d.decode(b"M\x01").unwrap(), Decoded::Incomplete(Needed::Unknown));
        assert_eq!(d.decode(b"").unwrap(), Decoded::Incomplete(Needed::Unknown));
    }

    #[test]
    fn default_is_big_endian() {
        let mut d = Binrw::<Msg>::new();
        assert_eq!(
            d.decode(b"M\x01\x02\x03!").unwrap(),
            Decoded::Frame { frame: Msg { a: 0x0102, b: 3 }, consumed: 4 }
        );
        let mut le = Binrw::<Msg>::with_endian(Endian::Little);
        assert_eq!(
            le.decode(b"M\x01\x02\x03").unwrap(),
            Decoded::Frame { frame: Msg { a: 0x0201, b: 3 }, consumed: 4 }
        );
    }

    #[derive(BinRead, Debug, PartialEq)]
    struct Trailer {
        #[br(pad_after = 3)]
        a: u16,
    }

    #[derive(BinRead, Debug, PartialEq)]
    enum Command {
        #[br(magic = 1u8)]
        Ping { id: u16 },
        #[br(magic = 2u8)]
        Quit,
    }

    #[test]
    fn seeking_past_the_end_is_incomplete() {
        let mut d = Binrw::<Trailer>::new();
        assert_eq!(d.decode(&[1, 0, 2]).unwrap(), Decoded::Incomplete(Needed::Exactly(2)));
        assert_eq!(d.decode(&[1, 0, 2, 3, 4]).unwrap(), Decoded::Frame { frame: Trailer { a: 0x0100 }, consumed: 5 });
    }

    #[test]
    fn a_split_enum_frame_is_incomplete_not_malformed() {
        let mut d = Binrw::<Command>::new();
        assert_eq!(d.decode(&[1]).unwrap(), Decoded::Incomplete(Needed::Unknown));
        assert_eq!(d.decode(&[1, 0, 7]).unwrap(), Decoded::Frame { frame: Command::Ping { id: 7 }, consumed: 3 });
        assert!(matches!(d.decode(&[9]), Err(FrameError::Malformed(_))));
    }

    #[test]
    fn bad_magic_is_malformed() {
        let mut d = Binrw::<Msg>::new();
        assert!(matches!(d.decode(b"X\x01\x02\x03"), Err(FrameError::Malformed(_))));
    }
}
