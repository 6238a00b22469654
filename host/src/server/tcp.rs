//! TCP proxying with a chain of network filters: bytes from the client pass the filters in order,
//! bytes from the upstream pass them in reverse (Envoy's read and write filters), each filter may
//! pause, resume (after a callout) or close.

use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::instance::{Filter, Instance};
use super::Shared;
use crate::abi::status::PeerType;
use crate::manager::{Direction, StreamId};
use crate::stream::FilterStatus;

/// Per worker, per TCP listener.
pub(crate) struct TcpListenerState {
    /// The wasm network filters, in order (swapped whole by `--watch`; a connection keeps the ones
    /// it began with).
    pub filters: std::cell::RefCell<Vec<Filter>>,
    pub cluster: String,
    /// The listener's `metadata` (`xds.listener_metadata`).
    pub metadata: crate::stream::Metadata,
    /// tcp_proxy's access logs, written when a connection ends.
    pub access_logs: Vec<super::access_log::AccessLog>,
    pub shared: std::sync::Arc<Shared>,
}

/// What the access log says of one connection.
struct Seen {
    start: std::time::SystemTime,
    began: std::time::Instant,
    received: u64,
    sent: u64,
    upstream: Option<std::net::SocketAddr>,
    cluster: Option<String>,
}

impl Seen {
    fn log(&self, state: &TcpListenerState, peer: std::net::SocketAddr, local: std::net::SocketAddr) {
        let e = super::access_log::Entry {
            start: Some(self.start),
            duration: self.began.elapsed(),
            bytes_received: self.received,
            bytes_sent: self.sent,
            upstream_host: self.upstream,
            upstream_cluster: self.cluster.as_deref(),
            downstream_remote: Some(peer),
            downstream_local: Some(local),
            ..Default::default()
        };
        state.access_logs.iter().for_each(|l| l.write(&e));
    }
}

/// One filter's stream of this connection.
struct Link {
    instance: Rc<Instance>,
    id: StreamId,
}

/// What came out of the chain on one pass.
#[derive(Default)]
struct Out {
    to_upstream: Vec<u8>,
    to_client: Vec<u8>,
    closed: bool,
}

/// Passes `input` through the links, in order for client data and in reverse for upstream data,
/// and collects what each end receives (data a filter sends the other way, too).
fn pass(links: &[Link], from_client: bool, input: &[u8], eos: bool) -> Out {
    let mut out = Out::default();
    let order: Vec<usize> = if from_client { (0..links.len()).collect() } else { (0..links.len()).rev().collect() };
    let mut carry = input.to_vec();
    let mut carry_eos = eos;
    let (d, back_d) =
        if from_client { (Direction::Request, Direction::Response) } else { (Direction::Response, Direction::Request) };
    for k in order {
        let l = &links[k];
        let (let_through, closed, onward, back) = l.instance.with(|p| {
            let mut let_through = true;
            if !carry.is_empty() || carry_eos {
                let r = p.tcp_data(l.id, d, &carry, carry_eos);
                let_through = matches!(r, Ok(FilterStatus::Continue));
            }
            let closed = p.tcp_closed(l.id).is_some();
            (let_through, closed, p.take_tcp_output(l.id, d), p.take_tcp_output(l.id, back_d))
        });
        out.closed |= closed;
        if !back.is_empty() {
            // Sent the other way (e.g. a reply written by the filter): it does not pass the others.
            if from_client {
                out.to_client.extend(back)
            } else {
                out.to_upstream.extend(back)
            }
        }
        carry = onward;
        // The end of the stream goes past a filter only if it let the data through.
        carry_eos &= let_through;
        if closed {
            // A closed connection stops the chain here, as Envoy stops iterating its filters.
            carry.clear();
            break;
        }
    }
    if from_client {
        out.to_upstream.extend(carry);
    } else {
        out.to_client.extend(carry);
    }
    out
}

/// Collects data filters released on their own (after a callout answered and they resumed).
fn released(links: &[Link]) -> Out {
    let mut out = Out::default();
    for dir in [true, false] {
        let o = pass(links, dir, &[], false);
        out.to_upstream.extend(o.to_upstream);
        out.to_client.extend(o.to_client);
        out.closed |= o.closed;
    }
    out
}

/// The filter-state key Envoy's tcp_proxy reads to pick the cluster instead of its own `cluster`.
const CLUSTER_FILTER_STATE: &str = "envoy.tcp_proxy.cluster";

