//! A view of the bytes a filter holds now: an HTTP body, or one direction of a TCP connection.

use crate::abi;
use crate::error::Result;
use crate::http::BufferType;

/// The bytes Envoy hands the filter: the current chunk, or everything buffered so far. HTTP filters
/// see it as [`Body`](crate::http::Body), TCP filters as [`Data`](crate::tcp::Data).
#[derive(Debug, Clone, Copy)]
pub struct Buffer {
    kind: BufferType,
    size: usize,
}

impl Buffer {
    pub(crate) fn new(kind: BufferType, size: usize) -> Self {
        Self { kind, size }
    }

    /// How many bytes the filter holds.
    pub fn len(&self) -> usize {
        self.size
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// All the bytes.
    pub fn read(&self) -> Result<Vec<u8>> {
        Ok(abi::get_buffer(self.kind as u32, 0, self.size)?.unwrap_or_default())
    }

    /// Replaces every byte with `data`.
    pub fn replace(&self, data: &[u8]) -> Result<()> {
        abi::set_buffer(self.kind as u32, 0, self.size, data)
    }

    /// Puts `data` before the body.
    pub fn prepend(&self, data: &[u8]) -> Result<()> {
        abi::set_buffer(self.kind as u32, 0, 0, data)
    }

    /// Puts `data` after the body.
    pub fn append(&self, data: &[u8]) -> Result<()> {
        abi::set_buffer(self.kind as u32, usize::MAX >> 1, 0, data)
    }
}
