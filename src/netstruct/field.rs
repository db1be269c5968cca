//! The building blocks `#[derive(NetStruct)]` generates code against.

#[cfg(feature = "alloc")]
use alloc::{string::String, vec::Vec};

use super::{Order, Pad, Sink};
use crate::error::{FrameError, PackError};

/// Where decoding stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The buffer ends before the struct does; [`Reader::missing`] says how
    /// many more bytes are known to be needed.
    Short,
    /// The bytes are not a valid struct.
    Invalid(FrameError),
}

impl From<FrameError> for Stop {
    fn from(error: FrameError) -> Self {
        Stop::Invalid(error)
    }
}

/// A cursor over the buffered bytes that also tracks how long the struct is
/// known to be (its fixed size plus every length prefix read so far), which
/// is what [`missing`](Reader::missing) reports when the bytes run out.
///
/// It also tracks where the next `max` check is made (the end of the next
/// length prefix with a `#[netstruct(max = ..)]`, see
/// [`check_ahead`](Reader::check_ahead)): `missing` counts only up to there,
/// so that a framer decodes again as soon as that prefix is in, not once the
/// whole struct could be.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    known: usize,
    /// The next check point, as an offset from `known` (wrapping): every
    /// length learnt moves `known` and the check point alike, so
    /// [`learn`](Reader::learn) has nothing more to do.
    check: Option<usize>,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`, for a struct whose fixed size is `min_size`.
    #[inline]
    pub fn new(buf: &'a [u8], min_size: usize) -> Self {
        Reader { buf, pos: 0, known: min_size, check: None }
    }

    /// How many bytes have been read.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many more bytes are known to be needed (at least 1): netstruct's
    /// `iter_unpack` number, except that it stops at the next check point
    /// (see [`check_ahead`](Reader::check_ahead)) when there is one.
    #[inline]
    pub fn missing(&self) -> usize {
        let end = match self.check {
            Some(offset) => offset.wrapping_add(self.known).min(self.known),
            None => self.known,
        };
        end.saturating_sub(self.buf.len()).max(1)
    }

    /// Sets the next check point: the end of the next length prefix with a
    /// `max`, `ahead` bytes after the current position, counting every byte
    /// string before it as its prefix alone (the lengths [`learn`](Reader::learn)t
    /// from now on move it further). `usize::MAX`: no check point.
    ///
    /// [`NetStruct::decode`](super::NetStruct::decode) sets the first one
    /// ([`Field::CHECK_AT`]); the derived code sets the next one after each
    /// `max` check.
    #[inline]
    pub fn check_ahead(&mut self, ahead: usize) {
        self.check = match self.pos.checked_add(ahead) {
            Some(at) if ahead != usize::MAX => Some(at.wrapping_sub(self.known)),
            _ => None,
        };
    }

    /// Takes the next `n` bytes, or stops with [`Stop::Short`].
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Stop::Short)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Stop::Short)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Takes the next `N` bytes as an array.
    #[inline]
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let bytes = self.buf.get(self.pos..).and_then(|rest| rest.first_chunk::<N>()).ok_or(Stop::Short)?;
        self.pos += N;
        Ok(*bytes)
    }

    /// Records that the struct is `len` bytes longer than its fixed size (a
    /// length prefix was read).
    #[inline]
    pub fn learn(&mut self, len: usize) {
        self.known = self.known.saturating_add(len);
    }
}

/// A type that can be a field of a `#[derive(NetStruct)]` struct.
///
/// Implemented for the number types, `bool`, arrays of numbers, [`Pad<N>`]
/// and every derived struct. Byte strings are fields too, through
/// `#[netstruct(len = L)]` ([`LenPrefix`] and [`ByteString`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a #[derive(NetStruct)] struct",
    label = "not a NetStruct field type",
    note = "fields can be integers, f32, f64, bool, arrays [T; N] of integers or floats, pants::netstruct::Pad<N>, or another #[derive(NetStruct)] type",
    note = "byte strings (&[u8], &str, Vec<u8>, String) need a length prefix: #[netstruct(len = u16)]"
)]
pub trait Field<'a>: Sized {
    /// Encoded size of the fixed part.
    const MIN_SIZE: usize;

    /// Where the first `max` check of this field's encoding is made: the
    /// offset of the end of its first length prefix with a
    /// `#[netstruct(max = ..)]`, counting every byte string before it as its
    /// prefix alone; `usize::MAX` (the default) if it has none. The derive
    /// computes it; a hand-written `Field` keeps the default.
    const CHECK_AT: usize = usize::MAX;

    /// Reads the field in byte order `O` (derived structs use their own).
    /// `name` names the field in errors.
    fn read<O: Order>(reader: &mut Reader<'a>, name: &'static str) -> Result<Self, Stop>;

    /// Appends the field in byte order `O`.
    fn write<O: Order, S: Sink + ?Sized>(&self, out: &mut S, name: &'static str) -> Result<(), PackError>;

    /// Encoded size of this value.
    fn encoded_len(&self) -> usize;
}

