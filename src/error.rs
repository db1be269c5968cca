//! Typed errors for framing, delimiter construction and packing.
//!
//! Every way a peer's bytes can be wrong has its own variant, so a handler can
//! match on what happened instead of parsing a message. None of these errors is
//! ever a panic: the framer, every built-in delimiter and every derived
//! [`NetStruct`](crate::NetStruct) return them for any byte sequence.
//!
//! ```
//! use pants::{delimiter::Count, FrameError, Framer};
//!
//! let mut framer = Framer::new(Count::new(8).unwrap()).with_buffer_size(4);
//! framer.push(b"abc");
//! // An 8-byte frame can never fit a 4-byte limit... except that the limit is
//! // raised to the delimiter's minimum, as Pants does for integer delimiters.
//! assert_eq!(framer.limit(), 8);
//! assert_eq!(framer.next_frame(), Ok(None));
//! assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: 3 }));
//! ```

use core::fmt;

#[cfg(feature = "alloc")]
use alloc::string::String;

/// Why the framer could not cut a frame from the buffered bytes.
///
/// The doc of each variant says what state the [`Framer`](crate::Framer) is in
/// afterwards. In short: no error consumes bytes. Calling
/// [`Framer::next_frame`](crate::Framer::next_frame) again without changing
/// anything returns the same error; to go on, discard bytes
/// ([`Framer::clear`](crate::Framer::clear), [`Framer::discard`](crate::Framer::discard)),
/// raise the limit, or switch the delimiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// No frame can be cut within the buffer limit: either the bytes buffered
    /// already fill the limit without completing a frame, or the frame announces
    /// (through a length prefix, say) that it needs more than the limit.
    ///
    /// Raised as soon as it is known, before the bytes are buffered. The
    /// buffered bytes are kept; the framer can go on once the limit is raised
    /// or bytes are discarded. Pants calls `on_overflow_error` for this.
    #[error("frame needs {needed} bytes but the buffer limit is {limit} bytes")]
    Overflow {
        /// The effective buffer limit (see [`Framer::limit`](crate::Framer::limit)).
        limit: usize,
        /// The smallest number of buffered bytes that could hold the frame
        /// (a lower bound when the frame's size is not known).
        needed: usize,
    },
    /// The delimiter returned a frame without consuming any input, which would
    /// loop forever (Pants hangs on such delimiters). The framer stays as it
    /// was; this is a bug in a user-written [`Delimiter`](crate::Delimiter).
    #[error("the delimiter returned a frame without consuming any input")]
    NoProgress,
    /// The delimiter consumed more bytes than it was given. A bug in a
    /// user-written [`Delimiter`](crate::Delimiter); the framer stays as it was.
    #[error("the delimiter claimed {consumed} bytes but only {buffered} were buffered")]
    OverConsumed {
        /// What the delimiter claimed to consume.
        consumed: usize,
        /// What was buffered.
        buffered: usize,
    },
    /// A length prefix held a negative value (signed length types only).
    /// Python's netstruct slices from the end here; pants refuses.
    #[error("field `{field}` has a negative length prefix ({length})")]
    NegativeLength {
        /// The field's name.
        field: &'static str,
        /// The value read.
        length: i64,
    },
    /// A length prefix does not fit in this machine's `usize`.
    #[error("field `{field}` has a length prefix ({length}) larger than this platform can address")]
    LengthTooLarge {
        /// The field's name.
        field: &'static str,
        /// The value read.
        length: u64,
    },
    /// A length prefix announced more bytes than the field's
    /// `#[netstruct(max = ..)]` allows.
    ///
    /// Raised as soon as the prefix is read, before any byte of the field is
    /// needed: a framer reports it once the bytes up to and including the
    /// prefix are buffered, without waiting for (or buffering) the body. Like
    /// the other decode errors it consumes nothing and is sticky: calling
    /// [`Framer::next_frame`](crate::Framer::next_frame) again returns it
    /// again until bytes are discarded or the delimiter changes. Streams hand
    /// it to `on_error` (not `on_overflow_error`, which is for the buffer
    /// limit).
    #[error("field `{field}` announces {len} bytes, more than its limit of {max}")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// The length the prefix announced.
        len: u64,
        /// The field's `max`.
        max: u64,
    },
    /// A `str`/`String` field held bytes that are not UTF-8.
    #[error("field `{field}` is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 {
        /// The field's name.
        field: &'static str,
        /// How many leading bytes were valid.
        valid_up_to: usize,
    },
    /// A `bool` field held a byte other than 0 or 1.
    #[error("field `{field}` is a bool but holds {value:#04x}")]
    InvalidBool {
        /// The field's name.
        field: &'static str,
        /// The byte read.
        value: u8,
    },
    /// End of input came in the middle of a frame: these bytes were buffered
    /// but never made a whole frame. Returned by
    /// [`Framer::finish`](crate::Framer::finish); the bytes stay in the buffer.
    #[error("end of input inside a frame: {buffered} bytes of an incomplete frame were left")]
    Truncated {
        /// How many bytes were left.
        buffered: usize,
    },
    /// The bytes do not form a valid frame for this delimiter (a binrw type's
    /// magic number or assertion failed, a user delimiter refused them, ...).
    /// The [`Reason`] says why; make one with [`FrameError::malformed`].
    #[error("malformed frame: {0}")]
    Malformed(Reason),
}

