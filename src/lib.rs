//! # pants: event-driven networking with typed, compile-time framing
//!
//! A Rust re-imagining of Python's [Pants](https://pypi.org/project/pants/):
//! handlers implement traits, a single-threaded event loop dispatches events,
//! and *read delimiters* cut the byte stream into frames before `on_read`
//! sees them. Here a delimiter is a type, the frame handed to `on_read` is
//! typed (often borrowed straight out of the receive buffer), and a handler
//! that cannot read a frame type cannot be switched to it.
//!
//! This part of the crate is the framing core, and it is sans-IO: the
//! [`Delimiter`] trait, the built-in [`delimiter`]s, [`#[derive(NetStruct)]`](derive@NetStruct)
//! and the [`Framer`] work on any bytes, with no socket, and build for
//! `#![no_std]` targets (`default-features = false`), with an allocator or
//! without one: a [`Framer`] then runs on a buffer the caller provides
//! ([`Framer::with_storage`]), and derived structs encode into a slice
//! ([`NetStruct::encode_into`]). The write side is sans-IO too: each
//! built-in delimiter (the regex ones excepted) is also an [`Encode`]r of
//! the frames it cuts (with `alloc`).
//!
//! ```
//! use pants::{delimiter::{Packed, Until}, Framer, NetStruct};
//!
//! #[derive(NetStruct, Debug, PartialEq)]
//! struct Move<'a> {
//!     player: u8,
//!     #[netstruct(len = u8)]
//!     square: &'a str,
//! }
//!
//! // A text greeting, then binary moves: the framer switches type.
//! let mut framer = Framer::new(Until::crlf());
//! framer.push(b"HELLO chess\r\n\x01\x02e4\x02\x02e5");
//! assert_eq!(framer.next_frame()?, Some(&b"HELLO chess"[..]));
//!
//! let mut framer = framer.read_delimiter(Packed::<Move>::new());
//! assert_eq!(framer.next_frame()?, Some(Move { player: 1, square: "e4" }));
//! assert_eq!(framer.next_frame()?, Some(Move { player: 2, square: "e5" }));
//! # Ok::<(), pants::FrameError>(())
//! ```
//!
//! ## Features
//!
//! * `std` (default): everything that needs an operating system.
//! * `alloc` (default, implied by `std`): growable framers ([`Framer::new`]),
//!   the write side ([`Encode`], `Pack`), owned fields (`Vec<u8>`, `String`)
//!   and run-time messages in [`FrameError::Malformed`]. Without it nothing
//!   in pants allocates (CI links a `#![no_std]` program without an
//!   allocator to prove it).
//! * `embedded-io`, `embedded-io-async` (no_std): `Framer::read_from_embedded`
//!   and `Framer::read_from_embedded_async` read from `embedded_io` sources
//!   (UARTs, embedded TCP stacks).
//! * `regex` (default, needs `std`): [`delimiter::RegexSearch`] and [`delimiter::RegexMatch`].
//! * `binrw` (default, needs `std`): [`delimiter::Binrw`] and [`pack::Binrw`].
//! * `tokio` (needs `std`): [`io::tokio`][io-tokio], typed and borrowed frames over tokio's
//!   `AsyncRead`/`AsyncWrite`, and pants' delimiters as a tokio-util codec.
//!   Without it, [`io`][io] still has the blocking `std::io` adapters.
//! * `tls` (default, needs `std`): TLS on streams and servers (rustls).
//! * `tracing` (needs `std`): a `tracing` span per stream and server, with
//!   events for connects, TLS handshakes, closes (with the stream's
//!   counters) and errors, alongside the `log` output, which stays as it
//!   is; the `guide` module's section 10 shows it. Without the feature, none
//!   of it is compiled in. The per-stream counters (`StreamCounters`) are
//!   always there.
// Built without a feature, its items are linked on docs.rs instead.
#![cfg_attr(
    not(feature = "regex"),
    doc = "\n\n[`delimiter::RegexSearch`]: https://docs.rs/pants/latest/pants/delimiter/struct.RegexSearch.html\n[`delimiter::RegexMatch`]: https://docs.rs/pants/latest/pants/delimiter/struct.RegexMatch.html"
)]
#![cfg_attr(
    not(feature = "binrw"),
    doc = "\n\n[`delimiter::Binrw`]: https://docs.rs/pants/latest/pants/delimiter/struct.Binrw.html\n[`pack::Binrw`]: https://docs.rs/pants/latest/pants/pack/struct.Binrw.html"
)]
#![cfg_attr(
    not(feature = "alloc"),
    doc = "\n\n[`Encode`]: https://docs.rs/pants/latest/pants/trait.Encode.html\n[`Framer::new`]: https://docs.rs/pants/latest/pants/struct.Framer.html#method.new"
)]
#![cfg_attr(feature = "tokio", doc = "\n\n[io-tokio]: crate::io::tokio")]
#![cfg_attr(not(feature = "tokio"), doc = "\n\n[io-tokio]: https://docs.rs/pants/latest/pants/io/tokio/index.html")]
#![cfg_attr(feature = "std", doc = "\n\n[io]: crate::io")]
#![cfg_attr(not(feature = "std"), doc = "\n\n[io]: https://docs.rs/pants/latest/pants/io/index.html")]
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
// No `unsafe` but the one reborrow each lending reader of `pants::io` needs
// (argued where it is, and measured: `BENCHMARKS.md`, "tokio reader").
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
// Lets `#[derive(NetStruct)]` refer to `::pants` inside this crate too.
extern crate self as pants;

