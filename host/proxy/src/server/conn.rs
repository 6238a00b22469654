//! A listener's connections: each accepted, counted, and served on a task of its own; an HTTP
//! one from its first bytes to hyper. The connection manager's
//! `codec_type` decides what those bytes may be (Envoy 1.40, asked: with `HTTP1` the HTTP/2
//! preface is a bad request, 400 `http1.codec_error`; with `HTTP2` a connection that does not start
//! with the preface is closed without a byte written; both count `downstream_cx_protocol_error`),
//! Envoy's HTTP/1 head checks stand in front of hyper, and the connection is counted by protocol
//! (`downstream_cx_http1_total`, `downstream_cx_http2_total` and their `_active` gauges).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use super::{accept, cluster, head_check, http, preface, stats, tcp, Listener, LocalExec, Shared};
use crate::config::Codec;

/// Takes `listener`'s connections until the server stops, each served on a task `connections`
/// tracks (a stop waits for them): the listener's `index`-th stats count them.
pub(super) async fn serve_listener(
    state: Listener,
    listener: tokio::net::TcpListener,
    index: usize,
    shared: Arc<Shared>,
    connections: TaskTracker,
) {
    while let Some((stream, peer)) = accept::next(&listener, &shared.stop).await {
        let local_addr = stream.local_addr().unwrap_or(peer);
        let connection = shared.next_connection();
        let _ = stream.set_nodelay(true);
        let (ls, hs) = &shared.listener_stats[index];
        ls.cx_total.fetch_add(1, Ordering::Relaxed);
        let mut gauges = vec![&ls.cx_active];
        if let Some(hs) = hs {
            hs.cx_total.fetch_add(1, Ordering::Relaxed);
            gauges.push(&hs.cx_active);
        }
        let active = stats::Active::new(&gauges);
        match &state {
            Listener::Http(state) => {
                let state = state.clone();
                connections.spawn_local(async move {
                    serve_http(state, stream, peer, local_addr, connection).await;
                    drop(active);
                });
            }
            Listener::Tcp(state) => {
                let state = state.clone();
                connections.spawn_local(async move {
                    tcp::handle(state, stream, connection).await;
                    drop(active);
                });
            }
        }
    }
}

/// Serves one accepted connection of an HTTP listener until it ends.
async fn serve_http(
    state: Rc<http::ListenerState>,
    mut stream: TcpStream,
    peer: SocketAddr,
    local_addr: SocketAddr,
    connection: u64,
) {
    let plan = &state.plan;
    let read_buffer = http1_read_buffer(plan.max_request_headers_bytes);
    let o = &plan.http1;
    let rules = head_check::Rules {
        limit: plan.max_request_headers_bytes,
        most: read_buffer,
        max_headers: o.max_headers,
        accept_http_10: o.accept_http_10,
        default_host_for_http_10: o.default_host_for_http_10.is_some(),
        allow_chunked_length: o.allow_chunked_length,
    };
    let stats = state.stats.clone();
    let codec = plan.codec;
    // What the connection starts with decides its protocol, unless the codec is fixed to HTTP/1
    // (whose parser then reads the preface as a request like any other).
    let (head, http2) = match codec {
        Codec::Http1 => (Vec::new(), false),
        Codec::Auto | Codec::Http2 => match preface::read_start(&mut stream).await {
            Ok(Some(head)) => {
                let http2 = preface::is_http2(&head);
                (head, http2)
            }
            Ok(None) => {
                // A preface whose first frame Envoy's HTTP/2 codec refuses (GOAWAY sent).
                stats.cx_http2_total.fetch_add(1, Ordering::Relaxed);
                stats.cx_protocol_error.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(_) => return,
        },
    };
    if codec == Codec::Http2 && !http2 {
        stats.cx_http2_total.fetch_add(1, Ordering::Relaxed);
        stats.cx_protocol_error.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (total, active) = if http2 {
        (&stats.cx_http2_total, &stats.cx_http2_active)
    } else {
        (&stats.cx_http1_total, &stats.cx_http1_active)
    };
    total.fetch_add(1, Ordering::Relaxed);
    let _active = stats::Active::new(&[active]);
    // hyper reads what `read_start` read first, then the socket; an HTTP/1 request head only once
    // Envoy's codec checks let it by.
    let heads = if http2 { head_check::Heads::unchecked() } else { head_check::Heads::new(rules) };
    let verdict = head_check::Verdict::default();
    let (read, write) = stream.into_split();
    let read = head_check::Checked::new(std::io::Cursor::new(head).chain(read), heads, verdict.clone());
    let io = tokio::io::join(read, write);
    let max_headers = o.max_headers;
    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
        let stand_in = req.headers().contains_key(head_check::STAND_IN_HEADER);
        let refused = if stand_in { verdict.borrow_mut().take() } else { None };
        http::handle(state.clone(), req, peer, local_addr, connection, refused)
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(LocalExec);
    builder.http1().max_buf_size(read_buffer).max_headers(max_headers);
    let builder = match codec {
        Codec::Auto => builder,
        Codec::Http1 => builder.http1_only(),
        Codec::Http2 => builder.http2_only(),
    };
    let r = builder.serve_connection(TokioIo::new(io), service).await;
    if r.is_err_and(|e| broke_protocol(&*e)) {
        stats.cx_protocol_error.fetch_add(1, Ordering::Relaxed);
    }
}

/// The most an HTTP/1 connection buffers of a request head before it is refused with 431 unended:
/// the listener's `max_request_headers_kb` (checked exactly once a head ends, counting names, values
/// and the target: `head_check.rs`) plus room for the request line's and each header line's framing.
/// hyper's buffer is the same size, so that hyper's own 431 (without Envoy's body) never comes first;
/// kept under hyper's 64 KiB limit on the request target for the default 60 KiB, so that a longer
/// request line gets Envoy's 431 rather than hyper's 414. hyper wants at least 8 KiB.
fn http1_read_buffer(max_request_headers_bytes: usize) -> usize {
    (max_request_headers_bytes + 3 * 1024).max(8 * 1024)
}

/// Whether a downstream connection ended because the client broke HTTP/1 (a request hyper could
/// not parse) or HTTP/2 (hyper's h2 sent GOAWAY for it): Envoy's `downstream_cx_protocol_error`.
fn broke_protocol(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<hyper::Error>().is_some_and(|e| e.is_parse() || cluster::is_protocol_error(e))
}
