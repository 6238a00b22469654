//! The sans-IO filter manager: one plugin in one VM, and Envoy's rules for everything around it.
//!
//! A [`Plugin`] holds the VM's lifecycle and failure policy (FAIL_RELOAD included), Envoy's HTTP
//! filter-chain rules (stages, buffering, watermarks, the 413 of the configured buffer limit,
//! local replies that pass back through the filter), TCP filter rules, callouts with their tokens
//! and timeouts, and the tick timer. It does no I/O and reads no clock but the [`ProxyEnv`]'s:
//! a driver feeds it events (headers, data, trailers, a callout's answer, a timer that is due, a
//! peer that closed) and drains the [`Effect`]s it hands out (send this callout, look at this
//! stream again), plus what each stream let through ([`Plugin::take_forwarded`]).
//!
//! Two drivers sit on it: the test [`Harness`](crate::harness::Harness) (virtual clock, callouts
//! answered by the test) and `sluice serve` (tokio timers, real clusters).
//!
//! ```no_run
//! use std::sync::Arc;
//! use sluice_host::manager::{Direction, Plugin};
//! use sluice_host::runtime::{Runtime, RuntimeConfig};
//! use sluice_host::stream::{HeaderMap, StreamInfo};
//! use sluice_host::vm::{Clock, PluginInfo, ProxyEnv, TracingLogSink, VmOptions};
//!
//! let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
//! let module = runtime.load_file("filter.wasm")?;
//! let env = Arc::new(ProxyEnv::new(Default::default(), Arc::new(TracingLogSink), Clock::real()));
//! let mut plugin = Plugin::start(&runtime, module, env, PluginInfo::default(), VmOptions::default())?;
//! let info = StreamInfo { source: Some(([10, 0, 0, 7], 40000).into()), ..Default::default() };
//! let id = plugin.open_http(info, 1 << 20);
//! let headers = HeaderMap::from_pairs([(":method", "GET"), (":path", "/"), (":authority", "x")]);
//! plugin.headers(id, Direction::Request, headers, true)?;
//! let out = plugin.take_forwarded(id, Direction::Request); // what goes upstream
//! for effect in plugin.take_effects() { /* send callouts, wake streams */ }
//! # let _ = out;
//! # Ok::<(), sluice_host::Error>(())
//! ```

mod callouts;
mod effects;
mod grpc;
mod http;
mod ids;
mod tcp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use callouts::CalloutReply;
pub use effects::Effect;
pub use http::{Forwarded, Message, StreamEnd, BODY_CHUNK, DEFAULT_BUFFER_LIMIT};
pub use ids::{Direction, StreamId};

use crate::error::{Error, Result};
use crate::runtime::{CompiledModule, Runtime};
use crate::state::QueueNotifier;
use crate::stream::HttpStreamState;
use crate::vm::{FailurePolicy, GrpcCallout, GrpcEvent, HostAction, HttpCallout, PluginInfo, ProxyEnv, Vm, VmOptions};

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

/// An HTTP callout waiting for its answer, and when it times out (monotonic nanoseconds).
#[derive(Debug)]
struct Pending {
    callout: HttpCallout,
    deadline: Option<i64>,
}

/// One plugin running in one VM, with its streams, callouts and timer: the core both drivers run.
pub struct Plugin {
    runtime: Arc<Runtime>,
    module: Arc<CompiledModule>,
    env: Arc<ProxyEnv>,
    inbox: Arc<Inbox>,
    vm: Vm,
    root_id: u32,
    info: PluginInfo,
    vm_options: VmOptions,
    http_callouts: Vec<Pending>,
    grpc_calls: Vec<GrpcCallout>,
    /// When the next tick is due (monotonic nanoseconds).
    next_tick: Option<i64>,
    // Boxed: a stream's bookkeeping is large, and the map moves its values as streams come and go.
    streams: HashMap<StreamId, Box<http::StreamDriver>>,
    connections: HashMap<StreamId, tcp::ConnDriver>,
    /// Which stream each live guest context belongs to.
    contexts: HashMap<u32, StreamId>,
    next_stream_id: u32,
    vm_failures: Vec<String>,
    /// When the VM failed (monotonic nanoseconds).
    failed_at: Option<i64>,
    effects: Vec<Effect>,
    /// The stream whose driver is stepping it right now: it needs no [`Effect::Wake`].
    stepping: Option<StreamId>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("plugin", &self.info).field("vm", &self.vm).finish()
    }
}

