//! One HTTP request through a listener: routing, the wasm filters (each a stream of the
//! [`chain`](sluice_core::chain) of the core, which the harness drives too), the upstream, and the answer.
//!
//! Bodies stream: each frame from the client goes through the filters as it arrives and on to the
//! upstream as they let it through, and the response comes back the same way; a filter that buffers
//! holds data in the core, where the buffer limit and its 413 apply as in Envoy.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use hyper::body::Incoming;

use hyper::body::{Body as _, Frame};

use super::body::{BodySender, PipeBody};
use super::cluster::{UpstreamBody, UpstreamHead, UpstreamResponse};
use super::head_check::{Refusal, Refused};
use super::instance::{Filter, Instance, Instances};
use super::reset::Reset;
use super::route;
use super::Shared;
use crate::config::{HttpListener, RouteAction, RoutePlan};
use sluice_core::chain::{Answer, HttpChain};
use sluice_core::error::Report;
use sluice_core::plugin_vm::{Direction, Forwarded};
use sluice_core::stream::{HeaderMap, StreamInfo};

/// Per worker, per listener: the routes and the filter instance.
pub(crate) struct ListenerState {
    pub plan: HttpListener,
    /// The listener's `metadata` (`xds.listener_metadata`).
    pub metadata: sluice_core::stream::Metadata,
    /// `http.<stat_prefix>.*`, shared by every worker.
    pub stats: std::sync::Arc<super::stats::HttpStats>,
    /// The connection manager's access logs, written when a request completes.
    pub access_logs: Vec<super::access_log::AccessLog>,
    /// The wasm filters, in order (swapped whole by `--watch`; a request keeps the ones it began with).
    pub filters: std::cell::RefCell<Vec<Filter>>,
    /// The `envoy.access_loggers.wasm` plugins, handed each request once it is complete.
    pub access_loggers: Vec<Filter>,
    pub shared: std::sync::Arc<Shared>,
}

const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"];

