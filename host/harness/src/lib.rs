//! The in-process harness: a stateful Envoy emulator over the real `.wasm`, for `cargo test`.
//!
//! Load a module with its configuration, then drive streams and inspect what Envoy would have done:
//! the status of each step, headers and bodies after the filter's changes, local replies, pending
//! callouts (which you answer), logs, metrics, shared data and queues. Time is virtual: ticks and
//! callout timeouts fire when you [`Harness::advance_time`].
//!
//! ```no_run
//! use sluice_harness::{Harness, CalloutReply};
//! use sluice_core::stream::FilterStatus;
//!
//! let mut h = Harness::builder().module_file("auth.wasm").cluster("auth").build()?;
//! let mut s = h.http_stream();
//! let step = s.request_headers([(":method", "GET"), (":path", "/"), (":authority", "x")], true)?;
//! assert_eq!(step, FilterStatus::StopAllIterationAndWatermark); // waiting on the auth callout
//! let id = s.id();
//! let token = h.http_callouts()[0].token;
//! h.respond_http_callout(token, CalloutReply::new(200))?;
//! assert!(h.http(id).upstream_request().headers_forwarded);
//! # Ok::<(), sluice_core::Error>(())
//! ```

mod build;
mod clock;
mod exchange;
mod filter;
mod http;
mod ids;
mod tcp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

// Keys are small integers the harness hands out.
use rustc_hash::FxHashMap as HashMap;
use std::time::Duration;

pub use build::{build_crate, WASM_TARGET};
pub use clock::VirtualClock;
pub use exchange::{Exchange, Request, Response, BODY_CHUNK, UPSTREAM_ADDRESS};
pub use filter::Filter;
pub use http::HttpStream;
pub use ids::StreamId;
pub use sluice_core::plugin_vm::{CalloutReply, Message};
use sluice_core::vm::Clock as _;
pub use sluice_core::vm::LogCollector;
pub use sluice_core::vm::{CalloutToken, ContextId};
pub use tcp::TcpStream;

use sluice_core::chain::{HttpChain, TcpChain};
use sluice_core::error::{Error, Result};
use sluice_core::plugin_vm::{Effect, Forwarded, PluginId, PluginVm, DEFAULT_BUFFER_LIMIT};
use sluice_core::runtime::{Runtime, RuntimeConfig};
use sluice_core::state::{MetricValue, SharedState};
use sluice_core::stream::{HttpStreamState, PropertyValue, StreamInfo};
use sluice_core::vm::VmStats;
use sluice_core::vm::{FailurePolicy, GrpcCallout, HttpCallout, LogRecord, NodeInfo, ProxyEnv, Vm};
use sluice_core::wire::status::LogLevel;

/// Default start of the virtual clock: 2026-01-01T00:00:00Z.
const EPOCH_2026_NANOS: i64 = 1_767_225_600_000_000_000;

use filter::Source;

type CalloutHandler = Box<dyn FnMut(&HttpCallout) -> Option<CalloutReply> + Send>;

/// Builds a [`Harness`]: the module, its configuration and the world around it.
pub struct HarnessBuilder {
    /// The first filter (its module is set by `module_*`).
    first: Filter,
    runtime: RuntimeConfig,
    shared_runtime: Option<Arc<Runtime>>,
    shared_state: Option<Arc<SharedState>>,
    clusters: Vec<String>,
    properties: BTreeMap<Vec<u8>, PropertyValue>,
    log_level: LogLevel,
    start_nanos: i64,
    handler: Option<CalloutHandler>,
    node: NodeInfo,
    vm_stats: VmStats,
    log_sink: Option<Arc<dyn sluice_core::vm::LogSink>>,
    buffer_limit: usize,
    /// The filters after the first, in order.
    more: Vec<Filter>,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        Self {
            first: Filter::without_module(),
            runtime: RuntimeConfig::default(),
            shared_runtime: None,
            shared_state: None,
            clusters: Vec::new(),
            properties: BTreeMap::new(),
            log_level: LogLevel::Trace,
            start_nanos: EPOCH_2026_NANOS,
            handler: None,
            node: NodeInfo::default(),
            vm_stats: VmStats::default(),
            log_sink: None,
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            more: Vec::new(),
        }
    }
}

