//! The type-erased reading side of a stream: a `Framer<D>` whose frames go to
//! `<H as Read<D>>::on_read`. Switching delimiter replaces the reader while
//! keeping the buffered bytes.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Read, Stream, Switch};
use crate::delimiter::Delimiter;
use crate::engine::panic_message;
use crate::error::FrameError;
use crate::framer::{Framer, RawBuffer};

/// What a dispatch run ended with.
pub(crate) enum Dispatch<H> {
    /// No whole frame is buffered.
    Idle,
    /// The stream was closed by the handler; stop delivering.
    Stopped,
    /// The handler switched delimiter: replace the reader and go on.
    Switch(Switch<H>),
    /// The framer reported an error.
    Error(FrameError),
    /// The handler panicked.
    Panicked(String),
}

pub(crate) trait Reader<H> {
    /// Room left under the buffer limit.
    fn room(&self) -> usize;
    fn buffered(&self) -> usize;
    fn read_from(&mut self, source: &mut dyn io::Read, max: usize) -> io::Result<usize>;
    /// Delivers every whole frame buffered.
    fn dispatch(&mut self, stream: &mut Option<Stream<H>>, handler: &mut H) -> Dispatch<H>;
    fn into_raw(self: Box<Self>) -> RawBuffer;
    /// Takes a pooled buffer from `take` if the reader has no storage.
    fn lend_storage(&mut self, take: &dyn Fn() -> Vec<u8>);
    fn reclaim_storage(&mut self) -> Option<Vec<u8>>;
    fn clear(&mut self);
}

/// The reader in place for the instant of a switch, between taking the old
/// reader's buffer and building the new one over it. Zero-sized: boxing it
/// allocates nothing. It holds no bytes and delivers nothing.
pub(crate) struct Detached;

impl<H> Reader<H> for Detached {
    fn room(&self) -> usize {
        0
    }
    fn buffered(&self) -> usize {
        0
    }
    fn read_from(&mut self, _source: &mut dyn io::Read, _max: usize) -> io::Result<usize> {
        Ok(0)
    }
    fn dispatch(&mut self, _stream: &mut Option<Stream<H>>, _handler: &mut H) -> Dispatch<H> {
        Dispatch::Idle
    }
    fn into_raw(self: Box<Self>) -> RawBuffer {
        RawBuffer::empty()
    }
    fn lend_storage(&mut self, _take: &dyn Fn() -> Vec<u8>) {}
    fn reclaim_storage(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn clear(&mut self) {}
}

pub(crate) struct TypedReader<D> {
    pub(crate) framer: Framer<D>,
}

/// The switch closure for `Stream::read_delimiter`.
pub(crate) fn switch_to<H, D2>(delimiter: D2) -> Switch<H>
where
    H: Read<D2>,
    D2: Delimiter + 'static,
{
    Box::new(move |raw| Box::new(TypedReader { framer: Framer::from_raw(raw, delimiter) }))
}

impl<H, D> Reader<H> for TypedReader<D>
where
    H: Read<D>,
    D: Delimiter + 'static,
{
    fn room(&self) -> usize {
        self.framer.limit().saturating_sub(self.framer.len())
    }

    fn buffered(&self) -> usize {
        self.framer.len()
    }

    fn read_from(&mut self, source: &mut dyn io::Read, max: usize) -> io::Result<usize> {
        self.framer.read_from(source, max)
    }

    fn dispatch(&mut self, slot: &mut Option<Stream<H>>, handler: &mut H) -> Dispatch<H> {
        let Some(taken) = slot.take() else { return Dispatch::Stopped };
        let mut stream: Stream<H, D> = taken.retype();
        let outcome = loop {
            if stream.core.close.is_some() || stream.core.poisoned || !stream.core.can_read_plaintext() {
                break Dispatch::Stopped;
            }
            if stream.core.out.queued() > stream.core.write_limit as u64 {
                // Backpressure: the rest waits until the queue drains.
                break Dispatch::Idle;
            }
            self.framer.set_buffer_size(stream.core.buffer_size);
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break Dispatch::Idle,
                Err(e) => break Dispatch::Error(e),
            };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler.on_read(&mut stream, frame))) {
                break Dispatch::Panicked(panic_message(&*panic));
            }
            if let Some(switch) = stream.switch.take() {
                break Dispatch::Switch(switch);
            }
        };
        *slot = Some(stream.retype());
        outcome
    }

    fn into_raw(self: Box<Self>) -> RawBuffer {
        self.framer.into_raw()
    }

    fn lend_storage(&mut self, take: &dyn Fn() -> Vec<u8>) {
        self.framer.lend_storage(take);
    }

    fn reclaim_storage(&mut self) -> Option<Vec<u8>> {
        self.framer.reclaim_storage()
    }

    fn clear(&mut self) {
        self.framer.clear();
    }
}
