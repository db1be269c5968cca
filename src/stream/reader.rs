//! The type-erased reading side of a stream: a [`FrameBuffer`] and a
//! delimiter `D` whose frames go to `<H as Read<D>>::on_read`.
//!
//! While it delivers frames, the reader lends its delimiter to the typed
//! `Stream<H, D>` that `on_read` receives (so that `Stream::send` encodes
//! with it) and gets it back afterwards. The delimiter lives in a box of
//! its own, so that lending it moves a pointer, not the delimiter (an
//! `Until` is 224 bytes, and a protocol that switches per frame lends it
//! once per frame). Switching delimiter moves the
//! buffer into the next reader; the previous one is kept, empty, among the
//! stream's [`SpareReaders`], so that a protocol switching back and forth
//! (a header line, then a counted body, then a header line...) allocates
//! nothing once each of its delimiter types has been used.

use std::any::{Any, TypeId};
use std::io;
use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Read, Stream, Switch};
use crate::delimiter::Delimiter;
use crate::engine::panic_message;
use crate::error::FrameError;
use crate::framer::FrameBuffer;

/// What a dispatch run ended with.
pub(crate) enum Dispatch<H> {
    /// No whole frame is buffered.
    Idle,
    /// The stream was closed by the handler; stop delivering.
    Stopped,
    /// The handler switched delimiter: move the buffer into this reader and
    /// go on with it.
    Switch(Switch<H>),
    /// The framer reported an error.
    Error(FrameError),
    /// The handler panicked.
    Panicked(String),
}

pub(crate) trait Reader<H>: 'static {
    /// Room left under the buffer limit.
    fn room(&self) -> usize;
    fn buffered(&self) -> usize;
    fn read_from(&mut self, source: &mut dyn io::Read, max: usize) -> io::Result<usize>;
    /// Delivers every whole frame buffered.
    fn dispatch(&mut self, stream: &mut Option<Stream<H>>, handler: &mut H) -> Dispatch<H>;
    /// Takes the buffer (bytes and storage) out, leaving this reader empty.
    fn take_buffer(&mut self) -> FrameBuffer;
    /// Takes over `buffer`: its bytes are cut with this reader's delimiter,
    /// from its start.
    fn adopt(&mut self, buffer: FrameBuffer);
    /// The delimiter type, to find a spare reader of the right type.
    fn delimiter_type(&self) -> TypeId;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// Takes a pooled buffer from `take` if the reader has no storage.
    fn lend_storage(&mut self, take: &dyn Fn() -> Vec<u8>);
    fn reclaim_storage(&mut self) -> Option<Vec<u8>>;
    fn clear(&mut self);
}

pub(crate) struct TypedReader<D> {
    buffer: FrameBuffer,
    /// `None` only while lent to the typed stream of a dispatch.
    delimiter: Option<Box<D>>,
}

impl<D: Delimiter> TypedReader<D> {
    pub(crate) fn new(mut delimiter: D, buffer_size: usize) -> Self {
        delimiter.reset();
        TypedReader { buffer: FrameBuffer::new(buffer_size), delimiter: Some(Box::new(delimiter)) }
    }

    /// The buffer limit; 0 (no room) while the delimiter is lent.
    fn limit(&self) -> usize {
        match &self.delimiter {
            Some(delimiter) => self.buffer.limit(&**delimiter),
            None => 0,
        }
    }
}

