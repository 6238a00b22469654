//! Errors the host reports, each phrased so the user knows what to fix.

use std::path::PathBuf;

/// Anything that can go wrong loading a module or running a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a WebAssembly module.
    #[error("not a WebAssembly module ({0})")]
    NotWasm(String),
    /// wasmtime refused the module.
    #[error("the module does not compile: {0}")]
    Compile(String),
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
    /// An import has the right name but the wrong signature.
    #[error("the module cannot be linked: {0}")]
    Link(String),
    /// A guest function trapped (panic, `unreachable`, out-of-bounds access, proc_exit, …).
    #[error("{function} failed: {message}")]
    Trap {
        /// The export the host called.
        function: String,
        /// What wasmtime reported, with the guest backtrace when there is one.
        message: String,
    },
    /// A guest function ran past the per-callback deadline.
    #[error("{function} ran longer than the {deadline_ms} ms callback deadline and was stopped")]
    Deadline {
        /// The export the host called.
        function: String,
        /// The deadline.
        deadline_ms: u128,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("{function} tried to grow memory past the {limit_mib} MiB limit and was stopped")]
    MemoryLimit {
        /// The export the host called.
        function: String,
        /// The cap.
        limit_mib: usize,
    },
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
    #[error("the VM failed earlier and runs no more callbacks ({0})")]
    VmFailed(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A wasmtime error outside a guest call (engine setup, instantiation).
    #[error("{0}")]
    Runtime(String),
    /// The driver was used wrongly (unknown context, step out of order).
    #[error("{0}")]
    Usage(String),
    /// A filter crate did not build for wasm32-wasip1 ([`harness::build_crate`](crate::harness::build_crate)).
    #[error("building the filter crate in {} for wasm32-wasip1 failed: {message}", .dir.display())]
    Build {
        /// The crate's directory.
        dir: PathBuf,
        /// Cargo's error.
        message: String,
    },
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
    /// The driver asked for something that does not exist or is out of order.
    Usage,
}

impl Error {
    /// True if this error means the guest faulted (the VM is now failed).
    pub fn is_guest_fault(&self) -> bool {
        self.kind() == ErrorKind::GuestFault
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use sluice_host::{Error, ErrorKind};
    /// assert_eq!(Error::NoAbiVersion.kind(), ErrorKind::Load);
    /// assert!(Error::Trap { function: "proxy_on_tick".into(), message: "unreachable".into() }.is_guest_fault());
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotWasm(_)
            | Error::Compile(_)
            | Error::NoAbiVersion
            | Error::NoAllocator
            | Error::NoMemory
            | Error::MissingImports(_)
            | Error::Link(_)
            | Error::Io { .. }
            | Error::Build { .. } => ErrorKind::Load,
            Error::VmStartFailed { .. } | Error::ConfigureFailed { .. } => ErrorKind::Configuration,
            Error::Trap { .. } | Error::Deadline { .. } | Error::MemoryLimit { .. } => ErrorKind::GuestFault,
            Error::VmFailed(_) => ErrorKind::VmFailed,
            Error::Runtime(_) => ErrorKind::Host,
            Error::Usage(_) => ErrorKind::Usage,
        }
    }
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
