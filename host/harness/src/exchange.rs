//! One whole request/response exchange through the plugin, as a client would see it through Envoy.

use super::{Harness, Message};
use sluice_core::error::{Error, Result};
use sluice_core::vm::LocalReply;

pub use sluice_core::plugin_vm::BODY_CHUNK;

/// A client request for [`Harness::exchange`].
///
/// ```
/// use sluice_harness::Request;
/// let req = Request::get("/items?id=7").header("x-user", "alice");
/// let post = Request::post("/items", r#"{"name":"x"}"#);
/// # let _ = (req, post);
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:path`, with the query.
    pub path: String,
    /// `:authority`.
    pub authority: String,
    /// Other headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with this method and path, to `example.com`.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            authority: "example.com".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// A POST with a body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", path).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// Sets the body (and `content-length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, a: &str) -> Self {
        self.authority = a.into();
        self
    }
}

/// The upstream host an [`Harness::exchange`] reaches, as the `upstream.*` properties report it.
pub const UPSTREAM_ADDRESS: ([u8; 4], u16) = ([127, 0, 0, 1], 10001);

/// What the upstream answers in [`Harness::exchange`].
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (without `:status`).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with this status, no headers and no body.
    pub fn new(status: u16) -> Self {
        Self { status, ..Default::default() }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// Sets the body and `content-length`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
        self.headers.push(("content-length".into(), self.body.len().to_string()));
        self
    }
}

/// The result of [`Harness::exchange`].
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the upstream received, if the request reached it.
    pub upstream_request: Option<Message>,
    /// What the client received.
    pub response: Message,
    /// The local reply, if the plugin (or the host for it) answered.
    pub local_reply: Option<LocalReply>,
    /// True if the stream was reset (the client got no response).
    pub reset: bool,
}

impl Exchange {
    /// The client's status code (`None` after a reset).
    pub fn status(&self) -> Option<u16> {
        self.response.status()
    }
}

impl Harness {
    /// Sends one request from an HTTP/1.1 client through the plugin as Envoy would (adding
    /// `x-forwarded-proto` and `x-request-id` first), lets `upstream` answer whatever reaches it,
    /// and returns what the client gets. The upstream host is [`UPSTREAM_ADDRESS`] (the
    /// `upstream.address` property once the request reached it). Callouts are answered by the handler given to
    /// [`HarnessBuilder::on_http_callout`](super::HarnessBuilder::on_http_callout); a stream left
    /// waiting is an error that says what it waits for. Bodies are framed as Envoy's HTTP/1 codec
    /// hands them to filters: in chunks, then the end of the message in an empty chunk.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`] for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn exchange(&mut self, request: Request, upstream: impl FnOnce(&Message) -> Response) -> Result<Exchange> {
        let mut headers: Vec<(String, String)> = vec![
            (":authority".into(), request.authority.clone()),
            (":path".into(), request.path.clone()),
            (":method".into(), request.method.clone()),
            (":scheme".into(), "http".into()),
        ];
        headers.extend(request.headers.iter().cloned());
        if !request.body.is_empty() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
            headers.push(("content-length".into(), request.body.len().to_string()));
        }
        headers.push(("x-forwarded-proto".into(), "http".into()));
        headers.push(("x-request-id".into(), format!("00000000-0000-4000-8000-{:012x}", self.next_connection_id())));
        let mut s = self.http_stream();
        let id = s.id();
        let has_body = !request.body.is_empty();
        s.request_headers(headers, !has_body)?;
        // Bodies arrive in socket-sized chunks, as Envoy's HTTP/1 codec reads them; the end of
        // the message comes after them, in an empty chunk of its own.
        for chunk in request.body.chunks(BODY_CHUNK) {
            s.request_body(chunk, false)?;
        }
        if has_body {
            s.request_body([], true)?;
        }
        let s = self.http(id);
        let (reached, local) = (s.upstream_request().end_of_stream, s.local_reply().is_some() || s.is_reset());
        if !local {
            if !reached {
                return Err(self.stalled("the request never reached the upstream"));
            }
            // The upstream host is chosen (Envoy's router sets `upstream.address` here).
            self.http(id).set_upstream_address(UPSTREAM_ADDRESS.into());
            let upstream_request = self.http(id).upstream_request().clone();
            let resp = upstream(&upstream_request);
            let mut pairs = vec![(":status".to_string(), resp.status.to_string())];
            pairs.extend(resp.headers.iter().cloned());
            let mut s = self.http(id);
            let has_body = !resp.body.is_empty();
            s.response_headers(pairs, !has_body)?;
            for chunk in resp.body.chunks(BODY_CHUNK) {
                s.response_body(chunk, false)?;
            }
            if has_body {
                s.response_body([], true)?;
            }
        }
        let s = self.http(id);
        if !s.downstream_response().end_of_stream && !s.is_reset() {
            return Err(self.stalled("the response never completed"));
        }
        let s = self.http(id);
        let upstream_request = s.upstream_request().headers_forwarded.then(|| s.upstream_request().clone());
        let exchange = Exchange {
            upstream_request,
            response: s.downstream_response().clone(),
            local_reply: s.local_reply().cloned(),
            reset: s.is_reset(),
        };
        // The exchange is over and everything it showed is in `exchange`: the stream goes, as in
        // Envoy (a harness that kept every stream grew by about 1.5 KB per exchange).
        self.close_http_stream(id);
        Ok(exchange)
    }

    fn stalled(&mut self, what: &str) -> Error {
        let callouts: Vec<String> =
            self.http_callouts().iter().map(|c| format!("token {} to cluster `{}`", c.token, c.cluster)).collect();
        let failure = self.vm_failures().last().cloned();
        let mut msg = format!("stream stalled: {what}");
        if !callouts.is_empty() {
            msg.push_str(&format!("; unanswered HTTP callouts: {}", callouts.join(", ")));
        }
        if let Some(f) = failure {
            msg.push_str(&format!("; the VM failed: {f}"));
        }
        Error::Usage(msg)
    }
}
