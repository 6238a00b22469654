//! Typed handles to the callbacks a module exports, resolved once per instance.

use wasmtime::{AsContextMut, Instance, TypedFunc, WasmParams, WasmResults};

use crate::error::{Error, Result};

type F<P, R> = Option<TypedFunc<P, R>>;

/// `proxy_on_request_headers` takes `end_of_stream` since 0.2.0.
#[derive(Clone)]
pub(crate) enum HeadersFn {
    /// (context, headers, end_of_stream)
    V2(TypedFunc<(i32, i32, i32), i32>),
    /// 0.1.0: (context, headers)
    V1(TypedFunc<(i32, i32), i32>),
}

/// The exports the host may call. A missing one is skipped, as Envoy does.
#[derive(Clone, Default)]
pub(crate) struct Callbacks {
    pub allocator: F<i32, i32>,
    pub initialize: F<(), ()>,
    pub main: F<(i32, i32), i32>,
    pub main_void: F<(), i32>,
    pub start: F<(), ()>,
    pub on_context_create: F<(i32, i32), ()>,
    pub on_vm_start: F<(i32, i32), i32>,
    pub on_configure: F<(i32, i32), i32>,
    pub on_tick: F<i32, ()>,
    pub on_queue_ready: F<(i32, i32), ()>,
    pub on_new_connection: F<i32, i32>,
    pub on_downstream_data: F<(i32, i32, i32), i32>,
    pub on_upstream_data: F<(i32, i32, i32), i32>,
    pub on_downstream_connection_close: F<(i32, i32), ()>,
    pub on_upstream_connection_close: F<(i32, i32), ()>,
    pub on_request_headers: Option<HeadersFn>,
    pub on_response_headers: Option<HeadersFn>,
    pub on_request_body: F<(i32, i32, i32), i32>,
    pub on_response_body: F<(i32, i32, i32), i32>,
    pub on_request_trailers: F<(i32, i32), i32>,
    pub on_response_trailers: F<(i32, i32), i32>,
    pub on_http_call_response: F<(i32, i32, i32, i32, i32), ()>,
    pub on_grpc_receive_initial_metadata: F<(i32, i32, i32), ()>,
    pub on_grpc_receive: F<(i32, i32, i32), ()>,
    pub on_grpc_receive_trailing_metadata: F<(i32, i32, i32), ()>,
    pub on_grpc_close: F<(i32, i32, i32), ()>,
    pub on_foreign_function: F<(i32, i32, i32), ()>,
    pub on_done: F<i32, i32>,
    pub on_log: F<i32, ()>,
    pub on_delete: F<i32, ()>,
}

fn get<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    mut store: impl AsContextMut,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>> {
    let Some(func) = instance.get_func(&mut store, name) else {
        return Ok(None);
    };
    func.typed::<P, R>(&store)
        .map(Some)
        .map_err(|e| Error::Link(format!("export `{name}` has the wrong signature: {e}")))
}

fn headers(instance: &Instance, mut store: impl AsContextMut, name: &str) -> Result<Option<HeadersFn>> {
    let Some(func) = instance.get_func(&mut store, name) else {
        return Ok(None);
    };
    if let Ok(f) = func.typed::<(i32, i32, i32), i32>(&store) {
        return Ok(Some(HeadersFn::V2(f)));
    }
    func.typed::<(i32, i32), i32>(&store)
        .map(|f| Some(HeadersFn::V1(f)))
        .map_err(|e| Error::Link(format!("export `{name}` has the wrong signature: {e}")))
}

impl Callbacks {
    /// Resolves every known export of `instance`.
    pub(crate) fn resolve(instance: &Instance, mut s: impl AsContextMut, allocator: &str) -> Result<Self> {
        Ok(Self {
            allocator: get(instance, &mut s, allocator)?,
            initialize: get(instance, &mut s, "_initialize")?,
            main: get(instance, &mut s, "main").ok().flatten(),
            main_void: get(instance, &mut s, "__main_void").ok().flatten(),
            start: get(instance, &mut s, "_start")?,
            on_context_create: get(instance, &mut s, "proxy_on_context_create")?,
            on_vm_start: get(instance, &mut s, "proxy_on_vm_start")?,
            on_configure: get(instance, &mut s, "proxy_on_configure")?,
            on_tick: get(instance, &mut s, "proxy_on_tick")?,
            on_queue_ready: get(instance, &mut s, "proxy_on_queue_ready")?,
            on_new_connection: get(instance, &mut s, "proxy_on_new_connection")?,
            on_downstream_data: get(instance, &mut s, "proxy_on_downstream_data")?,
            on_upstream_data: get(instance, &mut s, "proxy_on_upstream_data")?,
            on_downstream_connection_close: get(instance, &mut s, "proxy_on_downstream_connection_close")?,
            on_upstream_connection_close: get(instance, &mut s, "proxy_on_upstream_connection_close")?,
            on_request_headers: headers(instance, &mut s, "proxy_on_request_headers")?,
            on_response_headers: headers(instance, &mut s, "proxy_on_response_headers")?,
            on_request_body: get(instance, &mut s, "proxy_on_request_body")?,
            on_response_body: get(instance, &mut s, "proxy_on_response_body")?,
            on_request_trailers: get(instance, &mut s, "proxy_on_request_trailers")?,
            on_response_trailers: get(instance, &mut s, "proxy_on_response_trailers")?,
            on_http_call_response: get(instance, &mut s, "proxy_on_http_call_response")?,
            on_grpc_receive_initial_metadata: get(instance, &mut s, "proxy_on_grpc_receive_initial_metadata")?,
            on_grpc_receive: get(instance, &mut s, "proxy_on_grpc_receive")?,
            on_grpc_receive_trailing_metadata: get(instance, &mut s, "proxy_on_grpc_receive_trailing_metadata")?,
            on_grpc_close: get(instance, &mut s, "proxy_on_grpc_close")?,
            on_foreign_function: get(instance, &mut s, "proxy_on_foreign_function")?,
            on_done: get(instance, &mut s, "proxy_on_done")?,
            on_log: get(instance, &mut s, "proxy_on_log")?,
            on_delete: get(instance, &mut s, "proxy_on_delete")?,
        })
    }
}
