//! Upstream clusters: endpoints used round-robin, connections with the connect timeout, and
//! Envoy's own answers when an upstream cannot be reached or is too slow.
//!
//! HTTP/1.1 requests go through hyper-util's pooling client (one per cluster and worker, so a
//! worker's requests never wait on another worker's connection tasks); HTTP/2 needs no pool: one
//! connection per endpoint and worker carries every stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::Uri;

use super::grpc_wire::{grpc_code, via_upstream};
use hyper_util::client::legacy::connect::{HttpConnector, HttpInfo};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::PipeBody;
use super::stats::Stat;
use crate::config::ClusterPlan;
use sluice_core::stream::HeaderMap;

/// A shared HTTP/2 connection and the address it reaches.
type H2Sender = (hyper::client::conn::http2::SendRequest<PipeBody>, std::net::SocketAddr);
type Endpoint = (String, u16);

/// Idle connections kept per endpoint and worker.
const MAX_IDLE: usize = 64;

/// How long an idle upstream connection is kept: Envoy's default `idle_timeout` for upstream
/// connections (one hour).
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

thread_local! {
    /// This worker's HTTP/2 connections, one per endpoint, shared by all its streams.
    static H2: std::cell::RefCell<std::collections::HashMap<Endpoint, H2Sender>> = Default::default();
}

/// Opens a cluster's upstream connections (connect timeout, `TCP_NODELAY`) and counts them in
/// `upstream_cx_total`.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    opened: Stat,
}

impl tower_service::Service<Uri> for Connector {
    type Response = <HttpConnector as tower_service::Service<Uri>>::Response;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let opened = self.opened.clone();
        Box::pin(async move {
            let c = connecting.await?;
            opened.fetch_add(1, Ordering::Relaxed);
            Ok(c)
        })
    }
}

/// One worker's pooling HTTP/1.1 client for a cluster.
type Http1Client = Client<Connector, PipeBody>;

/// An upstream's answer, headers first.
pub(crate) struct UpstreamHead {
    pub headers: HeaderMap,
    pub body: UpstreamBody,
    /// The upstream host that answered (none for Envoy's own answers).
    pub address: Option<std::net::SocketAddr>,
    /// The cluster the route chose, if it chose one (`%UPSTREAM_CLUSTER%`).
    pub cluster: Option<String>,
}

/// The body of an [`UpstreamHead`].
pub(crate) enum UpstreamBody {
    /// Whole: one of Envoy's own answers (or a route's).
    Full { body: Bytes, trailers: HeaderMap },
    /// Streaming from the upstream.
    Stream(StreamingBody),
}

impl From<UpstreamResponse> for UpstreamHead {
    fn from(r: UpstreamResponse) -> Self {
        UpstreamHead {
            headers: r.headers,
            body: UpstreamBody::Full { body: r.body, trailers: r.trailers },
            address: None,
            cluster: None,
        }
    }
}

/// A response body read from an upstream frame by frame (an HTTP/1.1 connection goes back to the
/// worker's pool when the body is complete).
pub(crate) struct StreamingBody {
    body: super::read_joined::ReadJoined<Incoming>,
}

impl StreamingBody {
    /// The next frame (data or trailers); `None` at the end; an error if the upstream broke off.
    pub(crate) async fn next(&mut self) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        self.body.next().await
    }

    /// Whether the response has no body at all (HEAD, 204, 304, `content-length: 0`): Envoy's
    /// codec then ends the stream with the headers.
    pub(crate) fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// Envoy's body for a connect failure.
pub(crate) const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";
/// Envoy's body when the upstream closed the connection before answering.
pub(crate) const TERMINATION: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
/// Envoy's body when an HTTP/2 upstream broke the protocol (an HTTP/1-only server, a bad frame).
pub(crate) const PROTOCOL_ERROR: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: protocol error";
/// Envoy's body for a timeout.
pub(crate) const TIMEOUT: &str = "upstream request timeout";

/// How many headers a request can carry upstream: the most an [`http::HeaderMap`] holds.
const MAX_UPSTREAM_HEADERS: usize = 1 << 15;