impl Plugin {
    /// Starts a VM for `module` and the plugin in it (`on_vm_start`, `on_configure`); fails as
    /// Envoy would refuse the configuration.
    pub fn start(
        runtime: &Arc<Runtime>,
        module: Arc<CompiledModule>,
        env: Arc<ProxyEnv>,
        mut info: PluginInfo,
        vm_options: VmOptions,
    ) -> Result<Self> {
        let inbox = Arc::new(Inbox::default());
        let mut vm = Vm::new(runtime, module.clone(), vm_options.clone(), env.clone(), inbox.clone())?;
        if info.vm_id.is_empty() {
            info.vm_id = vm_options.vm_id.clone();
        }
        let root_id = vm.start_plugin(info.clone())?;
        let mut p = Plugin {
            runtime: runtime.clone(),
            module,
            env,
            inbox,
            vm,
            root_id,
            info,
            vm_options,
            http_callouts: Vec::new(),
            grpc_calls: Vec::new(),
            next_tick: None,
            streams: HashMap::new(),
            connections: HashMap::new(),
            contexts: HashMap::new(),
            next_stream_id: 0,
            vm_failures: Vec::new(),
            failed_at: None,
            effects: Vec::new(),
            stepping: None,
        };
        p.pump()?;
        Ok(p)
    }

    /// The VM, for low-level access.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }

    /// The VM, read-only.
    pub fn vm_ref(&self) -> &Vm {
        &self.vm
    }

    /// The plugin's configuration.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The root context id of the plugin (it changes when FAIL_RELOAD brings a fresh VM).
    pub fn root_id(&self) -> u32 {
        self.root_id
    }

    /// The environment (clusters, clock, shared state).
    pub fn env(&self) -> &Arc<ProxyEnv> {
        &self.env
    }

    /// Why the VM failed, for each failure so far (a FAIL_RELOAD plugin can fail more than once).
    pub fn vm_failures(&self) -> &[String] {
        &self.vm_failures
    }

