//! `sluice-host`: a proxy-wasm host on wasmtime that behaves like Envoy.
//!
//! One door to the host's crates, each a room of its own: the core (`sluice-core`: the runtime,
//! the ABI's hostcalls, VMs and their plugins, stream state, each stream's filter chain; its
//! modules are re-exported here), the [`harness`] for filter tests (`sluice-harness`), and with
//! the `server` feature (on by default) the proxy (`sluice-proxy`: [`config`], [`server`]) that
//! the `sluice` binary serves. A filter's tests turn `server` off and build the core and the
//! harness only.
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

pub use sluice_core::*;
pub use sluice_harness as harness;
#[cfg(feature = "server")]
pub use sluice_proxy::{config, server};
