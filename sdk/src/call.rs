//! Callouts as futures: `HttpCall::get("auth", "/check").send().await`, unary gRPC calls
//! ([`GrpcCall`]) and gRPC streams ([`GrpcStream`]).
//!
//! The call is made when `send` is called; the future completes when Envoy delivers the answer to
//! `proxy_on_http_call_response`. A timeout arrives as Envoy's own 504 response, not as an error.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Method, StatusCode};

use crate::abi;
use crate::error::{Error, Result};

pub use crate::grpc_stream::{GrpcStream, GrpcStreamEvent};

/// What a finished call produced.
pub(crate) enum Answer {
    Http(HttpResponse),
    Grpc(Vec<u8>),
}

enum Slot {
    Waiting(Option<Waker>),
    Done(Result<Answer>),
}

thread_local! {
    static CALLS: RefCell<BTreeMap<u32, Slot>> = const { RefCell::new(BTreeMap::new()) };
}

/// A request to a cluster.
///
/// ```no_run
/// # async fn f() -> sluice::Result<()> {
/// use sluice::call::HttpCall;
/// let reply = HttpCall::post("auth", "/check", b"{}".to_vec())
///     .header("content-type", "application/json")
///     .timeout(std::time::Duration::from_millis(300))
///     .send()
///     .await?;
/// if reply.status() == Some(http::StatusCode::OK) { /* … */ }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpCall {
    cluster: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
    timeout: Duration,
}

