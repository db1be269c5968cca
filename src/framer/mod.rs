//! The sans-IO framer: bytes in, typed frames out.
//!
//! A [`Framer`] owns a receive buffer and a [`Delimiter`]. Feed it bytes from
//! anywhere (a socket, a file, a UART, a test) and pull frames out with
//! [`next_frame`](Framer::next_frame); it does no I/O of its own. The stream
//! types of this crate are a `Framer` plus a socket.
//!
//! ```
//! use pants::{delimiter::{Count, Until}, Framer};
//!
//! // A line protocol that switches to a binary body: "SIZE 5\r\n" then 5 bytes.
//! let mut framer = Framer::new(Until::crlf());
//! framer.push(b"SIZE 5\r\nhello");
//! let header = framer.next_frame()?.unwrap();
//! let size: usize = std::str::from_utf8(&header[5..])?.parse()?;
//!
//! // Switching the delimiter is a typestate transition: Framer<Until> becomes
//! // Framer<Count>, and the bytes already buffered are cut with the new one.
//! let mut framer = framer.read_delimiter(Count::new(size)?);
//! assert_eq!(framer.next_frame()?, Some(&b"hello"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Buffer limit
//!
//! The buffer has a limit, [`DEFAULT_BUFFER_SIZE`] (64 KiB, Pants'
//! `buffer_size`) unless set with [`with_buffer_size`](Framer::with_buffer_size),
//! and raised to the delimiter's [`min_buffer`](Delimiter::min_buffer). When no
//! frame can be cut from the bytes buffered and the frame cannot fit under the
//! limit, [`next_frame`](Framer::next_frame) returns
//! [`FrameError::Overflow`]: at once when a delimiter announces the frame's size
//! (a length prefix), otherwise when the buffered bytes reach the limit.
//! [`read_from`][read_from] never reads past the limit, so a peer
//! cannot make a framer buffer without bound.
#![cfg_attr(feature = "std", doc = "\n\n[read_from]: Framer::read_from")]
#![cfg_attr(
    not(feature = "std"),
    doc = "\n\n[read_from]: https://docs.rs/pants/latest/pants/struct.Framer.html#method.read_from"
)]
//!
//! # Errors and what follows them
//!
//! No error consumes bytes or changes the delimiter. Calling `next_frame`
//! again without changing anything returns the same error, so an error is
//! never skipped by accident. To go on after an error, do one of: raise the
//! limit ([`set_buffer_size`](Framer::set_buffer_size), for an overflow),
//! drop bytes ([`discard`](Framer::discard), [`clear`](Framer::clear)), or
//! switch delimiter. Pants' default is to close the connection, which is what
//! the stream types do unless the handler says otherwise.
//!
//! At the end of the input, [`finish`](Framer::finish) reports bytes left in
//! the buffer that never became a frame ([`FrameError::Truncated`]) instead of
//! dropping them silently.

#[cfg(any(feature = "embedded-io", feature = "embedded-io-async"))]
mod embedded;
mod storage;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::convert::Infallible;
use core::ops::ControlFlow;

use crate::delimiter::{Decoded, Delimiter, Needed};
use crate::error::FrameError;

pub use storage::Storage;

/// The default buffer limit, 64 KiB: Pants' `buffer_size`.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;

/// A receive buffer with a delimiter: see the [module docs](self). The
/// bytes live in `S`, a growable `Vec<u8>` unless the framer was made
/// [`with_storage`](Framer::with_storage) on a fixed buffer.
#[cfg(feature = "alloc")]
pub struct Framer<D, S: Storage = Vec<u8>> {
    delimiter: D,
    buffer: FrameBuffer<S>,
}

/// A receive buffer with a delimiter: see the [module docs](self). The
/// bytes live in `S`, a fixed buffer given to
/// [`with_storage`](Framer::with_storage) (this build has no allocator).
#[cfg(not(feature = "alloc"))]
pub struct Framer<D, S: Storage> {
    delimiter: D,
    buffer: FrameBuffer<S>,
}

#[cfg(feature = "alloc")]
impl<D: Delimiter> Framer<D> {
    /// An empty framer with the default buffer limit. Its buffer grows as
    /// bytes arrive (nothing is allocated before), up to the limit.
    ///
    /// ```
    /// use pants::{delimiter::Raw, framer::DEFAULT_BUFFER_SIZE, Framer};
    /// let framer = Framer::new(Raw);
    /// assert_eq!(framer.limit(), DEFAULT_BUFFER_SIZE);
    /// assert!(framer.is_empty());
    /// ```
    pub fn new(mut delimiter: D) -> Self {
        delimiter.reset();
        Framer { delimiter, buffer: FrameBuffer::new(DEFAULT_BUFFER_SIZE) }
    }
}

