//! The proxy's own statistics under Envoy's names, so dashboards and alerts written for Envoy read
//! sluice: `http.<stat_prefix>.downstream_rq_*`, `cluster.<name>.upstream_rq_*`,
//! `listener.<address>.downstream_cx_*`, `server.*`. Each counter is an atomic the hot path bumps
//! without a lock or a lookup; the registry only lists them for `/stats`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A counter or a gauge, shared by every worker.
pub(crate) type Stat = Arc<AtomicU64>;

/// Whether a stat only grows (Prometheus `counter`) or goes up and down (`gauge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatKind {
    Counter,
    Gauge,
}

/// One registered stat: its Envoy name, its Prometheus name and labels, and its value.
#[derive(Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub prometheus: String,
    pub labels: Vec<(&'static str, String)>,
    pub kind: StatKind,
    pub value: Stat,
}

/// Every proxy stat, in registration order.
#[derive(Default, Debug)]
pub(crate) struct Registry {
    entries: Mutex<Vec<Entry>>,
}

impl Registry {
    /// The stat called `name`, registered on first use: two connection managers with one
    /// `stat_prefix` count into the same stats, as in Envoy.
    fn add(&self, kind: StatKind, name: String, prometheus: &str, labels: Vec<(&'static str, String)>) -> Stat {
        let Ok(mut entries) = self.entries.lock() else { return Stat::default() };
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            return e.value.clone();
        }
        let value = Stat::default();
        entries.push(Entry { name, prometheus: format!("envoy_{prometheus}"), labels, kind, value: value.clone() });
        value
    }

    /// Lists `value`, an atomic counted elsewhere (the VMs' own), as the stat `name`; a name listed
    /// already keeps its first atomic, which is returned.
    pub(crate) fn adopt(&self, kind: StatKind, name: String, prometheus: &str, value: Stat) -> Stat {
        let Ok(mut entries) = self.entries.lock() else { return value };
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            return e.value.clone();
        }
        entries.push(Entry {
            name,
            prometheus: format!("envoy_{prometheus}"),
            labels: Vec::new(),
            kind,
            value: value.clone(),
        });
        value
    }

    /// Calls `f` on every stat, sorted by name as Envoy lists them.
    pub(crate) fn each(&self, f: impl FnMut(&Entry)) {
        let Ok(entries) = self.entries.lock() else { return };
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.into_iter().for_each(f);
    }
}

/// Envoy's `wasm.*` stats for the plugins in `specs`, and the counters each plugin's VMs count
/// into (by plugin name): `wasm.<runtime>.created`/`.active` per runtime name, `wasm.<plugin>.
/// vm_reload*` per plugin, `wasm.wasm_vm_count`, and the `remote_load_*` ones, which stay 0
/// (sluice reads modules from files only).
pub(crate) fn wasm(
    r: &Registry,
    specs: &[&crate::config::PluginSpec],
) -> std::collections::HashMap<String, sluice_core::vm::VmStats> {
    let prom = |name: &str| name.replace(['.', '-'], "_");
    let mut runtimes = std::collections::BTreeMap::new();
    let mut by_plugin = std::collections::HashMap::new();
    for spec in specs {
        let (created, active) = runtimes
            .entry(spec.runtime.clone())
            .or_insert_with(|| {
                let name = |s: &str| format!("wasm.{}.{s}", spec.runtime);
                (
                    r.adopt(StatKind::Counter, name("created"), &prom(&name("created")), Stat::default()),
                    r.adopt(StatKind::Gauge, name("active"), &prom(&name("active")), Stat::default()),
                )
            })
            .clone();
        let plugin = |s: &str| {
            // An unnamed plugin's are `wasm.vm_reload`: Envoy leaves out empty name parts.
            let name = match spec.info.name.as_str() {
                "" => format!("wasm.{s}"),
                n => format!("wasm.{n}.{s}"),
            };
            r.adopt(StatKind::Counter, name.clone(), &prom(&name), Stat::default())
        };
        let stats = sluice_core::vm::VmStats {
            created,
            active,
            reload: plugin("vm_reload"),
            reload_success: plugin("vm_reload_success"),
            reload_failure: plugin("vm_reload_failure"),
            reload_backoff: plugin("vm_reload_backoff"),
        };
        by_plugin.insert(spec.info.name.clone(), stats);
    }
    if runtimes.is_empty() {
        return by_plugin;
    }
    // One runtime: its active VMs are all the VMs. (Several: the count is not kept.)
    if let [(_, (_, active))] = runtimes.iter().collect::<Vec<_>>().as_slice() {
        r.adopt(StatKind::Gauge, "wasm.wasm_vm_count".into(), "wasm_wasm_vm_count", active.clone());
    }
    for (kind, name) in [
        (StatKind::Gauge, "remote_load_cache_entries"),
        (StatKind::Counter, "remote_load_cache_hits"),
        (StatKind::Counter, "remote_load_cache_misses"),
        (StatKind::Counter, "remote_load_cache_negative_hits"),
        (StatKind::Counter, "remote_load_fetch_failures"),
        (StatKind::Counter, "remote_load_fetch_successes"),
    ] {
        r.adopt(kind, format!("wasm.{name}"), &format!("wasm_{name}"), Stat::default());
    }
    by_plugin
}

/// Counts by status class (1xx … 5xx).
#[derive(Debug)]
pub(crate) struct ByClass([Stat; 5]);

