//! The send buffer both writers share: frames are encoded into it and
//! written out in batches.

use crate::encode::Encode;
use crate::error::PackError;
use crate::pack::Pack;

/// How many encoded bytes a writer buffers before it writes them out by
/// itself (64 KiB, a large write on any socket).
pub const DEFAULT_FLUSH_THRESHOLD: usize = 64 * 1024;

/// Encoded frames not written yet: `buf[written..]`.
#[derive(Debug)]
pub(crate) struct WriteBuffer {
    buf: Vec<u8>,
    /// How much of `buf` the sink has taken (a write can be partial, and a
    /// cancelled async write must not lose or repeat bytes).
    written: usize,
    threshold: usize,
}

impl WriteBuffer {
    pub(crate) fn new() -> Self {
        WriteBuffer { buf: Vec::new(), written: 0, threshold: DEFAULT_FLUSH_THRESHOLD }
    }

    pub(crate) fn set_threshold(&mut self, threshold: usize) {
        self.threshold = threshold;
    }

    pub(crate) fn threshold(&self) -> usize {
        self.threshold
    }

    /// Encodes `item` at the end; on error nothing is added.
    #[inline]
    pub(crate) fn encode<E: Encode<I> + ?Sized, I>(&mut self, encoder: &E, item: I) -> Result<(), PackError> {
        let start = self.buf.len();
        encoder.encode(item, &mut self.buf).inspect_err(|_| self.buf.truncate(start))
    }

    /// Packs `value` at the end; on error nothing is added.
    #[inline]
    pub(crate) fn pack<P: Pack + ?Sized>(&mut self, value: &P) -> Result<(), PackError> {
        let start = self.buf.len();
        self.buf.reserve(value.size_hint());
        value.pack(&mut self.buf).inspect_err(|_| self.buf.truncate(start))
    }

    /// Appends raw bytes.
    #[inline]
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether enough is buffered to write it out without being asked.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.pending().len() >= self.threshold
    }

    /// The bytes not written yet.
    #[inline]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.written..]
    }

    /// Marks `n` bytes of [`pending`](WriteBuffer::pending) written; once
    /// all are, the buffer starts again at the front (its memory kept).
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.written = (self.written + n).min(self.buf.len());
        if self.written == self.buf.len() {
            self.buf.clear();
            self.written = 0;
        }
    }

    /// Takes the bytes not written yet out.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.drain(..self.written);
        self.written = 0;
        buf
    }
}

/// The error for a sink that accepted nothing.
pub(crate) fn write_zero() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::WriteZero, "the sink accepted no bytes")
}

/// The methods both writers (`io::blocking::Writer` and `io::tokio::Writer`)
/// share over their `sink`, `encoder` and `buffer` fields: construction, the
/// threshold, encoding without writing, the accessors and `Debug`. Expanded
/// in each writer's module, which has its `Writer` and the `Encode`,
/// `PackError` and `WriteBuffer` names in scope.
macro_rules! writer_common {
    () => {
        impl<W, E> Writer<W, E> {
            /// A writer to `sink` encoding with `encoder`.
            pub fn new(sink: W, encoder: E) -> Self {
                Writer { sink, encoder, buffer: WriteBuffer::new() }
            }

            /// Sets how many buffered bytes make the writer write them out by
            /// itself (0: every frame is written at once, still without
            /// flushing the sink), builder style.
            pub fn with_flush_threshold(mut self, threshold: usize) -> Self {
                self.buffer.set_threshold(threshold);
                self
            }

            /// The flush threshold.
            pub fn flush_threshold(&self) -> usize {
                self.buffer.threshold()
            }

            /// Encodes `item` into the buffer and writes nothing, whatever the
            /// threshold: for code that cannot write now (a `for_each_frame`
            /// closure, say); the next [`feed`](Writer::feed) past the
            /// threshold or [`flush`](Writer::flush) writes it. Nothing is
            /// buffered on error.
            pub fn encode<I>(&mut self, item: I) -> Result<(), PackError>
            where
                E: Encode<I>,
            {
                self.buffer.encode(&self.encoder, item)
            }

            /// The bytes encoded and not written to the sink yet.
            pub fn buffered(&self) -> &[u8] {
                self.buffer.pending()
            }

            /// The encoder.
            pub fn encoder(&self) -> &E {
                &self.encoder
            }

            /// Switches to another encoder, keeping what is buffered.
            pub fn with_encoder<E2>(self, encoder: E2) -> Writer<W, E2> {
                Writer { sink: self.sink, encoder, buffer: self.buffer }
            }

            /// The sink.
            pub fn get_ref(&self) -> &W {
                &self.sink
            }

            /// The sink, mutably (writing to it directly goes before what is
            /// buffered).
            pub fn get_mut(&mut self) -> &mut W {
                &mut self.sink
            }

            /// The sink and the bytes not written yet, without writing them.
            pub fn into_parts(mut self) -> (W, Vec<u8>) {
                let pending = self.buffer.take();
                (self.sink, pending)
            }
        }

        impl<W: core::fmt::Debug, E: core::fmt::Debug> core::fmt::Debug for Writer<W, E> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("Writer")
                    .field("sink", &self.sink)
                    .field("encoder", &self.encoder)
                    .field("buffered", &self.buffer.pending().len())
                    .finish()
            }
        }
    };
}

pub(crate) use writer_common;
