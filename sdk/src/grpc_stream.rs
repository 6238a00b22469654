//! gRPC streams as async iterators: open one, send messages as you go, and await what the
//! upstream sends back (initial metadata, messages, trailing metadata, then the close with its
//! status), in the order Envoy delivers it.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::task::{Poll, Waker};

use crate::abi;
use crate::error::Result;
use crate::http::{BufferType, MapType};

/// Something a gRPC stream's upstream sent, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcStreamEvent {
    /// The response headers (gRPC initial metadata).
    InitialMetadata(Vec<(Vec<u8>, Vec<u8>)>),
    /// One message, without gRPC's length prefix.
    Message(Vec<u8>),
    /// The response trailers (gRPC trailing metadata).
    TrailingMetadata(Vec<(Vec<u8>, Vec<u8>)>),
    /// The stream ended: its gRPC status and message. Nothing follows.
    Closed {
        /// The gRPC status code.
        status: crate::grpc::Code,
        /// The status message (Envoy appends the response-code details, e.g. `{via_upstream}`).
        message: String,
    },
}

#[derive(Default)]
struct State {
    events: VecDeque<GrpcStreamEvent>,
    closed: bool,
    waker: Option<Waker>,
}

thread_local! {
    static STREAMS: RefCell<BTreeMap<u32, State>> = const { RefCell::new(BTreeMap::new()) };
}

/// A bidirectional gRPC stream to a cluster (`proxy_grpc_stream`).
///
/// ```no_run
/// # async fn f() -> sluice::Result<()> {
/// use sluice::call::{GrpcStream, GrpcStreamEvent};
/// let mut stream = GrpcStream::open("grpc", "pkg.Echo", "Stream", &[("x-tenant", b"a")])?;
/// stream.send(b"first", false)?;
/// stream.send(b"last", true)?; // half-closes: the upstream sees the end of the request stream
/// while let Some(event) = stream.next().await {
///     if let GrpcStreamEvent::Message(m) = event { /* … */ }
/// }
/// # Ok(()) }
/// ```
///
/// Dropping a stream that has not closed cancels it (`proxy_grpc_cancel`).
#[derive(Debug)]
pub struct GrpcStream {
    token: u32,
}

impl GrpcStream {
    /// Opens `service/method` on `cluster` with initial `metadata`. An unknown cluster fails at
    /// once (`ParseFailure`, as in Envoy).
    pub fn open(cluster: &str, service: &str, method: &str, metadata: &[(&str, &[u8])]) -> Result<Self> {
        let refs: Vec<(&[u8], &[u8])> = metadata.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
        let md = if refs.is_empty() { Vec::new() } else { crate::codec::encode_pairs(&refs) };
        let token = abi::grpc_stream(cluster, service, method, &md)?;
        STREAMS.with(|s| s.borrow_mut().insert(token, State::default()));
        Ok(GrpcStream { token })
    }

    /// The token Envoy gave the stream.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// Sends one message (serialized protobuf, without the length prefix); `end_of_stream`
    /// half-closes the request side after it.
    pub fn send(&self, message: impl AsRef<[u8]>, end_of_stream: bool) -> Result<()> {
        abi::grpc_send(self.token, message.as_ref(), end_of_stream)
    }

    /// Half-closes the request side without a message (`proxy_grpc_close`): the upstream's answers
    /// still arrive.
    pub fn close_send(&self) -> Result<()> {
        abi::grpc_close(self.token)
    }

    /// Cancels the stream (`proxy_grpc_cancel`): nothing more arrives, not even a close.
    pub fn cancel(self) -> Result<()> {
        // Forgotten first, so that dropping `self` cancels nothing twice.
        STREAMS.with(|s| s.borrow_mut().remove(&self.token));
        abi::grpc_cancel(self.token)
    }

    /// The next thing the upstream sent; `None` after [`GrpcStreamEvent::Closed`].
    pub async fn next(&mut self) -> Option<GrpcStreamEvent> {
        let token = self.token;
        std::future::poll_fn(|cx| {
            STREAMS.with(|s| {
                let mut streams = s.borrow_mut();
                let Some(state) = streams.get_mut(&token) else { return Poll::Ready(None) };
                if let Some(e) = state.events.pop_front() {
                    return Poll::Ready(Some(e));
                }
                if state.closed {
                    return Poll::Ready(None);
                }
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            })
        })
        .await
    }
}

impl Drop for GrpcStream {
    fn drop(&mut self) {
        let open = STREAMS.try_with(|s| s.borrow_mut().remove(&self.token).is_some_and(|st| !st.closed));
        if open.unwrap_or(false) {
            let _ = abi::grpc_cancel(self.token);
        }
    }
}

/// Queues `event` for the stream `token`; false if no stream has that token (a unary call's).
fn push(token: u32, event: GrpcStreamEvent, closes: bool) -> bool {
    let waker = STREAMS.with(|s| {
        let mut streams = s.borrow_mut();
        let state = streams.get_mut(&token)?;
        state.events.push_back(event);
        state.closed |= closes;
        Some(state.waker.take())
    });
    match waker {
        Some(w) => {
            if let Some(w) = w {
                w.wake();
            }
            true
        }
        None => false,
    }
}

fn is_stream(token: u32) -> bool {
    STREAMS.with(|s| s.borrow().contains_key(&token))
}

/// `proxy_on_grpc_receive_initial_metadata` / `…_trailing_metadata`.
pub(crate) fn on_metadata(token: u32, initial: bool) {
    if !is_stream(token) {
        return;
    }
    let t = if initial { MapType::GrpcInitialMetadata } else { MapType::GrpcTrailingMetadata };
    let pairs = abi::get_map(t as u32).unwrap_or_default();
    let event =
        if initial { GrpcStreamEvent::InitialMetadata(pairs) } else { GrpcStreamEvent::TrailingMetadata(pairs) };
    push(token, event, false);
}

/// `proxy_on_grpc_receive` for a stream; false if `token` is not a stream's.
pub(crate) fn on_message(token: u32, size: usize) -> bool {
    if !is_stream(token) {
        return false;
    }
    let message = abi::get_buffer(BufferType::GrpcMessage as u32, 0, size).ok().flatten().unwrap_or_default();
    push(token, GrpcStreamEvent::Message(message), false)
}

/// `proxy_on_grpc_close` for a stream; false if `token` is not a stream's.
pub(crate) fn on_close(token: u32, status: u32) -> bool {
    if !is_stream(token) {
        return false;
    }
    let (_, message) = abi::get_status();
    let status = crate::grpc::Code::from_u32(status);
    push(token, GrpcStreamEvent::Closed { status, message: String::from_utf8_lossy(&message).into_owned() }, true)
}
