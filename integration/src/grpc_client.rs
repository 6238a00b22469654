//! A gRPC client over HTTP/2 without TLS (h2c), for calls through a proxy.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// What a unary call got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcReply {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names, sorted, without date, server and x-envoy-*).
    pub headers: Vec<(String, String)>,
    /// The reply message (unframed), if any.
    pub message: Vec<u8>,
    /// Trailers, sorted (or the status headers of a trailers-only reply).
    pub trailers: Vec<(String, String)>,
}

fn pairs(h: &hyper::HeaderMap) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "server") && !k.as_str().starts_with("x-envoy"))
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    v.sort();
    v
}

/// Calls `path` (`/package.Service/Method`) on 127.0.0.1:`port` with one message.
pub fn unary(port: u16, path: &str, message: &[u8]) -> Result<GrpcReply> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.context("connecting")?;
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .context("HTTP/2 handshake")?;
        tokio::spawn(conn);
        let framed = crate::grpc_upstream::framed(message);
        let req = hyper::Request::post(format!("http://example.com{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from(framed)))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(20), sender.send_request(req))
            .await
            .context("no answer within 20 s")??;
        let status = resp.status().as_u16();
        let headers = pairs(resp.headers());
        let collected = resp.into_body().collect().await?;
        let trailers = collected.trailers().map(pairs).unwrap_or_default();
        let body = collected.to_bytes();
        let message = body.get(5..).map(<[u8]>::to_vec).unwrap_or_default();
        Ok(GrpcReply { status, headers, message, trailers })
    })
}