/// A fixed-size number: the integer and float types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a number type of a #[derive(NetStruct)] struct",
    label = "not an integer or float type",
    note = "arrays [T; N] in a NetStruct hold integers (u8 .. u128, i8 .. i128), f32 or f64"
)]
pub trait Number: Copy + sealed::Sealed {
    /// Encoded size.
    const SIZE: usize;
    /// Reads one number in byte order `O`.
    fn read_number<O: Order>(reader: &mut Reader<'_>) -> Result<Self, Stop>;
    /// Appends one number in byte order `O`.
    fn write_number<O: Order, S: Sink + ?Sized>(self, out: &mut S);
}

/// An integer type that can prefix a byte string with its length
/// (`#[netstruct(len = u16)]`, netstruct `H$`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the length prefix of a byte string",
    label = "#[netstruct(len = ..)] needs u8, u16, u32, u64, i8, i16, i32 or i64",
    note = "the length comes from one integer before the bytes, like netstruct's `B$` or `H$`"
)]
pub trait LenPrefix: Number {
    /// The largest length the prefix can hold.
    const MAX: u64;
    /// Reads a prefix as a length; a negative one is an error.
    fn read_len<O: Order>(reader: &mut Reader<'_>, name: &'static str) -> Result<usize, Stop>;
    /// Appends `len` as a prefix, or fails if it does not fit.
    fn write_len<O: Order, S: Sink + ?Sized>(len: usize, out: &mut S, name: &'static str) -> Result<(), PackError>;
}

/// A type that can hold a length-prefixed byte string.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a length-prefixed byte string",
    label = "#[netstruct(len = ..)] needs &[u8], &str, Vec<u8> or String",
    note = "remove #[netstruct(len = ..)] for numbers, arrays and nested structs"
)]
pub trait ByteString<'a>: Sized {
    /// Builds the value from the bytes on the wire.
    fn from_wire(bytes: &'a [u8], name: &'static str) -> Result<Self, FrameError>;
    /// The bytes to put on the wire.
    fn wire(&self) -> &[u8];
}

/// Reads `L` then that many bytes as an `S`, as `#[netstruct(len = L)]`
/// does (the derive inlines this, so that a wrong type is reported once).
#[inline]
pub fn read_prefixed<'a, L: LenPrefix, S: ByteString<'a>, O: Order>(
    reader: &mut Reader<'a>,
    name: &'static str,
) -> Result<S, Stop> {
    let len = L::read_len::<O>(reader, name)?;
    reader.learn(len);
    let bytes = reader.take(len)?;
    Ok(S::from_wire(bytes, name)?)
}

