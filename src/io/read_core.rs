//! The state both readers share: a [`Framer`] over a delimiter that can be
//! asked, without consuming anything, whether a whole frame is buffered.
//!
//! # Why a probe
//!
//! A reader's `next_frame` returns a frame borrowed from its buffer, or
//! reads more and tries again. Written the obvious way,
//!
//! ```text
//! loop {
//!     if let Some(frame) = self.framer.next_frame()? { return Ok(Some(frame)); }
//!     self.read_more()?; // error: `self.framer` is still borrowed
//! }
//! ```
//!
//! the borrow checker (NLL, "problem case #3") keeps the framer borrowed
//! for the whole function once one path returns the frame, so the read
//! does not compile. Without `unsafe`, the frame that is returned must come
//! from a call made only once it is known to succeed. So the reader first
//! *probes*: [`ReadCore::step`] asks the framer for a frame with the
//! delimiter in probe mode, in which a whole frame is reported as
//! [`FrameError::NoProgress`] (zero bytes consumed, so the framer changes
//! nothing and drops the frame) while an incomplete one goes through as
//! usual (the framer records how many bytes it waits for, and the delimiter
//! keeps its scan position). Then [`ReadCore::take`] cuts the frame for
//! real, in a call whose result is always returned.
//!
//! The price: every frame handed out by `next_frame` is decoded twice (the
//! probe, then the real cut). Waiting for bytes is not doubled (after an
//! incomplete probe the framer does not decode again before the bytes it
//! waits for have arrived). The batch methods (`for_each_frame`) decode each
//! frame once; `BENCHMARKS.md` ("tokio reader") measures both.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::delimiter::{Decoded, Delimiter};
use crate::error::FrameError;
use crate::framer::Framer;

/// How much a reader asks its source for at most in one read (the buffer
/// limit caps it further): pants' stream read size.
pub const DEFAULT_READ_SIZE: usize = 64 * 1024;

/// A delimiter with a probe mode: see the [module docs](self).
pub(crate) struct Peek<D> {
    inner: D,
    /// Reports whole frames with `consumed: 0` instead of cutting them. An
    /// atomic (relaxed: one plain load and store) so that readers stay
    /// `Sync`; it is set through `&self` because the framer only lends its
    /// delimiter shared.
    probing: AtomicBool,
}

impl<D> Peek<D> {
    pub(crate) fn new(inner: D) -> Self {
        Peek { inner, probing: AtomicBool::new(false) }
    }
}

impl<D: Delimiter> Delimiter for Peek<D> {
    type Output<'a> = D::Output<'a>;

    #[inline]
    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<D::Output<'a>>, FrameError> {
        let decoded = self.inner.decode(buf)?;
        match decoded {
            // Zero bytes consumed: the framer returns `NoProgress` and
            // changes nothing; the frame is dropped here.
            Decoded::Frame { frame, .. } if *self.probing.get_mut() => Ok(Decoded::Frame { frame, consumed: 0 }),
            decoded => Ok(decoded),
        }
    }

    #[inline]
    fn min_buffer(&self) -> usize {
        self.inner.min_buffer()
    }

    #[inline]
    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// What a reader does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A whole frame is buffered: [`ReadCore::take`] cuts it.
    Ready,
    /// No whole frame: read into [`ReadCore::read_space`], then
    /// [`ReadCore::filled`].
    Read,
    /// The input ended cleanly: nothing is left over.
    End,
}

/// A framer, whether the source has ended, and how much to read at once.
pub(crate) struct ReadCore<D> {
    framer: Framer<Peek<D>>,
    eof: bool,
    read_size: usize,
}

impl<D: Delimiter> ReadCore<D> {
    pub(crate) fn new(delimiter: D) -> Self {
        ReadCore { framer: Framer::new(Peek::new(delimiter)), eof: false, read_size: DEFAULT_READ_SIZE }
    }

    /// Continues from `framer`'s buffered bytes and limit, with `delimiter`.
    pub(crate) fn from_framer<D0: Delimiter>(framer: Framer<D0>, delimiter: D) -> Self {
        ReadCore { framer: framer.read_delimiter(Peek::new(delimiter)), eof: false, read_size: DEFAULT_READ_SIZE }
    }