impl HarnessBuilder {
    /// The module's bytes (binary, or WebAssembly text).
    pub fn module_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.first.source = Some(Source::Bytes(bytes.into()));
        self
    }

    /// A `.wasm` file.
    pub fn module_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.first.source = Some(Source::File(path.into()));
        self
    }

    /// The module of the filter crate in `dir`, built for `wasm32-wasip1` when [`build`](Self::build)
    /// runs (see [`build_crate`]): a filter's own test names its crate, not a file, and never runs
    /// a stale module.
    ///
    /// ```no_run
    /// let h = sluice_harness::Harness::builder().module_crate(env!("CARGO_MANIFEST_DIR")).build()?;
    /// # Ok::<(), sluice_core::Error>(())
    /// ```
    pub fn module_crate(mut self, dir: impl Into<PathBuf>) -> Self {
        self.first.source = Some(Source::Crate(dir.into()));
        self
    }

    /// The plugin configuration (`PluginConfig.configuration`), read in `on_configure`.
    pub fn plugin_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.first = self.first.plugin_config(config);
        self
    }

    /// The VM configuration, read in `on_vm_start`.
    pub fn vm_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.first = self.first.vm_config(config);
        self
    }

    /// Plugin `name` (default `plugin`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.first = self.first.name(name);
        self
    }

    /// Plugin `root_id`.
    pub fn root_id(mut self, root_id: impl Into<String>) -> Self {
        self.first = self.first.root_id(root_id);
        self
    }

    /// `vm_id` (scopes shared data and queues).
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.first = self.first.vm_id(vm_id);
        self
    }

    /// An environment variable served to WASI `environ_get`.
    pub fn env_var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.first = self.first.env_var(key, value);
        self
    }

    /// What happens after the VM fails.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.first = self.first.failure_policy(policy);
        self
    }

    /// `allow_on_headers_stop_iteration`.
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.first = self.first.allow_on_headers_stop_iteration(allow);
        self
    }

    /// Makes `name` a cluster callouts may target (others give BAD_ARGUMENT, as in Envoy).
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.clusters.push(name.into());
        self
    }

    /// Sends guest logs here instead of keeping them ([`Harness::logs`] is then empty): for
    /// long-running drivers.
    pub fn log_sink(mut self, sink: Arc<dyn sluice_core::vm::LogSink>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// Starts the virtual clock at this wall-clock time (nanoseconds since the epoch).
    pub fn start_time_nanos(mut self, nanos: i64) -> Self {
        self.start_nanos = nanos;
        self
    }

    /// Presets a property for every stream, e.g. `property(&["source", "address"], "10.0.0.1:1234")`.
    pub fn property(mut self, path: &[&str], value: impl Into<PropertyValue>) -> Self {
        self.properties.insert(path.join("\0").into_bytes(), value.into());
        self
    }

    /// Where VM starts, ends and reloads are counted (the proxy's `wasm.*` stats).
    pub fn vm_stats(mut self, stats: VmStats) -> Self {
        self.vm_stats = stats;
        self
    }

    /// `xds.node.id`.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node.id = id.into();
        self
    }

    /// The whole node identity (`xds.node`, `xds.node.id`, `.cluster`, `.metadata`).
    pub fn node(mut self, node: NodeInfo) -> Self {
        self.node = node;
        self
    }

    /// The level `proxy_get_log_level` reports (default trace, so every log line is kept).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// The listener's `per_connection_buffer_limit_bytes` (default 1 MiB): a filter buffering more
    /// of a request gets Envoy's 413, of a response a 500.
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// The per-callback deadline (default 1 s).
    pub fn callback_deadline(mut self, deadline: Duration) -> Self {
        self.runtime.callback_deadline = deadline;
        self
    }

    /// The memory cap of the VM (default 1 GiB).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.runtime.memory_limit = bytes;
        self
    }

    /// Share a runtime (engine and compiled-module cache) between harnesses.
    pub fn runtime(mut self, runtime: Arc<Runtime>) -> Self {
        self.shared_runtime = Some(runtime);
        self
    }

    /// Share shared data, queues and metrics with other harnesses (as VMs of one Envoy do).
    pub fn shared_state(mut self, state: Arc<SharedState>) -> Self {
        self.shared_state = Some(state);
        self
    }

    /// Adds a filter after the ones before it: the harness then drives a chain, requests through
    /// the filters in order and responses in reverse, as Envoy's filter manager does (the
    /// builder's own module is the first filter). Each filter runs in the VM it shares with
    /// earlier ones (same module, `vm_id` and VM configuration) or in a VM of its own; every VM
    /// shares this harness's clock, clusters, logs and shared state.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.more.push(filter);
        self
    }

    /// Answers HTTP callouts as they are made; return `None` to leave one pending.
    pub fn on_http_callout(mut self, f: impl FnMut(&HttpCallout) -> Option<CalloutReply> + Send + 'static) -> Self {
        self.handler = Some(Box::new(f));
        self
    }

    /// Starts the VM and the plugin (`on_vm_start`, `on_configure`); fails as Envoy would refuse the
    /// configuration.
    ///
    /// # Errors
    /// The load errors ([`ErrorKind::Load`](sluice_core::ErrorKind::Load)): bytes that are not WebAssembly, a
    /// module wasmtime refuses or cannot link, a callback export with the wrong signature, no ABI marker,
    /// allocator or memory. Also [`Error::VmStartFailed`] or
    /// [`Error::ConfigureFailed`] when a plugin refuses its configuration, a
    /// guest fault while starting, and [`Error::Usage`] when no module was given.
    pub fn build(self) -> Result<Harness> {
        if self.first.source.is_none() {
            return Err(Error::Usage("no module: call module_file, module_crate or module_bytes".into()));
        }
        let runtime = match &self.shared_runtime {
            Some(r) => r.clone(),
            None => Arc::new(Runtime::new(self.runtime.clone())?),
        };
        let load = |source: &Option<Source>| match source {
            Some(Source::Bytes(b)) => runtime.load(b),
            Some(Source::File(p)) => runtime.load_file(p),
            Some(Source::Crate(dir)) => runtime.load_file(build_crate(dir)?),
            None => Err(Error::Usage("a filter has no module".into())),
        };
        let logs = Arc::new(LogCollector::default());
        let shared = self.shared_state.clone().unwrap_or_default();
        let sink: Arc<dyn sluice_core::vm::LogSink> = match &self.log_sink {
            Some(s) => s.clone(),
            None => logs.clone(),
        };
        let clock = Arc::new(VirtualClock::at(self.start_nanos));
        let mut env = ProxyEnv::new(shared, sink, clock.clone());
        env.node = self.node.clone();
        env.vm_stats = self.vm_stats.clone();
        env.set_log_level(self.log_level);
        for c in &self.clusters {
            env.add_cluster(c.clone());
        }
        let env = Arc::new(env);
        let mut vms: Vec<PluginVm> = Vec::new();
        let mut filters = Vec::new();
        for f in std::iter::once(self.first).chain(self.more) {
            let module = load(&f.source)?;
            let mut plugin = f.plugin;
            if plugin.vm_id.is_empty() {
                plugin.vm_id = f.vm.vm_id.clone();
            }
            match vms.iter().position(|vm| vm.shares_vm_with(&module, &f.vm)) {
                Some(k) => {
                    let id = vms[k].add_plugin(plugin, env.vm_stats.clone())?;
                    filters.push((k, id));
                }
                None => {
                    vms.push(PluginVm::start(&runtime, module, env.clone(), plugin, f.vm)?);
                    filters.push((vms.len() - 1, PluginId::FIRST));
                }
            }
        }
        let mut h = Harness {
            vms,
            filters,
            streams: HashMap::default(),
            connections: HashMap::default(),
            next_stream: 0,
            clock,
            logs,
            properties: self.properties,
            handler: self.handler,
            buffer_limit: self.buffer_limit,
            next_connection_id: 1,
        };
        h.settle()?;
        Ok(h)
    }
}

