//! Where a [`Framer`](super::Framer) keeps its bytes: a growable `Vec<u8>`,
//! or a fixed buffer the caller provides.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// The memory a [`Framer`](super::Framer) buffers bytes in.
///
/// * `Vec<u8>` (with the `alloc` feature, the default): grows as needed,
///   up to the framer's limit, and can be released when idle.
/// * `&mut [u8]` and `[u8; N]`: a fixed buffer, which needs no allocator
///   (`#![no_std]` targets without a heap). Its length caps the framer's
///   limit, and nothing is ever allocated.
///
/// Sealed: the framer relies on how each kind grows.
///
/// ```
/// use pants::{delimiter::Until, Framer};
///
/// let mut memory = [0u8; 64];
/// let mut framer = Framer::with_storage(Until::lf(), &mut memory[..]);
/// assert_eq!(framer.limit(), 64);
/// framer.try_push(b"AT+OK\n")?;
/// assert_eq!(framer.next_frame()?, Some(&b"AT+OK"[..]));
/// # Ok::<(), pants::FrameError>(())
/// ```
pub trait Storage: sealed::Sealed {
    /// The memory: initialised bytes, of which the framer uses a range.
    #[doc(hidden)]
    fn memory(&self) -> &[u8];

    /// The memory, writable.
    #[doc(hidden)]
    fn memory_mut(&mut self) -> &mut [u8];

    /// The most bytes this storage can ever hold (`usize::MAX` if it grows).
    #[doc(hidden)]
    fn max_len(&self) -> usize;

    /// Makes memory that is allocated but not yet usable (a pooled `Vec`'s
    /// capacity) usable. Returns whether anything changed.
    #[doc(hidden)]
    #[inline]
    fn use_spare_capacity(&mut self) -> bool {
        false
    }

    /// Replaces the memory with at least `len` bytes holding the bytes of
    /// `live` at the front. Only called on storage that grows.
    #[doc(hidden)]
    fn grow(&mut self, live: core::ops::Range<usize>, len: usize) {
        let _ = (live, len);
    }
}

#[cfg(feature = "alloc")]
impl Storage for Vec<u8> {
    #[inline]
    fn memory(&self) -> &[u8] {
        self
    }

    #[inline]
    fn memory_mut(&mut self) -> &mut [u8] {
        self
    }

    #[inline]
    fn max_len(&self) -> usize {
        usize::MAX
    }

    #[inline]
    fn use_spare_capacity(&mut self) -> bool {
        if self.capacity() > self.len() {
            // Zeroed once, so the framer never reads uninitialised memory.
            self.resize(self.capacity(), 0);
            true
        } else {
            false
        }
    }

    // Inline so that callers in other crates see the body: an opaque call
    // taking the storage's address would keep the framer's cursor in memory
    // (reloaded for every frame) in any loop that also pushes.
    #[inline]
    fn grow(&mut self, live: core::ops::Range<usize>, len: usize) {
        // In place where the allocator can extend the block (`realloc`):
        // allocating a new block while the old one is alive, then freeing
        // the old, fragments the heap so that glibc trims and re-grows it
        // (page faults) each time a framer is made and dropped.
        let count = live.len();
        self.copy_within(live, 0);
        self.truncate(count);
        self.reserve_exact(len - count);
        self.resize(len, 0);
    }
}

impl Storage for &mut [u8] {
    #[inline]
    fn memory(&self) -> &[u8] {
        self
    }

    #[inline]
    fn memory_mut(&mut self) -> &mut [u8] {
        self
    }

    #[inline]
    fn max_len(&self) -> usize {
        self.len()
    }
}

impl<const N: usize> Storage for [u8; N] {
    #[inline]
    fn memory(&self) -> &[u8] {
        self
    }

    #[inline]
    fn memory_mut(&mut self) -> &mut [u8] {
        self
    }

    #[inline]
    fn max_len(&self) -> usize {
        N
    }
}

mod sealed {
    pub trait Sealed {}
    #[cfg(feature = "alloc")]
    impl Sealed for alloc::vec::Vec<u8> {}
    impl Sealed for &mut [u8] {}
    impl<const N: usize> Sealed for [u8; N] {}
}
