//! Local replies as Envoy shapes them, from a filter's `proxy_send_local_response` or from the
//! router (an upstream that failed, timed out, or no route).

use super::{grpc_status_for_http, HeaderMap};

/// A local reply requested with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Response code details, whitespace replaced by `_` as Envoy does.
    pub details: String,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// gRPC status, `None` for -1 or values over 16.
    pub grpc_status: Option<u32>,
}

/// The response Envoy makes of a local reply: for a gRPC request a trailers-only gRPC response
/// (`:status 200`, `grpc-status` from the reply or mapped from its HTTP status, the body as
/// `grpc-message`), else the status, headers and body with `content-length` set.
pub fn local_reply_message(reply: &LocalReply, grpc: bool) -> (HeaderMap, Vec<u8>) {
    let mut headers = HeaderMap::new();
    if grpc {
        let code = reply.grpc_status.unwrap_or_else(|| grpc_status_for_http(reply.status));
        headers.add(":status", "200");
        headers.add("content-type", "application/grpc");
        headers.add("content-length", "0");
        headers.add("grpc-status", code.to_string());
        if !reply.body.is_empty() {
            headers.add("grpc-message", percent_encode(&reply.body));
        }
        for (k, v) in &reply.headers {
            headers.add(k, v);
        }
        return (headers, Vec::new());
    }
    headers.add(":status", reply.status.to_string());
    for (k, v) in &reply.headers {
        headers.add(k, v);
    }
    headers.replace("content-length", reply.body.len().to_string());
    if !reply.body.is_empty() && headers.get("content-type").is_none() {
        headers.add("content-type", "text/plain");
    }
    (headers, reply.body.clone())
}

/// Envoy's grpc-message encoding: printable ASCII except `%` stays, the rest is `%XX`.
fn percent_encode(b: &[u8]) -> String {
    b.iter()
        .map(|&c| if (0x20..=0x7e).contains(&c) && c != b'%' { (c as char).to_string() } else { format!("%{c:02X}") })
        .collect()
}
