//! A VM and the plugins in it, sans-IO: each plugin's side of Envoy's rules for the streams that
//! pass it, and everything around the VM.
//!
//! A [`PluginVm`] holds the VM's lifecycle and failure policy (FAIL_RELOAD included), one filter's
//! part of Envoy's HTTP rules (stages, buffering, watermarks, the 413 of the configured buffer
//! limit, local replies that pass back through the filter, the end of a stream when its
//! [`chain`](crate::chain) says so), TCP filter rules, callouts with their tokens and timeouts, and
//! the tick timer. It does no I/O and reads no clock but the [`ProxyEnv`]'s:
//! a driver feeds it events (headers, data, trailers, a callout's answer, a timer that is due, a
//! peer that closed) and drains the [`Effect`]s it hands out (send this callout, look at this
//! stream again). A stream is driven through its [`chain`](crate::chain), which moves what each
//! filter lets through on to the next and ends the stream in every filter as Envoy does (see the
//! example there).
//!
//! Two drivers sit on it: the test harness (`sluice-harness`: virtual clock, callouts
//! answered by the test) and `sluice serve` (tokio timers, real clusters).

mod callouts;
mod effects;
mod grpc;
mod http;
mod ids;
mod tcp;

// Keys are small integers the host hands out: no need for SipHash's resistance to chosen keys.
use rustc_hash::FxHashMap as HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use callouts::CalloutReply;
pub use effects::Effect;
pub use http::{FinalHeaders, Forwarded, Message, StreamEnd, BODY_CHUNK, DEFAULT_BUFFER_LIMIT};
pub use ids::{Direction, PluginId, StreamId};

use crate::error::Report;
use crate::error::{Error, GuestFault, Result};
use crate::runtime::{CompiledModule, Runtime};
use crate::state::QueueNotifier;
use crate::stream::HttpStreamState;
use crate::vm::{
    CalloutToken, ContextId, FailurePolicy, GrpcCallout, GrpcEvent, HostAction, HttpCallout, PluginInfo, ProxyEnv, Vm,
    VmOptions, VmStats,
};

/// Envoy's base backoff before FAIL_RELOAD tries a fresh VM.
const RELOAD_BACKOFF_NANOS: i64 = 1_000_000_000;

/// Something to call when a queue event arrives from anywhere (another thread's VM included).
pub type QueueWaker = Arc<dyn Fn() + Send + Sync>;

/// Collects queue-ready events for the core to deliver after the running callback, and tells the
/// driver (if it asked) that one is waiting.
#[derive(Default)]
struct Inbox {
    events: Mutex<Vec<(u32, u32)>>,
    waker: Mutex<Option<QueueWaker>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl QueueNotifier for Inbox {
    fn notify(&self, root: u32, queue: u32) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push((root, queue));
        if let Some(wake) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            wake();
        }
    }
}

/// One plugin of the VM: its root context and its tick timer.
#[derive(Debug)]
struct Root {
    info: PluginInfo,
    root_id: u32,
    /// When the next tick is due (monotonic nanoseconds).
    next_tick: Option<i64>,
    /// The plugin's own counters (`wasm.<plugin>.vm_reload*`).
    stats: VmStats,
    /// How many fresh VMs this plugin has seen (see [`PluginVm::maybe_reload`]).
    seen_reloads: u64,
}

/// An HTTP callout waiting for its answer, and when it times out (monotonic nanoseconds).
#[derive(Debug)]
struct Pending {
    callout: HttpCallout,
    deadline: Option<i64>,
}

