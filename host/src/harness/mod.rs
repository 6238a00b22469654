//! The in-process harness: a stateful Envoy emulator over the real `.wasm`, for `cargo test`.
//!
//! Load a module with its configuration, then drive streams and inspect what Envoy would have done:
//! the status of each step, headers and bodies after the filter's changes, local replies, pending
//! callouts (which you answer), logs, metrics, shared data and queues. Time is virtual: ticks and
//! callout timeouts fire when you [`Harness::advance_time`].
//!
//! ```no_run
//! use sluice_host::harness::{Harness, CalloutReply};
//! use sluice_host::stream::FilterStatus;
//!
//! let mut h = Harness::builder().module_file("auth.wasm").cluster("auth").build()?;
//! let mut s = h.http_stream();
//! let step = s.request_headers([(":method", "GET"), (":path", "/"), (":authority", "x")], true)?;
//! assert_eq!(step, FilterStatus::StopAllIterationAndWatermark); // waiting on the auth callout
//! let id = s.id();
//! let token = h.http_callouts()[0].token;
//! h.respond_http_callout(token, CalloutReply::new(200))?;
//! assert!(h.http(id).upstream_request().headers_forwarded);
//! # Ok::<(), sluice_host::Error>(())
//! ```

mod callouts;
mod exchange;
mod grpc;
mod http;
mod logs;
mod tcp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use callouts::CalloutReply;
pub use exchange::{Exchange, Request, Response, BODY_CHUNK};
pub use http::{Forwarded, HttpStream, Message, StreamEnd};
pub use logs::LogCollector;
pub use tcp::TcpStream;

use crate::abi::status::LogLevel;
use crate::error::{Error, Result};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::state::{MetricValue, QueueNotifier, SharedState};
use crate::stream::{HttpStreamState, PropertyValue};
use crate::vm::VmStats;
use crate::vm::{
    Clock, FailurePolicy, GrpcCallout, HostAction, HttpCallout, LogRecord, NodeInfo, PluginInfo, ProxyEnv, Vm,
    VmOptions,
};

/// Default start of the virtual clock: 2026-01-01T00:00:00Z.
const EPOCH_2026_NANOS: i64 = 1_767_225_600_000_000_000;

/// Where the module comes from.
#[derive(Debug, Clone)]
enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Collects queue-ready events for the harness to deliver after the running callback.
#[derive(Debug, Default)]
struct Inbox(Mutex<Vec<(u32, u32)>>);

impl QueueNotifier for Inbox {
    fn notify(&self, root: u32, queue: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((root, queue));
    }
}

type CalloutHandler = Box<dyn FnMut(&HttpCallout) -> Option<CalloutReply> + Send>;

/// Builds a [`Harness`]: the module, its configuration and the world around it.
pub struct HarnessBuilder {
    source: Option<Source>,
    plugin: PluginInfo,
    vm: VmOptions,
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
    log_sink: Option<Arc<dyn crate::vm::LogSink>>,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        Self {
            source: None,
            plugin: PluginInfo { name: "plugin".into(), ..Default::default() },
            vm: VmOptions::default(),
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
        }
    }
}

