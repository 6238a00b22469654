//! The proxy around the VMs: clock, log sink, known clusters, node identity and shared state.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::ids::ContextId;
use crate::state::SharedState;
use crate::wire::status::LogLevel;

/// Where guest log lines go.
pub trait LogSink: Send + Sync + std::fmt::Debug {
    /// One line from `proxy_log` or WASI stdout/stderr.
    fn log(&self, record: LogRecord);
}

/// Sends guest logs to `tracing` with Envoy's prefix: `wasm log <name> <root_id> <vm_id>: msg` from
/// a stream's context, `wasm log <root_id> <vm_id>: msg` from a root context (Envoy 1.40 leaves the
/// plugin's name out there). `critical` is an `error` event with a `critical` field, which Envoy's
/// log format in the binary shows as `critical`: `tracing` has no level above `error`.
#[derive(Debug, Default)]
pub struct TracingLogSink;

impl LogSink for TracingLogSink {
    fn log(&self, r: LogRecord) {
        let name = if r.from_root { "" } else { r.plugin.as_str() };
        let prefix: Vec<&str> =
            [name, r.root_id.as_str(), r.vm_id.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
        // Envoy leaves empty parts out, and the space with them: `wasm log: msg`.
        let line = if prefix.is_empty() {
            format!("wasm log: {}", r.message)
        } else {
            format!("wasm log {}: {}", prefix.join(" "), r.message)
        };
        match r.level {
            LogLevel::Trace => tracing::trace!(target: "wasm", "{line}"),
            LogLevel::Debug => tracing::debug!(target: "wasm", "{line}"),
            LogLevel::Info => tracing::info!(target: "wasm", "{line}"),
            LogLevel::Warn => tracing::warn!(target: "wasm", "{line}"),
            LogLevel::Error => tracing::error!(target: "wasm", "{line}"),
            LogLevel::Critical => tracing::error!(target: "wasm", critical = true, "{line}"),
        }
    }
}

/// One guest log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level the guest chose.
    pub level: LogLevel,
    /// The text, lossily decoded.
    pub message: String,
    /// The plugin name of the context that logged (empty at VM start).
    pub plugin: String,
    /// Its root id.
    pub root_id: String,
    /// Its vm id.
    pub vm_id: String,
    /// Whether a root context logged it (not a stream's).
    pub from_root: bool,
    /// The context id that logged.
    pub context_id: ContextId,
}

/// A [`LogSink`] that keeps every line for whoever wants to read them (and echoes them to
/// `tracing`): `sluice check` prints a plugin's lines, the harness hands them to a test.
#[derive(Debug, Default)]
pub struct LogCollector {
    records: std::sync::Mutex<Vec<LogRecord>>,
}

impl LogCollector {
    /// A copy of every line so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl LogSink for LogCollector {
    fn log(&self, record: LogRecord) {
        TracingLogSink.log(record.clone());
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }
}

/// Time as the guest sees it: wall clock for `proxy_get_current_time_nanoseconds` and WASI
/// realtime, and a monotonic clock for timers and deadlines. `sluice serve` reads the system's
/// ([`RealClock`]); the harness gives a virtual one it moves by hand.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> i64;

    /// Monotonic nanoseconds (never near zero: see [`MONOTONIC_ORIGIN`]).
    fn monotonic_nanos(&self) -> i64;
}

/// Where monotonic time starts. Envoy serves a steady clock counted from boot, never near zero, and
/// Go's runtime stops with "nanotime returning zero" if it reads 0.
pub const MONOTONIC_ORIGIN: i64 = 1_000_000_000;

/// The system clock.
#[derive(Debug)]
pub struct RealClock {
    /// Origin of the monotonic clock.
    start: Instant,
}

impl RealClock {
    /// The system clock, its monotonic part counted from now.
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }

    /// The system clock, ready to hand to a [`ProxyEnv`].
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(Self::new())
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now_nanos(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
    }

    fn monotonic_nanos(&self) -> i64 {
        MONOTONIC_ORIGIN + self.start.elapsed().as_nanos() as i64
    }
}

/// The node identity Envoy serves as `xds.node.*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    /// `xds.node.id`.
    pub id: String,
    /// `xds.node.cluster`.
    pub cluster: String,
    /// `xds.node.metadata` (a `Struct`, as written; `Null` when there is none).
    pub metadata: serde_yaml_ng::Value,
    /// `xds.node`: the `Node` message, serialized as protobuf.
    pub proto: Vec<u8>,
}