/// A plugin (or a chain of them, see [`HarnessBuilder::filter`]) with a virtual clock and
/// in-memory streams: the test driver of the core ([`chain`](sluice_core::chain) over
/// [`plugin_vm`](sluice_core::plugin_vm)).
pub struct Harness {
    /// The VMs; the first filter's is the first.
    vms: Vec<PluginVm>,
    /// The chain's filters in order: their VM (an index into `vms`) and plugin.
    filters: Vec<(usize, PluginId)>,
    streams: HashMap<StreamId, ChainStream>,
    connections: HashMap<StreamId, ChainConnection>,
    next_stream: u32,
    /// The clock every VM of the harness reads.
    clock: Arc<VirtualClock>,
    logs: Arc<LogCollector>,
    properties: BTreeMap<Vec<u8>, PropertyValue>,
    handler: Option<CalloutHandler>,
    buffer_limit: usize,
    next_connection_id: u64,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("vms", &self.vms).finish_non_exhaustive()
    }
}

/// An HTTP stream through the harness's chain, and what left it at each end.
struct ChainStream {
    chain: HttpChain<usize>,
    /// What reached the upstream.
    upstream: Message,
    /// What reached the client.
    downstream: Message,
}

/// A TCP connection through the harness's chain, and the bytes that left it, not taken yet:
/// [to the upstream, to the client].
struct ChainConnection {
    chain: TcpChain<usize>,
    sent: [Vec<u8>; 2],
}

