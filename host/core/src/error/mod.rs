//! Errors the host reports, each phrased so the user knows what to fix.

mod fault;

use std::path::PathBuf;
use std::sync::Arc;

pub use fault::{Backtrace, Fault, GuestFault, GuestFrame};

/// A cause from below (wasmtime, the operating system), kept whole: `source()` walks it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Anything that can go wrong loading a module or running a plugin.
///
/// Each variant's message says what failed at this layer; the cause below it (wasmtime's error, an
/// I/O error, the guest fault) is its [`source`](std::error::Error::source), not repeated in the
/// message: print the chain (`{:#}` through `anyhow`, or walk `source()`) to see every layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a WebAssembly module.
    #[error("not a WebAssembly module ({reason})")]
    NotWasm {
        /// Why not.
        reason: &'static str,
    },
    /// The bytes are WebAssembly text that does not parse.
    #[error("invalid WebAssembly text")]
    InvalidText {
        /// wasmtime's parse error.
        #[source]
        source: BoxError,
    },
    /// wasmtime refused the module.
    #[error("the module does not compile")]
    Compile {
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },
    /// No `proxy_abi_version_*` export.
    #[error(
        "the module is not a proxy-wasm module: it exports no ABI version marker \
         (proxy_abi_version_0_2_1, proxy_abi_version_0_2_0 or proxy_abi_version_0_1_0)"
    )]
    NoAbiVersion,
    /// No `malloc` or `proxy_on_memory_allocate` export.
    #[error("the module exports no allocator: the host needs `malloc` or `proxy_on_memory_allocate` to return data")]
    NoAllocator,
    /// No `memory` export.
    #[error("the module exports no linear memory named `memory`")]
    NoMemory,
    /// Imports the host does not provide.
    #[error("the module imports functions the host does not provide: {}", .0.join(", "))]
    MissingImports(Vec<String>),
    /// An import cannot be linked (`module.name`, or every import at once when `None`).
    #[error("the module cannot be linked{}", import.as_ref().map(|i| format!(" ({i})")).unwrap_or_default())]
    Link {
        /// The import, when one is to blame.
        import: Option<String>,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },
    /// A callback export has the wrong signature.
    #[error("export `{name}` has the wrong signature: expected {expected}, found {found}")]
    ExportSignature {
        /// The export.
        name: &'static str,
        /// The signature the ABI gives it.
        expected: Box<str>,
        /// The module's.
        found: Box<str>,
    },
    /// Guest code faulted (trap, deadline, memory cap): the VM is failed. Boxed: a fault is rare
    /// and carries frames, and every `Result` of the hot path is as large as its error.
    #[error(transparent)]
    Guest(Box<GuestFault>),
    /// `proxy_on_vm_start` returned false.
    #[error("proxy_on_vm_start returned false: the plugin rejected its VM configuration{}", because(.logged))]
    VmStartFailed {
        /// The last error the plugin logged, usually the reason.
        logged: Option<String>,
    },
    /// `proxy_on_configure` returned false.
    #[error("proxy_on_configure returned false: the plugin rejected its configuration{}", because(.logged))]
    ConfigureFailed {
        /// The last error the plugin logged, usually the reason.
        logged: Option<String>,
    },
    /// The VM failed earlier and cannot run callbacks.
    #[error("the VM failed earlier and runs no more callbacks")]
    VmFailed {
        /// The fault that failed it.
        #[source]
        cause: Arc<GuestFault>,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host could not set itself up (the engine, the linker, the epoch thread, an instance).
    #[error("{what}")]
    Host {
        /// What the host was doing ("cannot create the wasm engine", …).
        what: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The plugin and the host kept handing each other work without end (a timer always due, an
    /// action that produces another): stopped rather than spinning.
    #[error("{what} without end")]
    Runaway {
        /// What kept coming.
        what: &'static str,
    },
    /// The driver was used wrongly (unknown context, step out of order).
    #[error("{0}")]
    Usage(String),
    /// A filter crate did not build for wasm32-wasip1 (the harness's `build_crate`).
    #[error("building the filter crate in {} for wasm32-wasip1 failed: {message}", .dir.display())]
    Build {
        /// The crate's directory.
        dir: PathBuf,
        /// Cargo's error, or what could not be done.
        message: Box<str>,
        /// Why cargo could not be run, when it could not.
        #[source]
        source: Option<Arc<std::io::Error>>,
    },
}

impl From<GuestFault> for Error {
    fn from(fault: GuestFault) -> Self {
        Error::Guest(Box::new(fault))
    }
}

impl Error {
    /// `Host { what, source }` from any error (wasmtime's are `anyhow::Error`s).
    pub(crate) fn host(what: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Host { what, source: source.into() }
    }
}

/// An error with every cause under it, one line (`message: cause: cause of the cause`), for log
/// lines; the same chain `anyhow` prints with `{:#}`.
///
/// ```
/// use sluice_core::error::Report;
/// let e = sluice_core::Error::Io { path: "f.wasm".into(), source: std::io::ErrorKind::NotFound.into() };
/// assert_eq!(Report(&e).to_string(), "cannot read f.wasm: entity not found");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

fn because(logged: &Option<String>) -> String {
    logged.as_ref().map(|m| format!(" (it logged: {m})")).unwrap_or_default()
}

/// What kind of failure an [`Error`] is, for a caller that acts differently on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The module cannot be loaded (not wasm, does not compile or link, no ABI marker, no
    /// allocator or memory, a file that cannot be read).
    Load,
    /// The plugin refused its VM or plugin configuration.
    Configuration,
    /// Guest code faulted (trap, deadline, memory cap): the VM is failed, its failure policy
    /// applies.
    GuestFault,
    /// The VM failed earlier and runs no more callbacks.
    VmFailed,
    /// The host itself could not do its part (engine, instantiation).
    Host,
    /// The plugin and the host kept handing each other work without end.
    Runaway,
    /// The driver asked for something that does not exist or is out of order.
    Usage,
}

impl Error {
    /// True if this error means the guest faulted (the VM is now failed).
    pub fn is_guest_fault(&self) -> bool {
        self.kind() == ErrorKind::GuestFault
    }

    /// The guest fault this error is, or the one that failed the VM earlier.
    pub fn guest_fault(&self) -> Option<&GuestFault> {
        match self {
            Error::Guest(f) => Some(f),
            Error::VmFailed { cause } => Some(cause),
            _ => None,
        }
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use sluice_core::{Error, ErrorKind, Fault, GuestFault};
    /// assert_eq!(Error::NoAbiVersion.kind(), ErrorKind::Load);
    /// let deadline = GuestFault::new("proxy_on_tick", Fault::Deadline { deadline_ms: 100 });
    /// assert!(Error::from(deadline).is_guest_fault());
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotWasm { .. }
            | Error::InvalidText { .. }
            | Error::Compile { .. }
            | Error::NoAbiVersion
            | Error::NoAllocator
            | Error::NoMemory
            | Error::MissingImports(_)
            | Error::Link { .. }
            | Error::ExportSignature { .. }
            | Error::Io { .. }
            | Error::Build { .. } => ErrorKind::Load,
            Error::VmStartFailed { .. } | Error::ConfigureFailed { .. } => ErrorKind::Configuration,
            Error::Guest(_) => ErrorKind::GuestFault,
            Error::VmFailed { .. } => ErrorKind::VmFailed,
            Error::Host { .. } => ErrorKind::Host,
            Error::Runaway { .. } => ErrorKind::Runaway,
            Error::Usage(_) => ErrorKind::Usage,
        }
    }
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Result` the hot path returns is as large as its error: a fault's frames and
    /// messages stay behind a pointer.
    #[test]
    fn the_error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 56, "{} bytes", std::mem::size_of::<Error>());
    }

    #[test]
    fn a_report_walks_every_cause() {
        let fault = GuestFault::new("proxy_on_tick", Fault::Deadline { deadline_ms: 5 });
        let e = Error::VmFailed { cause: Arc::new(fault) };
        assert_eq!(
            Report(&e).to_string(),
            "the VM failed earlier and runs no more callbacks: \
             proxy_on_tick ran longer than the 5 ms callback deadline and was stopped"
        );
    }
}
