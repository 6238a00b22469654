//! Local replies: answer the client from the filter.

use http::StatusCode;

use crate::grpc::Code;

/// A reply the filter sends instead of (or in place of) the upstream's response.
///
/// ```
/// use sluice::http::{Reply, StatusCode};
/// let r = Reply::new(StatusCode::TOO_MANY_REQUESTS)
///     .header("retry-after", "2")
///     .body("slow down")
///     .details("rate_limited");
/// # let _ = r;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(crate) status: u32,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) details: String,
    pub(crate) grpc_status: Option<u32>,
}

impl Reply {
    /// A reply with this HTTP status and no body.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status: status.as_u16().into(),
            headers: Vec::new(),
            body: Vec::new(),
            details: String::new(),
            grpc_status: None,
        }
    }

    /// Adds a header (a `&str` or [`HeaderName`](http::HeaderName); the value as bytes).
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.as_ref().to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body (Envoy sets `content-length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the response-code details Envoy records (`response.code_details`, access logs).
    pub fn details(mut self, details: &str) -> Self {
        self.details = details.to_string();
        self
    }

    /// For gRPC clients: the `grpc-status` to send (otherwise derived from the HTTP status).
    pub fn grpc_status(mut self, code: Code) -> Self {
        self.grpc_status = Some(code as u32);
        self
    }

    /// Sends it in the current context: return [`Action::Respond`](super::Action::Respond), or
    /// use [`HttpStream::respond`](super::HttpStream::respond).
    pub(crate) fn send(&self) -> crate::Result<()> {
        let refs: Vec<(&[u8], &[u8])> = self.headers.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())).collect();
        let headers = crate::codec::encode_pairs(&refs);
        let grpc = self.grpc_status.map(|c| c as i32).unwrap_or(-1);
        crate::abi::send_local_response(self.status, &self.details, &self.body, &headers, grpc)
    }
}
