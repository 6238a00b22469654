//! `sluice-core`: the proxy-wasm host's core, sans I/O.
//!
//! The [`runtime`] (wasmtime, the compiled-module cache, the epoch deadline), the [`abi`]
//! hostcalls over the VM's [`store`], [`vm`]s and their [`stream`] state, process-wide [`state`]
//! (shared data, queues, metrics), each VM with its plugins as a [`plugin_vm`], and each stream's
//! filter [`chain`] over them, stepped as Envoy's filter manager steps it. The ABI's plain data
//! sits in [`wire`], below everything. Two drivers sit on top, in crates of their own: the
//! in-process harness (`sluice-harness`) and the proxy (`sluice-proxy`).
//!
//! ```
//! use sluice_core::stream::HeaderMap;
//!
//! let h = HeaderMap::from_pairs([(":method", "GET"), ("x-id", "7")]);
//! assert_eq!(h.get_str("x-id"), Some("7"));
//! ```

pub mod abi;
pub mod calendar;
pub mod chain;
pub mod error;
pub mod plugin_vm;
pub mod runtime;
pub mod state;
pub mod store;
pub mod stream;
pub mod vm;
pub mod wire;

pub use error::{Backtrace, BoxError, Error, ErrorKind, Fault, GuestFault, GuestFrame, Result};
pub use stream::HeaderMap;