impl<D: Delimiter, S: Storage> Framer<D, S> {
    /// An empty framer over `storage`: a fixed buffer (`&mut [u8]` or an
    /// owned `[u8; N]`) needs no allocator, and its length caps the
    /// [limit](Framer::limit). The buffer limit is the storage's length
    /// unless set lower with [`with_buffer_size`](Framer::with_buffer_size).
    ///
    /// ```
    /// use pants::{delimiter::Count, FrameError, Framer};
    ///
    /// let mut framer = Framer::with_storage(Count::new(4)?, [0u8; 16]);
    /// assert_eq!((framer.capacity(), framer.limit()), (16, 16));
    /// framer.try_push(b"abcdef")?;
    /// assert_eq!(framer.next_frame()?, Some(&b"abcd"[..]));
    /// // What does not fit is refused, and nothing is lost.
    /// assert_eq!(framer.try_push(&[0; 15]), Err(FrameError::Overflow { limit: 16, needed: 17 }));
    /// assert_eq!(framer.buffered(), b"ef");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_storage(mut delimiter: D, storage: S) -> Self {
        delimiter.reset();
        let buffer_size = storage.max_len().min(DEFAULT_BUFFER_SIZE.max(storage.memory().len()));
        Framer { delimiter, buffer: FrameBuffer::with_storage(storage, buffer_size) }
    }

    /// Sets the buffer limit (Pants' `buffer_size`), builder style.
    ///
    /// ```
    /// use pants::{delimiter::Count, Framer};
    /// let framer = Framer::new(Count::new(100).unwrap()).with_buffer_size(10);
    /// assert_eq!((framer.buffer_size(), framer.limit()), (10, 100));
    /// ```
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.buffer.buffer_size = buffer_size;
        self
    }

    /// Sets the buffer limit. It applies from the next
    /// [`next_frame`](Framer::next_frame) on, to the bytes already buffered too.
    pub fn set_buffer_size(&mut self, buffer_size: usize) {
        self.buffer.buffer_size = buffer_size;
    }

    /// The buffer limit as set.
    pub fn buffer_size(&self) -> usize {
        self.buffer.buffer_size
    }

    /// The effective limit: the buffer size raised to the delimiter's
    /// [`min_buffer`](Delimiter::min_buffer), and at least 1; but never
    /// more than a fixed storage holds (0 for an empty one).
    pub fn limit(&self) -> usize {
        self.buffer.limit(&self.delimiter)
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &D {
        &self.delimiter
    }

    /// Replaces the delimiter with another of the same type (a new
    /// [`Count`](crate::delimiter::Count), say). The bytes buffered are cut
    /// with it from the next [`next_frame`](Framer::next_frame) on. Nothing
    /// is allocated: the same-type counterpart of
    /// [`read_delimiter`](Framer::read_delimiter).
    ///
    /// ```
    /// use pants::{delimiter::Count, Framer};
    /// let mut framer = Framer::new(Count::new(1)?);
    /// framer.push(b"\x03abc");
    /// let len = framer.next_frame()?.unwrap()[0];
    /// framer.set_delimiter(Count::new(len.into())?);
    /// assert_eq!(framer.next_frame()?, Some(&b"abc"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_delimiter(&mut self, mut delimiter: D) {
        delimiter.reset();
        self.delimiter = delimiter;
        self.buffer.rewind();
    }

    /// Switches to a delimiter of another type: `Framer<D>` becomes
    /// `Framer<D2>`, keeping the buffered bytes, which are cut with the new
    /// delimiter (as when a Pants `on_read` sets `read_delimiter`).
    pub fn read_delimiter<D2: Delimiter>(self, delimiter: D2) -> Framer<D2, S> {
        Framer::from_buffer(self.buffer, delimiter)
    }

    /// Cuts the next frame, if the buffered bytes hold one.
    ///
    /// `Ok(None)` means more bytes are needed. The frame may borrow the
    /// buffer, so it must be dropped before the framer is used again. See the
    /// [module docs](self) for errors.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<D::Output<'_>>, FrameError> {
        self.buffer.next_frame(&mut self.delimiter)
    }

    /// Cuts every whole frame buffered and hands each to `f`, in order: the
    /// batch counterpart of [`next_frame`](Framer::next_frame), and the
    /// fastest way to drain a buffer of many small frames (the buffer's
    /// cursor stays in a register instead of being written back per frame).
    /// Returns how many frames were cut; `Ok(0)` means more bytes are needed.
    ///
    /// On an error the frames before it have been handed to `f` and are
    /// consumed; the error is returned, and returned again by the next call
    /// (see the [module docs](self)). `f` cannot switch the delimiter: to
    /// stop at a frame and switch, use
    /// [`try_for_each_frame`](Framer::try_for_each_frame). The cursor is
    /// written back when the batch ends: if `f` panics, the frames of this
    /// batch stay buffered and a later call delivers them again (use
    /// `next_frame`, which consumes each frame as it returns it, where a
    /// caught panic must not see a frame twice).
    ///
    /// ```
    /// use pants::{delimiter::Until, Framer};
    /// let mut framer = Framer::new(Until::lf());
    /// framer.push(b"one\ntwo\nthr");
    /// let mut lines = Vec::new();
    /// assert_eq!(framer.for_each_frame(|line| lines.push(line.to_vec()))?, 2);
    /// assert_eq!(lines, [b"one", b"two"]);
    /// assert_eq!(framer.buffered(), b"thr");
    /// # Ok::<(), pants::FrameError>(())
    /// ```
    #[inline]
    pub fn for_each_frame<F>(&mut self, mut f: F) -> Result<usize, FrameError>
    where
        F: FnMut(D::Output<'_>),
    {
        let mut frames = 0;
        let flow = self.try_for_each_frame(|frame| {
            f(frame);
            frames += 1;
            ControlFlow::<Infallible>::Continue(())
        })?;
        match flow {
            ControlFlow::Continue(()) => Ok(frames),
        }
    }

    /// Like [`for_each_frame`](Framer::for_each_frame), but `f` may stop the
    /// batch by returning [`ControlFlow::Break`] (the frame it was given is
    /// consumed). Returns `Ok(ControlFlow::Continue(()))` when no whole frame
    /// is left, `Ok(ControlFlow::Break(b))` when `f` stopped. Stopping is how
    /// a protocol switches delimiter mid-buffer:
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use pants::{delimiter::{Count, Until}, Framer};
    ///
    /// // Header lines until "SIZE n", then an n-byte body.
    /// let mut framer = Framer::new(Until::lf());
    /// framer.push(b"HELLO\nSIZE 3\nabcHELLO\n");
    /// let size = framer.try_for_each_frame(|line| match line.strip_prefix(b"SIZE ") {
    ///     Some(n) => ControlFlow::Break(std::str::from_utf8(n).unwrap().parse::<usize>().unwrap()),
    ///     None => ControlFlow::Continue(()),
    /// })?;
    /// let ControlFlow::Break(size) = size else { panic!("no SIZE line") };
    /// let mut framer = framer.read_delimiter(Count::new(size)?);
    /// assert_eq!(framer.next_frame()?, Some(&b"abc"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_for_each_frame<B, F>(&mut self, mut f: F) -> Result<ControlFlow<B>, FrameError>
    where
        F: FnMut(D::Output<'_>) -> ControlFlow<B>,
    {
        self.buffer.cut_frames(&mut self.delimiter, |delimiter| delimiter, |_| None, |_, frame| f(frame))
    }

    /// Reports the end of the input: `Ok` if nothing is left over,
    /// [`FrameError::Truncated`] if bytes of an incomplete frame remain (they
    /// stay buffered). Cut the frames that are there first: call
    /// [`next_frame`](Framer::next_frame) until it returns `Ok(None)`.
    ///
    /// ```
    /// use pants::{delimiter::Until, FrameError, Framer};
    /// let mut framer = Framer::new(Until::lf());
    /// framer.push(b"one\ntw");
    /// while framer.next_frame()?.is_some() {}
    /// assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: 2 }));
    /// # Ok::<(), FrameError>(())
    /// ```
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.len() {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }

    /// A framer over `buffer` (its bytes and limit) with a new delimiter.
    pub(crate) fn from_buffer(mut buffer: FrameBuffer<S>, mut delimiter: D) -> Self {
        delimiter.reset();
        buffer.rewind();
        Framer { delimiter, buffer }
    }
}

impl<D, S: Storage> Framer<D, S> {
    /// The bytes buffered and not yet cut into frames.
    #[inline]
    pub fn buffered(&self) -> &[u8] {
        self.buffer.buffered()
    }

    /// How many bytes are buffered.
    #[inline]
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether nothing is buffered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// The capacity of the receive buffer (what it holds in memory).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buffer.buf.memory().len()
    }

    /// Appends bytes if they fit: the bytes buffered and these together at
    /// most the [limit](Framer::limit) (for a fixed storage, what it holds).
    /// Otherwise nothing is appended and the error says how many bytes that
    /// would have been ([`FrameError::Overflow`]): cut the frames buffered
    /// first, or push fewer bytes. The way to feed a framer from a source
    /// that does not read into [`spare_capacity`](Framer::spare_capacity).
    ///
    /// ```
    /// use pants::{delimiter::Until, FrameError, Framer};
    /// let mut framer = Framer::new(Until::lf()).with_buffer_size(8);
    /// framer.try_push(b"one\ntwo")?;
    /// assert_eq!(framer.try_push(b"\nthr"), Err(FrameError::Overflow { limit: 8, needed: 11 }));
    /// assert_eq!(framer.next_frame()?, Some(&b"one"[..]));
    /// framer.try_push(b"\nthr")?;
    /// assert_eq!(framer.buffered(), b"two\nthr");
    /// # Ok::<(), FrameError>(())
    /// ```
    pub fn try_push(&mut self, bytes: &[u8]) -> Result<(), FrameError>
    where
        D: Delimiter,
    {
        let limit = self.limit();
        let needed = self.len().saturating_add(bytes.len());
        if needed > limit {
            return Err(FrameError::Overflow { limit, needed });
        }
        self.buffer.push(bytes);
        Ok(())
    }

    /// Makes room for at least `n` more bytes and returns the writable space
    /// after the buffered bytes (possibly more than `n`; with a fixed
    /// storage, possibly less: at most what it has left). Write into it,
    /// then call [`commit`](Framer::commit) with how many bytes were written.
    /// This does not check the limit: [`read_from`][read_from] reads no
    /// more than the limit allows.
    ///
    /// ```
    /// use pants::{delimiter::Until, Framer};
    /// let mut framer = Framer::new(Until::lf());
    /// let space = framer.spare_capacity(3);
    /// space[..3].copy_from_slice(b"a\nb");
    /// framer.commit(3);
    /// assert_eq!(framer.next_frame()?, Some(&b"a"[..]));
    /// # Ok::<(), pants::FrameError>(())
    /// ```
    #[cfg_attr(feature = "std", doc = "\n\n[read_from]: Framer::read_from")]
    #[cfg_attr(
        not(feature = "std"),
        doc = "\n\n[read_from]: https://docs.rs/pants/latest/pants/struct.Framer.html#method.read_from"
    )]
    #[inline]
    pub fn spare_capacity(&mut self, n: usize) -> &mut [u8] {
        self.buffer.spare_capacity(n)
    }

    /// Marks `n` bytes written into [`spare_capacity`](Framer::spare_capacity)
    /// as buffered.
    ///
    /// # Panics
    ///
    /// If `n` is more than the spare capacity (a bug in the caller, never
    /// caused by input).
    #[inline]
    pub fn commit(&mut self, n: usize) {
        self.buffer.commit(n);
    }

    /// Drops up to `n` buffered bytes from the front (to skip a bad frame
    /// after an error, say).
    #[inline]
    pub fn discard(&mut self, n: usize) {
        self.buffer.discard(n);
    }

    /// Drops everything buffered. The buffer's memory is kept (a growable
    /// one can give it back with `release_memory`).
    #[inline]
    pub fn clear(&mut self) {
        self.buffer.clear();
    }
}

