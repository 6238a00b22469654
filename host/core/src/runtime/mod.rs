//! The wasmtime side: engine settings, the module cache (in memory and on disk), the linker with every
//! import, and what a module declares (ABI version, imports, callbacks).

mod cache;
mod epoch;
mod module;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

pub use module::{AbiVersion, CompiledModule, ImportInfo, ImportSupport, ModuleInfo};

use crate::error::{Error, Result};
use crate::store::Host;

pub(crate) use epoch::{EpochTicker, EPOCH_TICK};

/// Linear memory kept resident (and reset with memset) when a pooled slot is reused.
const KEEP_RESIDENT: usize = 2 << 20;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The longest one callback may run before it is stopped (the VM then fails). Default 1 s.
    pub callback_deadline: Duration,
    /// The most linear memory one VM may have. Default 1 GiB (Envoy's limit).
    pub memory_limit: usize,
    /// Use the pooling allocator with room for this many live instances (fast instantiation,
    /// copy-on-write memory images). `None` allocates on demand.
    pub pooling_instances: Option<u32>,
    /// Keep compiled code here, keyed by module hash and engine, to skip compilation next time.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            callback_deadline: Duration::from_secs(1),
            memory_limit: 1 << 30,
            pooling_instances: None,
            cache_dir: None,
        }
    }
}

/// A wasmtime engine with the host's imports and a module cache. Share it (it is `Send + Sync`)
/// between all VMs of a process.
pub struct Runtime {
    engine: Engine,
    config: RuntimeConfig,
    linker: Mutex<Linker<Host>>,
    modules: Mutex<HashMap<[u8; 32], Arc<CompiledModule>>>,
    ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.config).finish()
    }
}

impl Runtime {
    /// Creates an engine. Fails only if the platform cannot satisfy the settings.
    ///
    /// # Errors
    /// [`Error::Host`] when the wasm engine, the hostcalls or the epoch thread cannot
    /// be set up.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let mut wc = Config::new();
        wc.epoch_interruption(true);
        wc.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        if let Some(n) = config.pooling_instances {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(n);
            pool.total_memories(n);
            pool.total_tables(n);
            pool.max_memory_size(config.memory_limit);
            // Reset reused slots by rewriting only the pages a guest touched (PAGEMAP_SCAN, Linux
            // 6.7+), keeping them resident: no page faults and no TLB shootdowns per instance.
            pool.pagemap_scan(wasmtime::Enabled::Auto);
            pool.linear_memory_keep_resident(KEEP_RESIDENT);
            pool.table_keep_resident(64 << 10);
            wc.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wc).map_err(|e| Error::host("cannot create the wasm engine", e))?;
        let mut linker = Linker::new(&engine);
        // Stubs for refused WASI calls are defined per module as they are met; a later module may
        // need the same name with its own signature.
        linker.allow_shadowing(true);
        crate::abi::add_to_linker(&mut linker).map_err(|e| Error::host("cannot define the hostcalls", e))?;
        let ticker = EpochTicker::start(engine.weak()).map_err(|e| Error::host("cannot start the epoch thread", e))?;
        Ok(Self { engine, config, linker: Mutex::new(linker), modules: Mutex::new(HashMap::new()), ticker })
    }

    /// The settings this runtime was made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or fetches from cache) a module and checks that it is a usable proxy-wasm module.
    ///
    /// # Errors
    /// The load errors ([`ErrorKind::Load`](crate::ErrorKind::Load)): bytes that are not WebAssembly, a
    /// module wasmtime refuses or cannot link, a callback export with the wrong signature, no ABI marker,
    /// allocator or memory.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<CompiledModule>> {
        let hash = cache::content_hash(bytes);
        if let Some(m) = self.modules.lock().unwrap_or_else(|e| e.into_inner()).get(&hash) {
            return Ok(m.clone());
        }
        let module = cache::compile(&self.engine, bytes, &hash, self.config.cache_dir.as_deref())?;
        let compiled = {
            let mut linker = self.linker.lock().unwrap_or_else(|e| e.into_inner());
            Arc::new(CompiledModule::link(module, &mut linker)?)
        };
        self.modules.lock().unwrap_or_else(|e| e.into_inner()).insert(hash, compiled.clone());
        Ok(compiled)
    }

    /// Compiles `bytes` and reports what the module declares, without requiring that the host can
    /// link it (for `sluice check`, which lists what is missing).
    ///
    /// # Errors
    /// [`Error::NotWasm`], [`Error::InvalidText`] or
    /// [`Error::Compile`] when the bytes are not a module wasmtime compiles.
    pub fn inspect(&self, bytes: &[u8]) -> Result<ModuleInfo> {
        let hash = cache::content_hash(bytes);
        let module = cache::compile(&self.engine, bytes, &hash, self.config.cache_dir.as_deref())?;
        ModuleInfo::read(&module)
    }

    /// Reads and loads a module file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; then as [`Runtime::load`].
    pub fn load_file(&self, path: impl AsRef<std::path::Path>) -> Result<Arc<CompiledModule>> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        self.load(&bytes)
    }

    /// Epoch ticks a callback may run.
    /// The epoch clock guest calls of this engine run under.
    pub(crate) fn ticker(&self) -> &Arc<EpochTicker> {
        &self.ticker
    }

    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.config.callback_deadline.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}
