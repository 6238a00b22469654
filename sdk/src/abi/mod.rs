//! The guest side of the ABI: raw imports, the exported callbacks and the allocator. All `unsafe`
//! lives here; everything above it is safe Rust.

#[cfg(target_arch = "wasm32")]
pub(crate) mod exports;
mod imports;
pub(crate) mod status;

use std::ptr::null_mut;

use crate::error::{check, Error, Result, Status};

/// Takes ownership of a block the host allocated through `proxy_on_memory_allocate`.
fn owned(ptr: *mut u8, len: usize) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the host allocated exactly `len` bytes with our allocator (a `Vec<u8>` of capacity `len`)
    // and hands the block to us.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Calls a hostcall that returns a block; `Ok(None)` for NOT_FOUND.
fn fetch(call: &'static str, f: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (null_mut(), 0usize);
    match f(&mut ptr, &mut len) {
        status::OK => Ok(Some(owned(ptr, len).unwrap_or_default())),
        status::NOT_FOUND => Ok(None),
        code => Err(Error::Host { call, status: Status::from_code(code) }),
    }
}

pub(crate) fn log(level: u32, msg: &str) {
    // SAFETY: pointer and length describe `msg`.
    unsafe { imports::proxy_log(level, msg.as_ptr(), msg.len()) };
}

pub(crate) fn log_level() -> u32 {
    let mut level = 2;
    // SAFETY: `level` is a valid u32 slot.
    unsafe { imports::proxy_get_log_level(&mut level) };
    level
}

pub(crate) fn now_nanos() -> u64 {
    let mut t = 0u64;
    // SAFETY: `t` is a valid u64 slot.
    unsafe { imports::proxy_get_current_time_nanoseconds(&mut t) };
    t
}

pub(crate) fn set_tick_period_ms(ms: u32) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_set_tick_period_milliseconds", unsafe { imports::proxy_set_tick_period_milliseconds(ms) })
}

pub(crate) fn get_buffer(t: u32, start: usize, max: usize) -> Result<Option<Vec<u8>>> {
    // SAFETY: the out-pointers are valid slots.
    fetch("proxy_get_buffer_bytes", |p, l| unsafe { imports::proxy_get_buffer_bytes(t, start, max, p, l) })
}

pub(crate) fn set_buffer(t: u32, start: usize, size: usize, data: &[u8]) -> Result<()> {
    // SAFETY: pointer and length describe `data`.
    check("proxy_set_buffer_bytes", unsafe {
        imports::proxy_set_buffer_bytes(t, start, size, data.as_ptr(), data.len())
    })
}

pub(crate) fn get_map(t: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    // SAFETY: the out-pointers are valid slots.
    let bytes = fetch("proxy_get_header_map_pairs", |p, l| unsafe { imports::proxy_get_header_map_pairs(t, p, l) })?;
    Ok(bytes.map(|b| crate::codec::decode_pairs(&b)).unwrap_or_default())
}

pub(crate) fn set_map(t: u32, pairs: &[(&[u8], &[u8])]) -> Result<()> {
    let bytes = crate::codec::encode_pairs(pairs);
    // SAFETY: pointer and length describe `bytes`.
    check("proxy_set_header_map_pairs", unsafe { imports::proxy_set_header_map_pairs(t, bytes.as_ptr(), bytes.len()) })
}

pub(crate) fn get_map_value(t: u32, key: &[u8]) -> Result<Option<Vec<u8>>> {
    // SAFETY: key and out-pointers are valid.
    fetch("proxy_get_header_map_value", |p, l| unsafe {
        imports::proxy_get_header_map_value(t, key.as_ptr(), key.len(), p, l)
    })
}

pub(crate) fn add_map_value(t: u32, key: &[u8], value: &[u8]) -> Result<()> {
    // SAFETY: pointers and lengths describe the slices.
    check("proxy_add_header_map_value", unsafe {
        imports::proxy_add_header_map_value(t, key.as_ptr(), key.len(), value.as_ptr(), value.len())
    })
}