#[cfg(feature = "alloc")]
impl<D> Framer<D> {
    /// Appends bytes. Always accepted, since a growable buffer has room:
    /// several frames may arrive at once, and the limit applies to what
    /// cannot be cut (see [`next_frame`](Framer::next_frame)). Where the
    /// bytes come from a peer, use [`read_from`][read_from] or
    /// [`spare_capacity`](Framer::spare_capacity) to read straight into the
    /// buffer without going over the limit, or [`try_push`](Framer::try_push),
    /// which refuses bytes past the limit.
    #[cfg_attr(feature = "std", doc = "\n\n[read_from]: Framer::read_from")]
    #[cfg_attr(
        not(feature = "std"),
        doc = "\n\n[read_from]: https://docs.rs/pants/latest/pants/struct.Framer.html#method.read_from"
    )]
    #[inline]
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.push(bytes);
    }

    /// Frees the buffer's memory if nothing is buffered (an idle connection
    /// then holds no receive buffer), or shrinks it to what is buffered.
    pub fn release_memory(&mut self) {
        self.buffer.release_memory();
    }

    /// Takes the buffered bytes out, leaving the framer empty.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let bytes = self.buffered().to_vec();
        self.clear();
        bytes
    }
}

/// A framer without its delimiter: the receive buffer, its limit and what
/// the delimiter last said it needs. [`Framer`] is one of these plus a
/// delimiter; a stream keeps one behind its type-erased reader, and lends
/// the delimiter to the typed stream its `on_read` sees.
#[cfg(feature = "alloc")]
pub(crate) struct FrameBuffer<S: Storage = Vec<u8>> {
    /// Initialised storage; the buffered bytes are `buf[start..end]`.
    buf: S,
    start: usize,
    end: usize,
    buffer_size: usize,
    /// Do not decode again before this many bytes are buffered (what the
    /// delimiter said it needs).
    wait_for: usize,
    /// Bytes were dropped ([`discard`](FrameBuffer::discard),
    /// [`clear`](FrameBuffer::clear)): the delimiter's per-frame progress (a
    /// scan offset) no longer matches the buffer, so it is
    /// [reset](Delimiter::reset) before the next decode. A flag rather than a
    /// call because the buffer does not hold the delimiter.
    reset_pending: bool,
}

