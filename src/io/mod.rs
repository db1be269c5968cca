//! I/O adapters: pants' typed, borrowed framing for code outside the pants
//! engine (feature `std`; the tokio ones with feature `tokio`).
//!
//! The [`Framer`](crate::Framer) is sans-IO: bytes in, typed frames out.
//! These adapters put a byte source or sink under it, so the same
//! delimiters, the same typed frames (borrowed from the receive buffer where
//! the delimiter's frame type borrows), the same buffer limit and the same
//! errors work over any reader or writer:
//!
//! | source or sink | read | write |
//! |---|---|---|
//! | [`std::io::Read`] / [`std::io::Write`] (blocking: clients, command-line tools, tests) | [`blocking::Reader`] | [`blocking::Writer`] |
//! | tokio `AsyncRead` / `AsyncWrite` (feature `tokio`) | `tokio::Reader` | `tokio::Writer` |
//! | tokio-util `Framed` (feature `tokio`) | `tokio::Codec` (`Decoder`, owned frames) | `tokio::Codec` (`Encoder`) |
#![cfg_attr(
    feature = "tokio",
    doc = "\n\nThe tokio adapters are in [`tokio`](self::tokio): [`Reader`](self::tokio::Reader), [`Writer`](self::tokio::Writer), [`Codec`](self::tokio::Codec)."
)]
//!
//! # Readers
//!
//! A reader's `next_frame` returns the next frame, reading as often as it
//! takes: `Ok(Some(frame))`, `Ok(None)` at a clean end of input, or a
//! [`ReadError`]: the source failed ([`ReadError::Io`]) or the bytes could not be
//! framed ([`ReadError::Frame`]), including input that ends inside a frame
//! ([`FrameError::Truncated`](crate::FrameError::Truncated)). The frame may
//! borrow the reader's buffer, so it is dropped before the next call (a
//! *lending* reader). A reader reads into its framer's spare capacity and
//! never past the [limit](crate::Framer::limit), so a peer cannot make it
//! buffer more than the limit: a frame that cannot fit is
//! [`FrameError::Overflow`](crate::FrameError::Overflow) as on a framer.
//! `read_delimiter` switches the delimiter type (a typestate transition),
//! keeping the bytes already read.
//!
//! `next_frame` decodes each frame once, like [`Framer::next_frame`](crate::Framer::next_frame).
//! Returning a borrowed frame from a loop that otherwise reads more is the
//! borrow checker's "problem case #3" (sound, but rejected until Polonius):
//! each reader makes that one call through a reborrow argued in a
//! `// SAFETY:` comment, the crate's only `unsafe`, because the safe
//! alternative decodes each frame twice (0.53–0.74x the framer's speed,
//! measured). The batch method `for_each_frame` hands every buffered frame
//! to a closure, also decoding each once (`BENCHMARKS.md`, "tokio reader",
//! measures both).
//!
//! # Writers
//!
//! A writer encodes each item with an [`Encode`](crate::Encode)r (a
//! delimiter; `Until::lf()` writes lines) or any [`Pack`](crate::Pack)
//! value into a buffer: `feed` buffers (and writes the buffer out once it
//! passes a threshold, [`DEFAULT_FLUSH_THRESHOLD`]), `flush` writes
//! everything and flushes the sink, `send` is both. Many small frames become
//! one write. Errors are [`WriteError`]s.
//!
//! ```
//! use pants::delimiter::Until;
//! use pants::io::blocking::{Reader, Writer};
//! use std::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//!
//! let mut writer = Writer::new(client, Until::lf());
//! writer.feed("HELLO")?;
//! writer.send("BYE")?; // both lines in one write
//! drop(writer); // closes the connection
//!
//! let mut reader = Reader::new(server, Until::lf());
//! assert_eq!(reader.next_frame()?, Some(&b"HELLO"[..]));
//! assert_eq!(reader.next_frame()?, Some(&b"BYE"[..]));
//! assert_eq!(reader.next_frame()?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod blocking;
mod error;
mod read_core;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod write_buffer;

pub use error::{ReadError, WriteError};
pub use read_core::DEFAULT_READ_SIZE;
pub use write_buffer::DEFAULT_FLUSH_THRESHOLD;