/// Why a request (as the filters left it) cannot go upstream, as the client is answered: Envoy's
/// router refuses a header value HTTP does not allow (a filter's CR, LF or NUL) with 503 and
/// `invalid header value for: NAME`; more headers than sluice's HTTP stack holds (Envoy would send
/// them) get a 503 that says so. Both are logged, naming the header or the count.
fn unsendable(headers: &HeaderMap) -> Option<UpstreamResponse> {
    let mut count = 0usize;
    for (k, v) in headers.iter() {
        if k.starts_with(b":") {
            continue;
        }
        count += 1;
        let name = String::from_utf8_lossy(k);
        if http::HeaderName::from_bytes(k).is_err() {
            tracing::warn!(target: "router", "not sending the request upstream: invalid header name {name:?}");
            return Some(UpstreamResponse::local(503, &format!("invalid header name: {name}")));
        }
        if http::HeaderValue::from_bytes(v).is_err() {
            tracing::warn!(target: "router", "not sending the request upstream: invalid value of header {name:?}");
            return Some(UpstreamResponse::local(503, &format!("invalid header value for: {name}")));
        }
    }
    (count > MAX_UPSTREAM_HEADERS).then(|| {
        tracing::warn!(
            target: "router",
            "not sending the request upstream: it has {count} headers, more than the {MAX_UPSTREAM_HEADERS} sluice can send"
        );
        UpstreamResponse::local(503, &format!("the request has {count} headers; at most {MAX_UPSTREAM_HEADERS} can go upstream"))
    })
}

/// Whether an exchange failed because the peer broke HTTP/2 (Envoy's "protocol error"): an upstream
/// request, or a downstream connection.
pub(super) fn is_protocol_error(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.reason().is_some_and(|r| r != h2::Reason::NO_ERROR && r != h2::Reason::CANCEL) && !h2.is_io();
        }
        source = s.source();
    }
    false
}

/// A response from an upstream, or one Envoy would make up.
/// A response that broke off after its headers: the upstream closed or reset before the body ended.
#[derive(Debug)]
pub(crate) struct BrokeOff;

#[derive(Debug, Clone)]
pub(crate) struct UpstreamResponse {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: HeaderMap,
}

impl UpstreamResponse {
    pub(crate) fn local(status: u16, body: &str) -> Self {
        let mut headers = HeaderMap::from_pairs([(":status", status.to_string())]);
        headers.add("content-length", body.len().to_string());
        headers.add("content-type", "text/plain");
        Self { headers, body: Bytes::copy_from_slice(body.as_bytes()), trailers: HeaderMap::new() }
    }
}

/// A cluster's endpoints and settings.
pub(crate) struct Cluster {
    plan: ClusterPlan,
    /// Each endpoint as a URI authority (what the HTTP/1.1 client's pool is keyed by); `None` for
    /// a name no URI can hold, which is answered as a connect failure.
    authorities: Vec<Option<hyper::http::uri::Authority>>,
    next: AtomicUsize,
    stats: super::stats::ClusterStats,
    /// Each worker's HTTP/1.1 client.
    http1: thread_local::ThreadLocal<Http1Client>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("plan", &self.plan).finish_non_exhaustive()
    }
}

impl Cluster {
    pub(crate) fn new(plan: ClusterPlan, registry: &std::sync::Arc<super::stats::Registry>) -> Self {
        let stats = super::stats::ClusterStats::new(registry, &plan.name);
        let authorities = plan
            .endpoints
            .iter()
            .map(|(host, port)| {
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                format!("{host}:{port}").parse().ok()
            })
            .collect();
        Self { plan, authorities, next: AtomicUsize::new(0), stats, http1: thread_local::ThreadLocal::new() }
    }