#[cfg(not(feature = "alloc"))]
pub(crate) struct FrameBuffer<S: Storage> {
    /// Initialised storage; the buffered bytes are `buf[start..end]`.
    buf: S,
    start: usize,
    end: usize,
    buffer_size: usize,
    /// Do not decode again before this many bytes are buffered (what the
    /// delimiter said it needs).
    wait_for: usize,
    /// Bytes were dropped ([`discard`](FrameBuffer::discard),
    /// [`clear`](FrameBuffer::clear)): the delimiter's per-frame progress (a
    /// scan offset) no longer matches the buffer, so it is
    /// [reset](Delimiter::reset) before the next decode. A flag rather than a
    /// call because the buffer does not hold the delimiter.
    reset_pending: bool,
}

impl Needed {
    /// How many more bytes to wait for: the count, or 1 when unknown.
    #[inline]
    fn at_least_one(self) -> usize {
        match self {
            Needed::Exactly(n) => n.max(1),
            Needed::Unknown => 1,
        }
    }
}

#[cfg(feature = "alloc")]
impl FrameBuffer {
    /// No bytes and no storage, with this limit.
    #[inline]
    pub(crate) const fn new(buffer_size: usize) -> Self {
        FrameBuffer::with_storage(Vec::new(), buffer_size)
    }
}

/// The smallest memory a growable buffer allocates (unless its limit is
/// smaller): fewer, larger reads.
const MIN_CAPACITY: usize = 4096;

impl<S: Storage> FrameBuffer<S> {
    /// No bytes, in `buf`, with this limit.
    #[inline]
    pub(crate) const fn with_storage(buf: S, buffer_size: usize) -> Self {
        FrameBuffer { buf, start: 0, end: 0, buffer_size, wait_for: 0, reset_pending: false }
    }

    /// Forgets what the last delimiter said it needs: a new one decodes the
    /// bytes buffered afresh.
    #[inline]
    pub(crate) fn rewind(&mut self) {
        self.wait_for = 0;
        self.reset_pending = false;
    }