/// Serves one connection: the network filters see it first (`on_new_connection`), then the proxy
/// connects to the cluster — the configured one, or the one a filter named in the filter state
/// `envoy.tcp_proxy.cluster`, as Envoy's tcp_proxy does.
pub(crate) async fn handle(state: Rc<TcpListenerState>, client: TcpStream, connection: u64) {
    let (Ok(peer), Ok(local)) = (client.peer_addr(), client.local_addr()) else { return };
    let mut seen = Seen {
        start: std::time::SystemTime::now(),
        began: std::time::Instant::now(),
        received: 0,
        sent: 0,
        upstream: None,
        cluster: None,
    };
    proxy(&state, client, peer, local, connection, &mut seen).await;
    seen.log(&state, peer, local);
}

async fn proxy(
    state: &TcpListenerState,
    mut client: TcpStream,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    connection: u64,
    seen: &mut Seen,
) {
    let filters = state.filters.borrow().clone();
    if filters.is_empty() {
        let Some(cluster) = state.shared.clusters.get(&state.cluster) else { return };
        seen.cluster = Some(state.cluster.clone());
        let Some(mut upstream) = cluster.connect_tcp().await else { return };
        seen.upstream = upstream.peer_addr().ok();
        if let Ok((up, down)) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            (seen.received, seen.sent) = (up, down);
        }
        return;
    }
    let mut links = Vec::with_capacity(filters.len());
    let wake = Rc::new(tokio::sync::Notify::new());
    for f in filters {
        let info = crate::stream::StreamInfo {
            source: Some(peer),
            destination: Some(local),
            listener_metadata: Some(state.metadata.clone()),
            connection_id: connection,
            ..Default::default()
        };
        let id = match f.instance.with(|p| p.open_tcp(f.plugin, info)) {
            Ok(id) => id,
            Err(_) => return forget(&links),
        };
        f.instance.watch(id, wake.clone());
        links.push(Link { instance: f.instance, id });
    }
    let chosen = links.iter().rev().find_map(|l| l.instance.peek(|p| p.tcp_filter_state(l.id, CLUSTER_FILTER_STATE)));
    let name = chosen.map_or_else(|| state.cluster.clone(), |c| String::from_utf8_lossy(&c).into_owned());
    // An unknown cluster, or one that does not answer, closes the connection.
    let Some(cluster) = state.shared.clusters.get(&name) else { return forget(&links) };
    seen.cluster = Some(name.clone());
    let Some(mut upstream) = cluster.connect_tcp().await else { return forget(&links) };
    for l in &links {
        l.instance.with(|p| p.set_tcp_cluster(l.id, &name, cluster.metadata().clone()));
    }
    if let Ok(addr) = upstream.peer_addr() {
        seen.upstream = Some(addr);
        for l in &links {
            l.instance.with(|p| p.set_tcp_upstream_address(l.id, addr));
        }
    }
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let (mut cbuf, mut ubuf) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    let (mut client_open, mut upstream_open) = (true, true);
    // A filter may close at once (in on_new_connection).
    let mut out = released(&links);
    loop {
        if !out.to_upstream.is_empty() && uw.write_all(&out.to_upstream).await.is_err() {
            break;
        }
        if !out.to_client.is_empty() && cw.write_all(&out.to_client).await.is_err() {
            break;
        }
        seen.sent += out.to_client.len() as u64;
        if out.closed {
            // A filter (or a failure) closed the connection: flush and go.
            let _ = cw.shutdown().await;
            break;
        }
        if !client_open && !upstream_open {
            break;
        }
        let notified = wake.notified();
        out = tokio::select! {
            r = cr.read(&mut cbuf), if client_open => {
                let n = r.unwrap_or(0);
                seen.received += n as u64;
                client_open = n > 0;
                let o = pass(&links, true, &cbuf[..n], n == 0);
                if !client_open {
                    let _ = uw.shutdown().await;
                }
                o
            }
            r = ur.read(&mut ubuf), if upstream_open => {
                let n = r.unwrap_or(0);
                upstream_open = n > 0;
                let o = pass(&links, false, &ubuf[..n], n == 0);
                if !upstream_open {
                    let _ = cw.shutdown().await;
                }
                o
            }
            _ = notified => released(&links),
        };
    }
    forget(&links);
}

/// Closes each filter's side of the connection (if it is not closed yet) and forgets it.
fn forget(links: &[Link]) {
    for l in links {
        l.instance.unwatch(l.id);
        l.instance.with(|p| {
            let peer = p.tcp_closed(l.id).unwrap_or(PeerType::Remote);
            let _ = p.close_tcp(l.id, peer);
            p.forget_tcp(l.id);
        });
    }
}
