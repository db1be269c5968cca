//! Typed frames to a tokio [`AsyncWrite`], batched.

use ::tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::encode::Encode;
use crate::error::PackError;
use crate::io::write_buffer::{write_zero, writer_common, WriteBuffer};
use crate::io::WriteError;
use crate::pack::Pack;

/// Typed frames to a tokio [`AsyncWrite`], batched: each frame is encoded
/// into a buffer, and the buffer goes to the sink in one write when it
/// passes a threshold ([`DEFAULT_FLUSH_THRESHOLD`](crate::io::DEFAULT_FLUSH_THRESHOLD)
/// unless set) or on [`flush`](Writer::flush), so many small frames become
/// one write (one syscall on a socket).
///
/// [`feed`](Writer::feed) encodes with the writer's encoder `E` (a
/// delimiter: `Until::lf()` writes lines, `Packed::<T>::new()` writes
/// `&T`s), [`feed_with`](Writer::feed_with) with any other,
/// [`feed_packed`](Writer::feed_packed) any [`Pack`] value; as with a
/// `futures` sink, [`send`](Writer::send) is `feed` then `flush`. Feeding
/// awaits only when the threshold is passed. Bytes still buffered when the
/// writer is dropped are lost: flush first.
///
/// ```
/// use pants::{delimiter::Until, io::tokio::Writer};
/// use tokio::io::AsyncReadExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (client, mut server) = tokio::io::duplex(1024);
/// let mut writer = Writer::new(client, Until::crlf());
/// for _ in 0..3 {
///     writer.feed(b"PING").await?; // buffered
/// }
/// writer.flush().await?; // one write
/// drop(writer);
/// let mut wire = Vec::new();
/// server.read_to_end(&mut wire).await?;
/// assert_eq!(wire, b"PING\r\nPING\r\nPING\r\n");
/// # Ok(())
/// # }
/// ```
pub struct Writer<W, E> {
    sink: W,
    encoder: E,
    buffer: WriteBuffer,
}

impl<W: AsyncWrite + Unpin, E> Writer<W, E> {
    /// Buffers the frame the writer's encoder makes of `item`, writing the
    /// buffer out (without flushing the sink) if it passed the threshold.
    /// On a [`WriteError::Pack`] nothing was buffered.
    pub async fn feed<I>(&mut self, item: I) -> Result<(), WriteError>
    where
        E: Encode<I>,
    {
        self.buffer.encode(&self.encoder, item)?;
        self.write_if_full().await
    }

    /// Like [`feed`](Writer::feed), with another encoder.
    pub async fn feed_with<I, E2: Encode<I> + ?Sized>(&mut self, encoder: &E2, item: I) -> Result<(), WriteError> {
        self.buffer.encode(encoder, item)?;
        self.write_if_full().await
    }

    /// Buffers any [`Pack`] value (a [`NetStruct`](crate::NetStruct), a
    /// zerocopy struct in [`pack::Zerocopy`](crate::pack::Zerocopy), ...).
    pub async fn feed_packed<P: Pack + ?Sized>(&mut self, value: &P) -> Result<(), WriteError> {
        self.buffer.pack(value)?;
        self.write_if_full().await
    }

    /// Buffers raw bytes, with no framing.
    pub async fn feed_bytes(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.buffer.extend(bytes);
        self.write_if_full().await
    }

    /// [`feed`](Writer::feed), then [`flush`](Writer::flush).
    pub async fn send<I>(&mut self, item: I) -> Result<(), WriteError>
    where
        E: Encode<I>,
    {
        self.buffer.encode(&self.encoder, item)?;
        self.flush().await
    }

    /// Writes everything buffered to the sink, then flushes the sink.
    ///
    /// Cancel safe: dropped before it completes, it leaves what was not
    /// written buffered (no byte is written twice); call it again.
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        self.write_buffered().await?;
        self.sink.flush().await?;
        Ok(())
    }

    /// Flushes, then shuts the sink's write side down (a TCP FIN).
    pub async fn shutdown(&mut self) -> Result<(), WriteError> {
        self.write_buffered().await?;
        self.sink.shutdown().await?;
        Ok(())
    }

    async fn write_if_full(&mut self) -> Result<(), WriteError> {
        if self.buffer.is_full() {
            self.write_buffered().await?;
        }
        Ok(())
    }

    /// Writes what is buffered. Each write is recorded before the next, so
    /// an error or a cancellation leaves exactly the unwritten bytes.
    async fn write_buffered(&mut self) -> Result<(), WriteError> {
        while !self.buffer.pending().is_empty() {
            match self.sink.write(self.buffer.pending()).await? {
                0 => return Err(write_zero().into()),
                n => self.buffer.advance(n),
            }
        }
        Ok(())
    }
}

writer_common!();