    /// Takes the bytes and the storage out, leaving this buffer empty and
    /// without storage (nothing is allocated).
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn take(&mut self) -> FrameBuffer<S>
    where
        S: Default,
    {
        core::mem::replace(self, FrameBuffer::with_storage(S::default(), self.buffer_size))
    }

    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn set_buffer_size(&mut self, buffer_size: usize) {
        self.buffer_size = buffer_size;
    }

    /// [`Framer::limit`] for `delimiter`.
    #[inline]
    pub(crate) fn limit<D: Delimiter + ?Sized>(&self, delimiter: &D) -> usize {
        self.buffer_size.max(delimiter.min_buffer()).max(1).min(self.buf.max_len())
    }

    /// [`Framer::next_frame`], cutting with `delimiter`.
    #[inline]
    pub(crate) fn next_frame<'a, D: Delimiter>(
        &'a mut self,
        delimiter: &mut D,
    ) -> Result<Option<D::Output<'a>>, FrameError> {
        // One frame: the steps of `cut_frames` without its loop (which
        // costs a few instructions per frame more when it stops after one).
        if self.reset_pending {
            delimiter.reset();
            self.reset_pending = false;
        }
        let len = self.end - self.start;
        if len < self.wait_for {
            return self.check_limit(self.wait_for, delimiter).map(|()| None);
        }
        let buf = &self.buf.memory()[self.start..self.end];
        match delimiter.decode(buf)? {
            Decoded::Frame { frame, consumed } => {
                if consumed == 0 {
                    return Err(FrameError::NoProgress);
                }
                if consumed > len {
                    return Err(FrameError::OverConsumed { consumed, buffered: len });
                }
                self.wait_for = 0;
                if consumed == len {
                    // Empty again: the next bytes go to the front, no copy.
                    self.start = 0;
                    self.end = 0;
                } else {
                    self.start += consumed;
                }
                Ok(Some(frame))
            }
            Decoded::Incomplete(needed) => {
                self.wait_for = len.saturating_add(needed.at_least_one());
                self.check_limit(self.wait_for, delimiter).map(|()| None)
            }
        }
    }

    /// Cuts frames until `f` breaks or no whole frame is left, decoding with
    /// the delimiter `delimiter(cx)` returns (asked again for each frame, so
    /// `f` may replace it in `cx`) and handing each frame to `f` with `cx`.
    /// The cursor is written back once, at the end. `Continue` means the
    /// bytes left are an incomplete frame, which fits under the limit:
    /// checked against the buffer size `buffer_size(cx)` returns, if any
    /// (`f` may have changed it), otherwise the one this buffer has.
    #[inline]
    pub(crate) fn cut_frames<'s, C: ?Sized, D: Delimiter + ?Sized, B>(
        &'s mut self,
        cx: &mut C,
        delimiter: impl Fn(&mut C) -> &mut D,
        buffer_size: impl FnOnce(&mut C) -> Option<usize>,
        mut f: impl FnMut(&mut C, D::Output<'s>) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, FrameError> {
        if self.reset_pending {
            delimiter(cx).reset();
            self.reset_pending = false;
        }
        let end = self.end;
        // The bytes not cut yet; the cursor is written back from its length.
        let mut rest: &'s [u8] = &self.buf.memory()[self.start..end];
        let outcome = if rest.len() < self.wait_for {
            // Not enough bytes yet for what the delimiter said it needs.
            Ok(ControlFlow::Continue(()))
        } else {
            loop {
                let len = rest.len();
                match delimiter(cx).decode(rest) {
                    Ok(Decoded::Frame { frame, consumed }) => {
                        if consumed == 0 {
                            break Err(FrameError::NoProgress);
                        }
                        let Some(after) = rest.get(consumed..) else {
                            break Err(FrameError::OverConsumed { consumed, buffered: len });
                        };
                        rest = after;
                        self.wait_for = 0;
                        if let ControlFlow::Break(b) = f(cx, frame) {
                            break Ok(ControlFlow::Break(b));
                        }
                    }
                    Ok(Decoded::Incomplete(needed)) => {
                        self.wait_for = len.saturating_add(needed.at_least_one());
                        break Ok(ControlFlow::Continue(()));
                    }
                    Err(e) => break Err(e),
                }
            }
        };
        if rest.is_empty() {
            // Empty again: the next bytes go to the front, no copy.
            self.start = 0;
            self.end = 0;
        } else {
            self.start = end - rest.len();
        }
        if let Ok(ControlFlow::Continue(())) = outcome {
            if let Some(size) = buffer_size(cx) {
                self.buffer_size = size;
            }
            self.check_limit(self.wait_for, delimiter(cx))?;
        }
        outcome
    }

    #[inline]
    fn check_limit<D: Delimiter + ?Sized>(&self, needed: usize, delimiter: &D) -> Result<(), FrameError> {
        let limit = self.limit(delimiter);
        if needed > limit {
            Err(FrameError::Overflow { limit, needed })
        } else {
            Ok(())
        }
    }

    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf.memory()[self.start..self.end]
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Appends `bytes`; the caller has checked that a fixed storage has
    /// room for them.
    #[inline]
    fn push(&mut self, bytes: &[u8]) {
        self.spare_capacity(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    #[inline]
    fn spare_capacity(&mut self, n: usize) -> &mut [u8] {
        self.reserve(n);
        &mut self.buf.memory_mut()[self.end..]
    }

    #[inline]
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(n <= self.buf.memory().len() - self.end, "commit({n}) beyond the spare capacity");
        self.end += n;
    }

    #[inline]
    fn discard(&mut self, n: usize) {
        self.start += n.min(self.len());
        self.wait_for = 0;
        self.reset_pending = true;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.wait_for = 0;
        self.reset_pending = true;
    }

    /// Ensures `buf[end..]` has at least `n` bytes, or as many as a fixed
    /// storage can give. Moving the buffered bytes to the front costs at
    /// most as much as the bytes consumed since the last move, so
    /// compaction is amortised O(1) per byte.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.buf.memory().len() - self.end >= n {
            return;
        }
        // Out of line, and given the fields rather than `self`: a call that
        // took the whole buffer's address would keep the cursor in memory,
        // reloaded on every frame, in a caller that pushes and cuts in one
        // loop (`push` + `next_frame`).
        let live = make_room(&mut self.buf, self.start..self.end, self.buffer_size, n);
        self.start = live.start;
        self.end = live.end;
    }
}

