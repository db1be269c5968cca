//! tokio adapters (feature `tokio`): pants' typed framing over tokio's
//! [`AsyncRead`](::tokio::io::AsyncRead) and [`AsyncWrite`](::tokio::io::AsyncWrite),
//! and as a tokio-util codec.
//!
//! * [`Reader`]: a lending reader, `next_frame().await` hands out frames
//!   borrowed from its buffer (a `&[u8]` line, a `NetStruct` with `&str`
//!   fields), with the [`Framer`](crate::Framer)'s buffer limit and a
//!   typestate delimiter switch ([`Reader::read_delimiter`]).
//! * [`Writer`]: typed frames encoded into a batch buffer and written out in
//!   one write ([`Writer::feed`], [`Writer::flush`], [`Writer::send`]).
//! * [`Codec`]: a tokio-util [`Decoder`](tokio_util::codec::Decoder) and
//!   [`Encoder`](tokio_util::codec::Encoder) for code built on
//!   [`Framed`](tokio_util::codec::Framed), for delimiters whose frames can
//!   be owned ([`OwnedFrames`]).
//!
//! ```
//! use pants::{delimiter::Packed, io::tokio::{Reader, Writer}, NetStruct};
//!
//! #[derive(NetStruct, Debug, PartialEq)]
//! struct Note<'a> {
//!     id: u32,
//!     #[netstruct(len = u16)]
//!     text: &'a str,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     let socket = tokio::net::TcpStream::connect(addr).await?;
//!     let mut writer = Writer::new(socket, Packed::<Note>::new());
//!     writer.feed(&Note { id: 1, text: "hello" }).await?;
//!     writer.send(&Note { id: 2, text: "world" }).await // one write for both
//! });
//!
//! let (socket, _) = listener.accept().await?;
//! let mut reader = Reader::new(socket, Packed::<Note>::new());
//! // `text` points into the reader's buffer.
//! assert_eq!(reader.next_frame().await?, Some(Note { id: 1, text: "hello" }));
//! assert_eq!(reader.next_frame().await?, Some(Note { id: 2, text: "world" }));
//! assert_eq!(reader.next_frame().await?, None);
//! # Ok(())
//! # }
//! ```

mod codec;
mod reader;
mod writer;

pub use codec::{Codec, OwnedFrames, SliceAt};
pub use reader::Reader;
pub use writer::Writer;