/// A random (version 4) UUID, as Envoy's request id: from a per-worker SplitMix64 stream seeded
/// from the OS once, so a request costs no system call.
fn request_id(seed: u32, n: u64) -> String {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        });
    }
    let next = || {
        STATE.with(|s| {
            let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15 ^ u64::from(seed) ^ n);
            s.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Whether Envoy treats the request as gRPC (`content-type: application/grpc`, `+proto` and the like).
fn is_grpc(req: &HeaderMap) -> bool {
    req.get_str("content-type").is_some_and(|t| {
        t == "application/grpc" || t.starts_with("application/grpc+") || t.starts_with("application/grpc;")
    })
}

/// The router's own answer (upstream failure, timeout) to a gRPC request, as Envoy sends it: a
/// trailers-only gRPC response with the HTTP status mapped to a gRPC status and the text as
/// `grpc-message`.
fn grpc_local_reply(head: UpstreamHead) -> UpstreamHead {
    let status = head.headers.get_str(":status").and_then(|s| s.parse().ok()).unwrap_or(503);
    let body = match head.body {
        super::cluster::UpstreamBody::Full { body, .. } => body.to_vec(),
        super::cluster::UpstreamBody::Stream(_) => Vec::new(),
    };
    let reply =
        sluice_core::vm::LocalReply { status, details: String::new(), body, headers: Vec::new(), grpc_status: None };
    let (mut headers, _) = sluice_core::stream::local_reply_message(&reply, true);
    // gRPC clients speak HTTP/2, where Envoy frames the end of stream, not a `content-length: 0`.
    headers.remove("content-length");
    UpstreamResponse { headers, body: Bytes::new(), trailers: HeaderMap::new() }.into()
}

/// Where the request goes once the filters let its headers through: a route's own answer, or an
/// upstream request whose body streams in through `body`.
async fn run_route(state: &ListenerState, route: Option<&RoutePlan>, req: &HeaderMap, body: PipeBody) -> UpstreamHead {
    let Some(route) = route else {
        let mut headers = HeaderMap::from_pairs([(":status", "404")]);
        headers.add("content-length", "0");
        return UpstreamResponse { headers, body: Bytes::new(), trailers: HeaderMap::new() }.into();
    };
    match &route.action {
        RouteAction::Direct { status, body } => {
            let mut headers = HeaderMap::from_pairs([(":status", status.to_string())]);
            headers.add("content-length", body.len().to_string());
            if !body.is_empty() {
                headers.add("content-type", "text/plain");
            }
            UpstreamResponse { headers, body: Bytes::from(body.clone()), trailers: HeaderMap::new() }.into()
        }
        RouteAction::Redirect { status, path, host, https } => {
            let scheme = if *https { "https" } else { req.get_str(":scheme").unwrap_or("http") };
            let host = host.clone().unwrap_or_else(|| req.get_str(":authority").unwrap_or_default().to_string());
            let p = path.clone().unwrap_or_else(|| req.get_str(":path").unwrap_or("/").to_string());
            let mut headers = HeaderMap::from_pairs([(":status", status.to_string())]);
            headers.add("location", format!("{scheme}://{host}{p}"));
            headers.add("content-length", "0");
            UpstreamResponse { headers, body: Bytes::new(), trailers: HeaderMap::new() }.into()
        }
        RouteAction::Cluster { cluster, prefix_rewrite, timeout } => {
            let mut headers = req.clone();
            if let (Some(new), crate::config::PathMatch::Prefix(old)) = (prefix_rewrite, &route.path) {
                let path = headers.get_str(":path").unwrap_or("/").to_string();
                headers.replace(":path", format!("{new}{}", path.strip_prefix(old.as_str()).unwrap_or(&path)));
            }
            // The router tells the upstream how long it will wait (router.cc, `finalTimeout`).
            if let Some(ms) = timeout.map(|t| t.as_millis()).filter(|ms| *ms > 0) {
                headers.replace("x-envoy-expected-rq-timeout-ms", ms.to_string());
            }
            let head = match state.shared.clusters.get(cluster) {
                Some(c) => c.start(&headers, body, *timeout).await,
                None => UpstreamResponse::local(503, "no healthy upstream").into(),
            };
            let mut head = if head.address.is_none() && is_grpc(req) { grpc_local_reply(head) } else { head };
            head.cluster = Some(cluster.clone());
            head
        }
    }
}

fn route_info(
    state: &ListenerState,
    headers: &HeaderMap,
    version: hyper::Version,
    peer: SocketAddr,
    local: SocketAddr,
    connection: u64,
) -> StreamInfo {
    let protocol = match version {
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    let mut info = StreamInfo {
        source: Some(peer),
        destination: Some(local),
        protocol: Some(protocol.into()),
        listener_metadata: Some(state.metadata.clone()),
        connection_id: connection,
        ..Default::default()
    };
    if let Some(vh) = route::virtual_host(&state.plan.virtual_hosts, headers.get_str(":authority").unwrap_or_default())
    {
        info.virtual_host_name = Some(vh.name.clone());
        info.virtual_host_metadata = Some(vh.metadata.clone());
        if let Some(r) = route::route(vh, headers) {
            info.route_name = Some(r.name.clone());
            info.route_metadata = Some(r.metadata.clone());
            if let RouteAction::Cluster { cluster, .. } = &r.action {
                info.cluster_name = Some(cluster.clone());
                info.cluster_metadata = state.shared.clusters.get(cluster).map(|c| c.metadata().clone());
            }
        }
    }
    info
}

/// Serves one request. The request and the response stream through the filters (as Envoy's
/// filter manager passes them on) on a task of their own; this returns when the client's response
/// headers are ready.
pub(crate) async fn handle(
    state: Rc<ListenerState>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
    connection: u64,
    refused: Option<Refused>,
) -> Result<hyper::Response<PipeBody>, Reset> {
    let n = state.shared.next_request();
    state.stats.rq_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    if let Some(refusal) = front_refusal(&state, &parts, refused, peer, local) {
        return Ok(refusal);
    }
    // An HTTP/1.0 connection closes after the response unless the client asked to keep it, and
    // Envoy says so (hyper would only close it).
    let close_10 = parts.version == hyper::Version::HTTP_10
        && !parts
            .headers
            .get_all(hyper::header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("keep-alive"))));
    let authority = parts
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| parts.headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_string))
        .or_else(|| {
            (parts.version == hyper::Version::HTTP_10).then(|| state.plan.http1.default_host_for_http_10.clone())?
        })
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let mut headers = HeaderMap::new();
    headers.add(":authority", &authority);
    headers.add(":path", &path);
    headers.add(":method", parts.method.as_str());
    headers.add(":scheme", "http");
    for (k, v) in &parts.headers {
        // `te: trailers` is end-to-end for gRPC; every other hop-by-hop header stops here.
        let te_trailers = k == "te" && v.as_bytes().eq_ignore_ascii_case(b"trailers");
        if k != "host" && (te_trailers || !HOP_BY_HOP.contains(&k.as_str())) {
            headers.add(k.as_str(), v.as_bytes());
        }
    }
    headers.add("x-forwarded-proto", "http");
    if headers.get("x-request-id").is_none() {
        headers.add("x-request-id", request_id(state.shared.seed, n));
    }
    let filters = state.filters.borrow().clone();
    let info = (!filters.is_empty() || !state.access_loggers.is_empty())
        .then(|| route_info(&state, &headers, parts.version, peer, local, connection));
    let wake = Rc::new(tokio::sync::Notify::new());
    let chain = match &info {
        Some(info) => {
            let filters = filters.into_iter().map(|f| (f.instance, f.plugin));
            HttpChain::open(&mut Instances, filters, info, state.plan.buffer_limit)
        }
        None => HttpChain::open(&mut Instances, [], &StreamInfo::default(), state.plan.buffer_limit),
    };
    for l in chain.links() {
        l.vm.watch(l.stream, wake.clone());
    }
    let seen = (!state.access_logs.is_empty() || !state.access_loggers.is_empty()).then(|| {
        Box::new(Seen {
            info: info.unwrap_or_default(),
            start: std::time::SystemTime::now(),
            began: std::time::Instant::now(),
            protocol: match parts.version {
                hyper::Version::HTTP_10 => "HTTP/1.0",
                hyper::Version::HTTP_2 => "HTTP/2",
                _ => "HTTP/1.1",
            },
            peer,
            local,
            request: headers.clone(),
            response: None,
            received: 0,
            sent: 0,
            upstream: None,
            cluster: None,
        })
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_local(
        Exchange {
            state,
            chain,
            client_done: body.is_end_stream(),
            http2: parts.version == hyper::Version::HTTP_2,
            reply: Some(tx),
            seen,
            wake,
        }
        .run(headers, body),
    );
    let mut response = rx.await.map_err(|_| Reset)?;
    if close_10 {
        response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// Envoy's refusals, answered before any filter runs, each closing the connection: an HTTP/1 head
/// Envoy refuses (`refused`, found by [`head_check`](super::head_check) on the raw bytes), or an
/// HTTP/2 request with more header bytes than `max_request_headers_kb` (431; the path counts).
/// Each is written to the access logs as Envoy writes it: a codec refusal with flag `DPE` and no
/// request (`- -`), the connection manager's with the request it read.
fn front_refusal(
    state: &ListenerState,
    parts: &hyper::http::request::Parts,
    refused: Option<Refused>,
    peer: SocketAddr,
    local: SocketAddr,
) -> Option<hyper::Response<PipeBody>> {
    // HTTP/1 heads were measured by `head_check` already: only HTTP/2 requests are counted here.
    let refused = refused.or_else(|| {
        if parts.version != hyper::Version::HTTP_2 {
            return None;
        }
        let target = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
        let bytes: usize = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum::<usize>() + target;
        (bytes > state.plan.max_request_headers_bytes)
            .then_some(Refused { refusal: Refusal::HeadersTooLarge, request: None })
    })?;
    let (refusal, codec) = (refused.refusal, refused.refusal.is_protocol_error());
    let status = refusal.status();
    let mut headers = HeaderMap::from_pairs([(":status", status.to_string())]);
    // The codec's refusals carry the status's text; the connection manager's have no body.
    let text = if codec {
        state.stats.cx_protocol_error.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        super::reason::envoy_reason(status)
    } else {
        ""
    };
    headers.add("content-length", text.len().to_string());
    if !text.is_empty() {
        headers.add("content-type", "text/plain");
    }
    tracing::debug!(target: "http", "refused a request: {}", refusal.details());
    let mut response = to_response(&headers, PipeBody::full(Bytes::from_static(text.as_bytes()), true), state);
    response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    if !state.access_logs.is_empty() {
        let e = super::access_log::Entry {
            start: Some(std::time::SystemTime::now()),
            request: refused.request.as_ref(),
            response: Some(&headers),
            // The stand-in's version: HTTP/1.1 for the codec's refusals, whatever the head said.
            protocol: Some(match parts.version {
                hyper::Version::HTTP_2 => "HTTP/2",
                hyper::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            }),
            response_code: status,
            response_flags: codec.then_some("DPE"),
            bytes_sent: text.len() as u64,
            downstream_remote: Some(peer),
            downstream_local: Some(local),
            ..Default::default()
        };
        state.access_logs.iter().for_each(|l| l.write(&e));
    }
    Some(response)
}

/// Whether a request body failed because the client's bytes were malformed (a bad chunk), rather
/// than because the client went away mid-body (hyper: an incomplete message, or an early EOF in a
/// chunk).
fn malformed(e: &hyper::Error) -> bool {
    let eof = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
    !e.is_incomplete_message() && !eof
}

/// Whether the router answers this request itself (a direct response, a redirect, no route): then
/// it answers at the headers, as Envoy's router does, without waiting for the body.
fn answered_by_router(state: &ListenerState, req: &HeaderMap) -> bool {
    let vh = route::virtual_host(&state.plan.virtual_hosts, req.get_str(":authority").unwrap_or_default());
    !matches!(vh.and_then(|vh| route::route(vh, req)).map(|r| &r.action), Some(RouteAction::Cluster { .. }))
}

/// What a frame from a peer adds to a message.
fn from_frame(frame: hyper::body::Frame<Bytes>) -> Forwarded {
    match frame.into_data() {
        Ok(data) => Forwarded { body: data.to_vec(), ..Default::default() },
        Err(frame) => {
            let mut trailers = HeaderMap::new();
            if let Ok(t) = frame.into_trailers() {
                for (k, v) in &t {
                    trailers.add(k.as_str(), v.as_bytes());
                }
            }
            Forwarded { trailers: Some(trailers), end_of_stream: true, ..Default::default() }
        }
    }
}

fn http_trailers(t: &HeaderMap) -> hyper::HeaderMap {
    let mut out = hyper::HeaderMap::new();
    for (k, v) in t.iter() {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k), hyper::header::HeaderValue::from_bytes(v)) {
            out.append(k, v);
        }
    }
    out
}

/// The upstream side of a request.
enum Upstream {
    /// Started while the request body streams.
    Task(tokio::task::JoinHandle<(UpstreamHead, Option<tokio::time::Instant>)>),
    /// Not started yet: the request is whole.
    Whole(HeaderMap, PipeBody),
}

/// Routes `req` (again: the filters may have changed its headers, and Envoy clears its route cache)
/// and sends it. With the answer comes the route timeout's deadline, which holds until the whole
/// response has arrived.
///
/// `request_complete` says whether the whole request has gone upstream: Envoy's router tells the
/// client how long the upstream took (`x-envoy-upstream-service-time`) only when the upstream
/// answered after that.
async fn routed(
    state: &ListenerState,
    req: &HeaderMap,
    body: PipeBody,
    request_complete: &std::cell::Cell<bool>,
) -> (UpstreamHead, Option<tokio::time::Instant>) {
    let vh = route::virtual_host(&state.plan.virtual_hosts, req.get_str(":authority").unwrap_or_default());
    let r = vh.and_then(|vh| route::route(vh, req));
    let deadline = match r.map(|r| &r.action) {
        Some(RouteAction::Cluster { timeout: Some(t), .. }) => Some(tokio::time::Instant::now() + *t),
        _ => None,
    };
    let mut head = run_route(state, r, req, body).await;
    if !request_complete.get() {
        head.headers.remove("x-envoy-upstream-service-time");
    }
    (head, deadline)
}

/// One request on its way through the filters, to the upstream and back.
struct Exchange {
    state: Rc<ListenerState>,
    chain: HttpChain<Rc<Instance>>,
    client_done: bool,
    /// The client speaks HTTP/2 (a body's last DATA frame carries its end).
    http2: bool,
    reply: Option<tokio::sync::oneshot::Sender<hyper::Response<PipeBody>>>,
    /// What the access logs will say, kept only when the listener has access logs.
    seen: Option<Box<Seen>>,
    /// Signalled when a filter's stream of this request moves on by itself (a callout answered,
    /// a timer, a failed VM).
    wake: Rc<tokio::sync::Notify>,
}

/// One request as its access log line describes it.
struct Seen {
    /// The stream's facts as its filters saw them (for wasm access loggers).
    info: StreamInfo,
    start: std::time::SystemTime,
    began: std::time::Instant,
    protocol: &'static str,
    peer: SocketAddr,
    local: SocketAddr,
    request: HeaderMap,
    response: Option<HeaderMap>,
    received: u64,
    sent: u64,
    upstream: Option<SocketAddr>,
    cluster: Option<String>,
}

impl Exchange {
    async fn run(mut self, headers: HeaderMap, body: Incoming) {
        let wake = self.wake.clone();
        let mut body = super::read_joined::ReadJoined::new(body, !self.http2);
        let body_expected = !self.client_done;
        // Request side.
        let mut input =
            Some(Forwarded { headers: Some(headers), end_of_stream: self.client_done, ..Default::default() });
        // The streaming upstream request's body, while more of it is to come.
        let mut sink: Option<BodySender> = None;
        let mut upstream: Option<Upstream> = None;
        let mut answered = None;
        // Whether the whole request has gone upstream (see `routed`).
        let request_complete = Rc::new(std::cell::Cell::new(false));
        loop {
            if let Some(f) = input.take() {
                self.chain.push(&mut Instances, Direction::Request, f);
            }
            let out = self.chain.pull(&mut Instances, Direction::Request);
            let Forwarded { headers: out_headers, body: out_body, trailers: out_trailers, end_of_stream: end } = out;
            if let (Some(seen), Some(h)) = (self.seen.as_mut(), &out_headers) {
                seen.request = h.clone();
            }
            if let Some(h) = out_headers {
                let local = !end && answered_by_router(&self.state, &h);
                let exact = h.get("content-length").is_some();
                // A request that came with a body and goes on without a length is sent chunked,
                // even if the body is whole (or empty) by now: Envoy's codec frames it by whether
                // the headers ended the stream when they came, not by what a filter held since.
                let (tx, upstream_body) = if end && out_trailers.is_none() && (exact || !body_expected) {
                    (None, PipeBody::full(Bytes::from(out_body), exact))
                } else {
                    let length = if exact { h.get_str("content-length").and_then(|v| v.parse().ok()) } else { None };
                    let (tx, b) = PipeBody::channel(length);
                    Self::send_upstream(&tx, out_body, out_trailers).await;
                    (Some(tx), b)
                };
                let streams = tx.is_some();
                sink = tx;
                upstream = Some(if streams {
                    // The body is still coming: the upstream request runs beside the request side.
                    let state = self.state.clone();
                    let complete = request_complete.clone();
                    Upstream::Task(tokio::task::spawn_local(async move {
                        routed(&state, &h, upstream_body, &complete).await
                    }))
                } else {
                    // Whole already: sent when the response side starts, with no task of its own.
                    Upstream::Whole(h, upstream_body)
                });
                if local {
                    // The router answers now; the rest of the request is never read.
                    break;
                }
            } else if let Some(tx) = &sink {
                Self::send_upstream(tx, out_body, out_trailers).await;
            }
            if end {
                // Dropping the sender ends the upstream request's body.
                sink = None;
                request_complete.set(true);
            }
            if let Some(a) = self.chain.answer() {
                answered = Some(a);
                break;
            }
            if end {
                break;
            }
            let notified = wake.notified();
            tokio::select! {
                frame = body.next(), if !self.client_done && !self.chain.throttled(&Instances, Direction::Request) => match frame {
                    Some(Ok(f)) => {
                        let mut f = from_frame(f);
                        // HTTP/2: the DATA frame with END_STREAM ends the body, and Envoy hands it
                        // to the filters with `end_of_stream`; an HTTP/1 body ends in an empty
                        // chunk at the message's end, as Envoy's HTTP/1 codec has it.
                        f.end_of_stream |= self.http2 && body.is_end_stream();
                        if let Some(seen) = self.seen.as_mut() {
                            seen.received += f.body.len() as u64;
                        }
                        self.client_done = f.end_of_stream;
                        input = Some(f);
                    }
                    None => {
                        self.client_done = true;
                        input = Some(Forwarded { end_of_stream: true, ..Default::default() });
                    }
                    // A malformed body (a bad chunk) or a client gone mid-body: the upstream
                    // request is reset, never ended as if whole; a malformed one is a protocol
                    // error and gets Envoy's 400.
                    Some(Err(e)) => {
                        if let Some(tx) = &sink {
                            let _ = tx.send(Err(Reset)).await;
                        }
                        if let Some(Upstream::Task(u)) = upstream.take() {
                            u.abort();
                        }
                        if malformed(&e) {
                            self.state.stats.cx_protocol_error.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if let Some(reply) = self.reply.take() {
                                let text = super::reason::envoy_reason(400);
                                let mut h = HeaderMap::from_pairs([(":status", "400")]);
                                h.add("content-length", text.len().to_string());
                                h.add("content-type", "text/plain");
                                let body = PipeBody::full(Bytes::from(text.as_bytes().to_vec()), true);
                                let mut r = to_response(&h, body, &self.state);
                                r.headers_mut()
                                    .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                                let _ = reply.send(r);
                            }
                        }
                        return self.finish();
                    }
                },
                _ = notified => {}
            }
        }
        // Response side: from the upstream (or the answering filter) back to the client.
        if answered.is_some() {
            // The upstream request, if one started, is reset (as Envoy resets it): its body
            // breaks off rather than ending as if whole.
            if let Some(tx) = sink.take() {
                let _ = tx.send(Err(Reset)).await;
            }
            if let Some(Upstream::Task(u)) = upstream.take() {
                u.abort();
            }
        }
        if let Some(Answer { reset: true, .. }) = answered {
            return self.finish();
        }
        let (head, deadline) = match upstream.take() {
            Some(Upstream::Task(u)) => match u.await {
                Ok((head, deadline)) => (Some(head), deadline),
                Err(_) => (None, None),
            },
            Some(Upstream::Whole(h, body)) => {
                let (head, deadline) = routed(&self.state, &h, body, &std::cell::Cell::new(true)).await;
                (Some(head), deadline)
            }
            None => (None, None),
        };
        let mut upstream_body = None;
        let mut input = None;
        if let Some(head) = head {
            if let Some(seen) = self.seen.as_mut() {
                (seen.upstream, seen.cluster) = (head.address, head.cluster.clone());
            }
            if let Some(addr) = head.address {
                self.chain.set_upstream_address(&mut Instances, addr);
            }
            let f = match head.body {
                UpstreamBody::Full { body, trailers } => Forwarded {
                    headers: Some(head.headers),
                    body: body.to_vec(),
                    trailers: (!trailers.is_empty()).then_some(trailers),
                    end_of_stream: true,
                },
                UpstreamBody::Stream(s) if s.is_end_stream() => {
                    Forwarded { headers: Some(head.headers), end_of_stream: true, ..Default::default() }
                }
                UpstreamBody::Stream(s) => {
                    upstream_body = Some(s);
                    Forwarded { headers: Some(head.headers), ..Default::default() }
                }
            };
            input = Some(f);
        }
        let mut client: Option<BodySender> = None;
        loop {
            if let Some(f) = input.take() {
                // Dropped if a filter answered: the upstream's response is not read then.
                self.chain.push(&mut Instances, Direction::Response, f);
            }
            let out = self.chain.pull(&mut Instances, Direction::Response);
            let end = out.end_of_stream;
            if let Some(seen) = self.seen.as_mut() {
                seen.sent += out.body.len() as u64;
                if let Some(h) = &out.headers {
                    seen.response = Some(h.clone());
                }
            }
            if let Some(h) = &out.headers {
                let exact = h.get("content-length").is_some();
                let body = if end && out.trailers.is_none() {
                    if exact && out.body.is_empty() && !self.http2 {
                        PipeBody::EmptyWithLength
                    } else {
                        PipeBody::full(Bytes::from(out.body), exact)
                    }
                } else {
                    let length = if exact { h.get_str("content-length").and_then(|v| v.parse().ok()) } else { None };
                    let (tx, b) = PipeBody::channel(length);
                    let b = if self.http2 { b } else { b.without_trailers() };
                    let _ = tx.send(Ok(Frame::data(Bytes::from(out.body)))).await;
                    if let Some(t) = &out.trailers {
                        let _ = tx.send(Ok(Frame::trailers(http_trailers(t)))).await;
                    }
                    client = Some(tx);
                    b
                };
                if let Some(reply) = self.reply.take() {
                    let mut response = to_response(h, body, &self.state);
                    if !self.client_done {
                        // Answered before the request ended: the connection cannot carry another
                        // request (Envoy closes it too).
                        response
                            .headers_mut()
                            .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                    }
                    let _ = reply.send(response);
                }
            } else if let Some(tx) = &client {
                if !out.body.is_empty() && tx.send(Ok(Frame::data(Bytes::from(out.body)))).await.is_err() {
                    return self.finish();
                }
                if let Some(t) = &out.trailers {
                    let _ = tx.send(Ok(Frame::trailers(http_trailers(t)))).await;
                }
            }
            if end {
                return self.finish();
            }
            if self.chain.response_reset(&Instances) {
                // Reset mid-response: the client sees the connection break.
                if let Some(tx) = &client {
                    let _ = tx.send(Err(Reset)).await;
                }
                return self.finish();
            }
            let notified = wake.notified();
            tokio::select! {
                frame = async { upstream_body.as_mut().expect("guarded").next().await },
                    if upstream_body.is_some() && !self.chain.throttled(&Instances, Direction::Response) => match frame {
                    Some(Ok(f)) => input = Some(from_frame(f)),
                    None => {
                        upstream_body = None;
                        input = Some(Forwarded { end_of_stream: true, ..Default::default() });
                    }
                    Some(Err(_)) => {
                        // The upstream broke off mid-body: so does the client's response.
                        if let Some(tx) = &client {
                            let _ = tx.send(Err(Reset)).await;
                        }
                        return self.finish();
                    }
                },
                () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() && upstream_body.is_some() => {
                    // The route timeout passed with the response still coming: Envoy resets the
                    // stream (the headers are out, so the client sees it break off).
                    match &client {
                        Some(tx) => {
                            let _ = tx.send(Err(Reset)).await;
                        }
                        None => {
                            if let Some(reply) = self.reply.take() {
                                let r = UpstreamResponse::local(504, super::cluster::TIMEOUT);
                                let _ = reply.send(to_response(&r.headers, PipeBody::full(r.body, true), &self.state));
                            }
                        }
                    }
                    return self.finish();
                }
                _ = notified => {}
            }
        }
    }

    /// Sends request output on to the upstream (a closed channel means the upstream is done with it).
    async fn send_upstream(tx: &BodySender, body: Vec<u8>, trailers: Option<HeaderMap>) {
        if !body.is_empty() && tx.send(Ok(Frame::data(Bytes::from(body)))).await.is_err() {
            return;
        }
        if let Some(t) = trailers {
            let _ = tx.send(Ok(Frame::trailers(http_trailers(&t)))).await;
        }
    }

    /// Forgets the filters' streams (the client's reply, if never sent, becomes a reset) and writes
    /// the access logs.
    fn finish(mut self) {
        for l in self.chain.links() {
            l.vm.unwatch(l.stream);
        }
        if let Some((filter, e)) = self.chain.take_error(&Instances) {
            tracing::warn!(target: "wasm", "filter `{filter}`: the stream was reset: {}", Report(&e));
        }
        self.chain.close(&mut Instances);
        if let Some(seen) = &self.seen {
            let code = seen.response.as_ref().and_then(|h| h.get_str(":status")?.parse().ok()).unwrap_or(0);
            let e = super::access_log::Entry {
                start: Some(seen.start),
                duration: seen.began.elapsed(),
                request: Some(&seen.request),
                response: seen.response.as_ref(),
                protocol: Some(seen.protocol),
                response_code: code,
                response_flags: None,
                bytes_received: seen.received,
                bytes_sent: seen.sent,
                upstream_host: seen.upstream,
                upstream_cluster: seen.cluster.as_deref(),
                downstream_remote: Some(seen.peer),
                downstream_local: Some(seen.local),
            };
            self.state.access_logs.iter().for_each(|l| l.write(&e));
            if !self.state.access_loggers.is_empty() {
                let mut info = seen.info.clone();
                info.response_code = (code != 0).then_some(code.into());
                info.request_body_bytes = seen.received;
                info.response_body_bytes = seen.sent;
                info.upstream = seen.upstream;
                info.request_time_nanos =
                    seen.start.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_nanos() as i64);
                info.request_duration_nanos = Some(seen.began.elapsed().as_nanos() as i64);
                let stream =
                    sluice_core::stream::HttpStreamState::finished(&seen.request, seen.response.as_ref(), info);
                for logger in &self.state.access_loggers {
                    if let Err(e) = logger.instance.with(|p| p.log_stream(logger.plugin, stream.clone())) {
                        tracing::warn!(target: "wasm", "the access logger failed: {}", Report(&e));
                    }
                }
            }
        }
    }
}