    /// Switches delimiter type, keeping the bytes, the limit, the read size
    /// and whether the source ended.
    pub(crate) fn read_delimiter<D2: Delimiter>(self, delimiter: D2) -> ReadCore<D2> {
        ReadCore { framer: self.framer.read_delimiter(Peek::new(delimiter)), eof: self.eof, read_size: self.read_size }
    }

    pub(crate) fn set_delimiter(&mut self, delimiter: D) {
        self.framer.set_delimiter(Peek::new(delimiter));
    }

    pub(crate) fn delimiter(&self) -> &D {
        &self.framer.delimiter().inner
    }

    /// Probes (see the [module docs](self)): whether a frame is ready, bytes
    /// must be read, or the input is over. Errors are the framer's (sticky)
    /// and [`FrameError::Truncated`] at the end of the input.
    #[inline]
    pub(crate) fn step(&mut self) -> Result<Step, FrameError> {
        self.framer.delimiter().probing.store(true, Ordering::Relaxed);
        let probe = self.framer.next_frame().map(|frame| frame.is_some());
        self.framer.delimiter().probing.store(false, Ordering::Relaxed);
        match probe {
            // A whole frame (or a delimiter that really consumed nothing:
            // the real cut reports it).
            Err(FrameError::NoProgress) | Ok(true) => Ok(Step::Ready),
            Err(e) => Err(e),
            Ok(false) if self.eof => self.framer.finish().map(|()| Step::End),
            Ok(false) => Ok(Step::Read),
        }
    }

    /// Cuts the frame [`step`](ReadCore::step) found.
    #[inline]
    pub(crate) fn take(&mut self) -> Result<Option<D::Output<'_>>, FrameError> {
        self.framer.next_frame()
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
    /// Not empty: `step` reports an overflow rather than `Read` when the
    /// buffer is full.
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

    /// Records a read of `n` bytes into [`read_space`](ReadCore::read_space);
    /// 0 is the end of the input.
    #[inline]
    pub(crate) fn filled(&mut self, n: usize) {
        if n == 0 {
            self.eof = true;
        } else {
            self.framer.commit(n);
        }
    }

    pub(crate) fn framer(&self) -> &Framer<Peek<D>> {
        &self.framer
    }

    pub(crate) fn framer_mut(&mut self) -> &mut Framer<Peek<D>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delimiter::{Count, Until};
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
    fn next_frame_decodes_each_frame_twice_and_for_each_frame_once() {
        let input = b"a\nb\nc\nd\n";
        let mut reader = Reader::new(&input[..], Counting(Until::lf(), 0));
        for _ in 0..4 {
            assert!(reader.next_frame().unwrap().is_some());
        }
        // 4 frames x (probe + cut), then the read that finds the end: one
        // probe of an empty buffer before it and one after.
        assert_eq!(reader.next_frame().unwrap(), None);
        assert_eq!(reader.delimiter().1, 4 * 2 + 2);

        let mut reader = Reader::new(&input[..], Counting(Until::lf(), 0));
        assert_eq!(reader.for_each_frame(|_| ()).unwrap(), 4);
        // One decode of the empty buffer before the read, then one per
        // frame and one that finds no more.
        assert_eq!(reader.delimiter().1, 1 + 4 + 1);
    }

    #[test]
    fn the_probe_waits_for_what_the_delimiter_asked_for() {
        // A 10-byte frame read one byte at a time: the first probe learns
        // that 10 bytes are needed, and no decode happens before they are in.
        let input = [7u8; 10];
        let mut reader = Reader::new(&input[..], Counting(Count::new(10).unwrap(), 0)).with_read_size(1);
        assert_eq!(reader.next_frame().unwrap(), Some(&input[..]));
        // Empty buffer (1), all ten bytes in: probe (2) and cut (3).
        assert_eq!(reader.delimiter().1, 3);
    }

    #[test]
    fn a_probe_consumes_nothing() {
        let mut core = ReadCore::new(Until::lf());
        core.framer_mut().push(b"x\ny\n");
        assert_eq!(core.step(), Ok(Step::Ready));
        assert_eq!(core.step(), Ok(Step::Ready));
        assert_eq!(core.framer().buffered(), b"x\ny\n");
        assert_eq!(core.take(), Ok(Some(&b"x"[..])));
        assert_eq!(core.step(), Ok(Step::Ready));
        assert_eq!(core.take(), Ok(Some(&b"y"[..])));
        assert_eq!(core.step(), Ok(Step::Read));
        core.filled(0);
        assert_eq!(core.step(), Ok(Step::End));
    }
}
