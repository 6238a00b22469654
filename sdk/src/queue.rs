//! Shared queues: FIFO messages between plugins and workers.

use crate::abi;
use crate::error::Result;

/// A shared queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue(u32);

impl Queue {
    pub(crate) fn from_id(id: u32) -> Self {
        Self(id)
    }

    /// Registers `name` in this VM's vm_id; this plugin's root gets `on_queue_ready` for it.
    pub fn register(name: &str) -> Result<Self> {
        abi::register_queue(name).map(Self)
    }

    /// Finds a queue registered by `vm_id` (empty: this VM's).
    pub fn resolve(vm_id: &str, name: &str) -> Result<Option<Self>> {
        Ok(abi::resolve_queue(vm_id, name)?.map(Self))
    }

    /// The queue's id.
    pub fn id(&self) -> u32 {
        self.0
    }

    /// Appends a message.
    pub fn push(&self, item: &[u8]) -> Result<()> {
        abi::enqueue(self.0, item)
    }

    /// Takes the oldest message, if any.
    pub fn pop(&self) -> Result<Option<Vec<u8>>> {
        abi::dequeue(self.0)
    }
}
