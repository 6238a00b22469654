//! `sluice`: write proxy-wasm filters for Envoy in idiomatic Rust.
//!
//! - One obvious way in: implement [`HttpPlugin`] (or [`TcpPlugin`], or a service [`Plugin`]) and
//!   register it with [`http_filter!`], [`tcp_filter!`] or [`service!`].
//! - Typed configuration: the plugin configuration is JSON read into your `Config` type; a bad one
//!   is logged and makes `on_configure` fail, never a panic.
//! - Async handlers: `HttpCall::get("auth", "/check").send().await` pauses the stream and resumes it
//!   when the answer comes, with several calls in flight if you like.
//! - Every hostcall failure is a [`Result`]; headers are bytes (no panic on non-UTF-8).
//!
//! ```no_run
//! use std::rc::Rc;
//! use sluice::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { name: String, value: String }
//!
//! struct AddHeader { config: Config }
//!
//! impl Plugin for AddHeader {
//!     type Config = Config;
//!     fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
//!         Ok(Self { config })
//!     }
//! }
//!
//! impl HttpPlugin for AddHeader {
//!     type Filter = Filter;
//!     fn new_filter(self: &Rc<Self>) -> Filter {
//!         Filter { plugin: self.clone() }
//!     }
//! }
//!
//! struct Filter { plugin: Rc<AddHeader> }
//!
//! impl HttpFilter for Filter {
//!     async fn on_request_headers(&mut self, req: Request<'_>, _eos: bool) -> sluice::Result<Action> {
//!         let c = &self.plugin.config;
//!         req.set_header(&c.name, &c.value)?;
//!         Ok(Action::Continue)
//!     }
//! }
//!
//! sluice::http_filter!(AddHeader);
//! ```

// The ABI exports exist only on wasm32; elsewhere (docs, `cargo check`) much of the plumbing behind
// them has no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#![warn(missing_docs)]

mod abi;
pub mod buffer;
pub mod call;
mod codec;
mod dispatch;
mod error;
mod executor;
pub mod grpc;
mod grpc_stream;
pub mod http;
mod log;
pub mod metrics;
mod plugin;
pub mod properties;
pub mod queue;
pub mod shared;
pub mod tcp;

pub use error::{Error, Result, Status};

/// Tells the host a plugin that answered `false` in [`Plugin::on_done`] has finished shutting
/// down. Call it from the plugin's own context (a task it spawned); from a stream it is
/// `NotFound`, as in Envoy.
pub fn done() -> Result<()> {
    abi::done()
}

/// Calls one of Envoy's foreign functions (`compress`, `uncompress`, `clear_route_cache`, …).
///
/// ```no_run
/// let zipped = sluice::call_foreign_function("compress", b"hello hello hello")?;
/// # Ok::<(), sluice::Error>(())
/// ```
pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<Vec<u8>> {
    abi::call_foreign(name, args)
}
pub use executor::spawn;
pub use http::Action;
pub use plugin::{HttpPlugin, Plugin, Setup, TcpPlugin};

/// Everything a filter usually needs: `use sluice::prelude::*;`.
pub mod prelude {
    pub use crate::call::{HttpCall, HttpResponse};
    pub use crate::grpc::Code;
    pub use crate::http::{
        Action, Body, Headers, HttpFilter, HttpStream, Method, Reply, Request, Response, StatusCode, Trailers,
    };
    pub use crate::metrics::{Counter, Gauge, Histogram};
    pub use crate::tcp::{Data, TcpAction, TcpConnection, TcpFilter};
    pub use crate::{Error, HttpPlugin, Plugin, Result, Setup, TcpPlugin};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::{http_root, root_by_id, service_root, tcp_root, NewRoot, RootDyn};
}

/// Registers an [`HttpPlugin`] as this module's filter.
#[macro_export]
macro_rules! http_filter {
    ($plugin:ty) => {
        #[no_mangle]
        fn __sluice_new_root() -> ::std::boxed::Box<dyn $crate::__private::RootDyn> {
            $crate::__private::http_root::<$plugin>()
        }
    };
}

/// Registers a [`TcpPlugin`] as this module's network filter.
#[macro_export]
macro_rules! tcp_filter {
    ($plugin:ty) => {
        #[no_mangle]
        fn __sluice_new_root() -> ::std::boxed::Box<dyn $crate::__private::RootDyn> {
            $crate::__private::tcp_root::<$plugin>()
        }
    };
}

/// Registers a [`Plugin`] with no streams (a bootstrap service: ticks, queues, callouts).
#[macro_export]
macro_rules! service {
    ($plugin:ty) => {
        #[no_mangle]
        fn __sluice_new_root() -> ::std::boxed::Box<dyn $crate::__private::RootDyn> {
            $crate::__private::service_root::<$plugin>()
        }
    };
}

/// Registers several plugins in one module, each under its `root_id`: the host's plugin
/// configuration picks one by its `root_id` field. Plugins of one module that share a `vm_id` share
/// one VM in Envoy, so they can talk through queues and shared data.
///
/// ```ignore
/// sluice::plugins! {
///     "collector" => service(Collector),
///     "collector_events" => http(Events),
///     "tcp_counter" => tcp(Counter),
/// }
/// ```
#[macro_export]
macro_rules! plugins {
    ($($root_id:literal => $kind:ident($plugin:ty)),+ $(,)?) => {
        #[no_mangle]
        fn __sluice_new_root() -> ::std::boxed::Box<dyn $crate::__private::RootDyn> {
            static TABLE: &[(&str, $crate::__private::NewRoot)] = &[
                $(($root_id, $crate::plugins!(@make $kind $plugin))),+
            ];
            $crate::__private::root_by_id(TABLE)
        }
    };
    (@make http $plugin:ty) => { $crate::__private::http_root::<$plugin> };
    (@make tcp $plugin:ty) => { $crate::__private::tcp_root::<$plugin> };
    (@make service $plugin:ty) => { $crate::__private::service_root::<$plugin> };
}