impl ByClass {
    fn new(r: &Registry, prefix: &str, prom: &str, labels: &[(&'static str, String)]) -> Self {
        Self(std::array::from_fn(|i| {
            // Envoy lists the class before the connection manager's prefix.
            let mut l = vec![("envoy_response_code_class", (i + 1).to_string())];
            l.extend_from_slice(labels);
            r.add(StatKind::Counter, format!("{prefix}_{}xx", i + 1), prom, l)
        }))
    }

    fn count(&self, status: u16) {
        if let Some(s) = self.0.get((status / 100).wrapping_sub(1) as usize) {
            s.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An HTTP connection manager's stats (`http.<stat_prefix>.`).
pub(crate) struct HttpStats {
    pub cx_total: Stat,
    pub cx_active: Stat,
    /// Connections ended for breaking the protocol (`downstream_cx_protocol_error`).
    pub cx_protocol_error: Stat,
    /// Connections by the protocol their codec speaks (`downstream_cx_http1_total`, …).
    pub cx_http1_total: Stat,
    pub cx_http1_active: Stat,
    pub cx_http2_total: Stat,
    pub cx_http2_active: Stat,
    pub rq_total: Stat,
    rq_completed: Stat,
    rq_class: ByClass,
}

impl HttpStats {
    pub(crate) fn new(r: &Registry, stat_prefix: &str) -> Self {
        let p = format!("http.{stat_prefix}.");
        let l = vec![("envoy_http_conn_manager_prefix", stat_prefix.to_string())];
        let c = |n: &str, kind| r.add(kind, format!("{p}{n}"), &format!("http_{n}"), l.clone());
        Self {
            cx_total: c("downstream_cx_total", StatKind::Counter),
            cx_active: c("downstream_cx_active", StatKind::Gauge),
            cx_protocol_error: c("downstream_cx_protocol_error", StatKind::Counter),
            cx_http1_total: c("downstream_cx_http1_total", StatKind::Counter),
            cx_http1_active: c("downstream_cx_http1_active", StatKind::Gauge),
            cx_http2_total: c("downstream_cx_http2_total", StatKind::Counter),
            cx_http2_active: c("downstream_cx_http2_active", StatKind::Gauge),
            rq_total: c("downstream_rq_total", StatKind::Counter),
            rq_completed: c("downstream_rq_completed", StatKind::Counter),
            rq_class: ByClass::new(r, &format!("{p}downstream_rq"), "http_downstream_rq_xx", &l),
        }
    }

    /// A response went out with `status`.
    pub(crate) fn responded(&self, status: u16) {
        self.rq_completed.fetch_add(1, Ordering::Relaxed);
        self.rq_class.count(status);
    }
}

/// A cluster's stats (`cluster.<name>.`). Envoy creates the per-class and per-code response
/// counters (`upstream_rq_2xx`, `upstream_rq_200`) when the first such response arrives, so they
/// are registered then; after that, counting is one atomic add.
#[derive(Debug)]
pub(crate) struct ClusterStats {
    pub rq_total: Stat,
    pub cx_total: Stat,
    name: String,
    registry: Arc<Registry>,
    by_class: [std::sync::OnceLock<Stat>; 5],
    by_code: Box<[std::sync::OnceLock<Stat>]>,
}

impl ClusterStats {
    pub(crate) fn new(r: &Arc<Registry>, name: &str) -> Self {
        let p = format!("cluster.{name}.");
        let l = vec![("envoy_cluster_name", name.to_string())];
        let c = |n: &str| r.add(StatKind::Counter, format!("{p}{n}"), &format!("cluster_{n}"), l.clone());
        Self {
            rq_total: c("upstream_rq_total"),
            cx_total: c("upstream_cx_total"),
            name: name.to_string(),
            registry: r.clone(),
            by_class: Default::default(),
            by_code: (100..600).map(|_| std::sync::OnceLock::new()).collect(),
        }
    }

    /// The upstream answered with `status`.
    pub(crate) fn answered(&self, status: u16) {
        let labels = |first: (&'static str, String)| vec![first, ("envoy_cluster_name", self.name.clone())];
        if let Some(slot) = self.by_class.get((status / 100).wrapping_sub(1) as usize) {
            let stat = slot.get_or_init(|| {
                self.registry.add(
                    StatKind::Counter,
                    format!("cluster.{}.upstream_rq_{}xx", self.name, status / 100),
                    "cluster_upstream_rq_xx",
                    labels(("envoy_response_code_class", (status / 100).to_string())),
                )
            });
            stat.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(slot) = self.by_code.get(status.wrapping_sub(100) as usize) {
            let stat = slot.get_or_init(|| {
                self.registry.add(
                    StatKind::Counter,
                    format!("cluster.{}.upstream_rq_{status}", self.name),
                    "cluster_upstream_rq",
                    labels(("envoy_response_code", status.to_string())),
                )
            });
            stat.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A listener's stats (`listener.<ip>_<port>.`).
pub(crate) struct ListenerStats {
    pub cx_total: Stat,
    pub cx_active: Stat,
}

impl ListenerStats {
    pub(crate) fn new(r: &Registry, addr: std::net::SocketAddr) -> Self {
        let a = format!("{}_{}", addr.ip(), addr.port());
        let l = vec![("envoy_listener_address", a.clone())];
        let c = |n: &str, kind| r.add(kind, format!("listener.{a}.{n}"), &format!("listener_{n}"), l.clone());
        Self {
            cx_total: c("downstream_cx_total", StatKind::Counter),
            cx_active: c("downstream_cx_active", StatKind::Gauge),
        }
    }
}

/// Counts one open connection while alive (a gauge goes back down when it closes).
pub(crate) struct Active(Vec<Stat>);

impl Active {
    pub(crate) fn new(gauges: &[&Stat]) -> Self {
        gauges.iter().for_each(|g| {
            g.fetch_add(1, Ordering::Relaxed);
        });
        Self(gauges.iter().map(|g| (*g).clone()).collect())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.iter().for_each(|g| {
            g.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