/// One VM and the plugins in it (Envoy shares a VM between plugins with the same `vm_id`,
/// VM configuration and code), with their streams, callouts and timers: the core both drivers run.
pub struct PluginVm {
    runtime: Arc<Runtime>,
    module: Arc<CompiledModule>,
    env: Arc<ProxyEnv>,
    inbox: Arc<Inbox>,
    vm: Vm,
    plugins: Vec<Root>,
    vm_options: VmOptions,
    http_callouts: Vec<Pending>,
    grpc_calls: Vec<GrpcCallout>,
    // Boxed: a stream's bookkeeping is large, and the map moves its values as streams come and go.
    streams: HashMap<StreamId, Box<http::StreamDriver>>,
    connections: HashMap<StreamId, tcp::ConnDriver>,
    /// Which stream each live guest context belongs to.
    contexts: HashMap<u32, StreamId>,
    next_stream_id: u32,
    vm_failures: Vec<GuestFault>,
    /// When the VM failed (monotonic nanoseconds).
    failed_at: Option<i64>,
    /// Fresh VMs brought by FAIL_RELOAD so far.
    reloads: u64,
    effects: Vec<Effect>,
    /// The stream whose driver is stepping it right now: it needs no [`Effect::Wake`].
    stepping: Option<StreamId>,
}

impl std::fmt::Debug for PluginVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginVm").field("plugins", &self.plugins).field("vm", &self.vm).finish()
    }
}

impl PluginVm {
    /// Starts a VM for `module` and its first plugin in it (root context, `on_vm_start`,
    /// `on_configure`); fails as Envoy would refuse the configuration. That plugin is
    /// [`PluginId::FIRST`]; [`PluginVm::add_plugin`] adds more.
    pub fn start(
        runtime: &Arc<Runtime>,
        module: Arc<CompiledModule>,
        env: Arc<ProxyEnv>,
        info: PluginInfo,
        vm_options: VmOptions,
    ) -> Result<Self> {
        let inbox = Arc::new(Inbox::default());
        let vm = Vm::new(runtime, module.clone(), vm_options.clone(), env.clone(), inbox.clone())?;
        let mut p = PluginVm {
            runtime: runtime.clone(),
            module,
            env,
            inbox,
            vm,
            plugins: Vec::new(),
            vm_options,
            http_callouts: Vec::new(),
            grpc_calls: Vec::new(),
            streams: HashMap::default(),
            connections: HashMap::default(),
            contexts: HashMap::default(),
            next_stream_id: 0,
            vm_failures: Vec::new(),
            failed_at: None,
            reloads: 0,
            effects: Vec::new(),
            stepping: None,
        };
        let stats = p.env.vm_stats.clone();
        p.add_plugin(info, stats)?;
        Ok(p)
    }

    /// Starts one more plugin in this VM (its own root context, with the next context id, then
    /// `on_vm_start` and `on_configure`, as Envoy does for each plugin sharing a VM); its
    /// FAIL_RELOAD counters are `stats`' `reload*`.
    ///
    /// # Errors
    /// [`Error::VmStartFailed`] or
    /// [`Error::ConfigureFailed`] when the plugin refuses its configuration;
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    pub fn add_plugin(&mut self, mut info: PluginInfo, stats: VmStats) -> Result<PluginId> {
        if info.vm_id.is_empty() {
            info.vm_id = self.vm_options.vm_id.clone();
        }
        let root_id = self.vm.start_plugin(info.clone())?;
        let seen_reloads = self.reloads;
        self.plugins.push(Root { info, root_id, next_tick: None, stats, seen_reloads });
        self.pump()?;
        Ok(PluginId(self.plugins.len() - 1))
    }

    /// Whether a plugin with this code, VM configuration and `vm_id` would share this VM.
    pub fn shares_vm_with(&self, module: &Arc<CompiledModule>, vm_options: &VmOptions) -> bool {
        Arc::ptr_eq(&self.module, module)
            && self.vm_options.vm_id == vm_options.vm_id
            && self.vm_options.configuration == vm_options.configuration
            && self.vm_options.env_vars == vm_options.env_vars
    }

    fn root(&self, plugin: PluginId) -> &Root {
        // A `PluginId` comes only from this VM, and plugins are never removed.
        &self.plugins[plugin.0]
    }

    /// The VM, for low-level access.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }

    /// A plugin's configuration.
    pub fn info(&self, plugin: PluginId) -> &PluginInfo {
        &self.root(plugin).info
    }

    /// The names of the plugins in this VM, for messages.
    fn names(&self) -> String {
        let names: Vec<String> = self.plugins.iter().map(|r| format!("`{}`", r.info.name)).collect();
        names.join(", ")
    }

    /// The root context id of a plugin (it changes when FAIL_RELOAD brings a fresh VM).
    pub fn root_id(&self, plugin: PluginId) -> ContextId {
        ContextId(self.root(plugin).root_id)
    }

    /// The environment (clusters, clock, shared state).
    pub fn env(&self) -> &Arc<ProxyEnv> {
        &self.env
    }

    /// Why the VM failed, in order (a FAIL_RELOAD plugin can fail more than once): the first 16
    /// failures and the latest 16, so that a VM failing forever does not grow without bound.
    pub fn vm_failures(&self) -> &[GuestFault] {
        &self.vm_failures
    }

    /// The tick period a plugin set, if any.
    pub fn tick_period(&self, plugin: PluginId) -> Option<Duration> {
        self.vm.tick_period(self.root(plugin).root_id)
    }

    /// What the driver must do now (callouts to send, streams to look at); empty until the core
    /// does something new.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// When [`PluginVm::fire_due`] next has work (a tick, a callout's timeout), in the clock's
    /// monotonic nanoseconds; `None` while nothing is scheduled.
    pub fn next_deadline(&self) -> Option<i64> {
        let timeouts = self.http_callouts.iter().filter_map(|p| p.deadline);
        timeouts.chain(self.plugins.iter().filter_map(|r| r.next_tick)).min()
    }

