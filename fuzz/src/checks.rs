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

/// The bytes one HTTP/1 client sends, through the request-head scanner `sluice serve` puts in front
/// of hyper (`server::head_check`), in-process. The first byte picks the listener's rules (bits
/// 0-2: `accept_http_10`, `default_host_for_http_10`, `allow_chunked_length`; bit 7: 8 headers at
/// most) and the size of the reads (bits 3-6: 1 to 16 bytes); the head limit is 1 KiB, so that
/// short inputs reach the 431s. The verdict — how many heads went on, which refusal ended the
/// connection — must be the same whether the bytes arrive in one read or in pieces, and no more
/// heads can pass than the bytes hold line feeds.
pub fn heads(data: &[u8]) {
    use sluice_host::server::head_check::Rules;
    let Some((&knobs, stream)) = data.split_first() else { return };
    let rules = Rules {
        accept_http_10: knobs & 1 != 0,
        default_host_for_http_10: knobs & 2 != 0,
        allow_chunked_length: knobs & 4 != 0,
        max_headers: if knobs & 0x80 != 0 { 8 } else { 100 },
        ..Rules::defaults(1024, 2048)
    };
    let piece = 1 + usize::from((knobs >> 3) & 0x0f);
    let whole = scan(rules, stream, stream.len().max(1));
    let in_pieces = scan(rules, stream, piece);
    assert_eq!(whole, in_pieces, "read whole and in pieces of {piece}");
    let lines = stream.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(whole.0 <= lines, "{} heads passed from {lines} line feeds", whole.0);
}

/// Scans `stream` in reads of `piece` bytes, holding back what the scanner holds, as the reader in
/// front of hyper does: the heads passed, and the refusal if any.
fn scan(
    rules: sluice_host::server::head_check::Rules,
    stream: &[u8],
    piece: usize,
) -> (u64, Option<sluice_host::server::head_check::Refusal>) {
    use sluice_host::server::head_check::{Heads, Step};
    let mut heads = Heads::new(rules);
    let mut held = Vec::new();
    for part in stream.chunks(piece) {
        held.extend_from_slice(part);
        match heads.scan(&held) {
            Step::Pass(n) => {
                held.drain(..n);
            }
            Step::Refuse { refusal, .. } => return (heads.passed(), Some(refusal)),
        }
    }
    (heads.passed(), None)
}
