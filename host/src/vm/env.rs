//! The proxy around the VMs: clock, log sink, known clusters, node identity and shared state.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::host::LogRecord;
use crate::abi::status::LogLevel;
use crate::state::SharedState;

/// Where guest log lines go.
pub trait LogSink: Send + Sync + std::fmt::Debug {
    /// One line from `proxy_log` or WASI stdout/stderr.
    fn log(&self, record: LogRecord);
}

/// Sends guest logs to `tracing` with Envoy's prefix (`wasm log <name> <root_id> <vm_id>: msg`).
#[derive(Debug, Default)]
pub struct TracingLogSink;

impl LogSink for TracingLogSink {
    fn log(&self, r: LogRecord) {
        let prefix: Vec<&str> =
            [r.plugin.as_str(), r.root_id.as_str(), r.vm_id.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
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
            LogLevel::Error | LogLevel::Critical => tracing::error!(target: "wasm", "{line}"),
        }
    }
}

/// Time as the guest sees it: wall clock for `proxy_get_current_time_nanoseconds` and WASI realtime,
/// and a monotonic clock. The harness uses a virtual one it advances by hand.
#[derive(Debug)]
pub enum Clock {
    /// The system clock.
    Real {
        /// Origin of the monotonic clock.
        start: Instant,
    },
    /// A clock that moves only when told to.
    Virtual {
        /// Wall-clock nanoseconds since the epoch.
        now_nanos: AtomicI64,
        /// Monotonic nanoseconds.
        mono_nanos: AtomicI64,
    },
}

/// Where monotonic time starts. Envoy serves a steady clock counted from boot, never near zero, and
/// Go's runtime stops with "nanotime returning zero" if it reads 0.
const MONOTONIC_ORIGIN: i64 = 1_000_000_000;

impl Clock {
    /// The system clock.
    pub fn real() -> Self {
        Clock::Real { start: Instant::now() }
    }

    /// A virtual clock starting at `unix_nanos`.
    pub fn virtual_at(unix_nanos: i64) -> Self {
        Clock::Virtual { now_nanos: AtomicI64::new(unix_nanos), mono_nanos: AtomicI64::new(MONOTONIC_ORIGIN) }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> i64 {
        match self {
            Clock::Real { .. } => {
                SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
            }
            Clock::Virtual { now_nanos, .. } => now_nanos.load(Ordering::Relaxed),
        }
    }

    /// Monotonic nanoseconds.
    pub fn monotonic_nanos(&self) -> i64 {
        match self {
            Clock::Real { start } => MONOTONIC_ORIGIN + start.elapsed().as_nanos() as i64,
            Clock::Virtual { mono_nanos, .. } => mono_nanos.load(Ordering::Relaxed),
        }
    }

    /// Moves a virtual clock forward; a real clock ignores it.
    pub fn advance(&self, nanos: i64) {
        if let Clock::Virtual { now_nanos, mono_nanos } = self {
            now_nanos.fetch_add(nanos, Ordering::Relaxed);
            mono_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
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
    pub clock: Clock,
    /// Cluster names callouts may target (unknown ones give BAD_ARGUMENT, as in Envoy).
    pub clusters: RwLock<BTreeSet<String>>,
    /// `xds.node.*`.
    pub node: NodeInfo,
    /// VM lifecycle counts.
    pub vm_stats: VmStats,
    log_level: AtomicI32,
}

impl ProxyEnv {
    /// A new environment.
    pub fn new(shared: Arc<SharedState>, log_sink: Arc<dyn LogSink>, clock: Clock) -> Self {
        Self {
            shared,
            log_sink,
            clock,
            clusters: RwLock::new(BTreeSet::new()),
            node: NodeInfo::default(),
            vm_stats: VmStats::default(),
            log_level: AtomicI32::new(LogLevel::Info.code()),
        }
    }

    /// The level `proxy_get_log_level` reports (Envoy: the `wasm` logger's level, default info).
    pub fn log_level(&self) -> LogLevel {
        LogLevel::from_code(self.log_level.load(Ordering::Relaxed)).unwrap_or(LogLevel::Info)
    }

    /// Sets the level `proxy_get_log_level` reports.
    pub fn set_log_level(&self, level: LogLevel) {
        self.log_level.store(level.code(), Ordering::Relaxed);
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
