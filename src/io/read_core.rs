//! The state both readers share: a [`Framer`], whether the source has
//! ended, and how much to read at once.
//!
//! # Returning a borrowed frame from a read loop
//!
//! A reader's `next_frame` returns a frame borrowed from its buffer, or
//! reads more and tries again:
//!
//! ```text
//! loop {
//!     if let Some(frame) = self.framer.next_frame()? { return Ok(Some(frame)); }
//!     self.read_more()?; // error: `self.framer` is still borrowed
//! }
//! ```
//!
//! This is sound, but the borrow checker (NLL, "problem case #3", which
//! Polonius accepts) keeps the framer borrowed for the whole function once
//! one path returns the frame. The safe ways around it decode each frame
//! twice (once to see that it is whole, once to cut it), which measured
//! 0.53–0.74x the framer's speed (`BENCHMARKS.md`, "tokio reader"). So each
//! reader's `next_frame` makes its one call to [`ReadCore::next`] through a
//! reborrow that the compiler cannot check, with the argument for it beside
//! it: one decode per frame, as in the framer.

use crate::delimiter::Delimiter;
use crate::error::FrameError;
use crate::framer::Framer;

/// How much a reader asks its source for at most in one read (the buffer
/// limit caps it further): pants' stream read size.
pub const DEFAULT_READ_SIZE: usize = 64 * 1024;

/// What [`ReadCore::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next<F> {
    /// The next frame, cut from the buffer.
    Frame(F),
    /// No whole frame: read into [`ReadCore::read_space`], then
    /// [`ReadCore::filled`].
    Read,
    /// The input ended cleanly: nothing is left over.
    End,
}

/// What a reader does after a batch found no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read more.
    Read,
    /// The input ended cleanly.
    End,
}

/// A framer, whether the source has ended, and how much to read at once.
pub(crate) struct ReadCore<D> {
    framer: Framer<D>,
    eof: bool,
    read_size: usize,
}

impl<D: Delimiter> ReadCore<D> {
    pub(crate) fn new(delimiter: D) -> Self {
        ReadCore { framer: Framer::new(delimiter), eof: false, read_size: DEFAULT_READ_SIZE }
    }

    /// Continues from `framer`'s buffered bytes and limit, with `delimiter`.
    pub(crate) fn from_framer<D0: Delimiter>(framer: Framer<D0>, delimiter: D) -> Self {
        ReadCore { framer: framer.read_delimiter(delimiter), eof: false, read_size: DEFAULT_READ_SIZE }
    }

    /// Switches delimiter type, keeping the bytes, the limit, the read size
    /// and whether the source ended.
    pub(crate) fn read_delimiter<D2: Delimiter>(self, delimiter: D2) -> ReadCore<D2> {
        ReadCore { framer: self.framer.read_delimiter(delimiter), eof: self.eof, read_size: self.read_size }
    }

    pub(crate) fn set_delimiter(&mut self, delimiter: D) {
        self.framer.set_delimiter(delimiter);
    }

    pub(crate) fn delimiter(&self) -> &D {
        self.framer.delimiter()
    }