impl FrameError {
    /// A [`FrameError::Malformed`] with this reason: a `&'static str`
    /// (which needs no allocator) or, with the `alloc` feature, a `String`.
    ///
    /// ```
    /// use pants::FrameError;
    /// let error = FrameError::malformed("expected CRLF");
    /// assert_eq!(error.to_string(), "malformed frame: expected CRLF");
    /// assert!(matches!(&error, FrameError::Malformed(why) if why == "expected CRLF"));
    /// ```
    pub fn malformed(reason: impl Into<Reason>) -> Self {
        FrameError::Malformed(reason.into())
    }
}

/// Why a frame is [malformed](FrameError::Malformed): a message, borrowed
/// for `'static` (no allocator needed, so a `#![no_std]` delimiter without
/// `alloc` can report one) or, with the `alloc` feature, owned (a message
/// formatted at run time, a parser's error text).
///
/// It compares with strings and dereferences to `str`:
///
/// ```
/// use pants::error::Reason;
/// let reason = Reason::from("bad magic");
/// assert_eq!(reason, "bad magic");
/// assert_eq!(reason.len(), 9);
/// assert_eq!(Reason::from(String::from("bad magic")), reason);
/// ```
#[derive(Clone)]
pub struct Reason(ReasonText);

#[derive(Clone)]
enum ReasonText {
    Static(&'static str),
    #[cfg(feature = "alloc")]
    Owned(String),
}

impl Reason {
    /// The message.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            ReasonText::Static(text) => text,
            #[cfg(feature = "alloc")]
            ReasonText::Owned(text) => text,
        }
    }
}

impl From<&'static str> for Reason {
    fn from(text: &'static str) -> Self {
        Reason(ReasonText::Static(text))
    }
}

#[cfg(feature = "alloc")]
impl From<String> for Reason {
    fn from(text: String) -> Self {
        Reason(ReasonText::Owned(text))
    }
}