/// [`FrameBuffer::reserve`]'s slow path: makes room for at least `n` bytes
/// after the `live` ones (or as many as a fixed storage can give), using a
/// pooled buffer's spare capacity, moving the live bytes to the front, or
/// growing; returns where the live bytes are now.
#[cold]
#[inline]
fn make_room<S: Storage>(
    buf: &mut S,
    live: core::ops::Range<usize>,
    buffer_size: usize,
    n: usize,
) -> core::ops::Range<usize> {
    // Storage from a pool comes with capacity but no length: use it
    // before allocating.
    if buf.use_spare_capacity() && buf.memory().len() - live.end >= n {
        return live;
    }
    let len = buf.memory().len();
    let count = live.len();
    let least = count.saturating_add(n);
    let fixed = buf.max_len() == len;
    // Once the buffer is as large as its limit, compact whenever that
    // makes room, even if it moves more than was consumed: growing
    // would only hold more than the limit.
    if fixed || (len - count >= n && (live.start >= count || len >= buffer_size)) {
        buf.memory_mut().copy_within(live, 0);
    } else {
        let capacity = least.max(2 * len).max(MIN_CAPACITY.min(buffer_size.max(least)));
        buf.grow(live, capacity);
    }
    0..count
}

#[cfg(feature = "alloc")]
impl FrameBuffer {
    #[inline]
    fn release_memory(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() > 2 * self.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(self.end);
            self.buf.shrink_to_fit();
        }
    }

    /// Gives a buffer without storage the one `take` returns (a pooled
    /// one), so an idle stream needs no buffer of its own. Does nothing (and
    /// does not call `take`) if the buffer has storage.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn lend_storage(&mut self, take: impl FnOnce() -> Vec<u8>) {
        if self.is_empty() && self.buf.is_empty() {
            self.buf = take();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes the storage back out if nothing is buffered.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn reclaim_storage(&mut self) -> Option<Vec<u8>> {
        if self.is_empty() && !self.buf.is_empty() {
            self.start = 0;
            self.end = 0;
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }
}

impl<S: Storage> FrameBuffer<S> {
    /// The space the next read may fill: at most `max` bytes, and never
    /// past `limit` (empty when the buffer holds `limit` bytes). What
    /// [`Framer::read_from`] and the `embedded-io` readers read into; they
    /// then [`commit`](FrameBuffer::commit) what was read.
    #[inline]
    pub(crate) fn room(&mut self, max: usize, limit: usize) -> &mut [u8] {
        let room = limit.saturating_sub(self.len()).min(max);
        if room == 0 {
            return &mut [];
        }
        &mut self.spare_capacity(room)[..room]
    }

    /// Commits a read of `n` bytes into a [`room`](FrameBuffer::room) of
    /// `room` bytes.
    ///
    /// # Panics
    ///
    /// If `n > room`: the source claims more than it was given (a bug in
    /// its `read`), which would otherwise take stale bytes in, past the limit.
    #[inline]
    pub(crate) fn commit_read(&mut self, n: usize, room: usize) {
        assert!(n <= room, "a read reported {n} bytes into a {room}-byte buffer");
        self.commit(n);
    }

    /// [`Framer::read_from`] with the limit given.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn read_from<R: std::io::Read + ?Sized>(
        &mut self,
        source: &mut R,
        max: usize,
        limit: usize,
    ) -> std::io::Result<usize> {
        let space = self.room(max, limit);
        if space.is_empty() {
            return Ok(0);
        }
        let room = space.len();
        let n = source.read(space)?;
        self.commit_read(n, room);
        Ok(n)
    }
}