#[cfg(feature = "std")]
pub mod address;
pub mod delimiter;
#[cfg(feature = "alloc")]
pub mod encode;
#[cfg(feature = "std")]
pub mod engine;
pub mod error;
pub mod framer;
#[cfg(feature = "std")]
pub mod guide;
#[cfg(feature = "std")]
pub mod io;
pub mod netstruct;
#[cfg(feature = "alloc")]
pub mod pack;
#[cfg(feature = "std")]
pub mod reconnect;
#[cfg(feature = "std")]
pub mod server;
#[cfg(feature = "std")]
pub mod stream;
#[cfg(feature = "std")]
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "std")]
pub mod workers;

pub use delimiter::{Decoded, Delimiter, Needed};
#[cfg(feature = "alloc")]
pub use encode::Encode;
pub use error::{DelimiterError, FrameError, PackError};
pub use framer::Framer;
pub use netstruct::NetStruct;
#[cfg(feature = "alloc")]
pub use pack::Pack;

#[cfg(feature = "std")]
pub use address::Address;
#[cfg(feature = "std")]
pub use engine::{Engine, Remote, ShutdownSummary, TimerId};
#[cfg(feature = "std")]
pub use error::StreamError;
#[cfg(feature = "std")]
pub use server::{Server, ServerCounters, ServerHandler};
#[cfg(feature = "std")]
pub use stream::{AnyDelimiter, Handler, Read, ReadBy, Stream, StreamBuilder, StreamCounters, StreamId};
#[cfg(feature = "std")]
pub use workers::{WorkerGroup, WorkerStreamId, Workers, WorkersError};

/// The `zerocopy` crate that [`delimiter::Fixed`] and `pack::Zerocopy`
/// build on, so that a protocol's fixed structs need no dependency of their
/// own. Reading a `T` with `Fixed<T>` needs `T: FromBytes + KnownLayout +
/// Immutable + Unaligned`; sending one with `pack::Zerocopy` needs
/// `IntoBytes + Immutable`. Derived through this re-export, the derives are
/// told where the crate is with `#[zerocopy(crate = "pants::zerocopy")]`:
///
/// ```
/// use pants::zerocopy::{big_endian::U16, FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};
/// use pants::{delimiter::Fixed, pack, Framer, Pack};
///
/// #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
/// #[zerocopy(crate = "pants::zerocopy")]
/// #[repr(C)]
/// struct Header {
///     kind: u8,
///     len: U16,
/// }
///
/// let mut wire = Vec::new();
/// pack::Zerocopy(&Header { kind: 7, len: U16::new(256) }).pack(&mut wire)?;
/// let mut framer = Framer::new(Fixed::<Header>::new());
/// framer.push(&wire);
/// let header = framer.next_frame()?.unwrap();
/// assert_eq!((header.kind, header.len.get()), (7, 256));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use zerocopy;

/// Derives [`NetStruct`](trait@NetStruct) (and so, with `alloc`, `Pack`) for a struct with
/// named fields; see the [`netstruct`] module for field types and attributes.
pub use pants_derive::NetStruct;

/// The README's code compiles (checked by the doc tests).
#[cfg(all(doctest, feature = "tls"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
