//! The callbacks the host calls (`proxy_on_*`), the ABI marker and the allocator.

use crate::dispatch::{self, http_handler};
use crate::{abi, call, executor, grpc_stream};

extern "Rust" {
    /// Defined by `sluice::http_filter!`, `sluice::tcp_filter!` or `sluice::service!`.
    fn __sluice_new_root() -> Box<dyn dispatch::RootDyn>;
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host's allocator for data it returns: exactly `size` bytes, owned by the caller afterwards.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut v: Vec<u8> = Vec::with_capacity(size);
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(id: u32, root_id: u32) {
    dispatch::set_current(id);
    if root_id == 0 {
        // SAFETY: the symbol is defined by the filter crate's registration macro.
        dispatch::insert_root(id, unsafe { __sluice_new_root() });
    } else if !dispatch::insert_stream(id, root_id) {
        log::error!("context {id}: root context {root_id} makes no streams of this kind");
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(id: u32, size: usize) -> u32 {
    dispatch::set_current(id);
    let Some(root) = dispatch::root_ptr(id) else { return 1 };
    let config = abi::get_buffer(crate::http::BufferType::VmConfiguration as u32, 0, size).ok().flatten();
    // SAFETY: see `dispatch`'s invariants.
    match unsafe { (*root).vm_start(&config.unwrap_or_default()) } {
        Ok(()) => 1,
        Err(e) => {
            log::error!("on_vm_start failed: {e}");
            0
        }
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_foreign_function(id: u32, function_id: u32, size: usize) {
    dispatch::set_current(id);
    let Some(root) = dispatch::root_ptr(id) else { return };
    let arguments = abi::get_buffer(crate::http::BufferType::ForeignFunctionArguments as u32, 0, size);
    // SAFETY: see `dispatch`'s invariants.
    unsafe { (*root).foreign_function(function_id, arguments.ok().flatten().unwrap_or_default()) };
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(id: u32, size: usize) -> u32 {
    dispatch::set_current(id);
    let config = abi::get_buffer(crate::http::BufferType::PluginConfiguration as u32, 0, size).ok().flatten();
    let Some(root) = dispatch::root_ptr(id) else { return 0 };
    // SAFETY: see `dispatch`'s invariants.
    match unsafe { (*root).configure(&config.unwrap_or_default()) } {
        Ok(()) => 1,
        Err(e) => {
            log::error!("{e}");
            0
        }
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(id: u32) {
    dispatch::set_current(id);
    if let Some(root) = dispatch::root_ptr(id) {
        // SAFETY: see `dispatch`'s invariants.
        unsafe { (*root).tick() };
    }
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(id: u32, queue: u32) {
    dispatch::set_current(id);
    if let Some(root) = dispatch::root_ptr(id) {
        // SAFETY: see `dispatch`'s invariants.
        unsafe { (*root).queue_ready(queue) };
    }
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(_root: u32, token: u32, headers: usize, body: usize, _trailers: usize) {
    call::on_response(token, headers, body);
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_initial_metadata(_root: u32, token: u32, _headers: usize) {
    grpc_stream::on_metadata(token, true);
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(_root: u32, token: u32, size: usize) {
    if !grpc_stream::on_message(token, size) {
        call::on_grpc_message(token, size);
    }
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_trailing_metadata(_root: u32, token: u32, _trailers: usize) {
    grpc_stream::on_metadata(token, false);
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(_root: u32, token: u32, status: u32) {
    if !grpc_stream::on_close(token, status) {
        call::on_grpc_close(token, status);
    }
    dispatch::run_tasks();
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(id: u32, _n: usize, eos: u32) -> u32 {
    if let Some(f) = dispatch::http_ptr(id) {
        // SAFETY: see `dispatch`'s invariants.
        if unsafe { (*f).buffers(true) } {
            let _ = abi::remove_map_value(crate::http::MapType::RequestHeaders as u32, b"content-length");
        }
    }
    http_handler(id, true, "on_request_headers", |f| f.headers(id, true, eos != 0))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(id: u32, size: usize, eos: u32) -> u32 {
    body(id, true, size, eos != 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(id: u32, _n: usize) -> u32 {
    http_handler(id, true, "on_request_trailers", |f| f.trailers(id, true))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(id: u32, _n: usize, eos: u32) -> u32 {
    if let Some(f) = dispatch::http_ptr(id) {
        // SAFETY: see `dispatch`'s invariants.
        if unsafe { (*f).buffers(false) } {
            let _ = abi::remove_map_value(crate::http::MapType::ResponseHeaders as u32, b"content-length");
        }
    }
    http_handler(id, false, "on_response_headers", |f| f.headers(id, false, eos != 0))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(id: u32, size: usize, eos: u32) -> u32 {
    body(id, false, size, eos != 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(id: u32, _n: usize) -> u32 {
    http_handler(id, false, "on_response_trailers", |f| f.trailers(id, false))
}

fn body(id: u32, request: bool, size: usize, eos: bool) -> u32 {
    let Some(f) = dispatch::http_ptr(id) else { return 0 };
    // SAFETY: see `dispatch`'s invariants.
    if !eos && unsafe { (*f).buffers(request) } {
        // Keep buffering; the filter sees the whole body at the end.
        return 1;
    }
    let name = if request { "on_request_body" } else { "on_response_body" };
    http_handler(id, request, name, |f| f.body(id, request, size, eos))
}

#[no_mangle]
pub extern "C" fn proxy_on_new_connection(id: u32) -> u32 {
    tcp(id, |f| f.new_connection(id))
}

#[no_mangle]
pub extern "C" fn proxy_on_downstream_data(id: u32, size: usize, eos: u32) -> u32 {
    tcp(id, |f| f.data(id, true, size, eos != 0))
}

#[no_mangle]
pub extern "C" fn proxy_on_upstream_data(id: u32, size: usize, eos: u32) -> u32 {
    tcp(id, |f| f.data(id, false, size, eos != 0))
}

#[no_mangle]
pub extern "C" fn proxy_on_downstream_connection_close(id: u32, peer: u32) {
    tcp(id, |f| {
        f.downstream_close(peer);
        0
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_upstream_connection_close(id: u32, peer: u32) {
    tcp(id, |f| {
        f.upstream_close(peer);
        0
    });
}

fn tcp(id: u32, call: impl FnOnce(&mut dyn dispatch::TcpFilterObj) -> u32) -> u32 {
    dispatch::set_current(id);
    let Some(f) = dispatch::tcp_ptr(id) else { return 0 };
    // SAFETY: see `dispatch`'s invariants.
    let r = call(unsafe { &mut *f });
    dispatch::run_tasks();
    r
}

#[no_mangle]
pub extern "C" fn proxy_on_log(id: u32) {
    dispatch::set_current(id);
    executor::cancel_handlers(id);
    if let Some(f) = dispatch::http_ptr(id) {
        // SAFETY: see `dispatch`'s invariants.
        unsafe { (*f).log(id) };
    } else if let Some(f) = dispatch::tcp_ptr(id) {
        // SAFETY: see `dispatch`'s invariants.
        unsafe { (*f).log() };
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_done(id: u32) -> u32 {
    // Streams are done at once; a root asks its plugin.
    let Some(root) = dispatch::root_ptr(id) else { return 1 };
    dispatch::set_current(id);
    // SAFETY: see `dispatch`'s invariants.
    let done = unsafe { (*root).done() };
    dispatch::run_tasks();
    u32::from(done)
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(id: u32) {
    dispatch::remove(id);
}
