//! Bounds-checked access to guest memory and the guest-allocation protocol.
//!
//! Every pointer a guest passes is checked; a bad one gives `INVALID_MEMORY_ACCESS`, never a host panic.
//! Variable-size results go into a block the guest allocates (exactly `len` bytes, since the Rust SDK
//! frees it with that layout) and then owns.

use wasmtime::Caller;

use super::status::Status;
use crate::store::Host;

/// Why a hostcall did not complete normally: a status for the guest, or a trap that fails the VM.
#[derive(Debug)]
pub enum Fault {
    /// Return this status to the guest.
    Status(Status),
    /// Unwind the guest (the guest allocator trapped, or the call is forbidden in this phase).
    Trap(wasmtime::Error),
}

impl From<Status> for Fault {
    fn from(s: Status) -> Self {
        Fault::Status(s)
    }
}

/// The result of a hostcall body.
pub type CallResult<T = ()> = Result<T, Fault>;

/// Converts a hostcall body's result into what wasmtime expects of an import.
pub(crate) fn finish(r: CallResult) -> wasmtime::Result<i32> {
    match r {
        Ok(()) => Ok(Status::Ok.code()),
        Err(Fault::Status(s)) => Ok(s.code()),
        Err(Fault::Trap(e)) => Err(e),
    }
}

fn range(ptr: i32, len: i32, mem_len: usize) -> Result<std::ops::Range<usize>, Status> {
    let start = ptr as u32 as usize;
    let len = len as u32 as usize;
    let end = start.checked_add(len).ok_or(Status::InvalidMemoryAccess)?;
    if end > mem_len {
        return Err(Status::InvalidMemoryAccess);
    }
    Ok(start..end)
}

/// Guest memory and the host state, borrowed together so that hostcalls can read arguments in place.
pub(crate) fn split<'a>(caller: &'a mut Caller<'_, Host>) -> Result<(&'a mut [u8], &'a mut Host), Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    Ok(memory.data_and_store_mut(caller))
}

/// A slice of guest memory, or INVALID_MEMORY_ACCESS. `(0, 0)` is the empty slice.
pub(crate) fn slice(mem: &[u8], ptr: i32, len: i32) -> Result<&[u8], Status> {
    if len == 0 {
        return Ok(&[]);
    }
    Ok(&mem[range(ptr, len, mem.len())?])
}

/// Writes a little-endian u32 at `ptr`.
pub(crate) fn write_u32(mem: &mut [u8], ptr: i32, value: u32) -> Result<(), Status> {
    let r = range(ptr, 4, mem.len())?;
    mem[r].copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// Writes a little-endian u64 at `ptr`.
pub(crate) fn write_u64(mem: &mut [u8], ptr: i32, value: u64) -> Result<(), Status> {
    let r = range(ptr, 8, mem.len())?;
    mem[r].copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// Writes a u32 result through the caller's memory.
pub(crate) fn put_u32(caller: &mut Caller<'_, Host>, ptr: i32, value: u32) -> CallResult {
    let (mem, _) = split(caller)?;
    Ok(write_u32(mem, ptr, value)?)
}

/// Returns `len` bytes to the guest: allocates a block with the guest's allocator, lets `fill` write
/// into it (with the host state at hand, so nothing is copied twice), and stores the block's address
/// and length at `ret_ptr` / `ret_len`. Zero bytes are returned as (0, 0) without allocating.
pub(crate) fn return_with(
    caller: &mut Caller<'_, Host>,
    len: usize,
    ret_ptr: i32,
    ret_len: i32,
    fill: impl FnOnce(&Host, &mut [u8]),
) -> CallResult {
    if len == 0 {
        let (mem, _) = split(caller)?;
        write_u32(mem, ret_ptr, 0)?;
        write_u32(mem, ret_len, 0)?;
        return Ok(());
    }
    let len32 = u32::try_from(len).map_err(|_| Status::InvalidMemoryAccess)?;
    let block = allocate(caller, len32)?;
    let (mem, host) = split(caller)?;
    let r = range(block as i32, len32 as i32, mem.len())?;
    fill(host, &mut mem[r]);
    write_u32(mem, ret_ptr, block)?;
    write_u32(mem, ret_len, len32)?;
    Ok(())
}

/// Returns a copy of `data` to the guest (see [`return_with`]).
pub(crate) fn return_bytes(caller: &mut Caller<'_, Host>, data: &[u8], ret_ptr: i32, ret_len: i32) -> CallResult {
    return_with(caller, data.len(), ret_ptr, ret_len, |_, dst| dst.copy_from_slice(data))
}

/// Calls the guest's allocator (`malloc`, else `proxy_on_memory_allocate`). A null result is
/// INVALID_MEMORY_ACCESS, as in Envoy; a trap inside the allocator fails the VM.
pub(crate) fn allocate(caller: &mut Caller<'_, Host>, len: u32) -> CallResult<u32> {
    // Taken out for the call rather than cloned (a clone of a typed function copies its type
    // registration, a third of a header read). A guest allocator that itself asks the host for
    // memory finds none: INVALID_MEMORY_ACCESS.
    let alloc = caller.data_mut().allocator.take().ok_or(Status::InvalidMemoryAccess)?;
    let r = alloc.call(&mut *caller, len as i32);
    caller.data_mut().allocator = Some(alloc);
    let ptr = r.map_err(Fault::Trap)?;
    if ptr == 0 {
        return Err(Status::InvalidMemoryAccess.into());
    }
    Ok(ptr as u32)
}
