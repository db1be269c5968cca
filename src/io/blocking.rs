//! Blocking adapters over [`std::io::Read`] and [`std::io::Write`]: typed
//! frames for simple clients, command-line tools and tests, with no event
//! loop and no runtime.
//!
//! ```
//! use pants::delimiter::{Count, Until};
//! use pants::io::blocking::{Reader, Writer};
//!
//! // Write a line header and a body into memory (any `std::io::Write`)...
//! let mut writer = Writer::new(Vec::new(), Until::lf());
//! writer.feed(b"SIZE 5")?;
//! writer.feed_with(&Count::new(5)?, b"hello")?;
//! let wire = writer.into_inner()?;
//!
//! // ...and read it back from any `std::io::Read` (a `TcpStream`, a file, `&[u8]`).
//! let mut reader = Reader::new(&wire[..], Until::lf());
//! let header = reader.next_frame()?.unwrap();
//! let size: usize = std::str::from_utf8(header)?.strip_prefix("SIZE ").unwrap().parse()?;
//! let mut reader = reader.read_delimiter(Count::new(size)?);
//! assert_eq!(reader.next_frame()?, Some(&b"hello"[..]));
//! assert_eq!(reader.next_frame()?, None); // a clean end of input
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{ErrorKind, Read, Write};

use crate::delimiter::Delimiter;
use crate::encode::Encode;
use crate::error::PackError;
use crate::framer::Framer;
use crate::pack::Pack;

use super::read_core::{reader_common, Next, ReadCore, Step};
use super::write_buffer::{write_zero, writer_common, WriteBuffer};
use super::{ReadError, WriteError};

/// Typed frames from a [`std::io::Read`]: a [`Framer`] that reads for
/// itself.
///
/// [`next_frame`](Reader::next_frame) returns the next frame, borrowed from
/// the reader's buffer, reading (blocking) as often as it takes; `Ok(None)`
/// at a clean end of input, [`FrameError::Truncated`](crate::FrameError::Truncated)
/// when the input ends inside a frame. The buffer limit is the framer's
/// ([`Framer::limit`]): the reader never reads past it, and a frame that cannot
/// fit is [`FrameError::Overflow`](crate::FrameError::Overflow).
///
/// ```
/// use pants::{delimiter::Until, io::blocking::Reader, FrameError, io::ReadError};
///
/// let mut reader = Reader::new(&b"one\ntwo\nthr"[..], Until::lf());
/// assert_eq!(reader.next_frame()?, Some(&b"one"[..]));
/// assert_eq!(reader.next_frame()?, Some(&b"two"[..]));
/// // "thr" never ended.
/// assert!(matches!(reader.next_frame(), Err(ReadError::Frame(FrameError::Truncated { buffered: 3 }))));
/// # Ok::<(), ReadError>(())
/// ```
pub struct Reader<R, D> {
    source: R,
    core: ReadCore<D>,
}

impl<R: Read, D: Delimiter> Reader<R, D> {
    /// A reader of `source` cut by `delimiter`, with the default buffer
    /// limit ([`DEFAULT_BUFFER_SIZE`](crate::framer::DEFAULT_BUFFER_SIZE)).
    pub fn new(source: R, delimiter: D) -> Self {
        Reader { source, core: ReadCore::new(delimiter) }
    }

    /// A reader that goes on from a [`Framer`]: its buffered bytes (cut
    /// first) and its limit, with `delimiter`.
    ///
    /// ```
    /// use pants::{delimiter::Until, io::blocking::Reader, Framer};
    /// let mut framer = Framer::new(Until::lf());
    /// framer.push(b"already here\nand ");
    /// assert_eq!(framer.next_frame()?, Some(&b"already here"[..]));
    /// let mut reader = Reader::from_framer(&b"then read\n"[..], framer, Until::lf());
    /// assert_eq!(reader.next_frame()?, Some(&b"and then read"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_framer<D0: Delimiter>(source: R, framer: Framer<D0>, delimiter: D) -> Self {
        Reader { source, core: ReadCore::from_framer(framer, delimiter) }
    }

    /// Sets the buffer limit, builder style (see [`Framer::with_buffer_size`]).
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.core.framer_mut().set_buffer_size(buffer_size);
        self
    }

    /// Sets how many bytes one read asks for at most (default
    /// [`DEFAULT_READ_SIZE`](super::DEFAULT_READ_SIZE); never more than the
    /// room left under the limit), builder style.
    pub fn with_read_size(mut self, read_size: usize) -> Self {
        self.core.set_read_size(read_size);
        self
    }

    /// The next frame, reading from the source until one is buffered.
    ///
    /// `Ok(None)` means the source ended with nothing left over. The frame
    /// borrows the reader's buffer: drop it before the next call. Reads
    /// interrupted by a signal ([`ErrorKind::Interrupted`]) are retried.
    /// Errors are sticky, as on a [`Framer`]. Each frame is decoded once,
    /// as by [`Framer::next_frame`].
    #[allow(unsafe_code)] // one reborrow, argued at the block
    pub fn next_frame(&mut self) -> Result<Option<D::Output<'_>>, ReadError> {
        loop {
            {
                let core: *mut ReadCore<D> = &mut self.core;
                // SAFETY: `core` is `&mut self.core`, which `&mut self` lets
                // us use exclusively for the lifetime of the result. The
                // reference made from it lives only in this block: a frame
                // it returns is returned at once, and nothing else touches
                // `self` before the function returns; otherwise the
                // reference (and any borrow of the buffer) ends here, before
                // `self` is used again below. Safe code that the borrow
                // checker accepts would decode each frame twice; see
                // `read_core`.
                match unsafe { &mut *core }.next()? {
                    Next::Frame(frame) => return Ok(Some(frame)),
                    Next::End => return Ok(None),
                    Next::Read => {}
                }
            }
            self.fill()?;
        }
    }

    /// Hands every whole frame buffered to `f`, reading first (once or more)
    /// if none is: the batch counterpart of [`next_frame`](Reader::next_frame),
    /// which decodes each frame once (see [`Framer::for_each_frame`]).
    /// Returns how many frames `f` was given; `Ok(0)` only at a clean end of
    /// input.
    ///
    /// ```
    /// use pants::{delimiter::Until, io::blocking::Reader};
    /// let mut reader = Reader::new(&b"a\nb\nc\n"[..], Until::lf()).with_read_size(4);
    /// let mut lines = Vec::new();
    /// while reader.for_each_frame(|line| lines.push(line.to_vec()))? > 0 {}
    /// assert_eq!(lines, [b"a", b"b", b"c"]);
    /// # Ok::<(), pants::io::ReadError>(())
    /// ```
    pub fn for_each_frame<F: FnMut(D::Output<'_>)>(&mut self, mut f: F) -> Result<usize, ReadError> {
        loop {
            let frames = self.core.for_each_frame(&mut f)?;
            if frames > 0 {
                return Ok(frames);
            }
            match self.core.after_batch()? {
                Step::End => return Ok(0),
                _ => self.fill()?,
            }
        }
    }

    /// One read into the buffer (retrying interrupted reads).
    fn fill(&mut self) -> Result<(), ReadError> {
        let space = self.core.read_space()?;
        let room = space.len();
        let n = loop {
            match self.source.read(space) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.core.filled(n, room);
        Ok(())
    }
}

