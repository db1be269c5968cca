//! Reading from [`embedded-io`](embedded_io) sources (a UART, a TCP socket
//! of an embedded stack) into a [`Framer`], with neither `std` nor `alloc`.

use super::{Framer, Storage};
use crate::Delimiter;

#[cfg(feature = "embedded-io")]
impl<D: Delimiter, S: Storage> Framer<D, S> {
    /// Reads once from an [`embedded_io::Read`] source into the buffer: at
    /// most `max` bytes, and never past the [limit](Framer::limit). Returns
    /// what `read` returned: `Ok(0)` is end of input, or no room (the buffer
    /// holds `limit` bytes: cut frames first, and `next_frame` reports an
    /// overflow if none can be cut). The `embedded-io` counterpart of
    /// `read_from`.
    ///
    /// The loop that drains a source cuts every frame buffered before it reads
    /// again, so the buffer never needs more than one frame's room:
    ///
    /// ```
    /// # #[cfg(feature = "embedded-io")] {
    /// use pants::{delimiter::Until, Framer};
    ///
    /// // `&[u8]` is an `embedded_io::Read`: here it stands in for a UART.
    /// let mut uart: &[u8] = b"+CSQ: 21\r\nOK\r\n";
    /// let mut memory = [0u8; 64];
    /// let mut framer = Framer::with_storage(Until::crlf(), &mut memory[..]);
    /// let mut lines = 0;
    /// loop {
    ///     if let Some(line) = framer.next_frame()? {
    ///         assert!(line == b"+CSQ: 21" || line == b"OK");
    ///         lines += 1;
    ///         continue;
    ///     }
    ///     if framer.read_from_embedded(&mut uart, 16).expect("reading from a slice") == 0 {
    ///         break;
    ///     }
    /// }
    /// framer.finish()?;
    /// assert_eq!(lines, 2);
    /// # }
    /// # Ok::<(), pants::FrameError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `source` claims to have read more bytes than it was given (a bug
    /// in the source, never caused by input).
    pub fn read_from_embedded<R: embedded_io::Read + ?Sized>(
        &mut self,
        source: &mut R,
        max: usize,
    ) -> Result<usize, R::Error> {
        let limit = self.limit();
        let space = self.buffer.room(max, limit);
        if space.is_empty() {
            return Ok(0);
        }
        let room = space.len();
        let n = source.read(space)?;
        self.buffer.commit_read(n, room);
        Ok(n)
    }
}

#[cfg(feature = "embedded-io-async")]
impl<D: Delimiter, S: Storage> Framer<D, S> {
    /// [`read_from_embedded`](Framer::read_from_embedded) for an
    /// [`embedded_io_async::Read`] source (an Embassy UART or socket):
    /// awaits one read of at most `max` bytes, never past the limit.
    ///
    /// ```
    /// # #[cfg(feature = "embedded-io-async")] {
    /// use pants::{delimiter::Count, Framer};
    ///
    /// async fn first_record(mut source: &[u8]) -> Option<[u8; 4]> {
    ///     let mut framer = Framer::with_storage(Count::new(4).ok()?, [0u8; 32]);
    ///     loop {
    ///         if let Some(record) = framer.next_frame().ok()? {
    ///             return record.try_into().ok();
    ///         }
    ///         if framer.read_from_embedded_async(&mut source, 32).await.ok()? == 0 {
    ///             return None;
    ///         }
    ///     }
    /// }
    /// # use std::future::Future;
    /// # let waker = std::task::Waker::noop();
    /// # let mut cx = std::task::Context::from_waker(&waker);
    /// # let mut future = std::pin::pin!(first_record(b"abcdefg"));
    /// # let std::task::Poll::Ready(record) = future.as_mut().poll(&mut cx) else { panic!("a slice is always ready") };
    /// # assert_eq!(record, Some(*b"abcd"));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `source` claims to have read more bytes than it was given.
    pub async fn read_from_embedded_async<R: embedded_io_async::Read + ?Sized>(
        &mut self,
        source: &mut R,
        max: usize,
    ) -> Result<usize, R::Error> {
        let limit = self.limit();
        let space = self.buffer.room(max, limit);
        if space.is_empty() {
            return Ok(0);
        }
        let room = space.len();
        let n = source.read(space).await?;
        self.buffer.commit_read(n, room);
        Ok(n)
    }
}