impl HarnessBuilder {
    /// The module's bytes (binary, or WebAssembly text).
    pub fn module_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.source = Some(Source::Bytes(bytes.into()));
        self
    }

    /// A `.wasm` file.
    pub fn module_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Some(Source::File(path.into()));
        self
    }

    /// The plugin configuration (`PluginConfig.configuration`), read in `on_configure`.
    pub fn plugin_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.plugin.configuration = config.into();
        self
    }

    /// The VM configuration, read in `on_vm_start`.
    pub fn vm_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.vm.configuration = config.into();
        self
    }

    /// Plugin `name` (default `plugin`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.plugin.name = name.into();
        self
    }

    /// Plugin `root_id`.
    pub fn root_id(mut self, root_id: impl Into<String>) -> Self {
        self.plugin.root_id = root_id.into();
        self
    }

    /// `vm_id` (scopes shared data and queues).
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        let id = vm_id.into();
        self.plugin.vm_id = id.clone();
        self.vm.vm_id = id;
        self
    }

    /// An environment variable served to WASI `environ_get`.
    pub fn env_var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vm.env_vars.push((key.into(), value.into()));
        self
    }

    /// What happens after the VM fails.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.plugin.failure_policy = policy;
        self
    }

    /// `allow_on_headers_stop_iteration`.
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.plugin.allow_on_headers_stop_iteration = allow;
        self
    }

    /// Makes `name` a cluster callouts may target (others give BAD_ARGUMENT, as in Envoy).
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.clusters.push(name.into());
        self
    }

    /// Sends guest logs here instead of keeping them ([`Harness::logs`] is then empty): for
    /// long-running drivers.
    pub fn log_sink(mut self, sink: Arc<dyn crate::vm::LogSink>) -> Self {
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

    /// Answers HTTP callouts as they are made; return `None` to leave one pending.
    pub fn on_http_callout(mut self, f: impl FnMut(&HttpCallout) -> Option<CalloutReply> + Send + 'static) -> Self {
        self.handler = Some(Box::new(f));
        self
    }

    /// Starts the VM and the plugin (`on_vm_start`, `on_configure`); fails as Envoy would refuse the
    /// configuration.
    pub fn build(self) -> Result<Harness> {
        let source =
            self.source.clone().ok_or_else(|| Error::Usage("no module: call module_file or module_bytes".into()))?;
        let runtime = match &self.shared_runtime {
            Some(r) => r.clone(),
            None => Arc::new(Runtime::new(self.runtime.clone())?),
        };
        let module = match &source {
            Source::Bytes(b) => runtime.load(b)?,
            Source::File(p) => runtime.load_file(p)?,
        };
        let logs = Arc::new(LogCollector::default());
        let shared = self.shared_state.clone().unwrap_or_default();
        let sink: Arc<dyn crate::vm::LogSink> = match &self.log_sink {
            Some(s) => s.clone(),
            None => logs.clone(),
        };
        let mut env = ProxyEnv::new(shared, sink, Clock::virtual_at(self.start_nanos));
        env.node = self.node.clone();
        env.vm_stats = self.vm_stats.clone();
        env.set_log_level(self.log_level);
        for c in &self.clusters {
            env.add_cluster(c.clone());
        }
        let env = Arc::new(env);
        let inbox = Arc::new(Inbox::default());
        let mut vm = Vm::new(&runtime, module.clone(), self.vm.clone(), env.clone(), inbox.clone())?;
        let mut plugin = self.plugin.clone();
        if plugin.vm_id.is_empty() {
            plugin.vm_id = self.vm.vm_id.clone();
        }
        let root_id = vm.start_plugin(plugin.clone())?;
        let mut h = Harness {
            runtime,
            module,
            env,
            inbox,
            logs,
            vm,
            root_id,
            plugin,
            vm_options: self.vm,
            properties: self.properties,
            handler: self.handler,
            http_callouts: Vec::new(),
            grpc_callouts: Vec::new(),
            next_tick: None,
            streams: BTreeMap::new(),
            tcp: BTreeMap::new(),
            next_connection_id: 1,
            next_stream_id: 0,
            vm_failures: Vec::new(),
            failed_at: None,
        };
        h.pump()?;
        Ok(h)
    }
}