reader_common!();

/// Typed frames to a [`std::io::Write`], batched: each frame is encoded
/// into a buffer, and the buffer goes to the sink in one `write_all` when
/// it passes a threshold ([`DEFAULT_FLUSH_THRESHOLD`](super::DEFAULT_FLUSH_THRESHOLD)
/// unless set) or on [`flush`](Writer::flush).
///
/// [`feed`](Writer::feed) encodes with the writer's encoder `E` (a
/// delimiter: `Until::lf()` writes lines, `Packed::<T>::new()` writes `&T`s),
/// [`feed_with`](Writer::feed_with) with any other, [`feed_packed`](Writer::feed_packed)
/// any [`Pack`] value; [`send`](Writer::send) is `feed` then `flush`.
/// Bytes still buffered when the writer is dropped are lost: flush first, or
/// use [`into_inner`](Writer::into_inner).
///
/// ```
/// use pants::{delimiter::Until, io::blocking::Writer};
///
/// let mut writer = Writer::new(Vec::new(), Until::crlf());
/// writer.feed(b"PING")?;
/// writer.feed(b"PING")?;
/// assert!(writer.get_ref().is_empty()); // both frames still buffered
/// writer.flush()?; // one write
/// assert_eq!(writer.get_ref(), b"PING\r\nPING\r\n");
/// # Ok::<(), pants::io::WriteError>(())
/// ```
pub struct Writer<W, E> {
    sink: W,
    encoder: E,
    buffer: WriteBuffer,
}

impl<W: Write, E> Writer<W, E> {
    /// Buffers the frame `encoder` makes of `item`, writing the buffer out
    /// if it passed the threshold. On a [`WriteError::Pack`] nothing was
    /// buffered.
    pub fn feed<I>(&mut self, item: I) -> Result<(), WriteError>
    where
        E: Encode<I>,
    {
        self.buffer.encode(&self.encoder, item)?;
        self.write_if_full()
    }

    /// Like [`feed`](Writer::feed), with another encoder.
    pub fn feed_with<I, E2: Encode<I> + ?Sized>(&mut self, encoder: &E2, item: I) -> Result<(), WriteError> {
        self.buffer.encode(encoder, item)?;
        self.write_if_full()
    }

    /// Buffers any [`Pack`] value (a [`NetStruct`](crate::NetStruct), a
    /// zerocopy struct in [`pack::Zerocopy`](crate::pack::Zerocopy), ...).
    pub fn feed_packed<P: Pack + ?Sized>(&mut self, value: &P) -> Result<(), WriteError> {
        self.buffer.pack(value)?;
        self.write_if_full()
    }

    /// Buffers raw bytes, with no framing.
    pub fn feed_bytes(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.buffer.extend(bytes);
        self.write_if_full()
    }

    /// [`feed`](Writer::feed), then [`flush`](Writer::flush).
    pub fn send<I>(&mut self, item: I) -> Result<(), WriteError>
    where
        E: Encode<I>,
    {
        self.buffer.encode(&self.encoder, item)?;
        self.flush()
    }

    /// Writes everything buffered to the sink, then flushes the sink.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.write_buffered()?;
        self.sink.flush()?;
        Ok(())
    }

    /// Flushes, then gives the sink back.
    pub fn into_inner(mut self) -> Result<W, WriteError> {
        self.flush()?;
        Ok(self.sink)
    }

    fn write_if_full(&mut self) -> Result<(), WriteError> {
        if self.buffer.is_full() {
            self.write_buffered()?;
        }
        Ok(())
    }

    /// Writes what is buffered; on an error what was not written stays.
    fn write_buffered(&mut self) -> Result<(), WriteError> {
        while !self.buffer.pending().is_empty() {
            match self.sink.write(self.buffer.pending()) {
                Ok(0) => return Err(write_zero().into()),
                Ok(n) => self.buffer.advance(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

writer_common!();
