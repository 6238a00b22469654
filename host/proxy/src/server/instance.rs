//! One plugin instance on one worker: the production driver of a [`PluginVm`](sluice_core::plugin_vm::PluginVm)
//! core. Whatever the core asks for is done at once: callouts go to real clusters, the next timer
//! is armed on tokio (and only while one is due: an idle instance costs nothing), and a request
//! whose stream moved is woken by its own signal.

use std::cell::RefCell;
// Keys are small integers the host hands out: no need for SipHash's resistance to chosen keys.
use rustc_hash::FxHashMap as HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::cluster::{UpstreamResponse, CONNECT_FAILURE};
use super::grpc_stream::{OpenStream, StreamOwner};
use super::Shared;
use sluice_core::error::Report;
use sluice_core::plugin_vm::{CalloutReply, Effect, PluginId, PluginVm, StreamId};
use sluice_core::stream::HeaderMap;
use sluice_core::vm::{CalloutToken, GrpcCallout, HttpCallout};

/// One plugin of an instance: what a listener's filter chain holds.
#[derive(Clone)]
pub(crate) struct Filter {
    /// The VM it runs in.
    pub instance: Rc<Instance>,
    /// Which of the VM's plugins it is.
    pub plugin: PluginId,
}

/// The worker's VMs as a stream's [`chain`](sluice_core::chain) reaches them: each step runs on the
/// instance, which then does at once what the VM asked for.
pub(crate) struct Instances;

impl sluice_core::chain::Vms for Instances {
    type Key = Rc<Instance>;

    fn step<T>(&mut self, key: &Rc<Instance>, f: impl FnOnce(&mut PluginVm) -> T) -> T {
        key.with(f)
    }

    fn peek<T>(&self, key: &Rc<Instance>, f: impl FnOnce(&PluginVm) -> T) -> T {
        key.peek(f)
    }
}

/// A VM of a worker, with the plugins that share it.
pub(crate) struct Instance {
    plugin: RefCell<PluginVm>,
    /// The signal of each request or connection with a stream here, by stream.
    wakers: RefCell<HashMap<StreamId, Rc<Notify>>>,
    /// gRPC streams the plugin opened, by token.
    grpc_streams: RefCell<HashMap<CalloutToken, OpenStream>>,
    /// The armed timer: when it fires (the clock's monotonic nanoseconds) and its task.
    timer: RefCell<Option<(i64, tokio::task::JoinHandle<()>)>>,
    /// Delivers queue events when another VM enqueues.
    queue_task: RefCell<Option<tokio::task::JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some((_, task)) = self.timer.get_mut().take() {
            task.abort();
        }
        if let Some(task) = self.queue_task.get_mut().take() {
            task.abort();
        }
    }
}

impl Instance {
    /// Wraps a started plugin. Call [`Instance::start`] inside the worker's task set.
    pub(crate) fn new(plugin: PluginVm, shared: Arc<Shared>) -> Rc<Self> {
        Rc::new(Self {
            plugin: RefCell::new(plugin),
            wakers: Default::default(),
            grpc_streams: Default::default(),
            timer: RefCell::new(None),
            queue_task: RefCell::new(None),
            shared,
        })
    }

    /// Does what the plugin asked for while it started (callouts from `on_configure`, its first
    /// tick), and from now on delivers queue events as they arrive (they may come from any
    /// worker).
    pub(crate) fn start(self: &Rc<Self>) {
        let signal = Arc::new(Notify::new());
        let poke = signal.clone();
        self.plugin.borrow_mut().set_queue_waker(Arc::new(move || poke.notify_one()));
        let this = Rc::downgrade(self);
        let task = tokio::task::spawn_local(async move {
            loop {
                signal.notified().await;
                let Some(this) = this.upgrade() else { return };
                if let Err(e) = this.with(|p| p.deliver_pending()) {
                    tracing::warn!(target: "wasm", "delivering queue events failed: {}", Report(&e));
                }
            }
        });
        *self.queue_task.borrow_mut() = Some(task);
        self.dispatch();
    }

    /// What every worker shares (clusters).
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Runs `f` on the plugin, then does what it asked for.
    pub(crate) fn with<T>(self: &Rc<Self>, f: impl FnOnce(&mut PluginVm) -> T) -> T {
        let out = f(&mut self.plugin.borrow_mut());
        self.dispatch();
        out
    }

    /// Runs `f` on a VM that is not started yet (no task set needed: nothing is dispatched
    /// until [`Instance::start`]).
    pub(crate) fn with_unstarted<T>(&self, f: impl FnOnce(&mut PluginVm) -> T) -> T {
        f(&mut self.plugin.borrow_mut())
    }

    /// Reads the plugin without stepping it.
    pub(crate) fn peek<T>(&self, f: impl FnOnce(&PluginVm) -> T) -> T {
        f(&self.plugin.borrow())
    }

    /// Wakes `waker` whenever stream `id` moves on outside its own steps.
    pub(crate) fn watch(&self, id: StreamId, waker: Rc<Notify>) {
        self.wakers.borrow_mut().insert(id, waker);
    }

    /// Stops waking for stream `id`.
    pub(crate) fn unwatch(&self, id: StreamId) {
        self.wakers.borrow_mut().remove(&id);
    }