/// Counts of VM lifecycles, for the proxy's `wasm.*` stats. Each is a shared atomic that the
/// proxy also lists, so a VM's start or end costs one atomic add and no lookup.
#[derive(Debug, Clone, Default)]
pub struct VmStats {
    /// VMs created (`wasm.<runtime>.created`).
    pub created: Arc<AtomicU64>,
    /// VMs alive (`wasm.<runtime>.active`).
    pub active: Arc<AtomicU64>,
    /// `wasm.<plugin>.vm_reload`: listed, as Envoy lists it; Envoy 1.40 counts nothing in it
    /// when FAIL_RELOAD brings a fresh VM (observed), and neither does sluice.
    pub reload: Arc<AtomicU64>,
    /// … that started (`vm_reload_success`).
    pub reload_success: Arc<AtomicU64>,
    /// … that failed to start (`vm_reload_failure`).
    pub reload_failure: Arc<AtomicU64>,
    /// Streams that found the VM failed within the backoff, so no reload was tried
    /// (`vm_reload_backoff`).
    pub reload_backoff: Arc<AtomicU64>,
}

/// Everything outside the VMs that hostcalls consult. One per proxy process (or harness).
#[derive(Debug)]
pub struct ProxyEnv {
    /// Shared data, queues and stats.
    pub shared: Arc<SharedState>,
    /// Where guest logs go.
    pub log_sink: Arc<dyn LogSink>,
    /// Guest time.
    pub clock: Arc<dyn Clock>,
    /// Cluster names callouts may target (unknown ones give BAD_ARGUMENT, as in Envoy).
    pub clusters: RwLock<BTreeSet<String>>,
    /// `xds.node.*`.
    pub node: NodeInfo,
    /// VM lifecycle counts.
    pub vm_stats: VmStats,
    log_level: Arc<LogLevelSetting>,
}

/// The level of the proxy's `wasm` logger, which `proxy_get_log_level` answers: one setting that
/// every VM of a process can share, changed while they run (Envoy's `-l`, `--component-log-level`
/// and admin `/logging` change it there).
///
/// ```
/// use std::sync::Arc;
/// use sluice_core::vm::{LogLevelSetting, ProxyEnv};
/// use sluice_core::wire::status::LogLevel;
///
/// let level = Arc::new(LogLevelSetting::new(LogLevel::Info));
/// let mut env = ProxyEnv::new(Default::default(), Arc::new(sluice_core::vm::TracingLogSink), sluice_core::vm::RealClock::shared());
/// env.share_log_level(level.clone());
/// level.set(Some(LogLevel::Debug));
/// assert_eq!(env.log_level_code(), 1);
/// level.set(None); // off
/// assert_eq!(env.log_level_code(), 6);
/// ```
#[derive(Debug)]
pub struct LogLevelSetting(AtomicI32);

/// Envoy's number for a logger that is off (spdlog's), one above `critical`.
const OFF: i32 = 6;

impl LogLevelSetting {
    /// A setting at `level`.
    pub fn new(level: LogLevel) -> Self {
        Self(AtomicI32::new(level.code()))
    }

    /// Sets the level; `None` is off.
    pub fn set(&self, level: Option<LogLevel>) {
        self.0.store(level.map_or(OFF, LogLevel::code), Ordering::Relaxed);
    }

    /// The level as `proxy_get_log_level` answers it: 0 (trace) to 5 (critical), 6 when off.
    pub fn code(&self) -> i32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl ProxyEnv {
    /// A new environment.
    pub fn new(shared: Arc<SharedState>, log_sink: Arc<dyn LogSink>, clock: Arc<dyn Clock>) -> Self {
        Self {
            shared,
            log_sink,
            clock,
            clusters: RwLock::new(BTreeSet::new()),
            node: NodeInfo::default(),
            vm_stats: VmStats::default(),
            log_level: Arc::new(LogLevelSetting::new(LogLevel::Info)),
        }
    }

    /// What `proxy_get_log_level` answers (Envoy: the `wasm` logger's level, default info; see
    /// [`LogLevelSetting::code`]).
    pub fn log_level_code(&self) -> i32 {
        self.log_level.code()
    }

    /// Sets the level `proxy_get_log_level` reports (in every environment sharing the setting).
    pub fn set_log_level(&self, level: LogLevel) {
        self.log_level.set(Some(level));
    }

    /// Reads the level from `setting`, which the proxy changes as its log levels change.
    pub fn share_log_level(&mut self, setting: Arc<LogLevelSetting>) {
        self.log_level = setting;
    }

    /// True if `name` is a known cluster.
    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters.read().unwrap_or_else(|e| e.into_inner()).contains(name)
    }

    /// Makes `name` a known cluster.
    pub fn add_cluster(&self, name: impl Into<String>) {
        self.clusters.write().unwrap_or_else(|e| e.into_inner()).insert(name.into());
    }
}
