//! TCP proxying with a chain of network filters: bytes from the client pass the filters in order,
//! bytes from the upstream pass them in reverse (Envoy's read and write filters), each filter may
//! pause, resume (after a callout) or close.

use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::instance::{Filter, Instance, Instances};
use super::Shared;
use sluice_core::chain::TcpChain;
use sluice_core::error::Report;
use sluice_core::plugin_vm::Direction;
use sluice_core::wire::status::PeerType;

/// Per worker, per TCP listener.
pub(crate) struct TcpListenerState {
    /// The wasm network filters, in order (swapped whole by `--watch`; a connection keeps the ones
    /// it began with).
    pub filters: std::cell::RefCell<Vec<Filter>>,
    pub cluster: String,
    /// The listener's `metadata` (`xds.listener_metadata`).
    pub metadata: sluice_core::stream::Metadata,
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
    let info = sluice_core::stream::StreamInfo {
        source: Some(peer),
        destination: Some(local),
        listener_metadata: Some(state.metadata.clone()),
        connection_id: connection,
        ..Default::default()
    };
    let filters = filters.into_iter().map(|f| (f.instance, f.plugin));
    let mut chain = match TcpChain::open(&mut Instances, filters, &info) {
        Ok(chain) => chain,
        Err(e) => {
            tracing::warn!(target: "wasm", "a network filter could not take the connection: {}", Report(&e));
            return;
        }
    };
    let wake = Rc::new(tokio::sync::Notify::new());
    for l in chain.links() {
        l.vm.watch(l.stream, wake.clone());
    }
    let chosen = chain.filter_state(&Instances, CLUSTER_FILTER_STATE);
    let name = chosen.map_or_else(|| state.cluster.clone(), |c| String::from_utf8_lossy(&c).into_owned());
    // An unknown cluster, or one that does not answer, closes the connection.
    let Some(cluster) = state.shared.clusters.get(&name) else { return forget(chain, PeerType::Local) };
    seen.cluster = Some(name.clone());
    let Some(mut upstream) = cluster.connect_tcp().await else { return forget(chain, PeerType::Local) };
    chain.set_cluster(&mut Instances, &name, cluster.metadata());
    if let Ok(addr) = upstream.peer_addr() {
        seen.upstream = Some(addr);
        chain.set_upstream_address(&mut Instances, addr);
    }
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let (mut cbuf, mut ubuf) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    let (mut client_open, mut upstream_open) = (true, true);
    // Who ends the client's connection: the proxy (Envoy's tcp_proxy closes it once the upstream
    // connection is done, and a filter may close it), unless the client broke it off.
    let mut closer = PeerType::Local;
    // A filter may close at once (in on_new_connection).
    let mut out = chain.released(&mut Instances);
    loop {
        if !out.to_upstream.is_empty() && uw.write_all(&out.to_upstream).await.is_err() {
            break;
        }
        if !out.to_client.is_empty() && cw.write_all(&out.to_client).await.is_err() {
            closer = PeerType::Remote;
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
                if r.is_err() {
                    closer = PeerType::Remote;
                }
                let n = r.unwrap_or(0);
                seen.received += n as u64;
                client_open = n > 0;
                let o = chain.pass(&mut Instances, Direction::Request, &cbuf[..n], n == 0);
                if !client_open {
                    let _ = uw.shutdown().await;
                }
                o
            }
            r = ur.read(&mut ubuf), if upstream_open => {
                let n = r.unwrap_or(0);
                upstream_open = n > 0;
                let o = chain.pass(&mut Instances, Direction::Response, &ubuf[..n], n == 0);
                if !upstream_open {
                    let _ = cw.shutdown().await;
                }
                o
            }
            _ = notified => chain.released(&mut Instances),
        };
    }
    forget(chain, closer);
}

/// Ends the connection for every filter (closed by `closer` unless a filter closed it) and
/// forgets it.
fn forget(mut chain: TcpChain<Rc<Instance>>, closer: PeerType) {
    for l in chain.links() {
        l.vm.unwatch(l.stream);
    }
    if let Some((filter, e)) = chain.take_error(&Instances) {
        tracing::warn!(target: "wasm", "filter `{filter}`: the connection was closed: {}", Report(&e));
    }
    // A filter that finished already refuses a second close: nothing is lost.
    let _ = chain.close(&mut Instances, closer);
    chain.forget(&mut Instances);
}
