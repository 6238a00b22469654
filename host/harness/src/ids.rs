//! The harness's names for its streams and connections.

use std::fmt;

/// One HTTP stream or TCP connection of a harness, as a test names it
/// ([`HttpStream::id`](crate::HttpStream::id), [`Harness::http`](crate::Harness::http)): the
/// harness gives them in order, and answers one it has closed as finished, never with a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub(crate) u32);

impl StreamId {
    /// The number behind the id (unique within its harness).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}
