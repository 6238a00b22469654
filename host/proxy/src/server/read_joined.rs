//! A body read as Envoy's HTTP/1 codec hands it to the filters: the data of one read, one
//! callback, and no trailers.
//!
//! Envoy's HTTP/1 codec buffers the body bytes it parses during one dispatch (one socket read) and
//! passes them on as a single data event, however many chunks they were framed in; hyper yields a
//! frame per chunk. So a filter in Envoy sees `on_http_request_body(156)` where a frame-by-frame
//! host would call it twice with 78. This joins the data frames that are already decoded when the
//! first one is taken (letting hyper's connection task run between frames, so that it decodes
//! what it has already read). HTTP/2 is not joined: Envoy's HTTP/2 codec passes each DATA frame on.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

/// A body whose ready data frames come out joined (when `join`).
pub(crate) struct ReadJoined<B: Body> {
    body: B,
    http1: bool,
    /// What came after the joined data (trailers, the end, an error), for the next call.
    held: Option<Option<Result<Frame<Bytes>, B::Error>>>,
    /// Data frames taken but not handed out yet (kept here so that a dropped call loses none).
    parts: Vec<Bytes>,
}

impl<B: Body<Data = Bytes> + Unpin> ReadJoined<B> {
    /// Reads `body`, as Envoy's HTTP/1 codec when `http1`: ready data frames joined, trailers
    /// dropped (the codec drops proxied trailers unless `enable_trailers` is set).
    pub(crate) fn new(body: B, http1: bool) -> Self {
        Self { body, http1, held: None, parts: Vec::new() }
    }

    /// The next frame: the data of every frame decoded by now, or trailers; `None` at the end.
    ///
    /// Cancel-safe: the data gathered so far stays in `self` if the future is dropped (a driver
    /// selects between this and its other wake-ups), and the next call goes on from there.
    pub(crate) async fn next(&mut self) -> Option<Result<Frame<Bytes>, B::Error>> {
        if self.parts.is_empty() {
            if let Some(held) = self.held.take() {
                return held;
            }
            let frame = loop {
                match self.body.frame().await {
                    Some(Ok(f)) if self.http1 && f.is_trailers() => continue,
                    Some(Ok(f)) => break f,
                    other => return other,
                }
            };
            if !self.http1 || !frame.is_data() {
                return Some(Ok(frame));
            }
            let Ok(first) = frame.into_data() else { return None };
            self.parts.push(first);
        }
        // hyper decodes a connection's bytes in the connection's own task, a frame each time the
        // body asks: a frame not ready yet may only need that task to run once more.
        let mut yielded = false;
        loop {
            match ready_now(self.body.frame()) {
                Some(Some(Ok(f))) if f.is_trailers() => yielded = false,
                Some(Some(Ok(f))) => {
                    yielded = false;
                    if let Ok(more) = f.into_data() {
                        self.parts.push(more);
                    }
                }
                Some(after) => {
                    self.held = Some(after);
                    break;
                }
                None if yielded => break,
                // A body that says it is complete (its `content-length` all read) has nothing
                // more to decode: no need to let the connection's task run.
                None if self.body.is_end_stream() => break,
                None => {
                    tokio::task::yield_now().await;
                    yielded = true;
                }
            }
        }
        let parts = std::mem::take(&mut self.parts);
        let data = if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for p in &parts {
                joined.extend_from_slice(p);
            }
            joined.freeze()
        };
        Some(Ok(Frame::data(data)))
    }

    /// Whether nothing more will come.
    pub(crate) fn is_end_stream(&self) -> bool {
        if !self.parts.is_empty() {
            return false;
        }
        match &self.held {
            Some(None) => true,
            Some(Some(_)) => false,
            None => self.body.is_end_stream(),
        }
    }
}

/// `future`'s output if it is ready without waiting. A future dropped while pending is simply
/// polled afresh later (body reads register their waker on each poll).
fn ready_now<F: Future>(future: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body over a list of frames, every one ready.
    mod futures_like {
        use super::*;
        pub struct Iter(pub std::collections::VecDeque<Result<Frame<Bytes>, std::convert::Infallible>>);
        impl hyper::body::Body for Iter {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
                Poll::Ready(self.0.pop_front())
            }
            fn is_end_stream(&self) -> bool {
                self.0.is_empty()
            }
        }
    }

    #[tokio::test]
    async fn ready_data_comes_out_as_one_frame_and_http1_trailers_are_dropped() {
        let mut trailers = hyper::HeaderMap::new();
        trailers.insert("x-t", "1".parse().unwrap());
        let frames = vec![Frame::data(Bytes::from("ab")), Frame::data(Bytes::from("cd")), Frame::trailers(trailers)];
        let mut b = ReadJoined::new(futures_like::Iter(frames.into_iter().map(Ok).collect()), true);
        assert_eq!(b.next().await.unwrap().unwrap().into_data().unwrap(), "abcd");
        assert!(b.next().await.is_none());
    }

    /// A body whose second frame is not ready at the first ask (hyper's connection task has not
    /// decoded it yet).
    struct Stutter(futures_like::Iter, bool);

    impl hyper::body::Body for Stutter {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            let first = self.0 .0.len() == 2;
            if !first && !self.1 {
                self.1 = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            std::pin::Pin::new(&mut self.0).poll_frame(cx)
        }
    }

    #[tokio::test]
    async fn a_call_dropped_while_joining_loses_nothing() {
        let frames = vec![Frame::data(Bytes::from("ab")), Frame::data(Bytes::from("cd"))];
        let body = Stutter(futures_like::Iter(frames.into_iter().map(Ok).collect()), false);
        let mut b = ReadJoined::new(body, true);
        // Polled once: the first frame is taken, the second is not ready, the call yields; it is
        // dropped there, as a driver's `select!` drops it when another wake-up wins.
        assert!(ready_now(b.next()).is_none());
        assert_eq!(b.next().await.unwrap().unwrap().into_data().unwrap(), "abcd");
        assert!(b.next().await.is_none());
    }

    #[tokio::test]
    async fn http2_frames_stay_apart() {
        let frames = vec![Frame::data(Bytes::from("ab")), Frame::data(Bytes::from("cd"))];
        let mut b = ReadJoined::new(futures_like::Iter(frames.into_iter().map(Ok).collect()), false);
        assert_eq!(b.next().await.unwrap().unwrap().into_data().unwrap(), "ab");
        assert_eq!(b.next().await.unwrap().unwrap().into_data().unwrap(), "cd");
        assert!(b.next().await.is_none());
        assert!(b.is_end_stream());
    }
}
