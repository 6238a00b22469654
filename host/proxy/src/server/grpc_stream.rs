//! gRPC streams a plugin opened (`proxy_grpc_stream`), over the cluster's HTTP/2 connection: the
//! plugin's messages go out as it sends them, the upstream's initial metadata, messages, trailers
//! and status come back to it as they arrive.

use std::rc::Rc;

use bytes::{Buf, BytesMut};
use hyper::body::Frame;

use super::body::{BodySender, PipeBody};
use super::cluster::{UpstreamBody, CONNECT_FAILURE};
use super::grpc_wire::{code_number, framed, grpc_code, via_upstream};
use super::Shared;
use tonic::Code;

use sluice_core::plugin_vm::PluginVm;
use sluice_core::stream::HeaderMap;
use sluice_core::vm::{CalloutToken, GrpcCallout};

/// Where an open stream's events go: the plugin's VM on this worker (its instance), which does
/// what the plugin asks for after each.
pub(crate) trait StreamOwner: 'static {
    /// Runs `f` on the plugin's VM.
    fn deliver(self: &Rc<Self>, f: impl FnOnce(&mut PluginVm));
    /// Stream `token` is over: forget it.
    fn ended(&self, token: CalloutToken);
    /// What every worker shares (the clusters).
    fn shared(&self) -> &Shared;
}

/// One open stream: where the plugin's next messages go.
pub(crate) struct OpenStream {
    /// The plugin's messages in order (`None`: it half-closed), fed to the request body.
    out: Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
    feeder: tokio::task::JoinHandle<()>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        // The plugin cancelled the stream, or it ended: stop talking to the upstream.
        self.task.abort();
        self.feeder.abort();
    }
}

fn frame(message: &[u8]) -> Frame<bytes::Bytes> {
    Frame::data(framed(message).into())
}

impl OpenStream {
    /// Opens `call` with the messages the plugin queued so far.
    pub(crate) fn open<O: StreamOwner>(owner: &Rc<O>, call: &GrpcCallout) -> Self {
        let (tx, body) = PipeBody::channel(None);
        let (out, mut messages) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        // The request body takes the messages in order, as fast as the upstream reads them.
        let feeder = tokio::task::spawn_local(async move {
            let tx: BodySender = tx;
            while let Some(m) = messages.recv().await {
                if tx.send(Ok(frame(&m))).await.is_err() {
                    return;
                }
            }
        });
        let task = tokio::task::spawn_local(run(owner.clone(), call.clone(), body));
        let mut s = OpenStream { out: Some(out), task, feeder };
        for m in &call.messages {
            s.send(Some(m.clone()), false);
        }
        if call.half_closed {
            s.send(None, true);
        }
        s
    }

    /// Sends one more message; `end_of_stream` ends the request (the plugin half-closed).
    pub(crate) fn send(&mut self, message: Option<Vec<u8>>, end_of_stream: bool) {
        if let (Some(out), Some(m)) = (&self.out, message) {
            let _ = out.send(m);
        }
        if end_of_stream {
            // Dropping the sender lets the feeder end the body once it has sent the rest.
            self.out = None;
        }
    }
}

/// The status in a reply's headers or trailers, if it has one.
fn status_of(h: &HeaderMap) -> Option<(Code, String)> {
    let status = grpc_code(h.get_str("grpc-status")?);
    Some((status, via_upstream(h.get_str("grpc-message").unwrap_or_default())))
}

async fn run<O: StreamOwner>(owner: Rc<O>, call: GrpcCallout, body: PipeBody) {
    let token = call.token;
    let close = |status: Code, message: String, trailers: HeaderMap| {
        owner.deliver(|h| {
            let _ = h.close_grpc_stream(token, trailers, code_number(status), &message);
        });
        owner.ended(token);
    };
    let cluster = call.cluster_name();
    let Some(c) = owner.shared().clusters.get(&cluster) else {
        return close(Code::Unavailable, CONNECT_FAILURE.into(), HeaderMap::new());
    };
    let mut headers = HeaderMap::from_pairs([
        (":method", "POST".to_string()),
        (":path", format!("/{}/{}", call.service, call.method)),
        (":authority", cluster.clone()),
    ]);
    for (k, v) in super::grpc_wire::request_headers(&call.metadata, None) {
        headers.add(k, v);
    }
    let head = c.start(&headers, body, None).await;
    let UpstreamBody::Stream(mut stream) = head.body else {
        return close(Code::Unavailable, CONNECT_FAILURE.into(), HeaderMap::new());
    };
    // A trailers-only reply carries the status in its headers.
    if let Some((status, message)) = status_of(&head.headers) {
        return close(status, message, HeaderMap::new());
    }
    let mut initial = HeaderMap::new();
    for (k, v) in head.headers.iter().filter(|(k, _)| !k.starts_with(b":")) {
        initial.add(k, v);
    }
    owner.deliver(|h| {
        let _ = h.grpc_stream_initial_metadata(token, initial);
    });
    let mut pending = BytesMut::new();
    while let Some(frame) = stream.next().await {
        let Ok(frame) = frame else {
            return close(Code::Unavailable, CONNECT_FAILURE.into(), HeaderMap::new());
        };
        match frame.into_data() {
            Ok(data) => {
                pending.extend_from_slice(&data);
                while pending.len() >= 5 {
                    let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
                    if pending.len() < 5 + len {
                        break;
                    }
                    pending.advance(5);
                    let message = pending.split_to(len).to_vec();
                    owner.deliver(|h| {
                        let _ = h.grpc_stream_message(token, message);
                    });
                }
            }
            Err(frame) => {
                let mut trailers = HeaderMap::new();
                if let Ok(t) = frame.into_trailers() {
                    for (k, v) in &t {
                        trailers.add(k.as_str(), v.as_bytes());
                    }
                }
                let (status, message) = status_of(&trailers).unwrap_or((Code::Internal, "no grpc-status".into()));
                return close(status, message, trailers);
            }
        }
    }
    close(Code::Internal, "the stream ended without trailers".into(), HeaderMap::new());
}
