//! `sluice serve`: real traffic through the filters of an Envoy bootstrap, on tokio and hyper.
//!
//! One thread per worker, each with its own event loop and its own instance of every plugin (as
//! Envoy's workers); listeners are bound once per worker with `SO_REUSEPORT`, so the kernel spreads
//! connections. Shared data, queues and stats are process-wide, keyed by vm_id.

mod accept;
mod access_log;
mod admin;
mod body;
mod cluster;
mod config_dump;
mod conn;
mod error;
mod grpc_stream;
mod grpc_wire;
pub mod head_check;
mod http;
mod instance;
mod preface;
mod read_joined;
mod readiness;
mod reason;
mod reset;
mod route;
mod stats;
mod tcp;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ListenerKind, Plan, PluginSpec};
pub use error::ServeError;
use sluice_core::error::Result;
use sluice_core::plugin_vm::PluginVm;
use sluice_core::runtime::Runtime;
use sluice_core::state::SharedState;

/// What every worker shares.
pub(crate) struct Shared {
    clusters: BTreeMap<String, cluster::Cluster>,
    requests: AtomicU64,
    connections: AtomicU64,
    seed: u32,
    state: Arc<SharedState>,
    runtime: Arc<Runtime>,
    started: Instant,
    /// Cancelled once, when the server is told to stop; every accept loop and worker waits on it.
    stop: CancellationToken,
    node: sluice_core::vm::NodeInfo,
    /// The proxy's own stats, under Envoy's names.
    stats: Arc<stats::Registry>,
    /// Worker threads (`server.concurrency`).
    concurrency: usize,
    /// Each plugin's VM counters (`wasm.*` stats), by plugin name.
    vm_stats: std::collections::HashMap<String, sluice_core::vm::VmStats>,
    /// Per listener (in plan order): its access logs, opened once for every worker.
    access_logs: Vec<Vec<access_log::AccessLog>>,
    /// Per listener (in plan order): its stats, and its connection manager's for HTTP listeners.
    listener_stats: Vec<(stats::ListenerStats, Option<Arc<stats::HttpStats>>)>,
    /// The `wasm` logger's level, for `proxy_get_log_level`.
    wasm_log_level: Arc<sluice_core::vm::LogLevelSetting>,
}

impl Shared {
    /// Tells every accept loop to stop.
    fn stop(&self) {
        self.stop.cancel();
    }

    fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A downstream connection's id (`connection.id`), unique in the process as Envoy's are.
    fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// How to serve.
#[derive(Clone)]
pub struct ServeOptions {
    /// Worker threads.
    pub concurrency: usize,
    /// Reload a filter when its `.wasm` file changes: new streams use the new module, streams in
    /// flight finish on the old one.
    pub watch: bool,
    /// How long a stop waits for open connections ([`DEFAULT_DRAIN`] unless set).
    pub drain: std::time::Duration,
    /// The engine and module cache (shared with whatever already loaded the plan's modules).
    pub runtime: Arc<Runtime>,
    /// What admin `/logging` lists and changes (the process's log levels), if anything.
    pub log_control: Option<Arc<dyn LogControl>>,
    /// The process's shared data and queues (shared with the canaries that started the plugins
    /// first, as in Envoy, where a queue a canary registered keeps its id).
    pub state: Arc<SharedState>,
    /// The level of the `wasm` logger, which plugins read with `proxy_get_log_level` (shared with
    /// whatever changes the process's log levels).
    pub wasm_log_level: Arc<sluice_core::vm::LogLevelSetting>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("concurrency", &self.concurrency)
            .field("watch", &self.watch)
            .field("drain", &self.drain)
            .field("log_control", &self.log_control.is_some())
            .finish_non_exhaustive()
    }
}

/// The process's log levels, as admin `/logging` shows and sets them. The binary that installs the
/// log subscriber provides it; the server only calls it.
pub trait LogControl: Send + Sync {
    /// Envoy's listing: `active loggers:` then `  COMPONENT: LEVEL` per line.
    fn list(&self) -> String;
    /// Applies `COMPONENT=LEVEL` pairs (`level=LEVEL` sets every component); an unknown component
    /// or level changes nothing and says why.
    fn set(&self, pairs: &[(String, String)]) -> std::result::Result<(), String>;
}