impl HttpCall {
    /// A request with this method and path to `cluster` (`:authority` is the cluster name until set).
    pub fn new(method: Method, cluster: &str, path: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            headers: vec![
                (":method".into(), method.as_str().as_bytes().to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                (":authority".into(), cluster.as_bytes().to_vec()),
            ],
            body: Vec::new(),
            trailers: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// A GET.
    pub fn get(cluster: &str, path: &str) -> Self {
        Self::new(Method::GET, cluster, path)
    }

    /// A POST with a body.
    pub fn post(cluster: &str, path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(Method::POST, cluster, path).body(body)
    }

    /// Sets a header (pseudo-headers like `:authority` replace the default).
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        let name = name.as_ref().to_ascii_lowercase();
        if name.starts_with(':') {
            self.headers.retain(|(k, _)| *k != name);
        }
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        self.trailers.push((name.as_ref().to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// How long Envoy waits before answering 504 itself (default 5 s; zero = no timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the call. Fails at once if Envoy refuses it (unknown cluster: BadArgument).
    pub fn dispatch(self) -> Result<PendingCall> {
        let pairs = |v: &[(String, Vec<u8>)]| {
            let refs: Vec<(&[u8], &[u8])> = v.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())).collect();
            crate::codec::encode_pairs(&refs)
        };
        let headers = pairs(&self.headers);
        let trailers = if self.trailers.is_empty() { Vec::new() } else { pairs(&self.trailers) };
        let ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        let token = abi::http_call(&self.cluster, &headers, &self.body, &trailers, ms)?;
        Ok(PendingCall { token: register(token) })
    }

    /// Makes the call and waits for the answer.
    pub async fn send(self) -> Result<HttpResponse> {
        self.dispatch()?.await
    }
}

/// A call in flight; await it for the response. Dropping it forgets the call.
#[derive(Debug)]
pub struct PendingCall {
    token: u32,
}

impl PendingCall {
    /// The token Envoy gave the call.
    pub fn token(&self) -> u32 {
        self.token
    }
}

fn register(token: u32) -> u32 {
    CALLS.with(|c| c.borrow_mut().insert(token, Slot::Waiting(None)));
    token
}

/// Polls the slot of `token`: the answer once it is there, else parks the waker.
fn poll_answer(token: u32, cx: &mut Context<'_>) -> Poll<Result<Answer>> {
    CALLS.with(|c| {
        let mut calls = c.borrow_mut();
        match calls.remove(&token) {
            Some(Slot::Done(r)) => Poll::Ready(r),
            Some(Slot::Waiting(_)) | None => {
                calls.insert(token, Slot::Waiting(Some(cx.waker().clone())));
                Poll::Pending
            }
        }
    })
}

/// Completes the call `token` (if anyone still waits for it) and wakes its task.
fn complete(token: u32, result: Result<Answer>) {
    let waker = CALLS.with(|c| {
        let mut calls = c.borrow_mut();
        match calls.get_mut(&token) {
            Some(slot @ Slot::Waiting(_)) => match std::mem::replace(slot, Slot::Done(result)) {
                Slot::Waiting(w) => w,
                Slot::Done(_) => None,
            },
            // Nobody waits for it any more (the stream went away), or it is already answered.
            _ => None,
        }
    });
    if let Some(w) = waker {
        w.wake();
    }
}

fn forget(token: u32) {
    let _ = CALLS.try_with(|c| c.borrow_mut().remove(&token));
}

impl Future for PendingCall {
    type Output = Result<HttpResponse>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_answer(self.token, cx).map(|r| match r? {
            Answer::Http(resp) => Ok(resp),
            Answer::Grpc(_) => Err(Error::Callout("a gRPC answer for an HTTP call".into())),
        })
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        forget(self.token);
    }
}

/// A unary gRPC call to a cluster.
///
/// ```no_run
/// # async fn f() -> sluice::Result<()> {
/// let reply: Vec<u8> = sluice::call::GrpcCall::new("authz", "pkg.Checker", "Check", b"\x0a\x01x".to_vec())
///     .metadata("x-tenant", "a")
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GrpcCall {
    cluster: String,
    service: String,
    method: String,
    metadata: Vec<(String, Vec<u8>)>,
    message: Vec<u8>,
    timeout: Duration,
}

impl GrpcCall {
    /// A call of `service/method` on `cluster` with a serialized protobuf `message`.
    pub fn new(cluster: &str, service: &str, method: &str, message: impl Into<Vec<u8>>) -> Self {
        Self {
            cluster: cluster.into(),
            service: service.into(),
            method: method.into(),
            metadata: Vec::new(),
            message: message.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Adds initial metadata.
    pub fn metadata(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        self.metadata.push((name.as_ref().to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// The deadline (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the call and waits for the reply message. A non-OK gRPC status is an
    /// [`Error::Grpc`]; an unknown cluster fails at once with `ParseFailure`.
    pub async fn send(self) -> Result<Vec<u8>> {
        let refs: Vec<(&[u8], &[u8])> = self.metadata.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())).collect();
        let md = if refs.is_empty() { Vec::new() } else { crate::codec::encode_pairs(&refs) };
        let ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        let token = register(abi::grpc_call(&self.cluster, &self.service, &self.method, &md, &self.message, ms)?);
        /// Forgets the call if the awaiting future is dropped.
        struct Forget(u32);
        impl Drop for Forget {
            fn drop(&mut self) {
                forget(self.0);
            }
        }
        let pending = Forget(token);
        match std::future::poll_fn(|cx| poll_answer(pending.0, cx)).await? {
            Answer::Grpc(message) => Ok(message),
            Answer::Http(_) => Err(Error::Callout("an HTTP answer for a gRPC call".into())),
        }
    }
}

/// The answer to an [`HttpCall`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HttpResponse {
    /// The `:status`; `None` if missing or not a status code.
    pub fn status(&self) -> Option<StatusCode> {
        self.header(":status").and_then(|s| StatusCode::from_bytes(s).ok())
    }

    /// The first value of a header, as bytes.
    pub fn header(&self, name: impl AsRef<str>) -> Option<&[u8]> {
        let name = name.as_ref().as_bytes();
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The first value of a header, if it is UTF-8.
    pub fn header_str(&self, name: impl AsRef<str>) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header, in order.
    pub fn headers(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The trailers.
    pub fn trailers(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.trailers
    }
}

/// `proxy_on_http_call_response`: reads the answer while it is readable and wakes the waiting task.
pub(crate) fn on_response(token: u32, num_headers: usize, body_size: usize) {
    let result: Result<HttpResponse> = if num_headers == 0 {
        let (code, msg) = abi::get_status();
        Err(Error::Callout(format!("the call was reset (status {code}: {})", String::from_utf8_lossy(&msg))))
    } else {
        Ok(HttpResponse {
            headers: abi::get_map(crate::http::MapType::CallResponseHeaders as u32).unwrap_or_default(),
            body: abi::get_buffer(crate::http::BufferType::CallResponseBody as u32, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default(),
            trailers: abi::get_map(crate::http::MapType::CallResponseTrailers as u32).unwrap_or_default(),
        })
    };
    complete(token, result.map(Answer::Http));
}

/// `proxy_on_grpc_receive`: a unary call's reply message.
pub(crate) fn on_grpc_message(token: u32, size: usize) {
    let message =
        abi::get_buffer(crate::http::BufferType::GrpcMessage as u32, 0, size).ok().flatten().unwrap_or_default();
    complete(token, Ok(Answer::Grpc(message)));
}

/// `proxy_on_grpc_close`: the call ended; a non-OK status is the call's error.
pub(crate) fn on_grpc_close(token: u32, status: u32) {
    if status != 0 {
        let (_, message) = abi::get_status();
        let status = crate::grpc::Code::from_u32(status);
        complete(token, Err(Error::Grpc { status, message: String::from_utf8_lossy(&message).into_owned() }));
    }
}