/// A plugin running in one VM, with a virtual clock and in-memory streams.
pub struct Harness {
    runtime: Arc<Runtime>,
    module: Arc<crate::runtime::CompiledModule>,
    env: Arc<ProxyEnv>,
    inbox: Arc<Inbox>,
    logs: Arc<LogCollector>,
    vm: Vm,
    root_id: u32,
    plugin: PluginInfo,
    vm_options: VmOptions,
    properties: BTreeMap<Vec<u8>, PropertyValue>,
    handler: Option<CalloutHandler>,
    http_callouts: Vec<(HttpCallout, Option<i64>)>,
    grpc_callouts: Vec<GrpcCallout>,
    next_tick: Option<i64>,
    // Boxed: a driver is large, and the map moves its values as streams come and go.
    pub(crate) streams: BTreeMap<u32, Box<http::StreamDriver>>,
    pub(crate) tcp: BTreeMap<u32, tcp::ConnDriver>,
    next_connection_id: u64,
    next_stream_id: u32,
    vm_failures: Vec<String>,
    failed_at: Option<i64>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("plugin", &self.plugin).field("vm", &self.vm).finish()
    }
}

impl Harness {
    /// Starts building a harness.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// The VM, for low-level access.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }

    /// Calls any export of the module on context `context_id`, then does what Envoy does after a
    /// callback (deferred actions, queue events, callouts). For tests that exercise hostcalls
    /// through a probe module.
    pub fn invoke(&mut self, name: &str, context_id: u32, params: &[wasmtime::Val]) -> Result<Vec<wasmtime::Val>> {
        let r = self.vm.invoke(name, context_id, params);
        let out = r.as_ref().map(|v| v.clone()).map_err(|e| Error::Usage(e.to_string()));
        self.after_guest_call(r)?;
        out
    }

    /// The root context id of the plugin.
    pub fn root_id(&self) -> u32 {
        self.root_id
    }

    /// The environment (clusters, clock, shared state).
    pub fn env(&self) -> &Arc<ProxyEnv> {
        &self.env
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
        self.env.shared.metrics.get(&format!("wasmcustom.{name}"))
    }

    /// A shared-data entry of this plugin's vm_id: value and CAS.
    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<(Vec<u8>, u32)> {
        self.env.shared.shared_data.get(&self.plugin.vm_id, key.as_ref())
    }

    /// Sets a shared-data entry as another VM would.
    pub fn set_shared_data(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let _ = self.env.shared.shared_data.set(&self.plugin.vm_id, key.as_ref(), value.as_ref(), 0);
    }

    /// Items waiting in a queue of this vm_id.
    pub fn queue_len(&self, name: &str) -> Option<usize> {
        self.env.shared.queues.len(&self.plugin.vm_id, name)
    }

    /// Enqueues an item as another VM would; the registrant is notified.
    pub fn enqueue(&mut self, name: &str, item: impl AsRef<[u8]>) -> Result<()> {
        let id = self
            .env
            .shared
            .queues
            .resolve(&self.plugin.vm_id, name)
            .ok_or_else(|| Error::Usage(format!("no queue named `{name}` in vm `{}`", self.plugin.vm_id)))?;
        self.env.shared.queues.enqueue(id, item.as_ref());
        self.pump()
    }

