//! A handle on one HTTP stream, for the work that outlives a callback.

use super::headers::{Request, Response, Trailers};
use super::{MapType, Reply};
use crate::dispatch::within;
use crate::error::Result;

/// One HTTP stream, by its context: what a spawned task or another context's callback uses to
/// resume, answer or reset *this* stream, and to reach its headers. Get it from any view the
/// stream's handlers are given ([`Request::stream`], [`Body::stream`](super::Body::stream), …).
///
/// Every call acts on the stream it names, whichever callback runs; once the stream is over, calls
/// fail with the host's error instead of touching another stream.
///
/// ```no_run
/// use sluice::prelude::*;
///
/// struct Audit;
///
/// impl HttpFilter for Audit {
///     async fn on_request_headers(&mut self, req: Request<'_>, _eos: bool) -> sluice::Result<Action> {
///         let stream = req.stream();
///         sluice::spawn(async move {
///             let verdict = HttpCall::get("audit", "/ok").send().await;
///             let allowed = verdict.is_ok_and(|r| r.status() == Some(StatusCode::OK));
///             let _ = if allowed {
///                 stream.request_headers().set_header("x-audited", "yes").and(stream.resume_request())
///             } else {
///                 stream.respond(&Reply::new(StatusCode::FORBIDDEN))
///             };
///         });
///         Ok(Action::Pause)
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStream {
    context: u32,
}

impl HttpStream {
    pub(crate) fn new(context: u32) -> Self {
        Self { context }
    }

    /// The request headers (readable as long as Envoy keeps them: through `on_log`).
    pub fn request_headers(&self) -> Request<'_> {
        Request::new(self.context)
    }

    /// The response headers, once they have arrived.
    pub fn response_headers(&self) -> Response<'_> {
        Response::new(self.context)
    }

    /// The request trailers, once they have arrived.
    pub fn request_trailers(&self) -> Trailers<'_> {
        Trailers::new(self.context, MapType::RequestTrailers)
    }

    /// The response trailers, once they have arrived.
    pub fn response_trailers(&self) -> Trailers<'_> {
        Trailers::new(self.context, MapType::ResponseTrailers)
    }

    /// Resumes the request paused with [`Action::Pause`](super::Action::Pause).
    pub fn resume_request(&self) -> Result<()> {
        within(self.context, || crate::abi::continue_stream(0))
    }

    /// Resumes the response paused with [`Action::Pause`](super::Action::Pause).
    pub fn resume_response(&self) -> Result<()> {
        within(self.context, || crate::abi::continue_stream(1))
    }

    /// Answers the client with `reply` (the upstream's answer, if any, is dropped).
    pub fn respond(&self, reply: &Reply) -> Result<()> {
        within(self.context, || reply.send())
    }

    /// Resets the stream: the client gets no response.
    pub fn reset(&self) -> Result<()> {
        within(self.context, || crate::abi::close_stream(0))
    }
}