/// The response as the client gets it. The connection manager sets `server` after the filters have
/// run (Envoy's default `server_header_transformation: OVERWRITE`), so filters never see it.
fn to_response(headers: &HeaderMap, body: PipeBody, state: &ListenerState) -> hyper::Response<PipeBody> {
    let server = &state.plan.server_name;
    let status = headers.get_str(":status").and_then(|s| s.parse::<u16>().ok());
    let status = match status.map(hyper::StatusCode::from_u16) {
        Some(Ok(s)) => s.as_u16(),
        _ => {
            tracing::warn!(target: "http", "a response with status {:?} cannot be sent: answering 502", headers.get_str(":status"));
            502
        }
    };
    state.stats.responded(status);
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers.iter() {
        if k.starts_with(b":") || k == b"server" || HOP_BY_HOP.contains(&String::from_utf8_lossy(k).as_ref()) {
            continue;
        }
        // A header a filter made with bytes HTTP forbids (CR, LF, NUL, …) is left out with a
        // warning; the status stays the filter's. (Envoy sends such bytes as they are, which is a
        // header-injection hole; turning a 403 into an empty 200 would be worse.)
        match (hyper::header::HeaderName::from_bytes(k), hyper::header::HeaderValue::from_bytes(v)) {
            (Ok(name), Ok(value)) => b = b.header(name, value),
            _ => tracing::warn!(
                target: "http",
                "dropping the response header {:?}: its name or value has bytes HTTP does not allow",
                String::from_utf8_lossy(k)
            ),
        }
    }
    b = b.header("server", server);
    // hyper writes the IANA phrase; Envoy its own (and `Unknown` for codes it does not list).
    if hyper::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason())
        != Some(super::reason::envoy_reason(status))
    {
        b = b.extension(hyper::ext::ReasonPhrase::from_static(super::reason::envoy_reason(status).as_bytes()));
    }
    b.body(body).unwrap_or_else(|_| hyper::Response::new(PipeBody::full(Bytes::new(), true)))
}