    /// Fires what is due by the clock's time, in time order: callout timeouts (Envoy's 504 to the
    /// plugin) and ticks.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn fire_due(&mut self) -> Result<()> {
        let now = self.env.clock.monotonic_nanos();
        // Bounded: a tick re-arms from `now`, so each plugin ticks at most once per call.
        for _ in 0..10_000 {
            let timeout =
                self.http_callouts.iter().filter(|p| p.deadline.is_some_and(|d| d <= now)).min_by_key(|p| p.deadline);
            let tick = (0..self.plugins.len())
                .filter_map(|k| Some((self.plugins[k].next_tick.filter(|t| *t <= now)?, k)))
                .min();
            match (timeout.map(|p| (p.callout.token, p.deadline)), tick) {
                (Some((token, Some(at))), t) if t.is_none_or(|(t, _)| at <= t) => {
                    self.answer_http_callout(token, CalloutReply::timeout())?;
                }
                (_, Some((_, k))) => {
                    self.plugins[k].next_tick = None;
                    if self.vm.failure().is_none() {
                        let r = self.vm.on_tick(self.plugins[k].root_id);
                        self.after_guest_call(r)?;
                    }
                }
                _ => return Ok(()),
            }
        }
        Err(Error::Runaway { what: "timers kept coming due" })
    }

    fn arm_ticks(&mut self) {
        for r in &mut self.plugins {
            match self.vm.tick_period(r.root_id) {
                // The clock is read only when a tick is armed (reading it costs a system call).
                Some(p) if r.next_tick.is_none() => {
                    r.next_tick = Some(self.env.clock.monotonic_nanos() + p.as_nanos() as i64)
                }
                None => r.next_tick = None,
                _ => {}
            }
        }
    }

    /// HTTP callouts waiting for an answer.
    pub fn http_callouts(&self) -> impl Iterator<Item = &HttpCallout> {
        self.http_callouts.iter().map(|p| &p.callout)
    }

    /// gRPC calls and streams the plugin opened and not yet closed, as they stand.
    pub fn grpc_callouts(&self) -> &[GrpcCallout] {
        &self.grpc_calls
    }

    /// Answers a pending HTTP callout (a response, a timeout's 504, a connect failure's 503, or a
    /// reset). A callout that is no longer pending (it timed out first) is an error the driver may
    /// ignore.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn answer_http_callout(&mut self, token: CalloutToken, reply: CalloutReply) -> Result<()> {
        let at = self
            .http_callouts
            .iter()
            .position(|p| p.callout.token == token)
            .ok_or_else(|| Error::Usage(format!("no pending HTTP callout with token {token}")))?;
        let pending = self.http_callouts.remove(at);
        if self.vm.failure().is_some() || self.stream_over(pending.callout.context_id.0) {
            // Envoy cancels a stream's callouts when the stream ends (its `on_log` and `on_done`
            // follow at once); an answer that comes later is never delivered.
            return Ok(());
        }
        let r = self.vm.deliver_http_response(&pending.callout, reply.into_data());
        self.after_guest_call(r)
    }

    /// Calls any export of the module on context `context_id`, then does what Envoy does after a
    /// callback (deferred actions, queue events, callouts). For tests that exercise hostcalls
    /// through a probe module.
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
        // The guest's own error comes back as it was (a trap stays a trap), after the failure
        // policy has run.
        match self.vm.invoke(name, context_id, params) {
            Ok(values) => {
                self.pump()?;
                Ok(values)
            }
            Err(Error::Guest(fault)) => {
                self.on_vm_failure(fault.clone());
                self.pump()?;
                Err(Error::Guest(fault))
            }
            Err(e) => Err(e),
        }
    }

    /// Delivers what other VMs sent meanwhile (queue events) and what the last callbacks left to do.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn deliver_pending(&mut self) -> Result<()> {
        self.pump()
    }

    /// Calls `waker` whenever a queue event for this plugin arrives, from any thread: the driver
    /// then calls [`PluginVm::deliver_pending`] on its own thread. Without it, events wait for the
    /// next call into the core.
    pub fn set_queue_waker(&mut self, waker: QueueWaker) {
        *self.inbox.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker);
    }

    /// Runs a guest callback's aftermath: record failures, apply deferred actions, deliver queue
    /// events, until nothing is left to do.
    fn after_guest_call<T>(&mut self, r: Result<T>) -> Result<()> {
        match r {
            Ok(_) => self.pump(),
            Err(Error::Guest(fault)) => {
                self.on_vm_failure(fault);
                self.pump()
            }
            Err(e) => Err(e),
        }
    }

    fn on_vm_failure(&mut self, fault: Box<GuestFault>) {
        // Every plugin of the VM fails with it; each applies its own policy.
        for r in &self.plugins {
            let then = match r.info.failure_policy {
                FailurePolicy::FailReload => "new streams get a fresh VM after a 1 s backoff",
                FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => "its streams pass without it",
                _ => "its streams are refused with 503",
            };
            // The guest's frames, if any, go last, under their heading.
            let frames = fault.backtrace();
            tracing::error!(target: "wasm", "plugin `{}`: the VM failed: {fault}; {then}{frames}", r.info.name);
        }
        // A FAIL_RELOAD plugin can fail forever: keep the first failures and the latest, not all.
        if self.vm_failures.len() >= MAX_KEPT_FAILURES {
            self.vm_failures.remove(MAX_KEPT_FAILURES / 2);
        }
        self.vm_failures.push(*fault);
        self.failed_at = Some(self.env.clock.monotonic_nanos());
        // Pending callouts and gRPC calls die with the VM.
        self.http_callouts.clear();
        for call in std::mem::take(&mut self.grpc_calls) {
            self.effects.push(Effect::GrpcCancel(call.token));
        }
        for r in &mut self.plugins {
            r.next_tick = None;
        }
        let mut ids: Vec<StreamId> = self.streams.keys().copied().collect();
        ids.sort();
        for id in ids {
            http::fail_stream(self, id);
            self.wake(id);
        }
        let mut ids: Vec<StreamId> = self.connections.keys().copied().collect();
        ids.sort();
        for id in ids {
            tcp::fail_connection(self, id);
            self.wake(id);
        }
    }

    /// Tells the driver of stream `id` to look at it, unless it is the one stepping it now.
    fn wake(&mut self, id: StreamId) {
        if self.stepping != Some(id) {
            self.effects.push(Effect::Wake(id));
        }
    }

    /// Runs `f` as the driver's step of stream `id` (no wake-up for it), with what follows a step.
    fn step<T>(&mut self, id: StreamId, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let outer = self.stepping.replace(id);
        let r = f(self);
        self.stepping = outer;
        r
    }

    /// Hands a finished stream to `plugin` as Envoy's wasm access logger does:
    /// `proxy_on_log` on its root context, with the stream's headers and facts readable. A VM that
    /// failed logs nothing (FAIL_RELOAD brings a fresh one first).
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn log_stream(&mut self, plugin: PluginId, stream: HttpStreamState) -> Result<()> {
        self.maybe_reload(plugin)?;
        if self.vm.failure().is_some() {
            return Ok(());
        }
        let r = self.vm.log_on_root(self.root(plugin).root_id, stream);
        self.record_fault(r);
        self.pump()
    }

    /// For a FAIL_RELOAD plugin: a fresh VM (with every plugin of the VM started again in it, in
    /// order) once the backoff has passed since the failure.
    ///
    /// The counters are each plugin's, as in Envoy, where every plugin finds the failed VM on its
    /// own and reloads it: a plugin counts one `vm_reload_success` for each fresh VM it comes to,
    /// whichever plugin's stream brought it (pinned against Envoy 1.40, which counts nothing in
    /// `vm_reload` itself for a reload).
    fn maybe_reload(&mut self, plugin: PluginId) -> Result<()> {
        if self.root(plugin).info.failure_policy != FailurePolicy::FailReload {
            return Ok(());
        }
        let stats = self.root(plugin).stats.clone();
        if self.vm.failure().is_none() {
            let reloads = self.reloads;
            let root = &mut self.plugins[plugin.0];
            if root.seen_reloads != reloads {
                root.seen_reloads = reloads;
                stats.reload_success.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(());
        }
        let now = self.env.clock.monotonic_nanos();
        if self.failed_at.is_some_and(|t| now - t < RELOAD_BACKOFF_NANOS) {
            stats.reload_backoff.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        let infos: Vec<PluginInfo> = self.plugins.iter().map(|r| r.info.clone()).collect();
        let started =
            Vm::new(&self.runtime, self.module.clone(), self.vm_options.clone(), self.env.clone(), self.inbox.clone())
                .and_then(|mut vm| {
                    let roots = infos.iter().map(|i| vm.start_plugin(i.clone())).collect::<Result<Vec<u32>>>()?;
                    Ok((vm, roots))
                });
        let counter = if started.is_ok() { &stats.reload_success } else { &stats.reload_failure };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (vm, roots) = started?;
        for (r, root) in self.plugins.iter_mut().zip(roots) {
            r.root_id = root;
            r.next_tick = None;
        }
        self.vm = vm;
        self.failed_at = None;
        self.reloads += 1;
        self.plugins[plugin.0].seen_reloads = self.reloads;
        tracing::info!(target: "wasm", "plugin(s) {}: a fresh VM replaces the failed one", self.names());
        self.pump()
    }

    fn pump(&mut self) -> Result<()> {
        for _ in 0..10_000 {
            let mut progressed = false;
            for a in self.vm.take_actions() {
                progressed = true;
                self.apply(a)?;
            }
            for c in self.vm.take_http_callouts() {
                let deadline = c.timeout.map(|t| self.env.clock.monotonic_nanos() + t.as_nanos() as i64);
                self.effects.push(Effect::HttpCallout(c.clone()));
                self.http_callouts.push(Pending { callout: c, deadline });
            }
            for event in self.vm.take_grpc_events() {
                self.grpc_event(event);
            }
            let events = std::mem::take(&mut *self.inbox.events.lock().unwrap_or_else(|e| e.into_inner()));
            for (root, queue) in events {
                progressed = true;
                if self.vm.failure().is_none() && self.plugins.iter().any(|r| r.root_id == root) {
                    let r = self.vm.on_queue_ready(root, queue);
                    self.record_fault(r);
                }
            }
            self.arm_ticks();
            if !progressed {
                return Ok(());
            }
        }
        Err(Error::Runaway { what: "the plugin kept producing work (actions, queue events)" })
    }

    fn grpc_event(&mut self, event: GrpcEvent) {
        match event {
            GrpcEvent::Open(token) => {
                if let Some(call) = self.vm.grpc_call(token).cloned() {
                    self.effects.push(Effect::GrpcOpen(call.clone()));
                    self.grpc_calls.push(call);
                }
            }
            GrpcEvent::Send { token, message, end_of_stream } => {
                if let Some(call) = self.grpc_calls.iter_mut().find(|c| c.token == token) {
                    call.messages.extend(message.iter().cloned());
                    call.half_closed |= end_of_stream;
                }
                self.effects.push(Effect::GrpcSend { token, message, end_of_stream });
            }
            GrpcEvent::Cancel(token) => {
                self.grpc_calls.retain(|c| c.token != token);
                self.effects.push(Effect::GrpcCancel(token));
            }
        }
    }

    fn record_fault<T>(&mut self, r: Result<T>) {
        if let Err(Error::Guest(fault)) = r {
            self.on_vm_failure(fault);
        }
    }

    fn apply(&mut self, action: HostAction) -> Result<()> {
        let stream = self.contexts.get(&action_context(&action)).copied();
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
        if let Some(id) = stream {
            self.wake(id);
        }
        Ok(())
    }

    /// Calls the plugin's `proxy_on_foreign_function(root, function_id, args)`, as a host
    /// extension would (Envoy 1.40 itself never does); a fault there runs the failure policy.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn foreign_function(&mut self, plugin: PluginId, function_id: u32, args: Vec<u8>) -> Result<()> {
        self.maybe_reload(plugin)?;
        if self.vm.failure().is_some() {
            return Ok(());
        }
        let r = self.vm.on_foreign_function(self.root(plugin).root_id, function_id, args);
        self.after_guest_call(r)
    }

    /// Shuts a plugin down as Envoy does: `on_done(root)`, then `on_delete` if it returned true.
    /// Returns what `on_done` returned.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn shutdown(&mut self, plugin: PluginId) -> Result<bool> {
        let root = self.root(plugin).root_id;
        let done = self.vm.on_done(root)?;
        if done {
            self.vm.on_delete(root)?;
        }
        self.pump()?;
        Ok(done)
    }

    /// Envoy's shutdown of the VM: `on_done` on every plugin's root context, then `on_delete` on
    /// those that are done (Envoy does not wait for the others). A failed VM gets no callbacks.
    pub fn shutdown_all(&mut self) {
        for i in 0..self.plugins.len() {
            if self.vm.failure().is_some() {
                return;
            }
            if let Err(e) = self.shutdown(PluginId(i)) {
                tracing::warn!(target: "wasm", "plugin `{}`: shutting down: {}", self.plugins[i].info.name, Report(&e));
            }
        }
    }

    fn new_stream_id(&mut self) -> StreamId {
        self.next_stream_id += 1;
        StreamId(self.next_stream_id)
    }
}

/// How many VM failure reasons a `PluginVm` keeps (the first half, then the latest).
const MAX_KEPT_FAILURES: usize = 32;

fn action_context(action: &HostAction) -> u32 {
    match action {
        HostAction::Continue { context_id, .. }
        | HostAction::Close { context_id, .. }
        | HostAction::LocalReply { context_id, .. }
        | HostAction::Done { context_id } => *context_id,
    }
}
