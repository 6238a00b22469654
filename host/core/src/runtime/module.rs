//! A compiled, linked module and what it declares.

use wasmtime::{ExternType, InstancePre, Linker, Module, ModuleExport, Val};

use crate::abi::callbacks::{main_exports, Exports};

use crate::abi::wasi::{ENOSYS, WASI_FUNCTIONS, WASI_MODULES};
use crate::abi::ENV_FUNCTIONS;
use crate::error::{Error, Result};
use crate::store::Host;

/// The proxy-wasm ABI version a module declares with its marker export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AbiVersion {
    /// `proxy_abi_version_0_1_0`
    V0_1_0,
    /// `proxy_abi_version_0_2_0`
    V0_2_0,
    /// `proxy_abi_version_0_2_1`
    V0_2_1,
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AbiVersion::V0_1_0 => "0.1.0",
            AbiVersion::V0_2_0 => "0.2.0",
            AbiVersion::V0_2_1 => "0.2.1",
        })
    }
}

/// One import of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInfo {
    /// `env`, `wasi_snapshot_preview1`, …
    pub module: String,
    /// The function name.
    pub name: String,
    /// How the host serves it.
    pub support: ImportSupport,
}

/// How the host serves an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSupport {
    /// Implemented as Envoy does.
    Provided,
    /// A WASI call Envoy refuses: linked, returns ENOSYS.
    Refused,
    /// Unknown: the module cannot be instantiated.
    Missing,
}

/// What a module declares.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// ABI version from the marker export.
    pub abi: AbiVersion,
    /// Every function import.
    pub imports: Vec<ImportInfo>,
    /// The `proxy_on_*` callbacks it exports.
    pub callbacks: Vec<String>,
    /// `malloc` or `proxy_on_memory_allocate`.
    pub allocator: &'static str,
    /// `_initialize`, `_start`, or `None`.
    pub start: Option<&'static str>,
}

impl ModuleInfo {
    /// The imports the host does not provide, as `module.name`.
    pub fn missing_imports(&self) -> Vec<String> {
        self.imports
            .iter()
            .filter(|i| i.support == ImportSupport::Missing)
            .map(|i| format!("{}.{}", i.module, i.name))
            .collect()
    }

    pub(crate) fn read(module: &Module) -> Result<Self> {
        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        let has = |n: &str| exports.contains(&n);
        // Envoy takes the first marker it finds in the export section.
        let abi = exports
            .iter()
            .find_map(|e| match *e {
                "proxy_abi_version_0_1_0" => Some(AbiVersion::V0_1_0),
                "proxy_abi_version_0_2_0" => Some(AbiVersion::V0_2_0),
                "proxy_abi_version_0_2_1" => Some(AbiVersion::V0_2_1),
                _ => None,
            })
            .ok_or(Error::NoAbiVersion)?;
        let allocator = if has("malloc") {
            "malloc"
        } else if has("proxy_on_memory_allocate") {
            "proxy_on_memory_allocate"
        } else {
            return Err(Error::NoAllocator);
        };
        if !module.exports().any(|e| e.name() == "memory" && matches!(e.ty(), ExternType::Memory(_))) {
            return Err(Error::NoMemory);
        }
        let start = if has("_initialize") {
            Some("_initialize")
        } else if has("_start") {
            Some("_start")
        } else {
            None
        };
        let callbacks = exports
            .iter()
            .filter(|e| e.starts_with("proxy_on_") && **e != "proxy_on_memory_allocate")
            .map(|e| e.to_string())
            .collect();
        let imports = module
            .imports()
            .filter(|i| matches!(i.ty(), ExternType::Func(_)))
            .map(|i| {
                let support = if i.module() == "env" && ENV_FUNCTIONS.contains(&i.name()) {
                    ImportSupport::Provided
                } else if WASI_MODULES.contains(&i.module()) {
                    if WASI_FUNCTIONS.contains(&i.name()) {
                        ImportSupport::Provided
                    } else {
                        ImportSupport::Refused
                    }
                } else {
                    ImportSupport::Missing
                };
                ImportInfo { module: i.module().to_string(), name: i.name().to_string(), support }
            })
            .collect();
        Ok(Self { abi, imports, callbacks, allocator, start })
    }
}

/// A module compiled for the runtime's engine, checked and pre-linked: instantiating it is cheap.
pub struct CompiledModule {
    pub(crate) module: Module,
    pub(crate) pre: InstancePre<Host>,
    pub(crate) exports: Exports,
    pub(crate) mains: (Option<ModuleExport>, Option<ModuleExport>),
    pub(crate) allocator: Option<ModuleExport>,
    info: ModuleInfo,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule").field("info", &self.info).finish()
    }
}

impl CompiledModule {
    pub(crate) fn link(module: Module, linker: &mut Linker<Host>) -> Result<Self> {
        let info = ModuleInfo::read(&module)?;
        let missing = info.missing_imports();
        if !missing.is_empty() {
            return Err(Error::MissingImports(missing));
        }
        // WASI calls Envoy refuses still link, answering ENOSYS.
        for import in module.imports() {
            let ExternType::Func(ty) = import.ty() else {
                continue;
            };
            if WASI_MODULES.contains(&import.module()) && !WASI_FUNCTIONS.contains(&import.name()) {
                let results_are_errno = ty.results().len() == 1;
                linker
                    .func_new(import.module(), import.name(), ty.clone(), move |_, _, results| {
                        if results_are_errno {
                            results[0] = Val::I32(ENOSYS);
                        }
                        Ok(())
                    })
                    .map_err(|e| Error::Link {
                        import: Some(format!("{}.{}", import.module(), import.name())),
                        source: e.into(),
                    })?;
            }
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| Error::Link { import: None, source: e.into() })?;
        let exports = Exports::new(&module)?;
        let mains = main_exports(&module);
        let allocator = module.get_export_index(info.allocator);
        Ok(Self { module, pre, exports, mains, allocator, info })
    }

    /// What the module declares.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The wasmtime module.
    pub fn module(&self) -> &Module {
        &self.module
    }
}
