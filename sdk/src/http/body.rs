//! A view of the request or response body the filter holds now.

use super::BufferType;
use crate::abi;
use crate::error::Result;

/// The body bytes Envoy hands the filter: the current chunk, or everything buffered so far.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    kind: BufferType,
    size: usize,
}

impl Body {
    pub(crate) fn request(size: usize) -> Self {
        Self { kind: BufferType::RequestBody, size }
    }

    pub(crate) fn response(size: usize) -> Self {
        Self { kind: BufferType::ResponseBody, size }
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
