//! Upstream clusters: endpoints used round-robin, connections with the connect timeout, and
//! Envoy's own answers when an upstream cannot be reached or is too slow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::ClusterPlan;
use crate::stream::HeaderMap;

type Sender = http1::SendRequest<Full<Bytes>>;

/// Idle connections kept per endpoint and worker.
const MAX_IDLE: usize = 64;

thread_local! {
    /// This worker's idle upstream connections, by endpoint.
    static POOL: std::cell::RefCell<std::collections::HashMap<(String, u16), Vec<Sender>>> = Default::default();
}

/// Envoy's body for a connect failure.
pub(crate) const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";
/// Envoy's body for a timeout.
pub(crate) const TIMEOUT: &str = "upstream request timeout";

/// A response from an upstream, or one Envoy would make up.
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
#[derive(Debug)]
pub(crate) struct Cluster {
    plan: ClusterPlan,
    next: AtomicUsize,
}

impl Cluster {
    pub(crate) fn new(plan: ClusterPlan) -> Self {
        Self { plan, next: AtomicUsize::new(0) }
    }

    /// Sends one request (pseudo-headers give method, path, authority) and reads the whole response.
    /// Connect failures and timeouts come back as Envoy's 503 and 504.
    pub(crate) async fn send(&self, headers: &HeaderMap, body: Bytes, timeout: Option<Duration>) -> UpstreamResponse {
        let work = self.exchange(headers, body);
        match timeout {
            Some(t) => tokio::time::timeout(t, work).await.unwrap_or_else(|_| UpstreamResponse::local(504, TIMEOUT)),
            None => work.await,
        }
    }

    /// A new TCP connection to the next endpoint (for TCP proxying); `None` if it cannot be made.
    pub(crate) async fn connect_tcp(&self) -> Option<TcpStream> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.plan.endpoints.len();
        let (host, port) = &self.plan.endpoints[i];
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
    ) -> Result<Vec<u8>, (u32, String)> {
        let work = self.grpc_exchange(service, method, metadata, message);
        match timeout {
            Some(t) => tokio::time::timeout(t, work).await.unwrap_or_else(|_| Err((4, "deadline exceeded".into()))),
            None => work.await,
        }
    }

    async fn grpc_exchange(
        &self,
        service: &str,
        method: &str,
        metadata: &[(Vec<u8>, Vec<u8>)],
        message: &[u8],
    ) -> Result<Vec<u8>, (u32, String)> {
        let unavailable = || (14, CONNECT_FAILURE.to_string());
        let stream = self.connect_tcp().await.ok_or_else(unavailable)?;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(super::LocalExec, TokioIo::new(stream))
                .await
                .map_err(|_| unavailable())?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        let mut framed = Vec::with_capacity(5 + message.len());
        framed.push(0);
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(message);
        let mut req = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://{}/{service}/{method}", self.plan.name))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in metadata {
            req = req.header(k.as_slice(), v.as_slice());
        }
        let req = req.body(Full::new(Bytes::from(framed))).map_err(|e| (13, e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|_| unavailable())?;
        let headers = resp.headers().clone();
        let collected = resp.into_body().collect().await.map_err(|_| unavailable())?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        // Trailers-only replies carry the status in the headers.
        let field = |name: &str| {
            trailers.get(name).or_else(|| headers.get(name)).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let status: u32 = field("grpc-status").and_then(|s| s.parse().ok()).unwrap_or(2);
        if status != 0 {
            // Envoy's gRPC client appends the response-code details to a status that came from the
            // upstream (pinned by the serve comparison test).
            return Err((status, format!("{}{{via_upstream}}", field("grpc-message").unwrap_or_default())));
        }
        let body = collected.to_bytes();
        let len = body.get(1..5).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).unwrap_or(0);
        body.get(5..5 + len).map(<[u8]>::to_vec).ok_or((13, "malformed gRPC message".into()))
    }

    /// An idle pooled connection to `endpoint` of this worker, or a new one.
    async fn connection(&self, endpoint: &(String, u16)) -> Option<Sender> {
        while let Some(mut s) = POOL.with(|p| p.borrow_mut().get_mut(endpoint).and_then(Vec::pop)) {
            if !s.is_closed() && s.ready().await.is_ok() {
                return Some(s);
            }
        }
        let connect = TcpStream::connect((endpoint.0.as_str(), endpoint.1));
        let stream = tokio::time::timeout(self.plan.connect_timeout, connect).await.ok()?.ok()?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await.ok()?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Some(sender)
    }

    async fn exchange(&self, headers: &HeaderMap, body: Bytes) -> UpstreamResponse {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.plan.endpoints.len();
        let endpoint = &self.plan.endpoints[i];
        let Some(mut sender) = self.connection(endpoint).await else {
            return UpstreamResponse::local(503, CONNECT_FAILURE);
        };
        let mut req = hyper::Request::builder()
            .method(headers.get_str(":method").unwrap_or("GET"))
            .uri(headers.get_str(":path").unwrap_or("/"));
        for (k, v) in headers.iter() {
            if k.starts_with(b":") {
                continue;
            }
            req = req.header(k, v);
        }
        if let Some(a) = headers.get(":authority") {
            req = req.header("host", a);
        }
        let Ok(req) = req.body(Full::new(body)) else {
            return UpstreamResponse::local(503, CONNECT_FAILURE);
        };
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(_) => return UpstreamResponse::local(503, CONNECT_FAILURE),
        };
        let mut out = HeaderMap::from_pairs([(":status", resp.status().as_u16().to_string())]);
        for (k, v) in resp.headers() {
            out.add(k.as_str(), v.as_bytes());
        }
        let collected = match resp.into_body().collect().await {
            Ok(c) => c,
            Err(_) => return UpstreamResponse::local(503, CONNECT_FAILURE),
        };
        // The connection is free again: keep it for the next request of this worker.
        if !sender.is_closed() {
            POOL.with(|p| {
                let mut p = p.borrow_mut();
                let idle = p.entry(endpoint.clone()).or_default();
                if idle.len() < MAX_IDLE {
                    idle.push(sender);
                }
            });
        }
        let trailers = collected
            .trailers()
            .map(|t| t.iter().map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec())).collect())
            .unwrap_or_default();
        UpstreamResponse { headers: out, body: collected.to_bytes(), trailers }
    }
}
