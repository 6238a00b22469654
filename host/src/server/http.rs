//! One HTTP request through a listener: routing, the wasm filter (via the same filter-manager core
//! the harness uses), callouts, the upstream, and the answer.
//!
//! This first version buffers bodies whole on both sides (up to the listener's buffer limit) before
//! handing them on; the filter still sees Envoy's callback sequence.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::cluster::UpstreamResponse;
use super::instance::Instance;
use super::route;
use super::Shared;
use crate::config::{HttpListener, RouteAction, RoutePlan};
use crate::harness::BODY_CHUNK;
use crate::stream::{HeaderMap, StreamInfo};

/// Per worker, per listener: the routes and the filter instance.
pub(crate) struct ListenerState {
    pub plan: HttpListener,
    /// The wasm filters, in order (swapped whole by `--watch`; a request keeps the ones it began with).
    pub filters: std::cell::RefCell<Vec<Rc<Instance>>>,
    pub shared: std::sync::Arc<Shared>,
}

/// The largest request body `sluice serve` collects before the filters run (64 MiB).
const MAX_COLLECTED_BODY: usize = 64 << 20;

const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"];

/// A UUID-shaped request id: a per-process random part and a counter.
fn request_id(seed: u32, n: u64) -> String {
    format!("{seed:08x}-{:04x}-4000-8000-{:012x}", (n >> 48) & 0xffff, n & 0xffff_ffff_ffff)
}

