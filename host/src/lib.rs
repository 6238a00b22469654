//! `sluice-host`: a proxy-wasm host on wasmtime that behaves like Envoy.
//!
//! One core (the [`runtime`], the [`abi`] hostcalls, [`vm`]s and their [`stream`] state, process-wide
//! [`state`], each VM with its plugins as a sans-IO [`plugin_vm`], and each stream's filter
//! [`chain`] over them) and two drivers: the in-process
//! [`harness`] for unit tests of filters, and the `sluice` binary's server (feature `server`, on by
//! default; a filter's tests turn it off and build only the core and the harness).
//!
//! ```no_run
//! use sluice_host::harness::Harness;
//!
//! let mut h = Harness::builder().module_file("filter.wasm").plugin_config(r#"{"header":"x-hello"}"#).build()?;
//! let mut s = h.http_stream();
//! s.request_headers([(":method", "GET"), (":path", "/"), (":authority", "example.com")], true)?;
//! assert_eq!(s.upstream_request().headers.get_str("x-hello"), Some("world"));
//! # Ok::<(), sluice_host::Error>(())
//! ```

pub mod abi;
pub mod calendar;
pub mod chain;
#[cfg(feature = "server")]
pub mod config;
pub mod error;
pub mod harness;
pub mod plugin_vm;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
pub mod state;
pub mod store;
pub mod stream;
pub mod vm;
pub mod wire;

pub use error::{Backtrace, BoxError, Error, ErrorKind, Fault, GuestFault, GuestFrame, Result};
pub use stream::HeaderMap;