/// A running server.
pub struct Server {
    /// Each listener's name and bound address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// The admin listener's address.
    pub admin: Option<SocketAddr>,
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Stops accepting and lets the workers finish.
    pub fn shutdown(&self) {
        self.shared.stop();
    }

    /// A function that stops the server from another thread.
    pub fn stopper(&self) -> impl FnOnce() + Send + 'static {
        let shared = self.shared.clone();
        move || shared.stop()
    }

    /// Blocks until every worker has stopped.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let io = |source| ServeError::Listen { addr, source };
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).map_err(io)?;
    socket.set_reuse_address(true).map_err(io)?;
    socket.set_reuse_port(true).map_err(io)?;
    socket.set_nonblocking(true).map_err(io)?;
    socket.bind(&addr.into()).map_err(io)?;
    socket.listen(1024).map_err(io)?;
    Ok(socket.into())
}

/// Starts a VM with one plugin for this process: it sees the real clock, the proxy's clusters,
/// node and shared state, and logs through `tracing` as Envoy's `wasm` logger.
fn filter_instance(shared: &Shared, plan: &Plan, spec: &PluginSpec) -> Result<PluginVm> {
    let module = shared.runtime.load(&spec.code)?;
    let mut env = plan.proxy_env(shared.state.clone(), &shared.wasm_log_level);
    env.vm_stats = shared.vm_stats.get(&spec.info.name).cloned().unwrap_or_default();
    PluginVm::start(&shared.runtime, module, Arc::new(env), plugin_info(spec), spec.vm.clone())
}

fn plugin_info(spec: &PluginSpec) -> sluice_core::vm::PluginInfo {
    let mut info = spec.info.clone();
    info.vm_id = spec.vm.vm_id.clone();
    info
}

/// A thread's VMs: plugins with the same `vm_id`, VM configuration and code share one, each with
/// its own root context, as Envoy's thread-local VMs do.
struct Vms<'a> {
    shared: &'a Arc<Shared>,
    plan: &'a Plan,
    all: Vec<Rc<instance::Instance>>,
}

impl Vms<'_> {
    /// The plugin of `spec`, in the VM it shares with earlier plugins or in a new one.
    fn filter(&mut self, spec: &PluginSpec) -> Result<instance::Filter, ServeError> {
        self.start(spec)
            .map_err(|source| ServeError::Plugin { plugin: spec.info.name.clone(), source: Box::new(source) })
    }

    fn start(&mut self, spec: &PluginSpec) -> Result<instance::Filter> {
        let module = self.shared.runtime.load(&spec.code)?;
        for i in &self.all {
            if i.peek(|p| p.shares_vm_with(&module, &spec.vm)) {
                let stats = self.shared.vm_stats.get(&spec.info.name).cloned().unwrap_or_default();
                let plugin = i.with_unstarted(|p| p.add_plugin(plugin_info(spec), stats))?;
                return Ok(instance::Filter { instance: i.clone(), plugin });
            }
        }
        let i = instance::Instance::new(filter_instance(self.shared, self.plan, spec)?, self.shared.clone());
        self.all.push(i.clone());
        Ok(instance::Filter { instance: i, plugin: sluice_core::plugin_vm::PluginId::FIRST })
    }
}

/// A listener's per-worker state.
#[derive(Clone)]
enum Listener {
    Http(Rc<http::ListenerState>),
    Tcp(Rc<tcp::TcpListenerState>),
}

impl Listener {
    /// Whether one of its filters runs in `vm`.
    fn uses(&self, vm: &Rc<instance::Instance>) -> bool {
        let same = |f: &instance::Filter| Rc::ptr_eq(&f.instance, vm);
        match self {
            Listener::Http(s) => s.filters.borrow().iter().any(same) || s.access_loggers.iter().any(same),
            Listener::Tcp(s) => s.filters.borrow().iter().any(same),
        }
    }
}

/// Local tasks need a local executor for HTTP/2 connections.
#[derive(Clone, Copy)]
pub(crate) struct LocalExec;

impl<F: std::future::Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// What a worker thread is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Serves the listeners.
    Worker,
    /// Envoy's main thread: every plugin has an instance there too (it starts, is configured and
    /// ticks, as in Envoy, where each plugin lives in every thread's local slot, the main thread's
    /// included), and singleton bootstrap services live only there. No listener is served.
    Main,
}