/// A response body sent as it is, with a length only if the headers give one (otherwise HTTP/1.1
/// frames it chunked, as Envoy does when a filter removed `content-length`).
pub(crate) struct ResponseBody {
    data: Option<Bytes>,
    exact: bool,
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.data.take().filter(|d| !d.is_empty()).map(|d| Ok(hyper::body::Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(|d| d.is_empty())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match (&self.data, self.exact) {
            (Some(d), true) => hyper::body::SizeHint::with_exact(d.len() as u64),
            (None, _) => hyper::body::SizeHint::with_exact(0),
            _ => hyper::body::SizeHint::default(),
        }
    }
}

fn to_response(headers: &HeaderMap, body: Bytes) -> hyper::Response<ResponseBody> {
    let status = headers.get_str(":status").and_then(|s| s.parse().ok()).unwrap_or(502);
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in headers.iter() {
        if !k.starts_with(b":") && !HOP_BY_HOP.contains(&String::from_utf8_lossy(k).as_ref()) {
            b = b.header(k, v);
        }
    }
    let exact = headers.get("content-length").is_some();
    b.body(ResponseBody { data: Some(body), exact })
        .unwrap_or_else(|_| hyper::Response::new(ResponseBody { data: None, exact: true }))
}

async fn run_route(state: &ListenerState, route: Option<&RoutePlan>, req: &HeaderMap, body: Bytes) -> UpstreamResponse {
    let Some(route) = route else {
        let mut headers = HeaderMap::from_pairs([(":status", "404")]);
        headers.add("content-length", "0");
        return UpstreamResponse { headers, body: Bytes::new(), trailers: HeaderMap::new() };
    };
    match &route.action {
        RouteAction::Direct { status, body } => {
            let mut headers = HeaderMap::from_pairs([(":status", status.to_string())]);
            headers.add("content-length", body.len().to_string());
            if !body.is_empty() {
                headers.add("content-type", "text/plain");
            }
            UpstreamResponse { headers, body: Bytes::from(body.clone()), trailers: HeaderMap::new() }
        }
        RouteAction::Redirect { status, path, host, https } => {
            let scheme = if *https { "https" } else { req.get_str(":scheme").unwrap_or("http") };
            let host = host.clone().unwrap_or_else(|| req.get_str(":authority").unwrap_or_default().to_string());
            let p = path.clone().unwrap_or_else(|| req.get_str(":path").unwrap_or("/").to_string());
            let mut headers = HeaderMap::from_pairs([(":status", status.to_string())]);
            headers.add("location", format!("{scheme}://{host}{p}"));
            headers.add("content-length", "0");
            UpstreamResponse { headers, body: Bytes::new(), trailers: HeaderMap::new() }
        }
        RouteAction::Cluster { cluster, prefix_rewrite, timeout } => {
            let mut headers = req.clone();
            if let (Some(new), crate::config::PathMatch::Prefix(old)) = (prefix_rewrite, &route.path) {
                let path = headers.get_str(":path").unwrap_or("/").to_string();
                headers.replace(":path", format!("{new}{}", path.strip_prefix(old.as_str()).unwrap_or(&path)));
            }
            match state.shared.clusters.get(cluster) {
                Some(c) => c.send(&headers, body, *timeout).await,
                None => UpstreamResponse::local(503, "no healthy upstream"),
            }
        }
    }
}

fn route_info(state: &ListenerState, headers: &HeaderMap, peer: SocketAddr, local: SocketAddr) -> StreamInfo {
    let mut info = StreamInfo {
        source: Some(peer),
        destination: Some(local),
        protocol: Some("HTTP/1.1".into()),
        ..Default::default()
    };
    if let Some(vh) = route::virtual_host(&state.plan.virtual_hosts, headers.get_str(":authority").unwrap_or_default())
    {
        info.virtual_host_name = Some(vh.name.clone());
        if let Some(r) = route::route(vh, headers) {
            info.route_name = Some(r.name.clone());
            if let RouteAction::Cluster { cluster, .. } = &r.action {
                info.cluster_name = Some(cluster.clone());
            }
        }
    }
    info
}

/// Serves one request.
pub(crate) async fn handle(
    state: Rc<ListenerState>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<hyper::Response<ResponseBody>, Reset> {
    let n = state.shared.next_request();
    let (parts, body) = req.into_parts();
    let authority = parts
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| parts.headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let mut headers = HeaderMap::new();
    headers.add(":authority", &authority);
    headers.add(":path", &path);
    headers.add(":method", parts.method.as_str());
    headers.add(":scheme", "http");
    for (k, v) in &parts.headers {
        if k != "host" && !HOP_BY_HOP.contains(&k.as_str()) {
            headers.add(k.as_str(), v.as_bytes());
        }
    }
    headers.add("x-forwarded-proto", "http");
    if headers.get("x-request-id").is_none() {
        headers.add("x-request-id", request_id(state.shared.seed, n));
    }
    // Bodies are collected before the filters run (streaming is not done yet), so the cap is well
    // above the per-filter buffer limit; Envoy's own 413 comes from the filters' buffering below.
    let cap = state.plan.buffer_limit.max(MAX_COLLECTED_BODY);
    let body = match http_body_util::Limited::new(body, cap).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let r = UpstreamResponse::local(413, "Payload Too Large");
            return Ok(to_response(&r.headers, r.body));
        }
    };
    let filters = state.filters.borrow().clone();
    if filters.is_empty() {
        let vh = route::virtual_host(&state.plan.virtual_hosts, &authority);
        let r = vh.and_then(|vh| route::route(vh, &headers));
        let up = run_route(&state, r, &headers, body).await;
        return Ok(to_response(&up.headers, up.body));
    }
    let info = route_info(&state, &headers, peer, local);
    // Request side, filter by filter; each sees what the previous one let through.
    let (mut req_headers, mut req_body) = (headers, body);
    let mut streams: Vec<(Rc<Instance>, u32)> = Vec::new();
    let mut answered = false;
    for filter in &filters {
        // The plugin's clock must be now before it sets callout deadlines or reads the time.
        filter.sync_clock();
        let id = {
            let mut h = filter.harness.borrow_mut();
            let mut s = h.http_stream();
            s.set_info(info.clone());
            let id = s.id();
            let _ = s.request_headers(req_headers.iter(), req_body.is_empty());
            // In socket-sized chunks, as Envoy's codec hands them on: the buffer limit and its
            // 413 apply as data joins a filter's buffer.
            let mut chunks = req_body.chunks(BODY_CHUNK).peekable();
            while let Some(chunk) = chunks.next() {
                let _ = s.request_body(chunk, chunks.peek().is_none());
            }
            id
        };
        streams.push((filter.clone(), id));
        filter.wait_for(|h| h.streams_view(id).map(|(up, _, local)| up.end_of_stream || local).unwrap_or(true)).await;
        let view = filter.harness.borrow().streams_view(id).map(|(up, _, local)| (up.clone(), local));
        match view {
            Some((up, false)) => {
                req_headers = up.headers;
                req_body = Bytes::from(up.body);
            }
            // Answered (or reset) here: its reply goes back through this filter and those before it.
            _ => {
                answered = true;
                break;
            }
        }
    }
    // The upstream (or the route's own answer), unless a filter answered.
    let mut response: Option<UpstreamResponse> = None;
    if !answered {
        // The filters may have changed headers: route again, as Envoy clears its route cache.
        let vh = route::virtual_host(&state.plan.virtual_hosts, req_headers.get_str(":authority").unwrap_or_default());
        let r = vh.and_then(|vh| route::route(vh, &req_headers));
        response = Some(run_route(&state, r, &req_headers, req_body).await);
    }
    // Response side, in reverse filter order.
    let mut last: Option<crate::harness::Message> = None;
    for (filter, id) in streams.iter().rev() {
        let id = *id;
        if let Some(resp) = response.take() {
            filter.sync_clock();
            let mut h = filter.harness.borrow_mut();
            let mut s = h.http(id);
            let _ = s.response_headers(resp.headers.iter(), resp.body.is_empty() && resp.trailers.is_empty());
            let mut chunks = resp.body.chunks(BODY_CHUNK).peekable();
            while let Some(chunk) = chunks.next() {
                let _ = s.response_body(chunk, chunks.peek().is_none() && resp.trailers.is_empty());
            }
            if !resp.trailers.is_empty() {
                let _ = s.response_trailers(resp.trailers.iter());
            }
        }
        filter.wait_for(|h| h.streams_view(id).map(|(_, down, _)| down.end_of_stream).unwrap_or(true)).await;
        let down = filter.harness.borrow().streams_view(id).map(|(_, down, _)| down.clone());
        match down {
            Some(down) if down.headers_forwarded => {
                response = Some(UpstreamResponse {
                    headers: down.headers.clone(),
                    body: Bytes::from(down.body.clone()),
                    trailers: down.trailers.clone(),
                });
                last = Some(down);
            }
            _ => {
                last = None;
                break;
            }
        }
    }
    for (filter, id) in &streams {
        filter.harness.borrow_mut().forget_http_stream(*id);
    }
    match last {
        Some(down) => Ok(to_response(&down.headers, Bytes::from(down.body))),
        // A filter reset the stream: the client gets no response.
        None => Err(Reset),
    }
}

/// The stream was reset; hyper drops the connection.
#[derive(Debug)]
pub(crate) struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream reset by the filter")
    }
}

impl std::error::Error for Reset {}