/// Equal when the messages are, however each is held.
impl PartialEq for Reason {
    fn eq(&self, other: &Reason) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Reason {}

impl core::hash::Hash for Reason {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl core::ops::Deref for Reason {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Reason {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a delimiter could not be built. Pants accepted all of these and then
/// spun forever or failed later; pants refuses them up front.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelimiterError {
    /// An empty terminator would cut empty frames forever.
    #[error("a terminator must not be empty")]
    EmptyTerminator,
    /// The terminator is longer than this build can search for: without the
    /// `alloc` feature, terminators are held inline, up to `max` bytes.
    #[error("a terminator of {len} bytes is longer than the {max} bytes this build supports (enable `alloc`)")]
    TerminatorTooLong {
        /// The terminator's length.
        len: usize,
        /// The longest terminator supported.
        max: usize,
    },
    /// A zero count would cut empty frames forever.
    #[error("a byte count must be at least 1")]
    ZeroCount,
    /// The regular expression can match the empty string, so it could cut a
    /// frame without consuming input.
    #[cfg(feature = "regex")]
    #[error("the regular expression `{0}` can match the empty string")]
    EmptyMatch(String),
    /// The regular expression does not compile.
    #[cfg(feature = "regex")]
    #[error("invalid regular expression: {0}")]
    InvalidRegex(String),
}

/// Why a value could not be packed for sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A length-prefixed field is longer than its prefix type can express,
    /// or than its `#[netstruct(max = ..)]`.
    #[error("field `{field}` is {len} bytes long, but its length prefix allows at most {max}")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// The field's length in bytes.
        len: usize,
        /// The largest length the prefix can hold, or the field's `max`.
        max: u64,
    },
    /// A frame of a fixed length ([`Count`](crate::delimiter::Count),
    /// [`Array`](crate::delimiter::Array)) was given bytes of another
    /// length.
    #[error("the frame must be {expected} bytes long, not {len}")]
    WrongLength {
        /// The delimiter's length.
        expected: usize,
        /// The length given.
        len: usize,
    },
    /// A frame for [`Until`](crate::delimiter::Until) holds its terminator
    /// (starting at byte `at` of the frame, possibly running into the
    /// terminator appended after it): the peer would cut the frame there.
    #[error("the frame holds the terminator at byte {at}: the peer would cut it there")]
    TerminatorInFrame {
        /// Where the terminator starts in the frame.
        at: usize,
    },
    /// The caller's buffer is too small for the encoding
    /// ([`NetStruct::encode_into`](crate::NetStruct::encode_into)).
    #[error("the encoding needs {needed} bytes but the buffer holds {available}")]
    BufferTooSmall {
        /// The encoding's length.
        needed: usize,
        /// The buffer's length.
        available: usize,
    },
    /// A binrw type failed to write itself.
    #[cfg(feature = "binrw")]
    #[error("binrw could not write the value: {0}")]
    Binrw(String),
}

/// What went wrong on a stream or server: the error handed to the error
/// callbacks of [`Handler`](crate::Handler) and returned by stream methods
/// used in the wrong state.
#[cfg(feature = "std")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A host name could not be resolved.
    #[error("could not resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// No address could be connected to (the last attempt's error).
    #[error("could not connect to {address}: {source}")]
    Connect {
        /// The address tried last.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Listening failed (bind or listen).
    #[error("could not listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Accepting a connection failed. The server backs off and goes on.
    #[error("accept failed: {0}")]
    Accept(std::io::Error),
    /// Reading from the socket failed (a reset peer, say).
    #[error("read failed: {0}")]
    Read(std::io::Error),
    /// Writing to the socket failed (a reset peer, say); what was queued is
    /// dropped.
    #[error("write failed: {0}")]
    Write(std::io::Error),
    /// Reading a file for `write_file` failed.
    #[error("could not send the file: {0}")]
    File(std::io::Error),
    /// The peer's bytes could not be framed (see [`FrameError`]); includes a
    /// partial frame left when the peer closed ([`FrameError::Truncated`]).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A value could not be packed for `write_packed`.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// The operation needs an open stream.
    #[error("{0}() called on a closed stream")]
    Closed(&'static str),
    /// The operation needs a connected stream.
    #[error("{0}() called on a stream that is not connected")]
    NotConnected(&'static str),
    /// `connect()` on a stream that is connected or connecting.
    #[error("connect() called on a stream that is already active")]
    AlreadyActive,
    /// A stream id that names no open stream.
    #[error("no open stream {0}")]
    NoSuchStream(crate::StreamId),
    /// A [`WorkerStreamId`](crate::WorkerStreamId) names a worker that this
    /// engine's group does not have (or this engine is in no group).
    #[error("no worker {0} in this engine's group")]
    NoSuchWorker(usize),
    /// A typed access named the wrong handler type.
    #[error("stream {0} has another handler type")]
    WrongHandler(crate::StreamId),
    /// The stream's own callback is running: use the `&mut Stream` it was given.
    #[error("stream {0} is busy: its own callback is running")]
    Busy(crate::StreamId),
    /// The stream was silent for longer than its idle or read timeout.
    #[error("{0} timeout expired")]
    Timeout(&'static str),
    /// TLS failed: a handshake, a session, or starting it in the wrong state.
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The engine was dropped (its last owning handle): nothing can be
    /// started on it any more.
    #[error("the engine was dropped")]
    EngineDropped,
    /// Code given to [`Engine::with_stream`](crate::Engine::with_stream) or
    /// [`Engine::with_server`](crate::Engine::with_server) panicked (the
    /// panic's message); the stream or server was closed, as after a
    /// panicking callback.
    #[error("a handler callback panicked: {0}")]
    Panicked(String),
}