    /// Cuts the next frame if one is buffered (one decode), or says to
    /// read, or that the input is over. Errors are the framer's (sticky)
    /// and [`FrameError::Truncated`] at the end of the input.
    #[inline]
    pub(crate) fn next(&mut self) -> Result<Next<D::Output<'_>>, FrameError> {
        // Read before the decode: the frame, if any, borrows the framer
        // (and a decode that finds none consumes nothing).
        let (eof, buffered) = (self.eof, self.framer.len());
        match self.framer.next_frame()? {
            Some(frame) => Ok(Next::Frame(frame)),
            None if !eof => Ok(Next::Read),
            None if buffered == 0 => Ok(Next::End),
            None => Err(FrameError::Truncated { buffered }),
        }
    }

    /// Cuts every whole frame buffered, each once; see
    /// [`Framer::for_each_frame`].
    #[inline]
    pub(crate) fn for_each_frame<F: FnMut(D::Output<'_>)>(&mut self, f: F) -> Result<usize, FrameError> {
        self.framer.for_each_frame(f)
    }

    /// After [`for_each_frame`](ReadCore::for_each_frame) found no frame:
    /// whether to read (`Step::Read`) or the input is over.
    pub(crate) fn after_batch(&self) -> Result<Step, FrameError> {
        if self.eof {
            self.framer.finish().map(|()| Step::End)
        } else {
            Ok(Step::Read)
        }
    }

    /// Where the next read goes: at most the read size, and never past the
    /// limit, so a peer cannot make the reader buffer more than the limit.
    /// An overflow when the buffer is full (the framer reports it too, once
    /// it has decoded).
    #[inline]
    pub(crate) fn read_space(&mut self) -> Result<&mut [u8], FrameError> {
        let limit = self.framer.limit();
        let room = limit.saturating_sub(self.framer.len());
        if room == 0 {
            return Err(FrameError::Overflow { limit, needed: limit.saturating_add(1) });
        }
        let n = room.min(self.read_size);
        Ok(&mut self.framer.spare_capacity(n)[..n])
    }

    /// Records a read of `n` bytes into [`read_space`](ReadCore::read_space),
    /// which was `room` bytes long; 0 is the end of the input.
    ///
    /// # Panics
    ///
    /// If `n > room`: the source claims more than it was given (a bug in
    /// its `read`, never caused by input), which would otherwise take
    /// stale bytes in as read.
    #[inline]
    pub(crate) fn filled(&mut self, n: usize, room: usize) {
        assert!(n <= room, "a read reported {n} bytes into a {room}-byte buffer");
        if n == 0 {
            self.eof = true;
        } else {
            self.framer.commit(n);
        }
    }

    pub(crate) fn framer(&self) -> &Framer<D> {
        &self.framer
    }

    pub(crate) fn framer_mut(&mut self) -> &mut Framer<D> {
        &mut self.framer
    }

    pub(crate) fn is_eof(&self) -> bool {
        self.eof
    }

    pub(crate) fn set_read_size(&mut self, read_size: usize) {
        self.read_size = read_size.max(1);
    }

    pub(crate) fn read_size(&self) -> usize {
        self.read_size
    }
}