pub(crate) fn replace_map_value(t: u32, key: &[u8], value: &[u8]) -> Result<()> {
    // SAFETY: pointers and lengths describe the slices.
    check("proxy_replace_header_map_value", unsafe {
        imports::proxy_replace_header_map_value(t, key.as_ptr(), key.len(), value.as_ptr(), value.len())
    })
}

pub(crate) fn remove_map_value(t: u32, key: &[u8]) -> Result<()> {
    // SAFETY: pointer and length describe `key`.
    check("proxy_remove_header_map_value", unsafe {
        imports::proxy_remove_header_map_value(t, key.as_ptr(), key.len())
    })
}

pub(crate) fn get_property(path: &[u8]) -> Result<Option<Vec<u8>>> {
    // SAFETY: path and out-pointers are valid.
    fetch("proxy_get_property", |p, l| unsafe { imports::proxy_get_property(path.as_ptr(), path.len(), p, l) })
}

pub(crate) fn set_property(path: &[u8], value: &[u8]) -> Result<()> {
    // SAFETY: pointers and lengths describe the slices.
    check("proxy_set_property", unsafe {
        imports::proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
    })
}

pub(crate) fn get_shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let mut cas = 0u32;
    // SAFETY: key and out-pointers are valid.
    let v = fetch("proxy_get_shared_data", |p, l| unsafe {
        imports::proxy_get_shared_data(key.as_ptr(), key.len(), p, l, &mut cas)
    })?;
    Ok(v.map(|v| (v, cas)))
}

pub(crate) fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<()> {
    // SAFETY: pointers and lengths describe the slices.
    check("proxy_set_shared_data", unsafe {
        imports::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

pub(crate) fn register_queue(name: &str) -> Result<u32> {
    let mut id = 0;
    // SAFETY: name and out-pointer are valid.
    check("proxy_register_shared_queue", unsafe {
        imports::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id)
    })?;
    Ok(id)
}

pub(crate) fn resolve_queue(vm_id: &str, name: &str) -> Result<Option<u32>> {
    let mut id = 0;
    // SAFETY: pointers and lengths describe the strings.
    match unsafe {
        imports::proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id)
    } {
        status::OK => Ok(Some(id)),
        status::NOT_FOUND => Ok(None),
        code => Err(Error::Host { call: "proxy_resolve_shared_queue", status: Status::from_code(code) }),
    }
}

pub(crate) fn enqueue(id: u32, value: &[u8]) -> Result<()> {
    // SAFETY: pointer and length describe `value`.
    check("proxy_enqueue_shared_queue", unsafe { imports::proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) })
}

pub(crate) fn dequeue(id: u32) -> Result<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: the out-pointers are valid slots.
    match unsafe { imports::proxy_dequeue_shared_queue(id, &mut ptr, &mut len) } {
        status::OK => Ok(Some(owned(ptr, len).unwrap_or_default())),
        status::EMPTY => Ok(None),
        code => Err(Error::Host { call: "proxy_dequeue_shared_queue", status: Status::from_code(code) }),
    }
}

pub(crate) fn continue_stream(t: u32) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_continue_stream", unsafe { imports::proxy_continue_stream(t) })
}

pub(crate) fn close_stream(t: u32) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_close_stream", unsafe { imports::proxy_close_stream(t) })
}

pub(crate) fn get_status() -> (u32, Vec<u8>) {
    let mut code = 0;
    let (mut ptr, mut len) = (null_mut(), 0usize);
    // SAFETY: the out-pointers are valid slots.
    unsafe { imports::proxy_get_status(&mut code, &mut ptr, &mut len) };
    (code, owned(ptr, len).unwrap_or_default())
}

pub(crate) fn send_local_response(status: u32, details: &str, body: &[u8], headers: &[u8], grpc: i32) -> Result<()> {
    // SAFETY: pointers and lengths describe the slices.
    check("proxy_send_local_response", unsafe {
        imports::proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            grpc,
        )
    })
}