/// Writes `bytes` with an `L` length prefix, as `#[netstruct(len = L)]` does.
#[inline]
pub fn write_prefixed<L: LenPrefix, O: Order, S: Sink + ?Sized>(
    bytes: &[u8],
    out: &mut S,
    name: &'static str,
) -> Result<(), PackError> {
    L::write_len::<O, S>(bytes.len(), out, name)?;
    out.put(bytes);
    Ok(())
}

/// `#[netstruct(max = ..)]` when decoding: a length over `max` is
/// [`FrameError::FieldTooLong`], before any byte of the field is needed.
#[inline(always)]
pub fn check_max(len: usize, max: u64, name: &'static str) -> Result<(), Stop> {
    if len as u64 > max {
        return Err(field_too_long(len, max, name));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn field_too_long(len: usize, max: u64, name: &'static str) -> Stop {
    Stop::Invalid(FrameError::FieldTooLong { field: name, len: len as u64, max })
}

/// `#[netstruct(max = ..)]` when encoding: a byte string longer than `max`
/// is [`PackError::TooLong`], so that a pants peer never sends what it would
/// refuse.
#[inline(always)]
pub fn check_max_pack(len: usize, max: u64, name: &'static str) -> Result<(), PackError> {
    if len as u64 > max {
        return Err(PackError::TooLong { field: name, len, max });
    }
    Ok(())
}

/// One step of the derive's `CHECK_AT` sums: a field whose first check is at
/// `check_at` (or `usize::MAX`, none) and whose fixed size is `size`,
/// followed by fields whose first check is `rest` bytes after it.
pub const fn check_step(check_at: usize, size: usize, rest: usize) -> usize {
    if check_at != usize::MAX {
        check_at
    } else {
        size.saturating_add(rest)
    }
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}

        impl Number for $t {
            const SIZE: usize = size_of::<$t>();

            #[inline]
            fn read_number<O: Order>(reader: &mut Reader<'_>) -> Result<Self, Stop> {
                let bytes = reader.take_array::<{ size_of::<$t>() }>()?;
                Ok(if O::BIG { <$t>::from_be_bytes(bytes) } else { <$t>::from_le_bytes(bytes) })
            }

            #[inline]
            fn write_number<O: Order, S: Sink + ?Sized>(self, out: &mut S) {
                out.put(&if O::BIG { self.to_be_bytes() } else { self.to_le_bytes() });
            }
        }

        impl<'a> Field<'a> for $t {
            const MIN_SIZE: usize = size_of::<$t>();

            #[inline]
            fn read<O: Order>(reader: &mut Reader<'a>, _name: &'static str) -> Result<Self, Stop> {
                <$t as Number>::read_number::<O>(reader)
            }

            #[inline]
            fn write<O: Order, S: Sink + ?Sized>(&self, out: &mut S, _name: &'static str) -> Result<(), PackError> {
                self.write_number::<O, S>(out);
                Ok(())
            }

            #[inline]
            fn encoded_len(&self) -> usize {
                size_of::<$t>()
            }
        }
    )*};
}

numbers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

macro_rules! prefixes {
    ($($t:ty),*) => {$(
        impl LenPrefix for $t {
            const MAX: u64 = <$t>::MAX as u64;

            #[inline]
            fn read_len<O: Order>(reader: &mut Reader<'_>, name: &'static str) -> Result<usize, Stop> {
                let len = <$t as Number>::read_number::<O>(reader)?;
                // Widened, so one test serves signed and unsigned prefixes.
                if (len as i128) < 0 {
                    return Err(Stop::Invalid(FrameError::NegativeLength { field: name, length: len as i64 }));
                }
                usize::try_from(len).map_err(|_| Stop::Invalid(FrameError::LengthTooLarge { field: name, length: len as u64 }))
            }

            #[inline]
            fn write_len<O: Order, S: Sink + ?Sized>(len: usize, out: &mut S, name: &'static str) -> Result<(), PackError> {
                let prefix = <$t>::try_from(len).map_err(|_| PackError::TooLong { field: name, len, max: <$t as LenPrefix>::MAX })?;
                prefix.write_number::<O, S>(out);
                Ok(())
            }
        }
    )*};
}

