//! The host functions of proxy-wasm 0.2.1. On wasm32 they are imports from `env`; elsewhere (docs,
//! `cargo check` on the host) they are stand-ins that report UNIMPLEMENTED, so nothing links against
//! a host that is not there.

#![allow(clippy::too_many_arguments, missing_docs)]

macro_rules! hostcalls {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> u32;)*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "env")]
        extern "C" {
            $(pub fn $name($($arg: $ty),*) -> u32;)*
        }

        $(
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(unused_variables)]
            pub unsafe fn $name($($arg: $ty),*) -> u32 {
                super::status::UNIMPLEMENTED
            }
        )*
    };
}

hostcalls! {
    fn proxy_log(level: u32, msg: *const u8, len: usize) -> u32;
    fn proxy_get_log_level(ret: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(ret: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(ms: u32) -> u32;
    fn proxy_get_buffer_bytes(t: u32, start: usize, max: usize, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_set_buffer_bytes(t: u32, start: usize, size: usize, data: *const u8, len: usize) -> u32;
    fn proxy_get_header_map_pairs(t: u32, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_set_header_map_pairs(t: u32, data: *const u8, len: usize) -> u32;
    fn proxy_get_header_map_size(t: u32, ret: *mut usize) -> u32;
    fn proxy_get_buffer_status(t: u32, ret_len: *mut usize, ret_flags: *mut u32) -> u32;
    fn proxy_get_header_map_value(t: u32, k: *const u8, kl: usize, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_add_header_map_value(t: u32, k: *const u8, kl: usize, v: *const u8, vl: usize) -> u32;
    fn proxy_replace_header_map_value(t: u32, k: *const u8, kl: usize, v: *const u8, vl: usize) -> u32;
    fn proxy_remove_header_map_value(t: u32, k: *const u8, kl: usize) -> u32;
    fn proxy_get_property(p: *const u8, pl: usize, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_set_property(p: *const u8, pl: usize, v: *const u8, vl: usize) -> u32;
    fn proxy_get_shared_data(k: *const u8, kl: usize, ret_ptr: *mut *mut u8, ret_len: *mut usize, ret_cas: *mut u32) -> u32;
    fn proxy_set_shared_data(k: *const u8, kl: usize, v: *const u8, vl: usize, cas: u32) -> u32;
    fn proxy_register_shared_queue(n: *const u8, nl: usize, ret: *mut u32) -> u32;
    fn proxy_resolve_shared_queue(vm: *const u8, vml: usize, n: *const u8, nl: usize, ret: *mut u32) -> u32;
    fn proxy_enqueue_shared_queue(id: u32, v: *const u8, vl: usize) -> u32;
    fn proxy_dequeue_shared_queue(id: u32, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_continue_stream(t: u32) -> u32;
    fn proxy_close_stream(t: u32) -> u32;
    fn proxy_get_status(code: *mut u32, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_send_local_response(status: u32, d: *const u8, dl: usize, b: *const u8, bl: usize, h: *const u8, hl: usize, grpc: i32) -> u32;
    fn proxy_http_call(up: *const u8, upl: usize, h: *const u8, hl: usize, b: *const u8, bl: usize, t: *const u8, tl: usize, timeout: u32, ret: *mut u32) -> u32;
    fn proxy_grpc_stream(up: *const u8, upl: usize, s: *const u8, sl: usize, m: *const u8, ml: usize, md: *const u8, mdl: usize, ret: *mut u32) -> u32;
    fn proxy_grpc_send(token: u32, msg: *const u8, len: usize, end_of_stream: u32) -> u32;
    fn proxy_grpc_cancel(token: u32) -> u32;
    fn proxy_done() -> u32;
    fn proxy_grpc_close(token: u32) -> u32;
    fn proxy_grpc_call(up: *const u8, upl: usize, s: *const u8, sl: usize, m: *const u8, ml: usize, md: *const u8, mdl: usize, msg: *const u8, msgl: usize, timeout: u32, ret: *mut u32) -> u32;
    fn proxy_define_metric(t: u32, n: *const u8, nl: usize, ret: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, delta: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_metric(id: u32, ret: *mut u64) -> u32;
    fn proxy_set_effective_context(id: u32) -> u32;
    fn proxy_call_foreign_function(n: *const u8, nl: usize, a: *const u8, al: usize, ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
}