    /// Does everything the core asked for since the last time.
    fn dispatch(self: &Rc<Self>) {
        loop {
            let effects = self.plugin.borrow_mut().take_effects();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                match effect {
                    Effect::HttpCallout(call) => self.send_http(call),
                    Effect::GrpcOpen(call) if call.streaming => {
                        let stream = OpenStream::open(self, &call);
                        self.grpc_streams.borrow_mut().insert(call.token, stream);
                    }
                    Effect::GrpcOpen(call) => self.send_grpc(call),
                    Effect::GrpcSend { token, message, end_of_stream } => {
                        if let Some(s) = self.grpc_streams.borrow_mut().get_mut(&token) {
                            s.send(message, end_of_stream);
                        }
                    }
                    Effect::GrpcCancel(token) => {
                        // Dropping the stream stops talking to the upstream.
                        self.grpc_streams.borrow_mut().remove(&token);
                    }
                    Effect::Wake(id) => {
                        if let Some(w) = self.wakers.borrow().get(&id) {
                            w.notify_one();
                        }
                    }
                }
            }
        }
        self.arm_timer();
    }

    /// Forgets a gRPC stream that ended.
    fn grpc_stream_ended(&self, token: CalloutToken) {
        self.grpc_streams.borrow_mut().remove(&token);
    }

    /// Keeps one tokio timer armed for the core's next deadline, and none while nothing is due.
    fn arm_timer(self: &Rc<Self>) {
        let (next, now) = {
            let p = self.plugin.borrow();
            (p.next_deadline(), p.env().clock.monotonic_nanos())
        };
        let mut timer = self.timer.borrow_mut();
        if timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, task)) = timer.take() {
            task.abort();
        }
        let Some(at) = next else { return };
        let delay = Duration::from_nanos(at.saturating_sub(now).max(0) as u64);
        let this: Weak<Self> = Rc::downgrade(self);
        let task = tokio::task::spawn_local(async move {
            tokio::time::sleep(delay).await;
            let Some(this) = this.upgrade() else { return };
            // This task is done: forget it without aborting it.
            this.timer.borrow_mut().take();
            this.with(|p| {
                if let Err(e) = p.fire_due() {
                    tracing::warn!(target: "wasm", "a timer of plugin `{}` failed: {}", p.info(PluginId::FIRST).name, Report(&e));
                }
            });
        });
        *timer = Some((at, task));
    }

    /// Sends a unary gRPC call; its reply (or status) goes back to the plugin.
    fn send_grpc(self: &Rc<Self>, call: GrpcCallout) {
        let this = self.clone();
        tokio::task::spawn_local(async move {
            let cluster = call.cluster_name();
            let reply = match this.shared.clusters.get(&cluster) {
                Some(c) => {
                    let message = call.messages.first().cloned().unwrap_or_default();
                    c.grpc_unary(&call.service, &call.method, &call.metadata, &message, call.timeout).await
                }
                None => Err(tonic::Status::unavailable(CONNECT_FAILURE)),
            };
            let reply = reply.map_err(|s| (super::grpc_wire::code_number(s.code()), s.message().to_string()));
            // A call the plugin cancelled is no longer open: nothing to deliver.
            let _ = this.with(|p| p.respond_grpc_call(call.token, reply));
        });
    }

    /// Sends an HTTP callout to its cluster; the answer goes back to the plugin.
    fn send_http(self: &Rc<Self>, call: HttpCallout) {
        let this = self.clone();
        tokio::task::spawn_local(async move {
            let reply = match this.shared.clusters.get(&call.cluster) {
                Some(c) => {
                    let mut headers =
                        HeaderMap::from_pairs(call.headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
                    // Envoy's async client marks the request internal and, as its router does,
                    // tells the upstream how long it will wait.
                    headers.replace("x-envoy-internal", "true");
                    if let Some(ms) = call.timeout.map(|t| t.as_millis()).filter(|ms| *ms > 0) {
                        headers.replace("x-envoy-expected-rq-timeout-ms", ms.to_string());
                    }
                    c.send(&headers, Bytes::from(call.body), call.timeout).await
                }
                None => Ok(UpstreamResponse::local(503, CONNECT_FAILURE)),
            };
            let r = match reply {
                Ok(reply) => callout_reply(reply),
                Err(super::cluster::BrokeOff) => CalloutReply::reset(),
            };
            // Streams already woken (by an earlier answer that resumed them) move on first: in
            // Envoy a resumed stream continues before the next event is handled.
            tokio::task::yield_now().await;
            // A callout the plugin already timed out is no longer pending: nothing to do.
            let answered = this.with(|p| p.answer_http_callout(call.token, r)).is_ok();
            tracing::debug!(token = call.token.get(), answered, "callout to `{}` done", call.cluster);
        });
    }
}

/// A whole upstream response as the plugin's callout answer.
fn callout_reply(reply: UpstreamResponse) -> CalloutReply {
    let status = reply.headers.get_str(":status").and_then(|s| s.parse().ok()).unwrap_or(503);
    let mut r = CalloutReply::new(status);
    for (k, v) in reply.headers.iter().filter(|(k, _)| !k.starts_with(b":")) {
        r = r.header(&String::from_utf8_lossy(k), v);
    }
    let mut r = r.upstream_body(reply.body.to_vec());
    for (k, v) in reply.trailers.iter() {
        r = r.trailer(&String::from_utf8_lossy(k), v);
    }
    r
}

/// A gRPC stream's events go to the instance whose plugin opened it.
impl StreamOwner for Instance {
    fn deliver(self: &Rc<Self>, f: impl FnOnce(&mut PluginVm)) {
        self.with(f);
    }

    fn ended(&self, token: CalloutToken) {
        self.grpc_stream_ended(token);
    }

    fn shared(&self) -> &Shared {
        Instance::shared(self)
    }
}