prefixes!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<'a> Field<'a> for bool {
    const MIN_SIZE: usize = 1;

    #[inline]
    fn read<O: Order>(reader: &mut Reader<'a>, name: &'static str) -> Result<Self, Stop> {
        match reader.take_array::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            [value] => Err(Stop::Invalid(FrameError::InvalidBool { field: name, value })),
        }
    }

    #[inline]
    fn write<O: Order, S: Sink + ?Sized>(&self, out: &mut S, _name: &'static str) -> Result<(), PackError> {
        out.put(&[u8::from(*self)]);
        Ok(())
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }
}

impl<'a, T: Number, const N: usize> Field<'a> for [T; N] {
    const MIN_SIZE: usize = T::SIZE * N;

    #[inline]
    fn read<O: Order>(reader: &mut Reader<'a>, _name: &'static str) -> Result<Self, Stop> {
        // Check the whole array is there first, so a short buffer costs nothing.
        let mut probe = Reader { buf: reader.buf, pos: reader.pos, known: 0, check: None };
        probe.take(T::SIZE * N)?;
        // `[x; 0]` still evaluates `x`: an empty array (netstruct `0B`) must
        // not read a number. The conversion only succeeds when N is 0.
        if let Ok(empty) = <[T; N]>::try_from(&[][..]) {
            return Ok(empty);
        }
        let mut out = [T::read_number::<O>(reader)?; N];
        for slot in out.iter_mut().skip(1) {
            *slot = T::read_number::<O>(reader)?;
        }
        Ok(out)
    }

    #[inline]
    fn write<O: Order, S: Sink + ?Sized>(&self, out: &mut S, _name: &'static str) -> Result<(), PackError> {
        for n in self {
            n.write_number::<O, S>(out);
        }
        Ok(())
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        T::SIZE * N
    }
}

impl<'a, const N: usize> Field<'a> for Pad<N> {
    const MIN_SIZE: usize = N;

    #[inline]
    fn read<O: Order>(reader: &mut Reader<'a>, _name: &'static str) -> Result<Self, Stop> {
        reader.take(N)?;
        Ok(Pad)
    }

    #[inline]
    fn write<O: Order, S: Sink + ?Sized>(&self, out: &mut S, _name: &'static str) -> Result<(), PackError> {
        out.put_zeros(N);
        Ok(())
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        N
    }
}

impl<'a> ByteString<'a> for &'a [u8] {
    #[inline]
    fn from_wire(bytes: &'a [u8], _name: &'static str) -> Result<Self, FrameError> {
        Ok(bytes)
    }

    #[inline]
    fn wire(&self) -> &[u8] {
        self
    }
}

impl<'a> ByteString<'a> for &'a str {
    #[inline]
    fn from_wire(bytes: &'a [u8], name: &'static str) -> Result<Self, FrameError> {
        core::str::from_utf8(bytes).map_err(|e| FrameError::InvalidUtf8 { field: name, valid_up_to: e.valid_up_to() })
    }

    #[inline]
    fn wire(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(feature = "alloc")]
impl<'a> ByteString<'a> for Vec<u8> {
    #[inline]
    fn from_wire(bytes: &'a [u8], _name: &'static str) -> Result<Self, FrameError> {
        Ok(bytes.to_vec())
    }

    #[inline]
    fn wire(&self) -> &[u8] {
        self
    }
}

#[cfg(feature = "alloc")]
impl<'a> ByteString<'a> for String {
    #[inline]
    fn from_wire(bytes: &'a [u8], name: &'static str) -> Result<Self, FrameError> {
        <&str>::from_wire(bytes, name).map(String::from)
    }

    #[inline]
    fn wire(&self) -> &[u8] {
        self.as_bytes()
    }
}
