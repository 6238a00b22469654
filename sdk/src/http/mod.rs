//! HTTP filters: the [`HttpFilter`] trait, views of headers, bodies and trailers, the
//! [`HttpStream`] handle, and local replies.

mod body;
mod headers;
mod reply;
mod stream;

use std::future::Future;

use crate::Result;

pub use body::Body;
pub use headers::{Headers, Request, Response, Trailers};
pub use reply::Reply;
pub use stream::HttpStream;

/// The [`http`](https://docs.rs/http) crate's types the SDK takes and returns.
pub use ::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

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
    VmConfiguration = 6,
    PluginConfiguration = 7,
    ForeignFunctionArguments = 8,
}

/// What a handler tells Envoy to do with the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Let the headers or data through.
    Continue,
    /// Hold them (in a body handler: keep buffering). Resume later through the stream's
    /// [`HttpStream`] handle, or by answering.
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
/// A handler returns `Result<Action>`, so `?` works on every hostcall. An error is logged (naming
/// the handler) and answered with a `500` whose details are `sluice_filter_error`: a filter that
/// could not decide does not let the request through.
///
/// ```no_run
/// use sluice::prelude::*;
///
/// struct RequireUser;
///
/// impl HttpFilter for RequireUser {
///     async fn on_request_headers(&mut self, req: Request<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
///         Ok(match req.header_str("x-user")? {
///             Some(_) => Action::Continue,
///             None => Reply::new(StatusCode::UNAUTHORIZED).body("who are you?").into(),
///         })
///     }
/// }
/// ```
pub trait HttpFilter: 'static {
    /// When true, the SDK buffers the whole request body and calls [`HttpFilter::on_request_body`]
    /// once, with `end_of_stream` set, and drops `content-length` in the request headers so that
    /// Envoy frames a body of a new length correctly. The request headers stay writable until then
    /// (through [`Body::stream`]), as Envoy allows while it holds them.
    fn buffer_request_body(&self) -> bool {
        false
    }

    /// Like [`HttpFilter::buffer_request_body`], for the response.
    fn buffer_response_body(&self) -> bool {
        false
    }

    /// Request headers arrived.
    fn on_request_headers(&mut self, req: Request<'_>, end_of_stream: bool) -> impl Future<Output = Result<Action>> {
        let _ = (req, end_of_stream);
        async { Ok(Action::Continue) }
    }

    /// A request body chunk (or, when buffering, the whole body) arrived.
    fn on_request_body(&mut self, body: Body<'_>, end_of_stream: bool) -> impl Future<Output = Result<Action>> {
        let _ = (body, end_of_stream);
        async { Ok(Action::Continue) }
    }

    /// Request trailers arrived.
    fn on_request_trailers(&mut self, trailers: Trailers<'_>) -> impl Future<Output = Result<Action>> {
        let _ = trailers;
        async { Ok(Action::Continue) }
    }

    /// Response headers arrived.
    fn on_response_headers(&mut self, resp: Response<'_>, end_of_stream: bool) -> impl Future<Output = Result<Action>> {
        let _ = (resp, end_of_stream);
        async { Ok(Action::Continue) }
    }

    /// A response body chunk (or, when buffering, the whole body) arrived.
    fn on_response_body(&mut self, body: Body<'_>, end_of_stream: bool) -> impl Future<Output = Result<Action>> {
        let _ = (body, end_of_stream);
        async { Ok(Action::Continue) }
    }

    /// Response trailers arrived.
    fn on_response_trailers(&mut self, trailers: Trailers<'_>) -> impl Future<Output = Result<Action>> {
        let _ = trailers;
        async { Ok(Action::Continue) }
    }

    /// The stream is over (Envoy's access-log pass): its request and response headers are
    /// readable through `stream`.
    fn on_log(&mut self, stream: &HttpStream) {
        let _ = stream;
    }
}