/// Adds what left a chain to what had left it before.
fn absorb(m: &mut Message, f: Forwarded) {
    if let Some(h) = f.headers {
        m.headers = h;
        m.headers_forwarded = true;
    }
    m.body.extend_from_slice(&f.body);
    if let Some(t) = f.trailers {
        m.trailers = t;
    }
    m.end_of_stream |= f.end_of_stream;
}

impl Harness {
    /// Starts building a harness.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// The first filter's VM and its plugins, for what the harness has no shortcut for.
    pub fn core(&mut self) -> &mut PluginVm {
        &mut self.vms[0]
    }

    /// The first filter's VM, for low-level access.
    pub fn vm(&mut self) -> &mut Vm {
        self.vms[0].vm()
    }

    /// Calls any export of the module on context `context_id`, then does what Envoy does after a
    /// callback (deferred actions, queue events, callouts). A guest fault comes back as itself
    /// (see [`Error::is_guest_fault`]), after the failure policy has run.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    pub fn invoke(
        &mut self,
        name: &str,
        context_id: ContextId,
        params: &[wasmtime::Val],
    ) -> Result<Vec<wasmtime::Val>> {
        let r = self.vms[0].invoke(name, context_id, params);
        self.settle()?;
        r
    }

    /// The root context id of the (first) plugin.
    pub fn root_id(&self) -> ContextId {
        self.vms[0].root_id(PluginId::FIRST)
    }

    /// The environment (clusters, clock, shared state).
    pub fn env(&self) -> &Arc<ProxyEnv> {
        self.vms[0].env()
    }

    /// Every log line so far (guest `proxy_log`, WASI stdout/stderr).
    pub fn logs(&self) -> Vec<LogRecord> {
        self.logs.records()
    }

    /// The messages logged at `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<String> {
        self.logs.records().into_iter().filter(|r| r.level == level).map(|r| r.message).collect()
    }

    /// A plugin-defined metric by the name the plugin gave it (without `wasmcustom.`).
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.env().shared.metrics.get(&format!("wasmcustom.{name}"))
    }

    fn vm_id(&self) -> &str {
        &self.vms[0].info(PluginId::FIRST).vm_id
    }

    /// A shared-data entry of this plugin's vm_id: value and CAS.
    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<(Vec<u8>, u32)> {
        self.env().shared.shared_data.get(self.vm_id(), key.as_ref())
    }

    /// Sets a shared-data entry as another VM would.
    pub fn set_shared_data(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let _ = self.env().shared.shared_data.set(self.vm_id(), key.as_ref(), value.as_ref(), 0);
    }

    /// Items waiting in a queue of this vm_id.
    pub fn queue_len(&self, name: &str) -> Option<usize> {
        self.env().shared.queues.len(self.vm_id(), name)
    }

    /// Enqueues an item as another VM would; the registrant is notified.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn enqueue(&mut self, name: &str, item: impl AsRef<[u8]>) -> Result<()> {
        let id = self
            .env()
            .shared
            .queues
            .resolve(self.vm_id(), name)
            .ok_or_else(|| Error::Usage(format!("no queue named `{name}` in vm `{}`", self.vm_id())))?;
        self.env().shared.queues.enqueue(id, item.as_ref());
        self.deliver_pending()
    }

    /// Delivers what other VMs sent meanwhile (queue events) to every VM.
    fn deliver_pending(&mut self) -> Result<()> {
        for vm in &mut self.vms {
            vm.deliver_pending()?;
        }
        self.settle()
    }

    /// The tick period the (first) plugin set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.vms[0].tick_period(PluginId::FIRST)
    }

    /// Why the first filter's VM failed, in order (the first 16 failures and the latest 16; see
    /// [`PluginVm::vm_failures`]).
    pub fn vm_failures(&self) -> &[sluice_core::GuestFault] {
        self.vms[0].vm_failures()
    }

    /// Virtual wall-clock time, in nanoseconds since the epoch.
    pub fn now_nanos(&self) -> i64 {
        self.env().clock.now_nanos()
    }

    /// Moves the virtual clock forward, firing ticks and callout timeouts in time order.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn advance_time(&mut self, by: Duration) -> Result<()> {
        // Deliver what other VMs sent meanwhile (queue events) before time moves.
        self.deliver_pending()?;
        let clock = self.clock.clone();
        let end = clock.monotonic_nanos() + by.as_nanos() as i64;
        let next = |vms: &[PluginVm]| vms.iter().filter_map(|vm| vm.next_deadline()).min();
        while let Some(at) = next(&self.vms).filter(|at| *at <= end) {
            clock.advance(at - clock.monotonic_nanos());
            for vm in &mut self.vms {
                vm.fire_due()?;
            }
            self.settle()?;
        }
        clock.advance(end - clock.monotonic_nanos());
        Ok(())
    }

    /// HTTP callouts waiting for an answer, the first filter's VM's first.
    pub fn http_callouts(&self) -> Vec<HttpCallout> {
        self.vms.iter().flat_map(|vm| vm.http_callouts().cloned()).collect()
    }

    /// gRPC calls and streams the plugins opened and not yet closed, the first filter's VM's
    /// first (answer them with [`Harness::respond_grpc_call`] and the `grpc_stream_*` methods).
    pub fn grpc_callouts(&self) -> Vec<GrpcCallout> {
        self.vms.iter().flat_map(|vm| vm.grpc_callouts().iter().cloned()).collect()
    }

    /// The VM whose callout (HTTP or gRPC) has this token. Each VM numbers its own callouts, so
    /// VMs of a chain may both have one: the first filter's VM's is meant then.
    fn vm_of_callout(&self, token: CalloutToken, grpc: bool) -> usize {
        self.vms
            .iter()
            .position(|vm| match grpc {
                false => vm.http_callouts().any(|c| c.token == token),
                true => vm.grpc_callouts().iter().any(|c| c.token == token),
            })
            .unwrap_or(0)
    }

    /// Answers a pending HTTP callout (a response, a timeout's 504, a connect failure's 503, or a reset).
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn respond_http_callout(&mut self, token: CalloutToken, reply: CalloutReply) -> Result<()> {
        let k = self.vm_of_callout(token, false);
        let r = self.vms[k].answer_http_callout(token, reply);
        self.settle()?;
        r
    }

    /// Answers a unary gRPC call: `Ok(message)` is delivered to `proxy_on_grpc_receive`; `Err((status,
    /// message))` to `proxy_on_grpc_close` with the message readable through `proxy_get_status`.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn respond_grpc_call(
        &mut self,
        token: CalloutToken,
        reply: std::result::Result<Vec<u8>, (u32, String)>,
    ) -> Result<()> {
        let k = self.vm_of_callout(token, true);
        let r = self.vms[k].respond_grpc_call(token, reply);
        self.settle()?;
        r
    }

    /// Delivers initial metadata on a gRPC stream.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn grpc_stream_initial_metadata(
        &mut self,
        token: CalloutToken,
        metadata: sluice_core::stream::HeaderMap,
    ) -> Result<()> {
        let k = self.vm_of_callout(token, true);
        let r = self.vms[k].grpc_stream_initial_metadata(token, metadata);
        self.settle()?;
        r
    }

    /// Delivers one message on a gRPC stream.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn grpc_stream_message(&mut self, token: CalloutToken, message: impl Into<Vec<u8>>) -> Result<()> {
        let k = self.vm_of_callout(token, true);
        let r = self.vms[k].grpc_stream_message(token, message);
        self.settle()?;
        r
    }

    /// Delivers trailing metadata, then closes the stream with `status` and `message`.
    pub fn close_grpc_stream(
        &mut self,
        token: CalloutToken,
        trailers: sluice_core::stream::HeaderMap,
        status: u32,
        message: &str,
    ) -> Result<()> {
        let k = self.vm_of_callout(token, true);
        let r = self.vms[k].close_grpc_stream(token, trailers, status, message);
        self.settle()?;
        r
    }

    /// Hands a finished stream to the plugin as Envoy's wasm access logger does:
    /// `proxy_on_log` on the root context, with the stream's headers and facts readable. A VM that
    /// failed logs nothing (FAIL_RELOAD brings a fresh one first).
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn log_stream(&mut self, stream: HttpStreamState) -> Result<()> {
        let r = self.vms[0].log_stream(PluginId::FIRST, stream);
        self.settle()?;
        r
    }

    /// Calls the plugin's `proxy_on_foreign_function` with `function_id` and `args` readable as
    /// its arguments, as a host extension would (Envoy 1.40 never calls it itself).
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn on_foreign_function(&mut self, function_id: u32, args: impl Into<Vec<u8>>) -> Result<()> {
        let r = self.vms[0].foreign_function(PluginId::FIRST, function_id, args.into());
        self.settle()?;
        r
    }

    /// Shuts the plugin down as Envoy does: `on_done(root)`, then `on_delete` if it returned true.
    /// Returns what `on_done` returned.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn shutdown(&mut self) -> Result<bool> {
        let r = self.vms[0].shutdown(PluginId::FIRST);
        self.settle()?;
        r
    }

    /// Does what the core asked for, the way a test expects: new callouts go to the
    /// [`HarnessBuilder::on_http_callout`] handler (the ones it leaves stay pending for the test);
    /// the rest needs no driver here, as every stream is stepped by the test itself.
    fn settle(&mut self) -> Result<()> {
        for _ in 0..10_000 {
            self.propagate();
            let mut idle = true;
            for k in 0..self.vms.len() {
                let effects = self.vms[k].take_effects();
                idle &= effects.is_empty();
                for effect in effects {
                    let Effect::HttpCallout(call) = effect else { continue };
                    let reply = self.handler.as_mut().and_then(|h| h(&call));
                    if let Some(reply) = reply {
                        // Answered already (a failed VM dropped it): nothing to deliver.
                        let _ = self.vms[k].answer_http_callout(call.token, reply);
                    }
                }
            }
            if idle {
                return Ok(());
            }
        }
        Err(Error::Runaway { what: "the callout handler and the plugin kept making each other work" })
    }

    /// Moves what filters let through (on their own too: a callout answered, a timer) along each
    /// open stream's chain, and keeps what left it.
    fn propagate(&mut self) {
        let vms = &mut self.vms;
        for s in self.streams.values_mut() {
            absorb(&mut s.upstream, s.chain.pull(vms, sluice_core::plugin_vm::Direction::Request));
            absorb(&mut s.downstream, s.chain.pull(vms, sluice_core::plugin_vm::Direction::Response));
        }
        for c in self.connections.values_mut() {
            let out = c.chain.released(vms);
            c.sent[0].extend(out.to_upstream);
            c.sent[1].extend(out.to_client);
        }
    }

    /// A new id for a stream or connection of the harness.
    fn new_stream_id(&mut self) -> StreamId {
        self.next_stream += 1;
        StreamId(self.next_stream)
    }

    /// The facts a harness stream has unless the test sets its own: a local HTTP/1.1 client on a
    /// connection of its own, the preset properties, empty metadata.
    fn default_http_info(&mut self) -> StreamInfo {
        let mut info = StreamInfo {
            source: Some(([127, 0, 0, 1], 50000).into()),
            destination: Some(([127, 0, 0, 1], 10000).into()),
            protocol: Some("HTTP/1.1".into()),
            // The listener, virtual host, route and cluster the stream would have, without metadata.
            listener_metadata: Some(Default::default()),
            virtual_host_metadata: Some(Default::default()),
            route_metadata: Some(Default::default()),
            cluster_metadata: Some(Default::default()),
            ..Default::default()
        };
        self.complete_info(&mut info);
        info
    }

    /// Gives `info` a connection id if it has none, and the preset properties.
    fn complete_info(&mut self, info: &mut StreamInfo) {
        if info.connection_id == 0 {
            info.connection_id = self.next_connection_id();
        }
        for (k, v) in &self.properties {
            info.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    fn next_connection_id(&mut self) -> u64 {
        let id = self.next_connection_id;
        self.next_connection_id += 1;
        id
    }
}