impl<H, D> Reader<H> for TypedReader<D>
where
    H: Read<D>,
    D: Delimiter + 'static,
{
    fn room(&self) -> usize {
        self.limit().saturating_sub(self.buffer.len())
    }

    fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn read_from(&mut self, source: &mut dyn io::Read, max: usize) -> io::Result<usize> {
        self.buffer.read_from(source, max, self.limit())
    }

    fn dispatch(&mut self, slot: &mut Option<Stream<H>>, handler: &mut H) -> Dispatch<H> {
        let Some(taken) = slot.take() else { return Dispatch::Stopped };
        let Some(delimiter) = self.delimiter.take() else {
            *slot = Some(taken);
            return Dispatch::Stopped;
        };
        let mut stream: Stream<H, D> = taken.lend(delimiter);
        let outcome = match halted(&stream) {
            Some(outcome) => outcome,
            // The batch path: frames are cut in one pass over the buffer,
            // which writes its cursor back once.
            None => match self.buffer.cut_frames(
                &mut stream,
                |stream| &mut *stream.delimiter,
                |stream| Some(stream.core.buffer_size),
                |stream, frame| deliver(handler, stream, frame),
            ) {
                Ok(ControlFlow::Break(outcome)) => outcome,
                Ok(ControlFlow::Continue(())) => Dispatch::Idle,
                Err(e) => Dispatch::Error(e),
            },
        };
        self.buffer.set_buffer_size(stream.core.buffer_size);
        let (stream, delimiter) = stream.give_back();
        self.delimiter = Some(delimiter);
        *slot = Some(stream);
        outcome
    }

    fn take_buffer(&mut self) -> FrameBuffer {
        self.buffer.take()
    }

    fn adopt(&mut self, buffer: FrameBuffer) {
        self.buffer = buffer;
        self.buffer.rewind();
        if let Some(delimiter) = &mut self.delimiter {
            delimiter.reset();
        }
    }

    fn delimiter_type(&self) -> TypeId {
        TypeId::of::<D>()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn lend_storage(&mut self, take: &dyn Fn() -> Vec<u8>) {
        self.buffer.lend_storage(take);
    }

    fn reclaim_storage(&mut self) -> Option<Vec<u8>> {
        self.buffer.reclaim_storage()
    }

    fn clear(&mut self) {
        self.buffer.clear();
    }
}

/// Why frames must not be delivered to `stream` now, if they must not: it
/// was closed or can no longer read (stop), or its send queue is over the
/// write limit (backpressure: the rest waits until the queue drains), or
/// its handler paused reading (the rest waits until it resumes).
#[inline]
fn halted<H, D>(stream: &Stream<H, D>) -> Option<Dispatch<H>> {
    if stream.core.close.is_some() || stream.core.poisoned || !stream.core.can_read_plaintext() {
        Some(Dispatch::Stopped)
    } else if stream.core.held || stream.core.out.queued() > stream.core.write_limit as u64 {
        Some(Dispatch::Idle)
    } else {
        None
    }
}

/// Hands one frame to `on_read`, then applies what the handler asked for:
/// `Break` to end the dispatch (a panic, a switch to another delimiter
/// type, a close, backpressure), `Continue` for the next frame.
#[inline]
fn deliver<H, D>(handler: &mut H, stream: &mut Stream<H, D>, frame: D::Output<'_>) -> ControlFlow<Dispatch<H>>
where
    H: Read<D>,
    D: Delimiter + 'static,
{
    stream.core.counters.frames_read += 1;
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler.on_read(stream, frame))) {
        return ControlFlow::Break(Dispatch::Panicked(panic_message(&*panic)));
    }
    if let Some(switch) = stream.switch.take() {
        if switch.delimiter_type() != TypeId::of::<D>() {
            return ControlFlow::Break(Dispatch::Switch(switch));
        }
        // A delimiter of the same type (another `Count`, say): it replaces
        // this one in place (the buffer already expects a new frame), and
        // the reader that brought it goes back to the spares with the old
        // one.
        if let Ok(mut next) = switch.into_any().downcast::<TypedReader<D>>() {
            if let Some(boxed) = &mut next.delimiter {
                std::mem::swap(boxed, &mut stream.delimiter);
                stream.delimiter.reset();
            }
            stream.spares.put(next);
        }
    }
    match halted(stream) {
        Some(outcome) => ControlFlow::Break(outcome),
        None => ControlFlow::Continue(()),
    }
}

/// Readers a stream switched away from, kept (empty) for the next switch to
/// their delimiter type: a switch to a type used before allocates nothing.
/// At most [`SpareReaders::MAX`] are kept, the most recently used.
pub(crate) struct SpareReaders<H> {
    /// Each with its delimiter type, so that a lookup makes no virtual call.
    readers: Vec<(TypeId, Box<dyn Reader<H>>)>,
}

impl<H> SpareReaders<H> {
    pub(crate) const fn new() -> Self {
        SpareReaders { readers: Vec::new() }
    }
}

impl<H: 'static> SpareReaders<H> {
    /// More delimiter types than a protocol switches between in practice.
    const MAX: usize = 4;

    /// A reader for `delimiter`: a spare one of its type if there is one
    /// (its storage was taken out, so it holds no bytes), else a new one.
    pub(crate) fn reader_for<D>(&mut self, delimiter: D) -> Switch<H>
    where
        H: Read<D>,
        D: Delimiter + 'static,
    {
        let wanted = TypeId::of::<D>();
        if let Some(at) = self.readers.iter().position(|(kind, _)| *kind == wanted) {
            if let Ok(mut reader) = self.readers.swap_remove(at).1.into_any().downcast::<TypedReader<D>>() {
                match &mut reader.delimiter {
                    // In the spare's own box: nothing allocated.
                    Some(boxed) => **boxed = delimiter,
                    None => reader.delimiter = Some(Box::new(delimiter)),
                }
                return reader;
            }
        }
        Box::new(TypedReader::new(delimiter, 0))
    }

    /// Keeps `reader` for a later switch, dropping the oldest spare if
    /// there are too many.
    pub(crate) fn put(&mut self, reader: Box<dyn Reader<H>>) {
        if self.readers.len() == Self::MAX {
            self.readers.remove(0);
        }
        self.readers.push((reader.delimiter_type(), reader));
    }
}
