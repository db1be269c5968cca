//! The errors of the I/O adapters: the source or sink failed, or the bytes
//! (or the item) could not be framed.

use crate::error::{FrameError, PackError};

/// Why a reader could not hand out the next frame.
///
/// A [`Frame`](ReadError::Frame) error is sticky, as on a
/// [`Framer`](crate::Framer): asking for the next frame again returns it
/// again, nothing is consumed. [`FrameError::Truncated`] means the input
/// ended inside a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading from the source failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes could not be cut into a frame (an overflow of the buffer
    /// limit, a malformed frame, or input that ended inside a frame).
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Why a writer could not send an item.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Writing to the sink (or flushing it) failed. What had not been
    /// written stays buffered.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The item could not be encoded as a frame; nothing was buffered.
    #[error(transparent)]
    Pack(#[from] PackError),
}

impl From<ReadError> for std::io::Error {
    /// An I/O error as it was; a frame error as [`std::io::ErrorKind::InvalidData`].
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Io(e) => e,
            ReadError::Frame(e) => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }
    }
}

impl From<WriteError> for std::io::Error {
    /// An I/O error as it was; a pack error as [`std::io::ErrorKind::InvalidInput`].
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Io(e) => e,
            WriteError::Pack(e) => std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        }
    }
}
