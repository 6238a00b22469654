//! The guest's stack when it trapped, as a filter author reads it: frames by (demangled) name,
//! with file and line when the module keeps its line tables, under Envoy's heading for it.

use std::fmt::Write;

/// What the frames of a trap follow in its message (Envoy's words for them, on a line of its own).
pub const BACKTRACE_HEADING: &str = "\nProxy-Wasm plugin in-VM backtrace:";

/// Frames of the panic runtime (std's and core's panic machinery, `abort`) sit on top of every
/// panic's stack and say nothing about the filter: they are counted, not listed.
fn is_panic_runtime(name: &str) -> bool {
    ["std::", "core::", "__rustc::", "panic_abort::", "abort", "rust_panic", "__rust_start_panic"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// `"\nProxy-Wasm plugin in-VM backtrace:\n  0: 0x1a2b - my_filter::check\n        at src/lib.rs:37:9 …"`,
/// or nothing for an empty backtrace.
pub(crate) fn describe(bt: &wasmtime::WasmBacktrace) -> String {
    let frames = bt.frames();
    if frames.is_empty() {
        return String::new();
    }
    let name = |f: &wasmtime::FrameInfo| {
        f.func_name().map(|n| format!("{:#}", rustc_demangle::demangle(n))).unwrap_or_else(|| "<unnamed>".into())
    };
    let skipped = frames.iter().take_while(|f| is_panic_runtime(&name(f))).count();
    // A trap that is not a panic (no filter frame below the runtime's) shows every frame.
    let skipped = if skipped == frames.len() { 0 } else { skipped };
    let mut out = String::from(BACKTRACE_HEADING);
    if skipped > 0 {
        let _ = write!(out, "\n  ({skipped} frames of the panic runtime above)");
    }
    for (i, f) in frames.iter().enumerate().skip(skipped) {
        let offset = f.module_offset().map(|o| format!("{o:#x}")).unwrap_or_else(|| "?".into());
        let _ = write!(out, "\n  {i:>2}: {offset} - {}", name(f));
        for s in f.symbols() {
            if let (Some(file), Some(line)) = (s.file(), s.line()) {
                let _ = write!(out, "\n        at {file}:{line}:{}", s.column().unwrap_or(0));
            }
        }
    }
    out
}