/// The methods both lending readers (`io::blocking::Reader` and
/// `io::tokio::Reader`) share over their `source` and `core` fields: the
/// delimiter switch, the accessors and `Debug`. Expanded in each reader's
/// module, which has its `Reader` and the `Delimiter` and `Framer` names in
/// scope.
macro_rules! reader_common {
    () => {
        impl<R, D: Delimiter> Reader<R, D> {
            /// Switches to a delimiter of another type, keeping the bytes
            /// already read (cut with the new delimiter), the limit and the
            /// read size: a typestate transition like
            /// [`Framer::read_delimiter`].
            pub fn read_delimiter<D2: Delimiter>(self, delimiter: D2) -> Reader<R, D2> {
                Reader { source: self.source, core: self.core.read_delimiter(delimiter) }
            }

            /// Replaces the delimiter with another of the same type (see
            /// [`Framer::set_delimiter`]).
            pub fn set_delimiter(&mut self, delimiter: D) {
                self.core.set_delimiter(delimiter);
            }

            /// The delimiter.
            pub fn delimiter(&self) -> &D {
                self.core.delimiter()
            }

            /// The bytes read and not yet cut into frames.
            pub fn buffered(&self) -> &[u8] {
                self.core.framer().buffered()
            }

            /// Takes the buffered bytes out (to hand the connection to other
            /// code, say), leaving the buffer empty.
            pub fn take_buffered(&mut self) -> Vec<u8> {
                self.core.framer_mut().take_buffered()
            }

            /// The buffer limit as set.
            pub fn buffer_size(&self) -> usize {
                self.core.framer().buffer_size()
            }

            /// Sets the buffer limit (to go on after an overflow, say).
            pub fn set_buffer_size(&mut self, buffer_size: usize) {
                self.core.framer_mut().set_buffer_size(buffer_size);
            }

            /// How many bytes one read asks for at most.
            pub fn read_size(&self) -> usize {
                self.core.read_size()
            }

            /// Whether the source has reported its end (a read returned 0).
            pub fn is_eof(&self) -> bool {
                self.core.is_eof()
            }

            /// The source.
            pub fn get_ref(&self) -> &R {
                &self.source
            }

            /// The source, mutably (reading from it directly skips the buffer).
            pub fn get_mut(&mut self) -> &mut R {
                &mut self.source
            }

            /// The source back; bytes buffered and not cut are dropped (take
            /// them first with [`take_buffered`](Reader::take_buffered)).
            pub fn into_inner(self) -> R {
                self.source
            }

            /// The effective buffer limit (see [`Framer::limit`]).
            pub fn limit(&self) -> usize {
                self.core.framer().limit()
            }
        }

        impl<R, D: Delimiter + core::fmt::Debug> core::fmt::Debug for Reader<R, D> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("Reader")
                    .field("delimiter", self.core.delimiter())
                    .field("buffered", &self.core.framer().len())
                    .field("eof", &self.core.is_eof())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use reader_common;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delimiter::{Count, Decoded, Until};
    use crate::io::blocking::Reader;

    /// Counts its decodes.
    struct Counting<D>(D, usize);

    impl<D: Delimiter> Delimiter for Counting<D> {
        type Output<'a> = D::Output<'a>;
        fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<D::Output<'a>>, FrameError> {
            self.1 += 1;
            self.0.decode(buf)
        }
        fn min_buffer(&self) -> usize {
            self.0.min_buffer()
        }
    }

    #[test]
    fn next_frame_and_for_each_frame_decode_each_frame_once() {
        let input = b"a\nb\nc\nd\n";
        let mut reader = Reader::new(&input[..], Counting(Until::lf(), 0));
        for _ in 0..4 {
            assert!(reader.next_frame().unwrap().is_some());
        }
        assert_eq!(reader.next_frame().unwrap(), None);
        // One decode of the empty buffer before the first read, one per
        // frame, and one that finds no more before the read that ends it.
        assert_eq!(reader.delimiter().1, 1 + 4 + 1);

        let mut reader = Reader::new(&input[..], Counting(Until::lf(), 0));
        assert_eq!(reader.for_each_frame(|_| ()).unwrap(), 4);
        assert_eq!(reader.delimiter().1, 1 + 4 + 1);
    }

    #[test]
    fn no_decode_before_what_the_delimiter_asked_for_is_in() {
        // A 10-byte frame read one byte at a time: the first decode learns
        // that 10 bytes are needed, and the next happens once they are in.
        let input = [7u8; 10];
        let mut reader = Reader::new(&input[..], Counting(Count::new(10).unwrap(), 0)).with_read_size(1);
        assert_eq!(reader.next_frame().unwrap(), Some(&input[..]));
        assert_eq!(reader.delimiter().1, 2);
    }

    #[test]
    fn next_cuts_frames_then_asks_to_read_then_ends() {
        let mut core = ReadCore::new(Until::lf());
        core.framer_mut().push(b"x\ny\nz");
        assert_eq!(core.next(), Ok(Next::Frame(&b"x"[..])));
        assert_eq!(core.next(), Ok(Next::Frame(&b"y"[..])));
        assert_eq!(core.next(), Ok(Next::Read));
        core.filled(0, 0);
        assert_eq!(core.next(), Err(FrameError::Truncated { buffered: 1 }));
        core.framer_mut().clear();
        assert_eq!(core.next(), Ok(Next::End));
    }
}