    /// The tick period the plugin set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.vm.tick_period(self.root_id)
    }

    /// Why the VM failed, for each failure so far (a FAIL_RELOAD plugin can fail more than once).
    pub fn vm_failures(&self) -> &[String] {
        &self.vm_failures
    }

    /// Virtual wall-clock time, in nanoseconds since the epoch.
    pub fn now_nanos(&self) -> i64 {
        self.env.clock.now_nanos()
    }

    /// Moves the virtual clock forward, firing ticks and callout timeouts in time order.
    pub fn advance_time(&mut self, by: Duration) -> Result<()> {
        // Deliver what other VMs sent meanwhile (queue events) before time moves.
        self.pump()?;
        let end = self.now_nanos() + by.as_nanos() as i64;
        loop {
            self.arm_tick();
            let next_timeout = self.http_callouts.iter().filter_map(|(_, t)| *t).min();
            let next = [self.next_tick, next_timeout].into_iter().flatten().filter(|t| *t <= end).min();
            let Some(at) = next else { break };
            let now = self.now_nanos();
            self.env.clock.advance(at - now);
            if Some(at) == next_timeout {
                let token =
                    self.http_callouts.iter().find(|(_, t)| *t == Some(at)).map(|(c, _)| c.token).unwrap_or_default();
                self.respond_http_callout(token, CalloutReply::timeout())?;
            } else {
                self.next_tick = None;
                if self.vm.failure().is_none() {
                    let r = self.vm.on_tick(self.root_id);
                    self.after_guest_call(r)?;
                }
            }
        }
        let now = self.now_nanos();
        self.env.clock.advance(end - now);
        Ok(())
    }

    fn arm_tick(&mut self) {
        match self.vm.tick_period(self.root_id) {
            Some(p) if self.next_tick.is_none() => self.next_tick = Some(self.now_nanos() + p.as_nanos() as i64),
            None => self.next_tick = None,
            _ => {}
        }
    }

    /// HTTP callouts waiting for an answer.
    pub fn http_callouts(&self) -> Vec<HttpCallout> {
        self.http_callouts.iter().map(|(c, _)| c.clone()).collect()
    }

    /// gRPC calls and streams the plugin opened and not yet closed (answer them with
    /// [`Harness::respond_grpc_call`] and the `grpc_stream_*` methods).
    pub fn grpc_callouts(&self) -> &[GrpcCallout] {
        &self.grpc_callouts
    }

    /// Answers a pending HTTP callout (a response, a timeout's 504, a connect failure's 503, or a reset).
    pub fn respond_http_callout(&mut self, token: u32, reply: CalloutReply) -> Result<()> {
        let at = self
            .http_callouts
            .iter()
            .position(|(c, _)| c.token == token)
            .ok_or_else(|| Error::Usage(format!("no pending HTTP callout with token {token}")))?;
        let (callout, _) = self.http_callouts.remove(at);
        if self.vm.failure().is_some() {
            return Ok(());
        }
        let r = self.vm.deliver_http_response(&callout, reply.into_data());
        self.after_guest_call(r)
    }

    /// Runs a guest callback's aftermath: record failures, apply deferred actions, deliver queue
    /// events and newly answerable callouts, until nothing is left to do.
    pub(crate) fn after_guest_call<T>(&mut self, r: Result<T>) -> Result<()> {
        match r {
            Ok(_) => self.pump(),
            Err(e) if e.is_guest_fault() => {
                self.on_vm_failure(e.to_string());
                self.pump()
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn on_vm_failure(&mut self, why: String) {
        let then = match self.plugin.failure_policy {
            FailurePolicy::FailReload => "new streams get a fresh VM after a 1 s backoff",
            FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => "its streams pass without it",
            _ => "its streams are refused with 503",
        };
        tracing::error!(target: "wasm", "plugin `{}`: the VM failed: {why}; {then}", self.plugin.name);
        self.vm_failures.push(why);
        self.failed_at = Some(self.now_nanos());
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            http::fail_stream(self, id);
        }
        let ids: Vec<u32> = self.tcp.keys().copied().collect();
        for id in ids {
            tcp::fail_connection(self, id);
        }
    }

    /// Hands a finished stream to the plugin as Envoy's wasm access logger does:
    /// `proxy_on_log` on the root context, with the stream's headers and facts readable. A VM that
    /// failed logs nothing (FAIL_RELOAD brings a fresh one first).
    pub fn log_stream(&mut self, stream: HttpStreamState) -> Result<()> {
        self.maybe_reload()?;
        if self.vm.failure().is_some() {
            return Ok(());
        }
        let r = self.vm.log_on_root(self.root_id, stream);
        self.record_fault(r);
        self.pump()
    }

    /// For FAIL_RELOAD: a fresh VM once a second has passed since the failure (Envoy's base backoff).
    pub(crate) fn maybe_reload(&mut self) -> Result<()> {
        if self.plugin.failure_policy != FailurePolicy::FailReload || self.vm.failure().is_none() {
            return Ok(());
        }
        let stats = &self.env.vm_stats;
        if self.failed_at.is_some_and(|t| self.now_nanos() - t < 1_000_000_000) {
            stats.reload_backoff.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        stats.reload.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started =
            Vm::new(&self.runtime, self.module.clone(), self.vm_options.clone(), self.env.clone(), self.inbox.clone())
                .and_then(|mut vm| vm.start_plugin(self.plugin.clone()).map(|root| (vm, root)));
        let counter = if started.is_ok() { &stats.reload_success } else { &stats.reload_failure };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (vm, root) = started?;
        self.root_id = root;
        self.vm = vm;
        self.failed_at = None;
        tracing::info!(target: "wasm", "plugin `{}`: a fresh VM replaces the failed one", self.plugin.name);
        self.next_tick = None;
        Ok(())
    }

    pub(crate) fn pump(&mut self) -> Result<()> {
        for _ in 0..10_000 {
            let mut progressed = false;
            for a in self.vm.take_actions() {
                progressed = true;
                self.apply(a)?;
            }
            for c in self.vm.take_http_callouts() {
                progressed = true;
                let deadline = c.timeout.map(|t| self.now_nanos() + t.as_nanos() as i64);
                self.http_callouts.push((c, deadline));
            }
            self.grpc_callouts.extend(self.vm.take_grpc_callouts());
            let events = std::mem::take(&mut *self.inbox.0.lock().unwrap_or_else(|e| e.into_inner()));
            for (root, queue) in events {
                progressed = true;
                if self.vm.failure().is_none() && root == self.root_id {
                    let r = self.vm.on_queue_ready(root, queue);
                    self.record_fault(r);
                }
            }
            if let Some(mut handler) = self.handler.take() {
                let answers: Vec<(u32, CalloutReply)> =
                    self.http_callouts.iter().filter_map(|(c, _)| handler(c).map(|r| (c.token, r))).collect();
                self.handler = Some(handler);
                for (token, reply) in answers {
                    progressed = true;
                    let at = self.http_callouts.iter().position(|(c, _)| c.token == token);
                    if let Some(at) = at {
                        let (callout, _) = self.http_callouts.remove(at);
                        if self.vm.failure().is_none() {
                            let r = self.vm.deliver_http_response(&callout, reply.into_data());
                            self.record_fault(r);
                        }
                    }
                }
            }
            self.arm_tick();
            if !progressed {
                return Ok(());
            }
        }
        Err(Error::Usage("the plugin kept producing work (actions, callouts, queue events) without end".into()))
    }

    fn record_fault<T>(&mut self, r: Result<T>) {
        if let Err(e) = r {
            if e.is_guest_fault() {
                self.on_vm_failure(e.to_string());
            }
        }
    }

    fn apply(&mut self, action: HostAction) -> Result<()> {
        match action {
            HostAction::Continue { context_id, stream } => {
                http::resume(self, context_id, stream)?;
                tcp::resume(self, context_id, stream)?;
            }
            HostAction::Close { context_id, stream } => {
                http::reset(self, context_id);
                tcp::close(self, context_id, stream);
            }
            HostAction::LocalReply { context_id, reply } => http::local_reply(self, context_id, reply)?,
            HostAction::Done { context_id } => {
                let r = self.vm.on_delete(context_id);
                self.record_fault(r);
            }
        }
        Ok(())
    }

    /// Shuts the plugin down as Envoy does: `on_done(root)`, then `on_delete` if it returned true.
    /// Returns what `on_done` returned.
    pub fn shutdown(&mut self) -> Result<bool> {
        let done = self.vm.on_done(self.root_id)?;
        if done {
            self.vm.on_delete(self.root_id)?;
        }
        self.pump()?;
        Ok(done)
    }

    pub(crate) fn preset_properties(&self) -> &BTreeMap<Vec<u8>, PropertyValue> {
        &self.properties
    }

    pub(crate) fn next_connection_id(&mut self) -> u64 {
        let id = self.next_connection_id;
        self.next_connection_id += 1;
        id
    }

    pub(crate) fn plugin(&self) -> &PluginInfo {
        &self.plugin
    }
}