#[cfg(feature = "std")]
impl<D: Delimiter, S: Storage> Framer<D, S> {
    /// Reads once from `source` into the buffer: at most `max` bytes, and
    /// never past the limit (so an overflow is detected without buffering
    /// more than the limit). Returns what `read` returned; `Ok(0)` is end of
    /// input, or no room (the buffer holds `limit` bytes: cut frames first).
    /// Panics if `source` claims to have read more bytes than it was given
    /// (a bug in its `read`, never caused by input).
    ///
    /// ```
    /// use pants::{delimiter::Until, Framer};
    /// let mut input: &[u8] = b"first\nsecond\n";
    /// let mut framer = Framer::new(Until::lf());
    /// while framer.read_from(&mut input, 4)? > 0 {}
    /// assert_eq!(framer.next_frame()?, Some(&b"first"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_from<R: std::io::Read + ?Sized>(&mut self, source: &mut R, max: usize) -> std::io::Result<usize> {
        let limit = self.limit();
        self.buffer.read_from(source, max, limit)
    }
}

impl<D: core::fmt::Debug, S: Storage> core::fmt::Debug for Framer<D, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Framer")
            .field("delimiter", &self.delimiter)
            .field("buffered", &self.len())
            .field("capacity", &self.capacity())
            .field("buffer_size", &self.buffer.buffer_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delimiter::{Count, Raw, Until};

    #[test]
    fn overflow_on_unknown_size_at_limit() {
        let mut framer = Framer::new(Until::lf()).with_buffer_size(4);
        framer.push(b"abc");
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b"d");
        assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 4, needed: 5 }));
        // Sticky until something changes.
        assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 4, needed: 5 }));
        framer.set_buffer_size(8);
        framer.push(b"\n");
        assert_eq!(framer.next_frame(), Ok(Some(&b"abcd"[..])));
    }

    #[test]
    fn frame_exactly_at_limit_is_fine() {
        let mut framer = Framer::new(Until::lf()).with_buffer_size(4);
        framer.push(b"abc\n");
        assert_eq!(framer.next_frame(), Ok(Some(&b"abc"[..])));
    }

    #[test]
    fn waits_for_announced_size() {
        struct Counting(usize);
        impl Delimiter for Counting {
            type Output<'a> = &'a [u8];
            fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
                self.0 += 1;
                Count::new(10).unwrap().decode(buf)
            }
        }
        let mut framer = Framer::new(Counting(0));
        for _ in 0..9 {
            framer.push(b"x");
            assert_eq!(framer.next_frame(), Ok(None));
        }
        assert_eq!(framer.delimiter().0, 1);
        framer.push(b"x");
        assert!(framer.next_frame().unwrap().is_some());
        assert_eq!(framer.delimiter().0, 2);
    }

    #[test]
    fn no_progress_is_an_error() {
        struct Empty;
        impl Delimiter for Empty {
            type Output<'a> = &'a [u8];
            fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<&'a [u8]>, FrameError> {
                Ok(Decoded::Frame { frame: &buf[..0], consumed: 0 })
            }
        }
        let mut framer = Framer::new(Empty);
        framer.push(b"x");
        assert_eq!(framer.next_frame(), Err(FrameError::NoProgress));
        assert_eq!(framer.for_each_frame(|_| panic!("no frame")), Err(FrameError::NoProgress));
        assert_eq!(framer.len(), 1);
    }

    #[test]
    fn over_consumption_is_an_error() {
        struct Greedy;
        impl Delimiter for Greedy {
            type Output<'a> = ();
            fn decode(&mut self, buf: &[u8]) -> Result<Decoded<()>, FrameError> {
                Ok(Decoded::Frame { frame: (), consumed: buf.len() + 1 })
            }
        }
        let mut framer = Framer::new(Greedy);
        framer.push(b"x");
        assert_eq!(framer.next_frame(), Err(FrameError::OverConsumed { consumed: 2, buffered: 1 }));
        assert_eq!(framer.len(), 1);
    }

    #[test]
    fn switching_keeps_buffer() {
        let mut framer = Framer::new(Until::lf());
        framer.push(b"3\nabcdef");
        assert_eq!(framer.next_frame(), Ok(Some(&b"3"[..])));
        let mut framer = framer.read_delimiter(Count::new(3).unwrap());
        assert_eq!(framer.next_frame(), Ok(Some(&b"abc"[..])));
        let mut framer = framer.read_delimiter(Raw);
        assert_eq!(framer.next_frame(), Ok(Some(&b"def"[..])));
        assert!(framer.is_empty());
    }

    #[test]
    fn a_growable_buffer_does_not_grow_past_its_limit_to_avoid_a_copy() {
        let mut framer = Framer::new(Count::new(1000).unwrap()).with_buffer_size(3000);
        framer.try_push(&[0; 3000]).unwrap();
        assert_eq!(framer.capacity(), 3000);
        for _ in 0..100 {
            assert!(framer.next_frame().unwrap().is_some());
            framer.try_push(&[0; 1000]).unwrap();
        }
        assert_eq!(framer.capacity(), 3000);
    }

    #[test]
    #[should_panic(expected = "a read reported 7 bytes into a 1-byte buffer")]
    fn a_source_that_claims_more_than_it_was_given_is_a_panic_not_stale_bytes() {
        struct Liar;
        impl std::io::Read for Liar {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf[0] = b'X';
                Ok(7)
            }
        }
        let mut framer = Framer::with_storage(Until::lf(), [0u8; 64]).with_buffer_size(8);
        framer.try_push(b"secret\n").unwrap();
        assert_eq!(framer.next_frame(), Ok(Some(&b"secret"[..])));
        let _ = framer.read_from(&mut Liar, 1);
    }

    #[test]
    fn compaction_keeps_memory_bounded() {
        let mut framer = Framer::new(Count::new(3).unwrap());
        for _ in 0..10_000 {
            framer.push(b"abcde");
            while framer.next_frame().unwrap().is_some() {}
        }
        assert!(framer.capacity() <= 8192, "capacity {}", framer.capacity());
    }

    #[test]
    fn fixed_storage_compacts_and_never_grows() {
        let mut framer = Framer::with_storage(Until::lf(), [0u8; 8]);
        for _ in 0..1000 {
            framer
                .try_push(
                    b"ab
cd",
                )
                .unwrap();
            assert_eq!(framer.next_frame(), Ok(Some(&b"ab"[..])));
            framer
                .try_push(
                    b"
",
                )
                .unwrap();
            assert_eq!(framer.next_frame(), Ok(Some(&b"cd"[..])));
        }
        assert_eq!(framer.capacity(), 8);
        // A frame longer than the storage is an overflow at the storage's size.
        framer.try_push(b"12345678").unwrap();
        assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 8, needed: 9 }));
        assert_eq!(framer.try_push(b"9"), Err(FrameError::Overflow { limit: 8, needed: 9 }));
        assert_eq!(framer.len(), 8);
    }

    #[test]
    fn fixed_storage_caps_the_limit_even_against_min_buffer() {
        let mut memory = [0u8; 64];
        let mut framer = Framer::with_storage(Count::new(100).unwrap(), &mut memory[..]);
        assert_eq!(framer.limit(), 64);
        framer.try_push(b"x").unwrap();
        // The 100-byte frame can never fit: said at once, nothing buffered past 64.
        assert_eq!(framer.next_frame(), Err(FrameError::Overflow { limit: 64, needed: 100 }));
        let mut framer = Framer::with_storage(Raw, [0u8; 64]).with_buffer_size(16);
        assert_eq!(framer.limit(), 16);
        assert_eq!(framer.try_push(&[1; 17]), Err(FrameError::Overflow { limit: 16, needed: 17 }));
    }

    #[test]
    fn read_from_fills_a_fixed_storage_up_to_its_size() {
        let data = [b'x'; 100];
        let mut source: &[u8] = &data;
        let mut framer = Framer::with_storage(Until::lf(), [0u8; 10]);
        while framer.read_from(&mut source, 64).unwrap() > 0 {}
        assert_eq!((framer.len(), source.len()), (10, 90));
        assert!(matches!(framer.next_frame(), Err(FrameError::Overflow { limit: 10, .. })));
    }

    #[test]
    fn a_small_limit_allocates_no_more_than_the_limit() {
        let mut framer = Framer::new(Until::lf()).with_buffer_size(64);
        assert_eq!(framer.capacity(), 0);
        framer.push(b"abc");
        assert_eq!(framer.capacity(), 64);
        let mut framer = Framer::new(Until::lf());
        framer.push(b"abc");
        assert_eq!(framer.capacity(), 4096);
    }

    #[test]
    fn read_from_respects_limit() {
        let data = [b'x'; 100];
        let mut source: &[u8] = &data;
        let mut framer = Framer::new(Until::lf()).with_buffer_size(10);
        while framer.read_from(&mut source, 64).unwrap() > 0 {}
        assert_eq!(framer.len(), 10);
        assert!(matches!(framer.next_frame(), Err(FrameError::Overflow { limit: 10, .. })));
    }

    #[test]
    fn batch_delivers_the_frames_before_an_error_and_the_error_sticks() {
        let mut framer = Framer::new(Until::lf()).with_buffer_size(4);
        framer.push(b"a\nbb\ncccccc");
        let mut frames = Vec::new();
        let overflow = FrameError::Overflow { limit: 4, needed: 7 };
        assert_eq!(framer.for_each_frame(|frame| frames.push(frame.to_vec())), Err(overflow.clone()));
        assert_eq!(frames, [b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(framer.for_each_frame(|_| panic!("no frame")), Err(overflow));
        assert_eq!(framer.buffered(), b"cccccc");
    }

    #[test]
    fn batch_stops_where_asked_and_keeps_the_rest() {
        let mut framer = Framer::new(Count::new(2).unwrap());
        framer.push(b"aabbccd");
        let flow = framer.try_for_each_frame(|frame| match frame {
            b"bb" => ControlFlow::Break("stopped"),
            _ => ControlFlow::Continue(()),
        });
        assert_eq!(flow, Ok(ControlFlow::Break("stopped")));
        assert_eq!(framer.buffered(), b"ccd");
        assert_eq!(framer.for_each_frame(|frame| assert_eq!(frame, b"cc")), Ok(1));
        // Waits for the byte it needs without decoding again.
        assert_eq!(framer.for_each_frame(|_| panic!("no frame")), Ok(0));
        framer.push(b"d");
        assert_eq!(framer.for_each_frame(|frame| assert_eq!(frame, b"dd")), Ok(1));
        assert!(framer.is_empty());
    }

    #[test]
    fn release_memory_frees_idle_buffer() {
        let mut framer = Framer::new(Raw);
        framer.push(&[1; 5000]);
        assert!(framer.next_frame().unwrap().is_some());
        framer.release_memory();
        assert_eq!(framer.capacity(), 0);
    }
}
