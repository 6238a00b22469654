//! Bodies `sluice serve` hands to hyper: a whole body known up front, or one fed frame by frame
//! through a channel while the filters pass it on.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

use super::reset::Reset;

/// How many frames may wait in a body channel before the producer waits (back-pressure).
const CHANNEL_FRAMES: usize = 16;

/// A request or response body on its way out.
pub(crate) enum PipeBody {
    /// All of it, now; `exact`: its length goes in `content-length` (else HTTP/1.1 frames it
    /// chunked, as Envoy does when a filter removed `content-length`).
    Full { data: Option<Bytes>, exact: bool },
    /// No body, with a `content-length: 0` among the headers, on HTTP/1: hyper writes an ended
    /// body's length itself, after every other header, where Envoy keeps the header where it
    /// stands; a body that only says it is empty once polled keeps hyper to the header.
    EmptyWithLength,
    /// Frames as they come; an `Err` aborts the message (the peer sees a reset).
    Stream {
        rx: mpsc::Receiver<Result<Frame<Bytes>, Reset>>,
        length: Option<u64>,
        /// Whether trailers go out (an HTTP/1 peer gets none: Envoy's HTTP/1 codec drops
        /// proxied trailers unless `enable_trailers` is set).
        trailers: bool,
        /// A reset that came, held for one poll so that what was written before it (the head
        /// above all) is flushed first: Envoy's peer sees the headers, then the message break
        /// off; hyper would drop its unflushed buffer with the connection.
        reset: Option<Reset>,
    },
}

/// The sending end of a [`PipeBody::Stream`].
pub(crate) type BodySender = mpsc::Sender<Result<Frame<Bytes>, Reset>>;

impl PipeBody {
    /// A whole body.
    pub(crate) fn full(b: impl Into<Bytes>, exact: bool) -> Self {
        let b = b.into();
        PipeBody::Full { data: (!b.is_empty()).then_some(b), exact }
    }

    /// A body fed through the returned sender; `length` when the headers promise one.
    pub(crate) fn channel(length: Option<u64>) -> (BodySender, Self) {
        let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
        (tx, PipeBody::Stream { rx, length, trailers: true, reset: None })
    }
}

impl PipeBody {
    /// This body with its trailers left out (for an HTTP/1 peer).
    pub(crate) fn without_trailers(mut self) -> Self {
        if let PipeBody::Stream { trailers, .. } = &mut self {
            *trailers = false;
        }
        self
    }
}

impl hyper::body::Body for PipeBody {
    type Data = Bytes;
    type Error = Reset;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Reset>>> {
        match self.get_mut() {
            PipeBody::Full { data, .. } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            PipeBody::EmptyWithLength => Poll::Ready(None),
            PipeBody::Stream { rx, trailers, reset, .. } => loop {
                if let Some(r) = reset.take() {
                    return Poll::Ready(Some(Err(r)));
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(Ok(f))) if !*trailers && f.is_trailers() => continue,
                    Poll::Ready(Some(Err(r))) => {
                        *reset = Some(r);
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    other => return other,
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, PipeBody::Full { data: None, .. })
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            PipeBody::Full { data: None, .. } | PipeBody::EmptyWithLength => SizeHint::with_exact(0),
            PipeBody::Full { data: Some(d), exact: true } => SizeHint::with_exact(d.len() as u64),
            PipeBody::Full { exact: false, .. } => SizeHint::default(),
            PipeBody::Stream { length: Some(n), .. } => SizeHint::with_exact(*n),
            PipeBody::Stream { length: None, .. } => SizeHint::default(),
        }
    }
}
