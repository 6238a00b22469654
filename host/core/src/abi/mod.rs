//! The guest boundary: every hostcall of proxy-wasm 0.1.0–0.2.1 and Envoy's WASI subset, a file per
//! family, each checking its arguments and returning Envoy's exact status codes.

pub(crate) mod buffers;
// The ABI's plain data lives in `wire` (a leaf); seen from here as before.
pub use crate::wire::{codec, status};
pub(crate) mod callbacks;
pub(crate) mod foreign;
pub mod grpc;
pub(crate) mod headers;
pub(crate) mod http_call;
mod inline_headers;
pub(crate) mod log;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod properties;
pub(crate) mod queues;
pub(crate) mod shared_data;
pub(crate) mod stream;
pub(crate) mod timers;
pub(crate) mod wasi;

use wasmtime::{Caller, Linker};

pub use callbacks::CALLBACKS;
pub use wasi::{WASI_FUNCTIONS, WASI_MODULES};

use crate::store::{Host, Phase};

/// Every `env` import the host provides (0.2.1, 0.2.0 and 0.1.0 names, plus Emscripten helpers).
pub const ENV_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_size",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_get_status",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_call_foreign_function",
    // 0.1.0 only
    "proxy_get_configuration",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
    // Emscripten-built C++ modules
    "emscripten_notify_memory_growth",
    "pthread_equal",
];

/// Refuses proxy hostcalls while the module is starting, as Envoy's V8 does (it traps).
pub(crate) fn require_running(caller: &Caller<'_, Host>, name: &str) -> wasmtime::Result<()> {
    if caller.data().phase == Phase::Starting {
        return Err(wasmtime::Error::msg(format!(
            "{name} called while the module was starting (_initialize/_start/main): only logging and WASI are allowed then"
        )));
    }
    Ok(())
}

/// Defines every import of the host in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    log::add_to_linker(linker)?;
    timers::add_to_linker(linker)?;
    buffers::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    shared_data::add_to_linker(linker)?;
    queues::add_to_linker(linker)?;
    stream::add_to_linker(linker)?;
    http_call::add_to_linker(linker)?;
    grpc::add_to_linker(linker)?;
    metrics::add_to_linker(linker)?;
    foreign::add_to_linker(linker)?;
    wasi::add_to_linker(linker)?;
    // Emscripten-built C++ modules import these two.
    linker.func_wrap("env", "emscripten_notify_memory_growth", |_: Caller<'_, Host>, _index: i32| {})?;
    linker.func_wrap("env", "pthread_equal", |_: Caller<'_, Host>, a: i32, b: i32| i32::from(a == b))?;
    Ok(())
}
