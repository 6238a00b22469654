//! Answers to HTTP callouts, including the replies Envoy synthesizes for timeouts and connect failures.

use crate::stream::HeaderMap;
use crate::vm::CalloutData;

/// What a callout's upstream answered, as the plugin will see it.
///
/// ```
/// use sluice_core::plugin_vm::CalloutReply;
/// let ok = CalloutReply::new(200).header("x-user", "alice").body("{}");
/// let late = CalloutReply::timeout(); // Envoy's synthetic 504
/// # let _ = (ok, late);
/// ```
#[derive(Debug, Clone)]
pub struct CalloutReply {
    data: Option<CalloutData>,
}

fn local(status: u16, body: &str) -> CalloutReply {
    CalloutReply::new(status).header("content-type", "text/plain").body(body)
}

impl CalloutReply {
    /// A response with this status and no body.
    pub fn new(status: u16) -> Self {
        let headers = HeaderMap::from_pairs([(":status", status.to_string())]);
        Self { data: Some(CalloutData { headers, body: Some(Vec::new()), trailers: HeaderMap::new() }) }
    }

    /// Adds a response header.
    pub fn header(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        if let Some(d) = &mut self.data {
            d.headers.add(key, value);
        }
        self
    }

    /// Sets the body and its `content-length`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        if let Some(d) = &mut self.data {
            let body = body.into();
            d.headers.replace("content-length", body.len().to_string());
            d.body = Some(body);
        }
        self
    }

    /// Sets the body and leaves the headers as they are: an upstream's answer, whose headers say
    /// how it was framed (`transfer-encoding: chunked` stays, no `content-length` is added), as
    /// Envoy hands it to the plugin.
    pub fn upstream_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        if let Some(d) = &mut self.data {
            d.body = Some(body.into());
        }
        self
    }

    /// Adds a response trailer.
    pub fn trailer(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        if let Some(d) = &mut self.data {
            d.trailers.add(key, value);
        }
        self
    }

    /// What Envoy delivers when the callout's timeout passes: a 504 `upstream request timeout`.
    pub fn timeout() -> Self {
        local(504, "upstream request timeout")
    }

    /// What Envoy delivers when the cluster cannot be reached: a 503.
    pub fn connect_failure() -> Self {
        local(503, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure")
    }

    /// The upstream reset the call after the response started: the plugin sees no headers, its body
    /// read gives NOT_FOUND, and `proxy_get_status` gives 11 `reset`.
    pub fn reset() -> Self {
        Self { data: None }
    }

    pub(crate) fn into_data(self) -> Option<CalloutData> {
        self.data
    }
}
