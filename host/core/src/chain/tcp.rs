//! A connection's chain of network filters: client bytes pass the filters in order, upstream bytes
//! in reverse (Envoy's read and write filters).

use super::{Link, Vms};
use crate::error::{Error, Result};
use crate::plugin_vm::{Direction, PluginId};
use crate::stream::{FilterStatus, Metadata, StreamInfo};
use crate::wire::status::PeerType;

/// What came out of a [`TcpChain`] on one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpOut {
    /// Bytes for the upstream.
    pub to_upstream: Vec<u8>,
    /// Bytes for the client.
    pub to_client: Vec<u8>,
    /// A filter (or a failed VM, or a host error) closed the connection.
    pub closed: bool,
    /// What the filter that took the input first answered (`Ended` for no input, or a connection
    /// it no longer takes).
    pub status: FilterStatus,
}

impl Default for TcpOut {
    fn default() -> Self {
        Self { to_upstream: Vec::new(), to_client: Vec::new(), closed: false, status: FilterStatus::Ended }
    }
}

/// One TCP connection through a chain of network filters, stepped as Envoy's network filter
/// manager steps them: what a filter lets through goes on to the next at once, a filter that
/// pauses holds the rest, and the end of a stream goes past a filter only with data it lets
/// through. A filter that closes the connection stops the chain there.
#[derive(Debug)]
pub struct TcpChain<K> {
    links: Vec<Link<K>>,
    /// The first host error a step met (a guest's fault is its failure policy's business): the
    /// connection is then closed.
    failed: Option<(usize, Error)>,
}

impl<K> TcpChain<K> {
    /// Accepts the connection in each filter (`(vm, plugin)`, in the order client bytes pass
    /// them), with its facts `info`: each creates its context and runs `on_new_connection`.
    ///
    /// # Errors
    /// The host's own failure in a filter (the ones opened before it are closed again).
    pub fn open<V: Vms<Key = K>>(
        vms: &mut V,
        filters: impl IntoIterator<Item = (K, PluginId)>,
        info: &StreamInfo,
    ) -> Result<Self> {
        let mut chain = Self { links: Vec::new(), failed: None };
        for (vm, plugin) in filters {
            match vms.step(&vm, |p| p.open_tcp(plugin, info.clone())) {
                Ok(stream) => chain.links.push(Link { vm, plugin, stream }),
                Err(e) => {
                    chain.forget(vms);
                    return Err(e);
                }
            }
        }
        Ok(chain)
    }

    /// The filters, in the order client bytes pass them.
    pub fn links(&self) -> &[Link<K>] {
        &self.links
    }

    /// Passes `input` (from the client for `Request`, from the upstream for `Response`) through
    /// the filters, and collects what each end receives — including data a filter writes the
    /// other way, which passes no other filter.
    pub fn pass<V: Vms<Key = K>>(&mut self, vms: &mut V, d: Direction, input: &[u8], eos: bool) -> TcpOut {
        let mut out = TcpOut::default();
        let n = self.links.len();
        let back = match d {
            Direction::Request => Direction::Response,
            Direction::Response => Direction::Request,
        };
        let mut carry = input.to_vec();
        let mut carry_eos = eos;
        for step in 0..n {
            let k = if d == Direction::Request { step } else { n - 1 - step };
            let l = &self.links[k];
            let (r, closed, onward, backward) = vms.step(&l.vm, |p| {
                let r = (!carry.is_empty() || carry_eos).then(|| p.tcp_data(l.stream, d, &carry, carry_eos));
                let closed = p.tcp_closed(l.stream).is_some();
                (r, closed, p.take_tcp_output(l.stream, d), p.take_tcp_output(l.stream, back))
            });
            let let_through = match r {
                None => true,
                Some(Ok(status)) => {
                    if step == 0 {
                        out.status = status;
                    }
                    status.is_continue()
                }
                Some(Err(e)) => {
                    self.failed.get_or_insert((k, e));
                    false
                }
            };
            // Sent the other way (a reply written by the filter): it passes no other filter.
            match d {
                Direction::Request => out.to_client.extend(backward),
                Direction::Response => out.to_upstream.extend(backward),
            }
            carry = onward;
            // The end of the stream goes past a filter only if it let the data through.
            carry_eos &= let_through;
            if closed || self.failed.is_some() {
                // A closed connection stops the chain here, as Envoy stops iterating its filters.
                out.closed = true;
                carry.clear();
                break;
            }
        }
        match d {
            Direction::Request => out.to_upstream.extend(carry),
            Direction::Response => out.to_client.extend(carry),
        }
        out
    }

