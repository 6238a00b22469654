//! A view of the bytes a filter holds now: an HTTP body, or one direction of a TCP connection.

use std::marker::PhantomData;

use crate::abi;
use crate::dispatch::within;
use crate::error::Result;
use crate::http::BufferType;

/// The bytes Envoy hands the filter: the current chunk, or everything buffered so far. HTTP filters
/// see it as [`Body`](crate::http::Body), TCP filters as [`Data`](crate::tcp::Data); both
/// dereference to this.
///
/// It lives only as long as the callback that was given it. Its length is the host's, kept right
/// by the methods that change the bytes (they take `&mut self`).
#[derive(Debug)]
pub struct Buffer<'a> {
    context: u32,
    kind: BufferType,
    size: usize,
    _callback: PhantomData<&'a ()>,
}

impl Buffer<'_> {
    pub(crate) fn new(context: u32, kind: BufferType, size: usize) -> Self {
        Self { context, kind, size, _callback: PhantomData }
    }

    pub(crate) fn context(&self) -> u32 {
        self.context
    }

    /// How many bytes the filter holds.
    pub fn len(&self) -> usize {
        self.size
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The length the host reports now (`proxy_get_buffer_status`); the same as
    /// [`Buffer::len`] unless the host changed the bytes meanwhile.
    pub fn host_len(&self) -> Result<usize> {
        within(self.context, || abi::get_buffer_status(self.kind as u32)).map(|(len, _flags)| len)
    }

    /// All the bytes.
    pub fn read(&self) -> Result<Vec<u8>> {
        self.read_range(0, self.size)
    }

    /// Up to `len` bytes from `start`.
    pub fn read_range(&self, start: usize, len: usize) -> Result<Vec<u8>> {
        within(self.context, || Ok(abi::get_buffer(self.kind as u32, start, len)?.unwrap_or_default()))
    }

    /// Replaces every byte with `data`.
    pub fn replace(&mut self, data: &[u8]) -> Result<()> {
        within(self.context, || abi::set_buffer(self.kind as u32, 0, self.size, data))?;
        self.size = data.len();
        Ok(())
    }

    /// Puts `data` before the bytes.
    pub fn prepend(&mut self, data: &[u8]) -> Result<()> {
        within(self.context, || abi::set_buffer(self.kind as u32, 0, 0, data))?;
        self.size += data.len();
        Ok(())
    }

    /// Puts `data` after the bytes.
    pub fn append(&mut self, data: &[u8]) -> Result<()> {
        within(self.context, || abi::set_buffer(self.kind as u32, usize::MAX >> 1, 0, data))?;
        self.size += data.len();
        Ok(())
    }
}