    /// This worker's HTTP/1.1 client.
    fn http1(&self) -> &Http1Client {
        self.http1.get_or(|| {
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(self.plan.connect_timeout));
            http.set_nodelay(true);
            let connector = Connector { http, opened: self.stats.cx_total.clone() };
            Client::builder(super::LocalExec)
                .pool_max_idle_per_host(MAX_IDLE)
                .pool_idle_timeout(IDLE_TIMEOUT)
                .set_host(false)
                .build(connector)
        })
    }

    /// `metadata` (`xds.cluster_metadata`).
    pub(crate) fn metadata(&self) -> &sluice_core::stream::Metadata {
        &self.plan.metadata
    }

    /// Sends one request (pseudo-headers give method, path, authority) and reads the whole response.
    /// Connect failures and timeouts come back as Envoy's 503 and 504; a response that breaks off
    /// after its headers (a short body, a missing last chunk, a reset) as [`BrokeOff`], since the
    /// headers are out and Envoy's async client then reports a reset, not an answer.
    pub(crate) async fn send(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> Result<UpstreamResponse, BrokeOff> {
        let work = async {
            let head = self.exchange(headers, PipeBody::full(body, true)).await;
            let mut out = UpstreamResponse { headers: head.headers, body: Bytes::new(), trailers: HeaderMap::new() };
            match head.body {
                UpstreamBody::Full { body, trailers } => (out.body, out.trailers) = (body, trailers),
                UpstreamBody::Stream(mut s) => {
                    let mut data = bytes::BytesMut::new();
                    while let Some(frame) = s.next().await {
                        let Ok(frame) = frame else { return Err(BrokeOff) };
                        match frame.into_data() {
                            Ok(d) => data.extend_from_slice(&d),
                            Err(f) => {
                                if let Ok(t) = f.into_trailers() {
                                    for (k, v) in &t {
                                        out.trailers.add(k.as_str(), v.as_bytes());
                                    }
                                }
                            }
                        }
                    }
                    out.body = data.freeze();
                }
            }
            Ok(out)
        };
        match timeout {
            Some(t) => {
                tokio::time::timeout(t, work).await.unwrap_or_else(|_| Ok(UpstreamResponse::local(504, TIMEOUT)))
            }
            None => work.await,
        }
    }

    /// Starts one request whose body may still be streaming; resolves with the response headers
    /// (the body follows). A connect failure, or no headers within `timeout`, is Envoy's 503 / 504.
    pub(crate) async fn start(&self, headers: &HeaderMap, body: PipeBody, timeout: Option<Duration>) -> UpstreamHead {
        let work = self.exchange(headers, body);
        match timeout {
            Some(t) => {
                tokio::time::timeout(t, work).await.unwrap_or_else(|_| UpstreamResponse::local(504, TIMEOUT).into())
            }
            None => work.await,
        }
    }

    /// A new TCP connection to the next endpoint (for TCP proxying), counted in
    /// `upstream_cx_total`; `None` if it cannot be made.
    pub(crate) async fn connect_tcp(&self) -> Option<TcpStream> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.plan.endpoints.len();
        let (host, port) = &self.plan.endpoints[i];
        // Envoy counts each connection it opens, whether or not it connects.
        self.stats.cx_total.fetch_add(1, Ordering::Relaxed);
        let s = tokio::time::timeout(self.plan.connect_timeout, TcpStream::connect((host.as_str(), *port)))
            .await
            .ok()?
            .ok()?;
        let _ = s.set_nodelay(true);
        Some(s)
    }

    /// A unary gRPC call over HTTP/2: the reply message, or (gRPC status, message).
    pub(crate) async fn grpc_unary(
        &self,
        service: &str,
        method: &str,
        metadata: &[(Vec<u8>, Vec<u8>)],
        message: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, tonic::Status> {
        let work = self.grpc_exchange(service, method, metadata, message, timeout);
        match timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("deadline exceeded"))),
            None => work.await,
        }
    }

    async fn grpc_exchange(
        &self,
        service: &str,
        method: &str,
        metadata: &[(Vec<u8>, Vec<u8>)],
        message: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, tonic::Status> {
        let unavailable = || tonic::Status::unavailable(CONNECT_FAILURE);
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.plan.endpoints.len();
        let (mut sender, _) = self.h2_connection(&self.plan.endpoints[i]).await.ok_or_else(unavailable)?;
        let framed = super::grpc_wire::framed(message);
        let mut req =
            hyper::Request::builder().method("POST").uri(format!("http://{}/{service}/{method}", self.plan.name));
        for (k, v) in super::grpc_wire::request_headers(metadata, timeout) {
            req = req.header(k, v);
        }
        let req = req.body(PipeBody::full(framed, false)).map_err(|e| tonic::Status::internal(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|_| unavailable())?;
        let headers = resp.headers().clone();
        let collected = resp.into_body().collect().await.map_err(|_| unavailable())?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        // Trailers-only replies carry the status in the headers.
        let field = |name: &str| {
            trailers.get(name).or_else(|| headers.get(name)).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let status = field("grpc-status").map_or(tonic::Code::Unknown, |s| grpc_code(&s));
        if status != tonic::Code::Ok {
            return Err(tonic::Status::new(status, via_upstream(&field("grpc-message").unwrap_or_default())));
        }
        let body = collected.to_bytes();
        let len = body.get(1..5).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).unwrap_or(0);
        body.get(5..5 + len).map(<[u8]>::to_vec).ok_or_else(|| tonic::Status::internal("malformed gRPC message"))
    }

    /// This worker's HTTP/2 connection to `endpoint`, opened if there is none (or it closed).
    async fn h2_connection(&self, endpoint: &Endpoint) -> Option<H2Sender> {
        if let Some(s) = H2.with(|m| m.borrow().get(endpoint).cloned()) {
            if !s.0.is_closed() {
                return Some(s);
            }
        }
        let connect = TcpStream::connect((endpoint.0.as_str(), endpoint.1));
        let stream = tokio::time::timeout(self.plan.connect_timeout, connect).await.ok()?.ok()?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok()?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake::<_, _, PipeBody>(super::LocalExec, TokioIo::new(stream))
                .await
                .ok()?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        self.stats.cx_total.fetch_add(1, Ordering::Relaxed);
        H2.with(|m| m.borrow_mut().insert(endpoint.clone(), (sender.clone(), peer)));
        Some((sender, peer))
    }

    async fn exchange(&self, headers: &HeaderMap, body: PipeBody) -> UpstreamHead {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.plan.endpoints.len();
        let endpoint = &self.plan.endpoints[i];
        let authority = headers.get_str(":authority").unwrap_or(&self.plan.name).to_string();
        let path = headers.get_str(":path").unwrap_or("/");
        let mut req = hyper::Request::builder().method(headers.get_str(":method").unwrap_or("GET"));
        req = if self.plan.http2 {
            req.uri(format!("http://{authority}{path}"))
        } else {
            // The pool is keyed by the endpoint; the client sends the path alone (origin form).
            let (Ok(path), Some(endpoint)) =
                (hyper::http::uri::PathAndQuery::try_from(path), self.authorities[i].clone())
            else {
                return UpstreamResponse::local(503, CONNECT_FAILURE).into();
            };
            let mut uri = hyper::http::uri::Parts::default();
            uri.scheme = Some(hyper::http::uri::Scheme::HTTP);
            uri.authority = Some(endpoint);
            uri.path_and_query = Some(path);
            let Ok(uri) = Uri::from_parts(uri) else {
                return UpstreamResponse::local(503, CONNECT_FAILURE).into();
            };
            req.uri(uri)
        };
        if let Some(refused) = unsendable(headers) {
            return refused.into();
        }
        // Envoy's HTTP/1 codec writes `:authority` as `host` where it stands in the map: first,
        // unless a filter moved it.
        let mut host_sent = self.plan.http2;
        for (k, v) in headers.iter() {
            if k == b":authority" && !host_sent {
                req = req.header("host", v);
                host_sent = true;
            } else if !k.starts_with(b":") {
                req = req.header(k, v);
            }
        }
        if !host_sent {
            req = req.header("host", authority);
        }
        // Envoy's HTTP/1 codec says `content-length: 0` for a request with no body, unless its
        // method has none (`HeaderUtility::requestShouldHaveNoBody`).
        let bodiless = matches!(headers.get_str(":method"), Some("GET" | "HEAD" | "DELETE" | "TRACE" | "CONNECT"));
        if !self.plan.http2
            && !bodiless
            && hyper::body::Body::is_end_stream(&body)
            && headers.get("content-length").is_none()
            && headers.get("transfer-encoding").is_none()
        {
            req = req.header("content-length", "0");
        }
        let body = if self.plan.http2 { body } else { body.without_trailers() };
        let Ok(req) = req.body(body) else {
            return UpstreamResponse::local(503, CONNECT_FAILURE).into();
        };
        let sent = std::time::Instant::now();
        self.stats.rq_total.fetch_add(1, Ordering::Relaxed);
        // Connected, but no answer: the upstream hung up (or reset, or broke HTTP/2) before its headers.
        let (resp, address) = if self.plan.http2 {
            let Some((mut sender, peer)) = self.h2_connection(endpoint).await else {
                return UpstreamResponse::local(503, CONNECT_FAILURE).into();
            };
            match sender.send_request(req).await {
                Ok(r) => (r, peer),
                Err(e) if is_protocol_error(&e) => return UpstreamResponse::local(503, PROTOCOL_ERROR).into(),
                Err(_) => return UpstreamResponse::local(503, TERMINATION).into(),
            }
        } else {
            match self.http1().request(req).await {
                Ok(r) => {
                    let Some(peer) = r.extensions().get::<HttpInfo>().map(HttpInfo::remote_addr) else {
                        return UpstreamResponse::local(503, TERMINATION).into();
                    };
                    (r, peer)
                }
                Err(e) if e.is_connect() => return UpstreamResponse::local(503, CONNECT_FAILURE).into(),
                Err(_) => return UpstreamResponse::local(503, TERMINATION).into(),
            }
        };
        self.stats.answered(resp.status().as_u16());
        let mut out = HeaderMap::from_pairs([(":status", resp.status().as_u16().to_string())]);
        for (k, v) in resp.headers() {
            out.add(k.as_str(), v.as_bytes());
        }
        // Envoy's router tells the client (and the filters, and a callout's caller) how long the
        // upstream took to answer, in whole milliseconds.
        out.replace("x-envoy-upstream-service-time", sent.elapsed().as_millis().to_string());
        UpstreamHead {
            headers: out,
            body: UpstreamBody::Stream(StreamingBody {
                body: super::read_joined::ReadJoined::new(resp.into_body(), !self.plan.http2),
            }),
            address: Some(address),
            cluster: None,
        }
    }
}
