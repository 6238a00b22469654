//! TCP proxying with network filters: bytes each way pass through the filter (pause, resume,
//! close), then to the other side.

use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::instance::Instance;
use super::Shared;
use crate::abi::status::PeerType;

/// Per worker, per TCP listener.
pub(crate) struct TcpListenerState {
    pub filter: std::cell::RefCell<Option<Rc<Instance>>>,
    pub cluster: String,
    pub shared: std::sync::Arc<Shared>,
}

/// Serves one connection.
pub(crate) async fn handle(state: Rc<TcpListenerState>, mut client: TcpStream) {
    let Some(cluster) = state.shared.clusters.get(&state.cluster) else { return };
    let Some(mut upstream) = cluster.connect_tcp().await else { return };
    let current = state.filter.borrow().clone();
    let Some(filter) = current else {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    };
    filter.sync_clock();
    let id = match filter.harness.borrow_mut().tcp_stream() {
        Ok(c) => c.id(),
        Err(_) => return,
    };
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let (mut cbuf, mut ubuf) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    let (mut client_open, mut upstream_open) = (true, true);
    while client_open || upstream_open {
        let (to_up, to_down, closed) = tokio::select! {
            r = cr.read(&mut cbuf), if client_open => {
                let n = r.unwrap_or(0);
                client_open = n > 0;
                filter.sync_clock();
                let mut h = filter.harness.borrow_mut();
                let mut c = h.tcp(id);
                let _ = c.downstream_data(&cbuf[..n], n == 0);
                (c.take_sent_upstream(), c.take_sent_downstream(), c.closed())
            }
            r = ur.read(&mut ubuf), if upstream_open => {
                let n = r.unwrap_or(0);
                upstream_open = n > 0;
                filter.sync_clock();
                let mut h = filter.harness.borrow_mut();
                let mut c = h.tcp(id);
                let _ = c.upstream_data(&ubuf[..n], n == 0);
                (c.take_sent_upstream(), c.take_sent_downstream(), c.closed())
            }
        };
        if !to_up.is_empty() && uw.write_all(&to_up).await.is_err() {
            break;
        }
        if !to_down.is_empty() && cw.write_all(&to_down).await.is_err() {
            break;
        }
        if !client_open {
            let _ = uw.shutdown().await;
        }
        if !upstream_open {
            let _ = cw.shutdown().await;
        }
        if closed.is_some() {
            // The filter (or a failure) closed the connection: flush and go.
            let _ = cw.shutdown().await;
            break;
        }
    }
    filter.dispatch_callouts();
    let mut h = filter.harness.borrow_mut();
    let mut c = h.tcp(id);
    let peer = c.closed().unwrap_or(PeerType::Remote);
    let _ = c.close(peer);
    h.forget_tcp_stream(id);
}
