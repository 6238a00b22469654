//! A guest fault as data: which export faulted, how, and the guest's stack at that moment. It is
//! rendered in one place — the one-line message here, the frames under Envoy's heading in
//! [`GuestFault::backtrace`] — so that a log line, `sluice check` and a test each pick what they show
//! without cutting a string apart.

use std::fmt;

/// What the frames of a trap follow (Envoy's words for them, on a line of their own).
const BACKTRACE_HEADING: &str = "Proxy-Wasm plugin in-VM backtrace:";

/// Guest code faulted while the host called one of its exports; the VM is failed.
///
/// ```
/// use sluice_core::{Fault, GuestFault};
/// let f = GuestFault::new("proxy_on_tick", Fault::Deadline { deadline_ms: 100 });
/// assert_eq!(f.to_string(), "proxy_on_tick ran longer than the 100 ms callback deadline and was stopped");
/// assert_eq!(f.backtrace().to_string(), "");
/// ```
#[derive(Debug, Clone)]
pub struct GuestFault {
    /// The export the host called (`proxy_on_request_headers`, `_start`, …).
    pub function: String,
    /// How it faulted.
    pub fault: Fault,
    /// The guest's frames, innermost first; empty when wasmtime kept none.
    pub frames: Vec<GuestFrame>,
}

/// How guest code faulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The guest trapped: a panic, `unreachable`, an out-of-bounds access, `proc_exit`, a hostcall
    /// that refused to go on.
    Trap {
        /// The trap code wasmtime reported, when the fault was a wasm trap (not a host error).
        code: Option<wasmtime::Trap>,
        /// What wasmtime or the hostcall said.
        message: String,
        /// The last error the plugin logged before it faulted (usually its panic message).
        logged: Option<String>,
    },
    /// The guest ran past the per-callback deadline.
    Deadline {
        /// The deadline.
        deadline_ms: u128,
    },
    /// The guest tried to grow its memory past the cap.
    MemoryLimit {
        /// The cap.
        limit_mib: usize,
    },
}

/// One frame of the guest's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFrame {
    /// The frame's offset in the module's code section.
    pub offset: Option<usize>,
    /// The function, demangled; `None` when the module names none.
    pub function: Option<String>,
    /// Source positions (file, line, column) when the module keeps its line tables; several when
    /// calls were inlined.
    pub locations: Vec<(String, u32, u32)>,
}

impl GuestFault {
    /// A fault without frames.
    pub fn new(function: impl Into<String>, fault: Fault) -> Self {
        Self { function: function.into(), fault, frames: Vec::new() }
    }

    /// The same fault with the frames of wasmtime's backtrace.
    pub fn with_backtrace(mut self, bt: &wasmtime::WasmBacktrace) -> Self {
        self.frames = bt.frames().iter().map(GuestFrame::from_wasmtime).collect();
        self
    }

    /// The guest's stack as a filter author reads it, under Envoy's heading, each line starting
    /// with a newline (`"\nProxy-Wasm plugin in-VM backtrace:\n   3: 0x1a2b - my_filter::check\n
    /// at src/lib.rs:37:9"`); nothing when there are no frames. Frames of the panic runtime on
    /// top of a panic are counted, not listed.
    pub fn backtrace(&self) -> Backtrace<'_> {
        Backtrace(&self.frames)
    }
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let function = &self.function;
        match &self.fault {
            Fault::Trap { message, logged, .. } => {
                write!(f, "{function} failed: {message}")?;
                match logged {
                    Some(logged) => write!(f, " (after: {logged})"),
                    None => Ok(()),
                }
            }
            Fault::Deadline { deadline_ms } => {
                write!(f, "{function} ran longer than the {deadline_ms} ms callback deadline and was stopped")
            }
            Fault::MemoryLimit { limit_mib } => {
                write!(f, "{function} tried to grow memory past the {limit_mib} MiB limit and was stopped")
            }
        }
    }
}

impl std::error::Error for GuestFault {}

impl GuestFrame {
    fn from_wasmtime(f: &wasmtime::FrameInfo) -> Self {
        Self {
            offset: f.module_offset(),
            function: f.func_name().map(|n| format!("{:#}", rustc_demangle::demangle(n))),
            locations: f
                .symbols()
                .iter()
                .filter_map(|s| Some((s.file()?.to_string(), s.line()?, s.column().unwrap_or(0))))
                .collect(),
        }
    }

    /// Frames of the panic runtime (std's and core's panic machinery, `abort`) sit on top of every
    /// panic's stack and say nothing about the filter.
    fn is_panic_runtime(&self) -> bool {
        let name = self.function.as_deref().unwrap_or("<unnamed>");
        ["std::", "core::", "__rustc::", "panic_abort::", "abort", "rust_panic", "__rust_start_panic"]
            .iter()
            .any(|p| name.starts_with(p))
    }
}

/// A guest's frames rendered for a log ([`GuestFault::backtrace`]).
#[derive(Debug, Clone, Copy)]
pub struct Backtrace<'a>(&'a [GuestFrame]);

impl fmt::Display for Backtrace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frames = self.0;
        if frames.is_empty() {
            return Ok(());
        }
        let skipped = frames.iter().take_while(|f| f.is_panic_runtime()).count();
        // A trap that is not a panic (no filter frame below the runtime's) shows every frame.
        let skipped = if skipped == frames.len() { 0 } else { skipped };
        write!(f, "\n{BACKTRACE_HEADING}")?;
        if skipped > 0 {
            write!(f, "\n  ({skipped} frames of the panic runtime above)")?;
        }
        for (i, frame) in frames.iter().enumerate().skip(skipped) {
            let offset = frame.offset.map(|o| format!("{o:#x}")).unwrap_or_else(|| "?".into());
            write!(f, "\n  {i:>2}: {offset} - {}", frame.function.as_deref().unwrap_or("<unnamed>"))?;
            for (file, line, column) in &frame.locations {
                write!(f, "\n        at {file}:{line}:{column}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> GuestFrame {
        GuestFrame { offset: Some(0x10), function: Some(name.into()), locations: Vec::new() }
    }

    #[test]
    fn panic_runtime_frames_are_counted_not_listed() {
        let mut f = GuestFault::new("proxy_on_tick", Fault::Trap { code: None, message: "x".into(), logged: None });
        f.frames = vec![frame("std::panicking::begin_panic"), frame("core::panicking::panic"), frame("my::tick")];
        let bt = f.backtrace().to_string();
        assert_eq!(
            bt,
            "\nProxy-Wasm plugin in-VM backtrace:\n  (2 frames of the panic runtime above)\n   2: 0x10 - my::tick"
        );
    }

    #[test]
    fn a_trap_outside_any_filter_frame_lists_every_frame() {
        let mut f = GuestFault::new("_start", Fault::Trap { code: None, message: "x".into(), logged: None });
        f.frames = vec![frame("abort")];
        assert_eq!(f.backtrace().to_string(), "\nProxy-Wasm plugin in-VM backtrace:\n   0: 0x10 - abort");
    }

    #[test]
    fn the_message_names_the_function_and_what_the_plugin_logged() {
        let f = GuestFault::new(
            "proxy_on_request_headers",
            Fault::Trap {
                code: Some(wasmtime::Trap::UnreachableCodeReached),
                message: "unreachable".into(),
                logged: Some("boom".into()),
            },
        );
        assert_eq!(f.to_string(), "proxy_on_request_headers failed: unreachable (after: boom)");
    }
}