    /// The tick period the plugin set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.vm.tick_period(self.root_id)
    }

    /// What the driver must do now (callouts to send, streams to look at); empty until the core
    /// does something new.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Whether effects are waiting to be taken.
    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    /// When [`Plugin::fire_due`] next has work (a tick, a callout's timeout), in the clock's
    /// monotonic nanoseconds; `None` while nothing is scheduled.
    pub fn next_deadline(&self) -> Option<i64> {
        let timeouts = self.http_callouts.iter().filter_map(|p| p.deadline);
        timeouts.chain(self.next_tick).min()
    }

    /// Fires what is due by the clock's time, in time order: callout timeouts (Envoy's 504 to the
    /// plugin) and ticks.
    pub fn fire_due(&mut self) -> Result<()> {
        let now = self.env.clock.monotonic_nanos();
        // Bounded: a tick re-arms from `now`, so at most one tick fires per call.
        for _ in 0..10_000 {
            let timeout =
                self.http_callouts.iter().filter(|p| p.deadline.is_some_and(|d| d <= now)).min_by_key(|p| p.deadline);
            let tick = self.next_tick.filter(|t| *t <= now);
            match (timeout.map(|p| (p.callout.token, p.deadline)), tick) {
                (Some((token, Some(at))), t) if t.is_none_or(|t| at <= t) => {
                    self.answer_http_callout(token, CalloutReply::timeout())?;
                }
                (_, Some(_)) => {
                    self.next_tick = None;
                    if self.vm.failure().is_none() {
                        let r = self.vm.on_tick(self.root_id);
                        self.after_guest_call(r)?;
                    }
                }
                _ => return Ok(()),
            }
        }
        Err(Error::Usage("timers kept coming due without end".into()))
    }

    fn arm_tick(&mut self) {
        match self.vm.tick_period(self.root_id) {
            Some(p) if self.next_tick.is_none() => {
                self.next_tick = Some(self.env.clock.monotonic_nanos() + p.as_nanos() as i64)
            }
            None => self.next_tick = None,
            _ => {}
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
    pub fn answer_http_callout(&mut self, token: u32, reply: CalloutReply) -> Result<()> {
        let at = self
            .http_callouts
            .iter()
            .position(|p| p.callout.token == token)
            .ok_or_else(|| Error::Usage(format!("no pending HTTP callout with token {token}")))?;
        let pending = self.http_callouts.remove(at);
        if self.vm.failure().is_some() {
            return Ok(());
        }
        let r = self.vm.deliver_http_response(&pending.callout, reply.into_data());
        self.after_guest_call(r)
    }

    /// Calls any export of the module on context `context_id`, then does what Envoy does after a
    /// callback (deferred actions, queue events, callouts). For tests that exercise hostcalls
    /// through a probe module.
    pub fn invoke(&mut self, name: &str, context_id: u32, params: &[wasmtime::Val]) -> Result<Vec<wasmtime::Val>> {
        // The guest's own error comes back as it was (a trap stays a trap), after the failure
        // policy has run.
        match self.vm.invoke(name, context_id, params) {
            Ok(values) => {
                self.pump()?;
                Ok(values)
            }
            Err(e) if e.is_guest_fault() => {
                self.on_vm_failure(e.to_string());
                self.pump()?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Delivers what other VMs sent meanwhile (queue events) and what the last callbacks left to do.
    pub fn deliver_pending(&mut self) -> Result<()> {
        self.pump()
    }

    /// Calls `waker` whenever a queue event for this plugin arrives, from any thread: the driver
    /// then calls [`Plugin::deliver_pending`] on its own thread. Without it, events wait for the
    /// next call into the core.
    pub fn set_queue_waker(&mut self, waker: QueueWaker) {
        *self.inbox.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker);
    }

    /// Runs a guest callback's aftermath: record failures, apply deferred actions, deliver queue
    /// events, until nothing is left to do.
    fn after_guest_call<T>(&mut self, r: Result<T>) -> Result<()> {
        match r {
            Ok(_) => self.pump(),
            Err(e) if e.is_guest_fault() => {
                self.on_vm_failure(e.to_string());
                self.pump()
            }
            Err(e) => Err(e),
        }
    }

    fn on_vm_failure(&mut self, why: String) {
        let then = match self.info.failure_policy {
            FailurePolicy::FailReload => "new streams get a fresh VM after a 1 s backoff",
            FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => "its streams pass without it",
            _ => "its streams are refused with 503",
        };
        tracing::error!(target: "wasm", "plugin `{}`: the VM failed: {why}; {then}", self.info.name);
        self.vm_failures.push(why);
        self.failed_at = Some(self.env.clock.monotonic_nanos());
        // Pending callouts and gRPC calls die with the VM.
        self.http_callouts.clear();
        for call in std::mem::take(&mut self.grpc_calls) {
            self.effects.push(Effect::GrpcCancel(call.token));
        }
        self.next_tick = None;
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

    /// For FAIL_RELOAD: a fresh VM once the backoff has passed since the failure.
    fn maybe_reload(&mut self) -> Result<()> {
        if self.info.failure_policy != FailurePolicy::FailReload || self.vm.failure().is_none() {
            return Ok(());
        }
        let stats = &self.env.vm_stats;
        let now = self.env.clock.monotonic_nanos();
        if self.failed_at.is_some_and(|t| now - t < RELOAD_BACKOFF_NANOS) {
            stats.reload_backoff.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        stats.reload.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started =
            Vm::new(&self.runtime, self.module.clone(), self.vm_options.clone(), self.env.clone(), self.inbox.clone())
                .and_then(|mut vm| vm.start_plugin(self.info.clone()).map(|root| (vm, root)));
        let counter = if started.is_ok() { &stats.reload_success } else { &stats.reload_failure };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (vm, root) = started?;
        self.root_id = root;
        self.vm = vm;
        self.failed_at = None;
        self.next_tick = None;
        tracing::info!(target: "wasm", "plugin `{}`: a fresh VM replaces the failed one", self.info.name);
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
                if self.vm.failure().is_none() && root == self.root_id {
                    let r = self.vm.on_queue_ready(root, queue);
                    self.record_fault(r);
                }
            }
            self.arm_tick();
            if !progressed {
                return Ok(());
            }
        }
        Err(Error::Usage("the plugin kept producing work (actions, queue events) without end".into()))
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
        if let Err(e) = r {
            if e.is_guest_fault() {
                self.on_vm_failure(e.to_string());
            }
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

    fn new_stream_id(&mut self) -> StreamId {
        self.next_stream_id += 1;
        StreamId(self.next_stream_id)
    }
}

fn action_context(action: &HostAction) -> u32 {
    match action {
        HostAction::Continue { context_id, .. }
        | HostAction::Close { context_id, .. }
        | HostAction::LocalReply { context_id, .. }
        | HostAction::Done { context_id } => *context_id,
    }
}