    /// Collects what filters let through on their own since the last pass (after a callout's
    /// answer, they resumed), both ways, moving it through the filters after them.
    pub fn released<V: Vms<Key = K>>(&mut self, vms: &mut V) -> TcpOut {
        let mut out = self.pass(vms, Direction::Request, &[], false);
        let o = self.pass(vms, Direction::Response, &[], false);
        out.to_upstream.extend(o.to_upstream);
        out.to_client.extend(o.to_client);
        out.closed |= o.closed;
        out
    }

    /// A value a filter set with `set_envoy_filter_state` (`envoy.tcp_proxy.cluster`, …): the
    /// last filter's that set it, as Envoy's tcp_proxy reads it once the filters let the
    /// connection through.
    pub fn filter_state<V: Vms<Key = K>>(&self, vms: &V, name: &str) -> Option<Vec<u8>> {
        self.links.iter().rev().find_map(|l| vms.peek(&l.vm, |p| p.tcp_filter_state(l.stream, name)))
    }

    /// Who closed the connection, if a filter (or a failed VM: `Local`) did.
    pub fn closed<V: Vms<Key = K>>(&self, vms: &V) -> Option<PeerType> {
        if self.failed.is_some() {
            return Some(PeerType::Local);
        }
        self.links.iter().find_map(|l| vms.peek(&l.vm, |p| p.tcp_closed(l.stream)))
    }

    /// Records the cluster the connection goes to (`xds.cluster_name`, `xds.cluster_metadata`) in
    /// every filter, as Envoy's tcp_proxy does once it has picked one.
    pub fn set_cluster<V: Vms<Key = K>>(&self, vms: &mut V, name: &str, metadata: &Metadata) {
        for l in &self.links {
            vms.step(&l.vm, |p| p.set_tcp_cluster(l.stream, name, metadata.clone()));
        }
    }

    /// Records the upstream host the connection was proxied to in every filter.
    pub fn set_upstream_address<V: Vms<Key = K>>(&self, vms: &mut V, addr: std::net::SocketAddr) {
        for l in &self.links {
            vms.step(&l.vm, |p| p.set_tcp_upstream_address(l.stream, addr));
        }
    }

    /// The connection ends for every filter (`on_upstream_connection_close`,
    /// `on_downstream_connection_close`, `on_done`, `on_log`, `on_delete`): closed by the proxy if
    /// a filter closed it, else by `peer`.
    ///
    /// # Errors
    /// The first filter's that failed to close (one already finished, a host error); every filter
    /// is closed regardless.
    pub fn close<V: Vms<Key = K>>(&self, vms: &mut V, peer: PeerType) -> Result<()> {
        let peer = self.closed(vms).unwrap_or(peer);
        let mut first = Ok(());
        for l in &self.links {
            if let Err(e) = vms.step(&l.vm, |p| p.close_tcp(l.stream, peer)) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// The host error that closed the connection, if one did, with the filter it met it in.
    pub fn take_error<V: Vms<Key = K>>(&mut self, vms: &V) -> Option<(String, Error)> {
        let (k, e) = self.failed.take()?;
        let l = &self.links[k];
        Some((vms.peek(&l.vm, |p| p.info(l.plugin).name.clone()), e))
    }

    /// Forgets the connection in every filter (a driver calls this once it is gone).
    pub fn forget<V: Vms<Key = K>>(&self, vms: &mut V) {
        for l in &self.links {
            vms.step(&l.vm, |p| p.forget_tcp(l.stream));
        }
    }
}
