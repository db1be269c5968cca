//! Typed, borrowed frames from a tokio [`AsyncRead`].

use ::tokio::io::{AsyncRead, AsyncReadExt};

use crate::delimiter::Delimiter;
use crate::framer::Framer;
use crate::io::read_core::{reader_common, Next, ReadCore, Step};
use crate::io::ReadError;

/// Typed frames from a tokio [`AsyncRead`] (a `TcpStream`, a `UnixStream`,
/// a `DuplexStream`, a TLS stream, ...): a [`Framer`] that reads for itself.
///
/// [`next_frame`](Reader::next_frame)`.await` returns the next frame,
/// borrowed from the reader's buffer (a lending reader: the frame must be
/// dropped before the next call, which is what tokio-util's `Decoder::Item`
/// cannot express); `Ok(None)` at a clean end of input,
/// [`FrameError::Truncated`](crate::FrameError::Truncated) when the input
/// ends inside a frame. The buffer limit is the framer's
/// ([`Framer::limit`]): the reader never reads past it, and a frame that
/// cannot fit is [`FrameError::Overflow`](crate::FrameError::Overflow).
///
/// ```
/// use pants::{delimiter::{Count, Until}, io::tokio::Reader};
/// use tokio::io::AsyncWriteExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (mut client, server) = tokio::io::duplex(64);
/// tokio::spawn(async move { client.write_all(b"SIZE 5\nhelloPING\n").await });
///
/// let mut reader = Reader::new(server, Until::lf());
/// let header: &[u8] = reader.next_frame().await?.unwrap(); // borrowed, no copy
/// let size: usize = std::str::from_utf8(header)?.strip_prefix("SIZE ").unwrap().parse()?;
///
/// // A typestate switch: the bytes already read are cut with the new delimiter.
/// let mut reader = reader.read_delimiter(Count::new(size)?);
/// assert_eq!(reader.next_frame().await?, Some(&b"hello"[..]));
/// let mut reader = reader.read_delimiter(Until::lf());
/// assert_eq!(reader.next_frame().await?, Some(&b"PING"[..]));
/// assert_eq!(reader.next_frame().await?, None); // the writer is gone: a clean end
/// # Ok(())
/// # }
/// ```
pub struct Reader<R, D> {
    source: R,
    core: ReadCore<D>,
}

impl<R: AsyncRead + Unpin, D: Delimiter> Reader<R, D> {
    /// A reader of `source` cut by `delimiter`, with the default buffer
    /// limit ([`DEFAULT_BUFFER_SIZE`](crate::framer::DEFAULT_BUFFER_SIZE)).
    pub fn new(source: R, delimiter: D) -> Self {
        Reader { source, core: ReadCore::new(delimiter) }
    }

    /// A reader that goes on from a [`Framer`]: its buffered bytes (cut
    /// first) and its limit, with `delimiter`.
    pub fn from_framer<D0: Delimiter>(source: R, framer: Framer<D0>, delimiter: D) -> Self {
        Reader { source, core: ReadCore::from_framer(framer, delimiter) }
    }

    /// Sets the buffer limit, builder style (see [`Framer::with_buffer_size`]).
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.core.framer_mut().set_buffer_size(buffer_size);
        self
    }

    /// Sets how many bytes one read asks for at most (default
    /// [`DEFAULT_READ_SIZE`](crate::io::DEFAULT_READ_SIZE); never more than
    /// the room left under the limit), builder style.
    pub fn with_read_size(mut self, read_size: usize) -> Self {
        self.core.set_read_size(read_size);
        self
    }

    /// The next frame, reading from the source until one is buffered.
    ///
    /// `Ok(None)` means the source ended with nothing left over. The frame
    /// borrows the reader's buffer. Errors are sticky, as on a [`Framer`].
    ///
    /// Cancel safe: if the future is dropped before it completes (in a
    /// `tokio::select!`, say), no byte and no frame is lost; the next call
    /// goes on where it stopped.
    ///
    /// Each frame is decoded once, as by [`Framer::next_frame`].
    #[allow(unsafe_code)] // one reborrow, argued at the block
    pub async fn next_frame(&mut self) -> Result<Option<D::Output<'_>>, ReadError> {
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
            self.fill().await?;
        }
    }

    /// Hands every whole frame buffered to `f`, reading first if none is:
    /// the batch counterpart of [`next_frame`](Reader::next_frame), which
    /// decodes each frame once (see [`Framer::for_each_frame`]). Returns how
    /// many frames `f` was given; `Ok(0)` only at a clean end of input.
    /// Cancel safe, like `next_frame`.
    ///
    /// ```
    /// use pants::{delimiter::Until, io::tokio::Reader};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), pants::io::ReadError> {
    /// let mut reader = Reader::new(&b"a\nb\nc\n"[..], Until::lf());
    /// let mut lines = Vec::new();
    /// while reader.for_each_frame(|line| lines.push(line.to_vec())).await? > 0 {}
    /// assert_eq!(lines, [b"a", b"b", b"c"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn for_each_frame<F: FnMut(D::Output<'_>)>(&mut self, mut f: F) -> Result<usize, ReadError> {
        loop {
            let frames = self.core.for_each_frame(&mut f)?;
            if frames > 0 {
                return Ok(frames);
            }
            match self.core.after_batch()? {
                Step::End => return Ok(0),
                _ => self.fill().await?,
            }
        }
    }

    /// One read into the buffer, never past the limit.
    async fn fill(&mut self) -> Result<(), ReadError> {
        let space = self.core.read_space()?;
        let room = space.len();
        let n = self.source.read(space).await?;
        self.core.filled(n, room);
        Ok(())
    }
}

reader_common!();
