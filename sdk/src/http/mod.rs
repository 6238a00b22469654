//! HTTP filters: the [`HttpFilter`] trait, views of headers, bodies and trailers, and local replies.

mod headers;
mod reply;

use std::future::Future;

/// The request or response body the filter holds now.
pub type Body = crate::buffer::Buffer;
pub use headers::{Headers, Request, Response, Trailers};
pub use reply::Reply;

/// Header map types of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum MapType {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    GrpcInitialMetadata = 4,
    GrpcTrailingMetadata = 5,
    CallResponseHeaders = 6,
    CallResponseTrailers = 7,
}

/// Buffer types of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum BufferType {
    RequestBody = 0,
    ResponseBody = 1,
    DownstreamData = 2,
    UpstreamData = 3,
    CallResponseBody = 4,
    GrpcMessage = 5,
    PluginConfiguration = 7,
    VmConfiguration = 6,
}

/// What a handler tells Envoy to do with the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Let the headers or data through.
    Continue,
    /// Hold them (in a body handler: keep buffering). Resume later with [`resume_request`] /
    /// [`resume_response`], or by answering.
    Pause,
    /// Answer the client with this reply instead.
    Respond(Reply),
}

impl From<Reply> for Action {
    fn from(r: Reply) -> Self {
        Action::Respond(r)
    }
}

/// An HTTP filter: one value per HTTP stream. Every handler may be `async`: awaiting a callout pauses
/// the stream, and the stream resumes by itself with the handler's [`Action`] when it is done.
///
/// ```no_run
/// use sluice::prelude::*;
///
/// struct RequireUser;
///
/// impl HttpFilter for RequireUser {
///     async fn on_request_headers(&mut self, req: Request, _end_of_stream: bool) -> Action {
///         match req.header_str("x-user") {
///             Some(_) => Action::Continue,
///             None => Reply::new(401).body("who are you?").into(),
///         }
///     }
/// }
/// ```
pub trait HttpFilter: 'static {
    /// When true, the SDK buffers the whole request body and calls [`HttpFilter::on_request_body`]
    /// once, with `end_of_stream` set, and drops `content-length` in the request headers so that
    /// Envoy frames a body of a new length correctly.
    fn buffer_request_body(&self) -> bool {
        false
    }

    /// Like [`HttpFilter::buffer_request_body`], for the response.
    fn buffer_response_body(&self) -> bool {
        false
    }

    /// Request headers arrived.
    fn on_request_headers(&mut self, req: Request, end_of_stream: bool) -> impl Future<Output = Action> {
        let _ = (req, end_of_stream);
        async { Action::Continue }
    }

    /// A request body chunk (or, when buffering, the whole body) arrived.
    fn on_request_body(&mut self, body: Body, end_of_stream: bool) -> impl Future<Output = Action> {
        let _ = (body, end_of_stream);
        async { Action::Continue }
    }

    /// Request trailers arrived.
    fn on_request_trailers(&mut self, trailers: Trailers) -> impl Future<Output = Action> {
        let _ = trailers;
        async { Action::Continue }
    }

    /// Response headers arrived.
    fn on_response_headers(&mut self, resp: Response, end_of_stream: bool) -> impl Future<Output = Action> {
        let _ = (resp, end_of_stream);
        async { Action::Continue }
    }

    /// A response body chunk (or, when buffering, the whole body) arrived.
    fn on_response_body(&mut self, body: Body, end_of_stream: bool) -> impl Future<Output = Action> {
        let _ = (body, end_of_stream);
        async { Action::Continue }
    }

    /// Response trailers arrived.
    fn on_response_trailers(&mut self, trailers: Trailers) -> impl Future<Output = Action> {
        let _ = trailers;
        async { Action::Continue }
    }

    /// The stream is over (Envoy's access-log pass): request and response headers are readable.
    fn on_log(&mut self) {}
}

/// Resumes a request paused with [`Action::Pause`].
pub fn resume_request() -> crate::Result<()> {
    crate::abi::continue_stream(0)
}

/// Resumes a response paused with [`Action::Pause`].
pub fn resume_response() -> crate::Result<()> {
    crate::abi::continue_stream(1)
}

/// Resets the stream: the client gets no response.
pub fn reset() -> crate::Result<()> {
    crate::abi::close_stream(0)
}
