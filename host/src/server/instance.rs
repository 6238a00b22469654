//! One plugin instance on one worker: the VM (driven by the same core the harness uses), its clock
//! kept in step with real time, and its callouts sent to real clusters.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::cluster::{UpstreamResponse, CONNECT_FAILURE};
use super::Shared;
use crate::harness::{CalloutReply, Harness};
use crate::stream::HeaderMap;

thread_local! {
    /// Signalled whenever something may have moved a stream of this worker on (a callout answer, a
    /// tick): a request waiting on any of its filters wakes up and looks.
    static PROGRESS: Rc<Notify> = Rc::new(Notify::new());
}

/// This worker's progress signal.
pub(crate) fn progress() -> Rc<Notify> {
    PROGRESS.with(Rc::clone)
}

/// A plugin instance of a worker.
pub(crate) struct Instance {
    pub harness: RefCell<Harness>,
    /// gRPC streams the plugin opened, by token.
    streams: RefCell<std::collections::HashMap<u32, super::grpc_stream::OpenStream>>,
    dispatched: RefCell<HashSet<u32>>,
    shared: Arc<Shared>,
}

impl Instance {
    pub(crate) fn new(harness: Harness, shared: Arc<Shared>) -> Rc<Self> {
        Rc::new(Self {
            harness: RefCell::new(harness),
            streams: Default::default(),
            dispatched: Default::default(),
            shared,
        })
    }

    /// What every worker shares (clusters).
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Opens the plugin's new gRPC streams, sends what it queued on open ones, and drops the ones
    /// it cancelled or that ended.
    fn dispatch_grpc_streams(self: &Rc<Self>) {
        let calls: Vec<_> = self.harness.borrow().grpc_callouts().iter().filter(|c| c.streaming).cloned().collect();
        let mut streams = self.streams.borrow_mut();
        streams.retain(|token, _| calls.iter().any(|c| c.token == *token));
        for call in &calls {
            match streams.get_mut(&call.token) {
                Some(s) => s.catch_up(call),
                None => {
                    streams.insert(call.token, super::grpc_stream::OpenStream::open(self, call));
                }
            }
        }
    }

    /// Moves the plugin's clock to now: due ticks fire, overdue callouts time out (Envoy's 504).
    pub(crate) fn sync_clock(&self) {
        let mut h = self.harness.borrow_mut();
        let behind = self.shared.clock_now_nanos() - h.now_nanos();
        if behind > 0 {
            let _ = h.advance_time(Duration::from_nanos(behind as u64));
        }
    }

    /// Sends the plugin's new unary gRPC calls; each reply (or status) goes back to the plugin.
    fn dispatch_grpc(self: &Rc<Self>) {
        if self.harness.borrow().grpc_callouts().iter().any(|c| c.streaming) || !self.streams.borrow().is_empty() {
            self.dispatch_grpc_streams();
        }
        let calls: Vec<_> = self.harness.borrow().grpc_callouts().iter().filter(|c| !c.streaming).cloned().collect();
        for call in calls {
            if !self.dispatched.borrow_mut().insert(call.token) {
                continue;
            }
            let this = self.clone();
            tokio::task::spawn_local(async move {
                let cluster = crate::abi::grpc::grpc_cluster(&call.cluster);
                let reply = match this.shared.clusters.get(&cluster) {
                    Some(c) => {
                        let message = call.messages.first().cloned().unwrap_or_default();
                        c.grpc_unary(&call.service, &call.method, &call.metadata, &message, call.timeout).await
                    }
                    None => Err((14, CONNECT_FAILURE.to_string())),
                };
                this.sync_clock();
                let _ = this.harness.borrow_mut().respond_grpc_call(call.token, reply);
                this.dispatched.borrow_mut().remove(&call.token);
                this.dispatch_callouts();
                progress().notify_waiters();
            });
        }
    }

    /// Sends the plugin's new callouts to their clusters; each answer goes back to the plugin.
    pub(crate) fn dispatch_callouts(self: &Rc<Self>) {
        self.dispatch_grpc();
        let calls = self.harness.borrow().http_callouts();
        for call in calls {
            if !self.dispatched.borrow_mut().insert(call.token) {
                continue;
            }
            let this = self.clone();
            tokio::task::spawn_local(async move {
                let reply = match this.shared.clusters.get(&call.cluster) {
                    Some(c) => {
                        let headers =
                            HeaderMap::from_pairs(call.headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
                        c.send(&headers, Bytes::from(call.body.clone()), call.timeout).await
                    }
                    None => UpstreamResponse::local(503, CONNECT_FAILURE),
                };
                let status = reply.headers.get_str(":status").and_then(|s| s.parse().ok()).unwrap_or(503);
                let mut r = CalloutReply::new(status);
                for (k, v) in reply.headers.iter().filter(|(k, _)| !k.starts_with(b":")) {
                    r = r.header(&String::from_utf8_lossy(k), v);
                }
                let mut r = r.body(reply.body.to_vec());
                for (k, v) in reply.trailers.iter() {
                    r = r.trailer(&String::from_utf8_lossy(k), v);
                }
                // A callout the plugin already timed out is no longer pending: nothing to do.
                this.sync_clock();
                let r = this.harness.borrow_mut().respond_http_callout(call.token, r);
                tracing::debug!(token = call.token, answered = r.is_ok(), "callout to `{}` done", call.cluster);
                this.dispatched.borrow_mut().remove(&call.token);
                this.dispatch_callouts();
                progress().notify_waiters();
            });
        }
    }
}

/// Keeps every instance of a worker ticking while no request waits on it.
pub(crate) async fn ticker(instances: Rc<RefCell<Vec<Rc<Instance>>>>) {
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    loop {
        interval.tick().await;
        let current = instances.borrow().clone();
        for i in &current {
            i.sync_clock();
            i.dispatch_callouts();
        }
        progress().notify_waiters();
    }
}
