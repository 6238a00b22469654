//! What each fuzz target does with one input. Shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by the replay of the kept inputs in `cargo test` (`integration/tests/fuzz_inputs.rs`), so the
//! two cannot drift. A check passes when it returns: every error is an answer, a panic is a bug.

use std::sync::{Arc, OnceLock};

use sluice_host::harness::Harness;
use sluice_host::runtime::{Runtime, RuntimeConfig};

/// One wasmtime engine for all inputs (building one per input would be most of the time spent).
fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            // A short callback deadline: a script that loops costs milliseconds, not seconds.
            let config =
                RuntimeConfig { callback_deadline: std::time::Duration::from_millis(200), ..Default::default() };
            Arc::new(Runtime::new(config).expect("a wasmtime engine"))
        })
        .clone()
}

/// Bootstrap bytes (YAML or JSON): read against Envoy's schema and into a plan. Module paths are
/// resolved under a directory that does not exist, so no file is read.
pub fn config(data: &[u8]) {
    static SCHEMA: OnceLock<sluice_host::config::Schema> = OnceLock::new();
    SCHEMA.get_or_init(sluice_host::config::hold_schema);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = sluice_host::config::canonical(text);
    let _ = sluice_host::config::parse(text, std::path::Path::new("/nonexistent-sluice-fuzz"));
}

/// Module bytes: compiled, instantiated and started as a plugin.
pub fn module(data: &[u8]) {
    let Ok(mut h) = Harness::builder().runtime(runtime()).module_bytes(data.to_vec()).build() else { return };
    let mut s = h.http_stream();
    let _ = s.request_headers([(":method", "GET"), (":path", "/"), (":authority", "x")], true);
    let _ = s.response_headers([(":status", "200")], true);
}

/// The hostcall script module (`hostcalls.wat`), compiled once.
fn script_module() -> Vec<u8> {
    include_str!("../hostcalls.wat").as_bytes().to_vec()
}

/// A script of hostcalls with the input's arguments (wild pointers and sizes, unknown map and
/// buffer types, ids of nothing): run in `on_configure`, in the request and response headers of a
/// stream, and in a tick. The host answers each with a status; the VM may fail, the host may not.
pub fn hostcalls(data: &[u8]) {
    let built = Harness::builder()
        .runtime(runtime())
        .module_bytes(script_module())
        .plugin_config(data.to_vec())
        .cluster("upstream")
        .build();
    let Ok(mut h) = built else { return };
    let mut s = h.http_stream();
    let _ = s.request_headers([(":method", "POST"), (":path", "/x"), (":authority", "host")], false);
    let _ = s.request_body(b"body", true);
    let _ = s.response_headers([(":status", "200"), ("content-length", "2")], false);
    let _ = s.response_body(b"ok", true);
    let _ = h.advance_time(std::time::Duration::from_millis(1500));
}
