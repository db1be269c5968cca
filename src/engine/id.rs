//! Ids of the engine's streams and servers.

use std::fmt;

/// Identifies a stream (or server) of an [`Engine`](crate::Engine). Ids of closed streams
/// are never confused with newer ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    index: u32,
    generation: u32,
}

impl StreamId {
    pub(crate) fn new(index: u32, generation: u32) -> Self {
        StreamId { index, generation }
    }

    pub(crate) fn index(self) -> u32 {
        self.index
    }

    pub(crate) fn generation(self) -> u32 {
        self.generation
    }

    pub(crate) fn token(self) -> mio::Token {
        mio::Token(((self.generation as usize) << 32) | self.index as usize)
    }

    pub(crate) fn from_token(token: mio::Token) -> Self {
        StreamId { index: token.0 as u32, generation: (token.0 >> 32) as u32 }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}
