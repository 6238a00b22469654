//! The memory cap: refuses growth past the limit and remembers that it did, so the resulting trap
//! is reported as "memory limit" rather than a bare `unreachable`.

use wasmtime::ResourceLimiter;

/// Per-store limits.
#[derive(Debug)]
pub struct Limits {
    pub(crate) memory_limit: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