/// Sets up a thread's plugins and listeners, says so on `ready`, then serves until the stop.
///
/// # Errors
/// If a plugin will not start or a listener cannot be served (before `ready` is told), or the
/// runtime cannot be built.
fn worker(
    shared: Arc<Shared>,
    plan: Arc<Plan>,
    sockets: Vec<std::net::TcpListener>,
    role: Role,
    watch: bool,
    drain: std::time::Duration,
    ready: &std::sync::mpsc::Sender<Result<(), ServeError>>,
) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Thread { what: "a worker's event loop", source })?;
    let local = tokio::task::LocalSet::new();
    let mut states = Vec::new();
    let mut vms = Vms { shared: &shared, plan: &plan, all: Vec::new() };
    // Bootstrap services: one per thread, or only on the main thread when `singleton`.
    for spec in plan.services.iter().filter(|s| role == Role::Main || !s.singleton) {
        vms.filter(spec)?;
    }
    if role == Role::Main {
        for l in &plan.listeners {
            for spec in l.kind.filters().iter().chain(l.kind.access_loggers()) {
                vms.filter(spec)?;
            }
        }
    }
    for (index, (l, socket)) in plan.listeners.iter().zip(sockets).enumerate() {
        let filters = l.kind.filters().iter().map(|spec| vms.filter(spec)).collect::<Result<Vec<_>, _>>()?;
        let access_loggers =
            l.kind.access_loggers().iter().map(|spec| vms.filter(spec)).collect::<Result<Vec<_>, _>>()?;
        let state = match &l.kind {
            ListenerKind::Http(h) => Listener::Http(Rc::new(http::ListenerState {
                stats: shared.listener_stats[index].1.clone().expect("an HTTP listener has HTTP stats"),
                access_logs: shared.access_logs[index].clone(),
                plan: h.clone(),
                metadata: l.metadata.clone(),
                filters: std::cell::RefCell::new(filters),
                access_loggers,
                shared: shared.clone(),
            })),
            ListenerKind::Tcp { cluster, .. } => Listener::Tcp(Rc::new(tcp::TcpListenerState {
                filters: std::cell::RefCell::new(filters),
                cluster: cluster.clone(),
                metadata: l.metadata.clone(),
                access_logs: shared.access_logs[index].clone(),
                shared: shared.clone(),
            })),
        };
        states.push((state, socket, index));
    }
    let instances = Rc::new(std::cell::RefCell::new(vms.all));
    let listeners: Vec<Listener> = states.iter().map(|(l, _, _)| l.clone()).collect();
    // The sockets join this thread's runtime before the thread says it is ready: a listener it
    // cannot serve fails the start instead of going quiet.
    let states = {
        let _runtime = rt.enter();
        states
            .into_iter()
            .map(|(state, socket, index)| {
                let listener = tokio::net::TcpListener::from_std(socket)
                    .map_err(|source| ServeError::Serve { listener: plan.listeners[index].name.clone(), source })?;
                Ok((state, listener, index))
            })
            .collect::<Result<Vec<_>, ServeError>>()?
    };
    let _ = ready.send(Ok(()));
    local.block_on(&rt, async move {
        for i in instances.borrow().iter() {
            i.start();
        }
        let watcher = watch
            .then(|| tokio::task::spawn_local(watch::run(shared.clone(), plan.clone(), listeners, instances.clone())));
        // Every connection's task, so that a stop can wait for the open ones to finish.
        let connections = TaskTracker::new();
        let mut accepts = Vec::new();
        for (state, listener, index) in states {
            let (shared, connections) = (shared.clone(), connections.clone());
            accepts.push(tokio::task::spawn_local(conn::serve_listener(state, listener, index, shared, connections)));
        }
        for a in accepts {
            let _ = a.await;
        }
        // A server without listeners (only bootstrap services, timers) serves until told to stop,
        // as Envoy does.
        shared.stop.cancelled().await;
        // Graceful stop: no new connections; let the open ones finish (up to the drain time).
        connections.close();
        let _ = tokio::time::timeout(drain, connections.wait()).await;
        if let Some(w) = watcher {
            w.abort();
        }
        // Envoy's exit: every live VM's plugins get `on_done` (and `on_delete` when done).
        for i in instances.borrow().iter() {
            i.with(PluginVm::shutdown_all);
        }
    });
    Ok(())
}

