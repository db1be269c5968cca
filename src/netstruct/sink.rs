//! Where encoded structs go: a growable `Vec<u8>` or a caller's slice.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// Somewhere to append encoded bytes: what [`Field::write`](super::Field::write)
/// writes into. A `Vec<u8>` (with the `alloc` feature) grows;
/// [`SliceSink`] fills a caller's buffer and needs no allocator, which is how
/// [`NetStruct::encode_into`](super::NetStruct::encode_into) works on
/// `#![no_std]` targets without a heap.
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends `n` zero bytes (padding).
    fn put_zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.put(&[0]);
        }
    }
}

#[cfg(feature = "alloc")]
impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len().saturating_add(n), 0);
    }
}

/// A [`Sink`] over a caller's buffer. Bytes past its end are counted, not
/// written, so a writer that outgrows the buffer is detected afterwards
/// ([`overflowed`](SliceSink::overflowed)) instead of panicking.
///
/// ```
/// use pants::netstruct::{Sink, SliceSink};
/// let mut buf = [0u8; 4];
/// let mut sink = SliceSink::new(&mut buf);
/// sink.put(b"abc");
/// assert_eq!((sink.written(), sink.overflowed()), (3, false));
/// sink.put(b"de");
/// assert!(sink.overflowed());
/// ```
#[derive(Debug)]
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceSink<'a> {
    /// An empty sink writing from the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceSink { buf, len: 0 }
    }

    /// How many bytes were put (written, unless it overflowed).
    pub fn written(&self) -> usize {
        self.len
    }

    /// How many bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Whether more bytes were put than the buffer holds.
    pub fn overflowed(&self) -> bool {
        self.len > self.buf.len()
    }
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            slot.copy_from_slice(bytes);
        }
        self.len = end;
    }

    #[inline]
    fn put_zeros(&mut self, n: usize) {
        let end = self.len.saturating_add(n);
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            slot.fill(0);
        }
        self.len = end;
    }
}
