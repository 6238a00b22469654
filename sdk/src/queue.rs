//! Shared queues: FIFO messages between plugins and workers.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi;
use crate::error::{Error, Result};

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

    /// Appends a value as JSON.
    pub fn push_json<T: Serialize>(&self, item: &T) -> Result<()> {
        let bytes = serde_json::to_vec(item).map_err(|e| Error::Decode { what: "queue item", why: e.to_string() })?;
        self.push(&bytes)
    }

    /// Takes the oldest message as JSON; a message that is not a `T` is an error (and is gone).
    pub fn pop_json<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match self.pop()? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Decode { what: "queue item", why: e.to_string() }),
        }
    }
}
