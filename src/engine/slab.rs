//! The engine's table of channels (streams and servers), indexed by id.

use std::any::Any;

use super::StreamId;
use super::{Engine, Readiness};
use crate::error::StreamError;

/// A stream or server as the engine sees it.
pub(crate) trait Channel: Any {
    /// The OS reported readiness.
    fn event(&mut self, engine: &Engine, readiness: Readiness);
    /// Work queued with [`Engine::mark_ready`].
    fn service(&mut self, engine: &Engine);
    /// Whether the channel is finished and can be dropped.
    fn is_done(&self) -> bool;
    /// For typed access ([`Engine::with_stream`](crate::Engine::with_stream)).
    fn as_any(&mut self) -> &mut dyn Any;
    /// Queues bytes from another channel (a broadcast, say).
    fn write_bytes(&mut self, engine: &Engine, bytes: &[u8]) -> Result<(), StreamError>;
    /// Closes, flushing what is queued or not.
    fn close(&mut self, engine: &Engine, flush: bool);
    /// The local address (a server's listening address).
    fn local_address(&self) -> Option<crate::Address>;
    /// A server's open connections; `None` for a stream.
    fn connections(&self) -> Option<Vec<StreamId>>;
    /// Closes gently: a server stops listening and closes once its
    /// connections have; a stream closes after flushing.
    fn drain(&mut self, engine: &Engine) {
        self.close(engine, true);
    }
    /// Whether a close was asked for (or the channel is closed).
    fn is_closing(&self) -> bool;
    /// At a shutdown's deadline: closes at once, whatever it was doing.
    /// For a stream that had not finished closing, the bytes it dropped.
    fn cut_off(&mut self, engine: &Engine) -> Option<u64>;
    /// A stream's counters; `None` for a server.
    fn counters(&self) -> Option<crate::stream::StreamCounters> {
        None
    }
    /// A server's counters; `None` for a stream.
    fn server_counters(&self) -> Option<crate::server::ServerCounters> {
        None
    }
    /// Enters the channel's `tracing` span (while the engine works on it);
    /// whether it did, for [`exit_span`](Channel::exit_span).
    #[cfg(feature = "tracing")]
    fn enter_span(&mut self) -> bool {
        false
    }
    /// Exits the span if [`enter_span`](Channel::enter_span) entered it.
    #[cfg(feature = "tracing")]
    fn exit_span(&mut self, entered: bool) {
        let _ = entered;
    }
}

enum Slot {
    Free,
    Busy,
    Open(Box<dyn Channel>),
}

struct Entry {
    generation: u32,
    slot: Slot,
}

/// Slots with generations, so that a stale id (of a closed channel whose slot
/// was reused) is never mistaken for the new channel.
#[derive(Default)]
pub(crate) struct Slab {
    entries: Vec<Entry>,
    free: Vec<u32>,
    len: usize,
}

impl Slab {
    pub(crate) fn insert(&mut self, make: impl FnOnce(StreamId) -> Box<dyn Channel>) -> StreamId {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.entries.push(Entry { generation: 0, slot: Slot::Free });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[index as usize];
        let id = StreamId::new(index, entry.generation);
        // Reserve the slot before `make` (which may not touch the slab).
        entry.slot = Slot::Busy;
        let channel = make(id);
        self.entries[index as usize].slot = Slot::Open(channel);
        self.len += 1;
        id
    }

    fn entry(&mut self, id: StreamId) -> Result<&mut Entry, StreamError> {
        match self.entries.get_mut(id.index() as usize) {
            Some(entry) if entry.generation == id.generation() => Ok(entry),
            _ => Err(StreamError::NoSuchStream(id)),
        }
    }

    pub(crate) fn check(&self, id: StreamId) -> Result<(), StreamError> {
        match self.entries.get(id.index() as usize) {
            Some(Entry { generation, slot: Slot::Open(_) }) if *generation == id.generation() => Ok(()),
            Some(Entry { generation, slot: Slot::Busy }) if *generation == id.generation() => {
                Err(StreamError::Busy(id))
            }
            _ => Err(StreamError::NoSuchStream(id)),
        }
    }

    pub(crate) fn take(&mut self, id: StreamId) -> Result<Box<dyn Channel>, StreamError> {
        let entry = self.entry(id)?;
        match std::mem::replace(&mut entry.slot, Slot::Busy) {
            Slot::Open(channel) => Ok(channel),
            Slot::Busy => Err(StreamError::Busy(id)),
            Slot::Free => {
                entry.slot = Slot::Free;
                Err(StreamError::NoSuchStream(id))
            }
        }
    }

    pub(crate) fn restore(&mut self, id: StreamId, channel: Box<dyn Channel>) {
        if let Ok(entry) = self.entry(id) {
            entry.slot = Slot::Open(channel);
        }
    }

    pub(crate) fn remove(&mut self, id: StreamId) {
        if let Ok(entry) = self.entry(id) {
            entry.slot = Slot::Free;
            entry.generation = entry.generation.wrapping_add(1);
            self.free.push(id.index());
            self.len -= 1;
        }
    }

    /// Takes every channel that is not lent out, freeing its slot.
    pub(crate) fn drain(&mut self) -> Vec<Box<dyn Channel>> {
        let mut taken = Vec::new();
        for (index, entry) in self.entries.iter_mut().enumerate() {
            if matches!(entry.slot, Slot::Open(_)) {
                if let Slot::Open(channel) = std::mem::replace(&mut entry.slot, Slot::Free) {
                    taken.push(channel);
                }
                entry.generation = entry.generation.wrapping_add(1);
                self.free.push(index as u32);
                self.len -= 1;
            }
        }
        taken
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn ids(&self) -> Vec<StreamId> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !matches!(e.slot, Slot::Free))
            .map(|(i, e)| StreamId::new(i as u32, e.generation))
            .collect()
    }
}