pub(crate) fn http_call(cluster: &str, headers: &[u8], body: &[u8], trailers: &[u8], timeout_ms: u32) -> Result<u32> {
    let mut token = 0;
    // SAFETY: pointers and lengths describe the slices; `token` is a valid slot.
    check("proxy_http_call", unsafe {
        imports::proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

pub(crate) fn grpc_call(
    cluster: &str,
    service: &str,
    method: &str,
    metadata: &[u8],
    message: &[u8],
    timeout_ms: u32,
) -> Result<u32> {
    let mut token = 0;
    // SAFETY: pointers and lengths describe the slices; `token` is a valid slot.
    check("proxy_grpc_call", unsafe {
        imports::proxy_grpc_call(
            cluster.as_ptr(),
            cluster.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            message.as_ptr(),
            message.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

pub(crate) fn grpc_stream(cluster: &str, service: &str, method: &str, metadata: &[u8]) -> Result<u32> {
    let mut token = 0;
    // SAFETY: pointers and lengths describe the slices; `token` is a valid slot.
    check("proxy_grpc_stream", unsafe {
        imports::proxy_grpc_stream(
            cluster.as_ptr(),
            cluster.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            &mut token,
        )
    })?;
    Ok(token)
}

pub(crate) fn grpc_send(token: u32, message: &[u8], end_of_stream: bool) -> Result<()> {
    // SAFETY: pointer and length describe `message`.
    check("proxy_grpc_send", unsafe {
        imports::proxy_grpc_send(token, message.as_ptr(), message.len(), u32::from(end_of_stream))
    })
}

pub(crate) fn done() -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_done", unsafe { imports::proxy_done() })
}

pub(crate) fn grpc_cancel(token: u32) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_grpc_cancel", unsafe { imports::proxy_grpc_cancel(token) })
}

pub(crate) fn grpc_close(token: u32) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_grpc_close", unsafe { imports::proxy_grpc_close(token) })
}

pub(crate) fn define_metric(kind: u32, name: &str) -> Result<u32> {
    let mut id = 0;
    // SAFETY: name and out-pointer are valid.
    check("proxy_define_metric", unsafe { imports::proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub(crate) fn increment_metric(id: u32, delta: i64) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_increment_metric", unsafe { imports::proxy_increment_metric(id, delta) })
}

pub(crate) fn record_metric(id: u32, value: u64) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_record_metric", unsafe { imports::proxy_record_metric(id, value) })
}

pub(crate) fn get_metric(id: u32) -> Result<u64> {
    let mut v = 0;
    // SAFETY: `v` is a valid slot.
    check("proxy_get_metric", unsafe { imports::proxy_get_metric(id, &mut v) })?;
    Ok(v)
}

pub(crate) fn get_header_map_size(t: u32) -> Result<usize> {
    let mut size = 0usize;
    // SAFETY: `size` is a valid slot.
    check("proxy_get_header_map_size", unsafe { imports::proxy_get_header_map_size(t, &mut size) })?;
    Ok(size)
}

pub(crate) fn get_buffer_status(t: u32) -> Result<(usize, u32)> {
    let (mut len, mut flags) = (0usize, 0u32);
    // SAFETY: `len` and `flags` are valid slots.
    check("proxy_get_buffer_status", unsafe { imports::proxy_get_buffer_status(t, &mut len, &mut flags) })?;
    Ok((len, flags))
}

pub(crate) fn set_effective_context(id: u32) -> Result<()> {
    // SAFETY: no pointers.
    check("proxy_set_effective_context", unsafe { imports::proxy_set_effective_context(id) })
}

pub(crate) fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>> {
    // SAFETY: pointers and lengths describe the slices; the out-pointers are valid slots.
    let v = fetch("proxy_call_foreign_function", |p, l| unsafe {
        imports::proxy_call_foreign_function(name.as_ptr(), name.len(), args.as_ptr(), args.len(), p, l)
    })?;
    v.ok_or(Error::Host { call: "proxy_call_foreign_function", status: Status::NotFound })
}