/// How long a stopping worker waits for open connections unless told otherwise.
pub const DEFAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds every listener and starts the workers and the admin listener.
///
/// # Errors
/// A listener address that cannot be bound, an access log that cannot be opened, a thread that
/// cannot start, a plugin that fails to start in a worker: the first one met.
pub fn start(plan: Plan, options: ServeOptions) -> Result<Server, ServeError> {
    let runtime = options.runtime.clone();
    let mut seed = [0u8; 4];
    let _ = getrandom::fill(&mut seed);
    // Bind once here to learn ports chosen by the system, then once more per further worker.
    let first: Vec<std::net::TcpListener> = plan.listeners.iter().map(|l| bind(l.address)).collect::<Result<_, _>>()?;
    let addrs: Vec<SocketAddr> = first
        .iter()
        .zip(&plan.listeners)
        .map(|(s, l)| s.local_addr().map_err(|source| ServeError::Serve { listener: l.name.clone(), source }))
        .collect::<Result<_, _>>()?;
    let registry = Arc::new(stats::Registry::default());
    let listener_stats = plan
        .listeners
        .iter()
        .zip(&addrs)
        .map(|(l, a)| {
            let http = match &l.kind {
                ListenerKind::Http(h) => Some(Arc::new(stats::HttpStats::new(&registry, &h.stat_prefix))),
                ListenerKind::Tcp { .. } => None,
            };
            (stats::ListenerStats::new(&registry, *a), http)
        })
        .collect();
    let access_logs = plan
        .listeners
        .iter()
        .map(|l| {
            l.kind
                .access_logs()
                .iter()
                .map(|p| {
                    access_log::AccessLog::open(p)
                        .map_err(|source| ServeError::AccessLog { path: p.path.clone(), source })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let specs: Vec<&PluginSpec> = plan.plugins().map(|(_, spec)| spec).collect();
    let vm_stats = stats::wasm(&registry, &specs);
    let shared = Arc::new(Shared {
        clusters: plan.clusters.iter().map(|(k, v)| (k.clone(), cluster::Cluster::new(v.clone(), &registry))).collect(),
        requests: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        seed: u32::from_le_bytes(seed),
        state: options.state.clone(),
        wasm_log_level: options.wasm_log_level.clone(),
        runtime,
        started: Instant::now(),
        stop: CancellationToken::new(),
        node: plan.node.clone(),
        stats: registry,
        listener_stats,
        access_logs,
        concurrency: options.concurrency.max(1),
        vm_stats,
    });
    let plan = Arc::new(plan);
    let mut threads = Vec::new();
    let mut first = Some(first);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let workers = options.concurrency.max(1);
    for n in 0..=workers {
        let role = if n == workers { Role::Main } else { Role::Worker };
        let sockets = match (role, first.take()) {
            (Role::Main, _) => Vec::new(),
            (Role::Worker, Some(s)) => s,
            (Role::Worker, None) => addrs.iter().map(|a| bind(*a)).collect::<Result<_, _>>()?,
        };
        let (shared, plan, ready, watch) = (shared.clone(), plan.clone(), ready_tx.clone(), options.watch);
        let drain = options.drain;
        let name = if role == Role::Main { "sluice-main".to_string() } else { format!("sluice-worker-{n}") };
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                readiness::reporting(&ready, |ready| worker(shared, plan, sockets, role, watch, drain, ready))
            })
            .map_err(|source| ServeError::Thread { what: "a worker thread", source })?;
        threads.push(t);
    }
    drop(ready_tx);
    // Every thread (the workers and the main one) says it is ready, or why it is not.
    if let Err(e) = readiness::wait(&ready_rx, workers + 1) {
        shared.stop();
        return Err(e);
    }
    let listeners: Vec<(String, SocketAddr)> = plan.listeners.iter().map(|l| l.name.clone()).zip(addrs).collect();
    let admin = match plan.admin {
        Some(addr) => {
            let topology = admin::Topology {
                listeners: listeners.clone(),
                clusters: plan.clusters.values().map(|c| (c.name.clone(), c.endpoints.clone())).collect(),
                config_dump: config_dump::ConfigDump::new(&plan.bootstrap, &shared.node, std::time::SystemTime::now()),
            };
            Some(admin::start(addr, shared.clone(), topology, options.log_control.clone())?)
        }
        None => None,
    };
    Ok(Server { listeners, admin, shared, threads })
}
