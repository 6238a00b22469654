//! Typed handles to the callbacks a module exports.
//!
//! Signatures are checked once per module ([`Exports::new`]); each instance resolves a callback the
//! first time it is called, so starting an instance costs only the callbacks it actually uses.

use std::sync::Arc;

use wasmtime::{AsContextMut, ExternType, Instance, Module, ModuleExport, TypedFunc, ValType, WasmParams, WasmResults};

use crate::error::{Error, Result};

/// A callback resolved on first use: `None` = not looked up yet, `Some(None)` = not exported.
/// Shared behind an `Arc`: cloning a `TypedFunc` itself clones its registered type, which costs
/// more than the call on a hot path.
pub(crate) struct Lazy<P, R>(Option<Option<Arc<TypedFunc<P, R>>>>);

impl<P, R> Default for Lazy<P, R> {
    fn default() -> Self {
        Self(None)
    }
}

impl<P: WasmParams, R: WasmResults> Lazy<P, R> {
    /// The callback, looked up through `export` the first time.
    pub(crate) fn get(
        &mut self,
        export: Option<&ModuleExport>,
        instance: &Instance,
        mut store: impl AsContextMut,
    ) -> Option<Arc<TypedFunc<P, R>>> {
        if self.0.is_none() {
            let func = export
                .and_then(|e| instance.get_module_export(&mut store, e))
                .and_then(|e| e.into_func())
                // The signature was checked when the module was loaded, so this cannot fail.
                .and_then(|f| f.typed::<P, R>(&store).ok())
                .map(Arc::new);
            self.0 = Some(func);
        }
        self.0.clone().flatten()
    }
}

/// Looks up `name` and checks it takes `params` i32s and returns `results` i32s.
fn check(module: &Module, name: &'static str, params: usize, results: usize) -> Result<Option<ModuleExport>> {
    let Some(ExternType::Func(ty)) = module.get_export(name) else { return Ok(None) };
    let all_i32 = |mut it: Box<dyn ExactSizeIterator<Item = ValType>>, n: usize| {
        it.len() == n && it.all(|t| matches!(t, ValType::I32))
    };
    if !all_i32(Box::new(ty.params()), params) || !all_i32(Box::new(ty.results()), results) {
        let expected = format!("({}) -> ({})", vec!["i32"; params].join(", "), vec!["i32"; results].join(", "));
        return Err(Error::ExportSignature { name, expected: expected.into(), found: ty.to_string().into() });
    }
    Ok(module.get_export_index(name))
}

macro_rules! callbacks {
    ($($field:ident : $name:literal => ($($p:ty),*) -> $r:ty, $np:literal, $nr:literal;)*) => {
        /// Where each callback is in a module's exports (checked once per module).
        #[derive(Clone, Default)]
        pub(crate) struct Exports {
            $(pub $field: Option<ModuleExport>,)*
            /// 0.1.0-style `proxy_on_request_headers(ctx, n)` without end_of_stream.
            pub on_request_headers_v1: Option<ModuleExport>,
            /// 0.1.0-style `proxy_on_response_headers(ctx, n)`.
            pub on_response_headers_v1: Option<ModuleExport>,
        }

        impl Exports {
            /// Finds and type-checks every known callback of `module`.
            pub(crate) fn new(module: &Module) -> Result<Self> {
                let mut e = Self::default();
                $(e.$field = check(module, $name, $np, $nr)
                    .or_else(|err| if $name.starts_with("proxy_on_") && $name.ends_with("_headers") { Ok(None) } else { Err(err) })?;)*
                if e.on_request_headers.is_none() {
                    e.on_request_headers_v1 = check(module, "proxy_on_request_headers", 2, 1)?;
                }
                if e.on_response_headers.is_none() {
                    e.on_response_headers_v1 = check(module, "proxy_on_response_headers", 2, 1)?;
                }
                Ok(e)
            }
        }

        /// Every callback (and start function) the host calls when a module exports it.
        pub const CALLBACKS: &[&str] = &[$($name,)*];

        /// One instance's callbacks, each resolved on first use.
        #[derive(Default)]
        pub(crate) struct Callbacks {
            $(pub $field: Lazy<($($p,)*), $r>,)*
            pub on_request_headers_v1: Lazy<(i32, i32), i32>,
            pub on_response_headers_v1: Lazy<(i32, i32), i32>,
        }
    };
}

callbacks! {
    initialize: "_initialize" => () -> (), 0, 0;
    start: "_start" => () -> (), 0, 0;
    on_context_create: "proxy_on_context_create" => (i32, i32) -> (), 2, 0;
    on_vm_start: "proxy_on_vm_start" => (i32, i32) -> i32, 2, 1;
    on_configure: "proxy_on_configure" => (i32, i32) -> i32, 2, 1;
    on_tick: "proxy_on_tick" => (i32) -> (), 1, 0;
    on_queue_ready: "proxy_on_queue_ready" => (i32, i32) -> (), 2, 0;
    on_new_connection: "proxy_on_new_connection" => (i32) -> i32, 1, 1;
    on_downstream_data: "proxy_on_downstream_data" => (i32, i32, i32) -> i32, 3, 1;
    on_upstream_data: "proxy_on_upstream_data" => (i32, i32, i32) -> i32, 3, 1;
    on_downstream_connection_close: "proxy_on_downstream_connection_close" => (i32, i32) -> (), 2, 0;
    on_upstream_connection_close: "proxy_on_upstream_connection_close" => (i32, i32) -> (), 2, 0;
    on_request_headers: "proxy_on_request_headers" => (i32, i32, i32) -> i32, 3, 1;
    on_response_headers: "proxy_on_response_headers" => (i32, i32, i32) -> i32, 3, 1;
    on_request_body: "proxy_on_request_body" => (i32, i32, i32) -> i32, 3, 1;
    on_response_body: "proxy_on_response_body" => (i32, i32, i32) -> i32, 3, 1;
    on_request_trailers: "proxy_on_request_trailers" => (i32, i32) -> i32, 2, 1;
    on_response_trailers: "proxy_on_response_trailers" => (i32, i32) -> i32, 2, 1;
    on_http_call_response: "proxy_on_http_call_response" => (i32, i32, i32, i32, i32) -> (), 5, 0;
    on_grpc_receive_initial_metadata: "proxy_on_grpc_receive_initial_metadata" => (i32, i32, i32) -> (), 3, 0;
    on_grpc_receive: "proxy_on_grpc_receive" => (i32, i32, i32) -> (), 3, 0;
    on_grpc_receive_trailing_metadata: "proxy_on_grpc_receive_trailing_metadata" => (i32, i32, i32) -> (), 3, 0;
    on_grpc_close: "proxy_on_grpc_close" => (i32, i32, i32) -> (), 3, 0;
    on_foreign_function: "proxy_on_foreign_function" => (i32, i32, i32) -> (), 3, 0;
    on_done: "proxy_on_done" => (i32) -> i32, 1, 1;
    on_log: "proxy_on_log" => (i32) -> (), 1, 0;
    on_delete: "proxy_on_delete" => (i32) -> (), 1, 0;
}

/// `main(argc, argv)` or `__main_void()`, run after `_initialize` if exported with a usable signature.
pub(crate) fn main_exports(module: &Module) -> (Option<ModuleExport>, Option<ModuleExport>) {
    (check(module, "main", 2, 1).ok().flatten(), check(module, "__main_void", 0, 1).ok().flatten())
}
