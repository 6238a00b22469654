//! TCP connections through a network filter: data both ways, pause and resume, closes, and the
//! network order of the end (`on_done`, `on_log`, `on_delete`).

use super::{Direction, PluginId, PluginVm, StreamId};
use crate::error::{Error, Result};
use crate::stream::{trailers_status, Access, FilterStatus, StreamInfo, TcpStreamState};
use crate::vm::FailurePolicy;
use crate::wire::status::{PeerType, StreamType};

/// The core's bookkeeping for one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnDriver {
    /// The plugin (network filter) this connection passes.
    plugin: PluginId,
    ctx: Option<u32>,
    skip: bool,
    /// What the filter let through: [to the upstream, to the client].
    out: [Vec<u8>; 2],
    paused: [bool; 2],
    eos: [bool; 2],
    closed: Option<PeerType>,
    done: bool,
}

impl PluginVm {
    /// Accepts a connection through `plugin` whose facts (addresses, connection id, the
    /// listener's metadata) are `info`: creates its context and calls `on_new_connection`.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn open_tcp(&mut self, plugin: PluginId, info: StreamInfo) -> Result<StreamId> {
        let id = self.new_stream_id();
        self.connections.insert(id, ConnDriver { plugin, ..Default::default() });
        self.maybe_reload(plugin)?;
        if self.vm.failure().is_some() {
            match self.root(plugin).info.failure_policy {
                FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => conn(self, id).skip = true,
                _ => conn(self, id).closed = Some(PeerType::Local),
            }
            return Ok(id);
        }
        let root = self.root(plugin).root_id;
        let ctx = match self.vm.create_tcp_context(root, TcpStreamState { info, ..Default::default() }) {
            Ok(c) => c,
            Err(Error::Guest(fault)) => {
                self.on_vm_failure(fault);
                return Ok(id);
            }
            Err(e) => return Err(e),
        };
        conn(self, id).ctx = Some(ctx);
        self.contexts.insert(ctx, id);
        self.step(id, |p| {
            let r = p.vm.on_new_connection(ctx);
            p.after_guest_call(r)
        })?;
        Ok(id)
    }

    /// Bytes from the client (`Request`) or the upstream (`Response`).
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn tcp_data(&mut self, id: StreamId, d: Direction, chunk: &[u8], end_of_stream: bool) -> Result<FilterStatus> {
        self.step(id, |p| data(p, id, d, chunk, end_of_stream))
    }

    /// Takes the bytes let through on side `d` (to the upstream for `Request`) since the last call.
    pub fn take_tcp_output(&mut self, id: StreamId, d: Direction) -> Vec<u8> {
        self.connections.get_mut(&id).map(|c| std::mem::take(&mut c.out[d.index()])).unwrap_or_default()
    }

    /// Who closed connection `id`, if it is closed (Local: the filter or the host did).
    pub fn tcp_closed(&self, id: StreamId) -> Option<PeerType> {
        self.connections.get(&id)?.closed
    }

    /// A value a filter set with `set_envoy_filter_state` (`envoy.tcp_proxy.cluster`, …), as
    /// Envoy's tcp_proxy reads it once the filters let the connection through.
    pub fn tcp_filter_state(&self, id: StreamId, name: &str) -> Option<Vec<u8>> {
        let ctx = self.connections.get(&id)?.ctx?;
        let key = [b"envoy:".as_slice(), name.as_bytes()].concat();
        self.vm.tcp_state(ctx)?.filter_state.get(&key).cloned()
    }

    /// Connection `id` as the guest sees it, while its context lives.
    pub fn tcp_state(&self, id: StreamId) -> Option<&TcpStreamState> {
        self.vm.tcp_state(self.connections.get(&id)?.ctx?)
    }

    fn tcp_state_mut(&mut self, id: StreamId) -> Option<&mut TcpStreamState> {
        let ctx = self.connections.get(&id)?.ctx?;
        self.vm.tcp_state_mut(ctx)
    }

    /// Records the upstream host the connection was proxied to (`upstream.address`,
    /// `upstream.port`), as Envoy's tcp_proxy does once it has connected.
    pub fn set_tcp_upstream_address(&mut self, id: StreamId, addr: std::net::SocketAddr) {
        if let Some(s) = self.tcp_state_mut(id) {
            s.info.upstream = Some(addr);
        }
    }

    /// Records the cluster the connection goes to (`xds.cluster_name`, `xds.cluster_metadata`),
    /// as Envoy's tcp_proxy does once it has picked one.
    pub fn set_tcp_cluster(&mut self, id: StreamId, name: &str, metadata: crate::stream::Metadata) {
        if let Some(s) = self.tcp_state_mut(id) {
            s.info.cluster_name = Some(name.to_string());
            s.info.cluster_metadata = Some(metadata);
        }
    }

    /// The connection ends: `on_downstream_connection_close(peer)`, then `on_done`, `on_log`,
    /// `on_delete` (`on_upstream_connection_close` came with the upstream's last data, if it
    /// reached the filter, as Envoy raises it).
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn close_tcp(&mut self, id: StreamId, peer: PeerType) -> Result<()> {
        let c = self.connections.get_mut(&id).ok_or_else(|| Error::Usage(format!("no open connection {id}")))?;
        if c.done {
            return Err(Error::Usage("connection already finished".into()));
        }
        c.done = true;
        c.closed.get_or_insert(peer);
        let Some(ctx) = c.ctx else { return Ok(()) };
        self.step(id, |p| {
            if p.vm.failure().is_none() {
                let r = p.vm.on_downstream_close(ctx, peer);
                p.after_guest_call(r)?;
            }
            if p.vm.failure().is_none() {
                let r = p.vm.on_done(ctx);
                p.after_guest_call(r)?;
            }
            if p.vm.failure().is_none() {
                let r = p.vm.on_log(ctx);
                p.after_guest_call(r)?;
            }
            if p.vm.failure().is_none() {
                let r = p.vm.on_delete(ctx);
                p.after_guest_call(r)?;
            }
            Ok(())
        })
    }

    /// Forgets connection `id` (a driver calls this once the connection is gone).
    pub fn forget_tcp(&mut self, id: StreamId) {
        if let Some(c) = self.connections.remove(&id) {
            if let Some(ctx) = c.ctx {
                self.contexts.remove(&ctx);
                if !c.done {
                    self.vm.drop_context(ctx);
                }
            }
        }
    }
}

fn conn(p: &mut PluginVm, id: StreamId) -> &mut ConnDriver {
    // Every caller got `id` from an entry point that checked the connection exists.
    p.connections.get_mut(&id).expect("connection exists")
}

fn conn_of_ctx(p: &PluginVm, ctx: u32) -> Option<StreamId> {
    p.contexts.get(&ctx).copied().filter(|id| p.connections.contains_key(id))
}

/// Lets what the filter holds on side `d` through.
fn forward(p: &mut PluginVm, id: StreamId, d: Direction) {
    let Some(ctx) = p.connections[&id].ctx else { return };
    let bytes = p.vm.tcp_state_mut(ctx).map(|s| {
        let b = match d {
            Direction::Request => &mut s.downstream,
            Direction::Response => &mut s.upstream,
        };
        b.access = Access::None;
        std::mem::take(&mut b.bytes)
    });
    let c = conn(p, id);
    c.paused[d.index()] = false;
    if let Some(bytes) = bytes {
        c.out[d.index()].extend_from_slice(&bytes);
    }
}

fn data(p: &mut PluginVm, id: StreamId, d: Direction, chunk: &[u8], eos: bool) -> Result<FilterStatus> {
    let Some(c) = p.connections.get_mut(&id) else { return Ok(FilterStatus::Ended) };
    if c.closed.is_some() || c.done {
        return Ok(FilterStatus::Ended);
    }
    c.eos[d.index()] |= eos;
    if c.skip {
        c.out[d.index()].extend_from_slice(chunk);
        return Ok(FilterStatus::Skipped);
    }
    let Some(ctx) = c.ctx else {
        return Ok(FilterStatus::Ended);
    };
    let len = match p.vm.tcp_state_mut(ctx) {
        Some(s) => {
            let b = match d {
                Direction::Request => &mut s.downstream,
                Direction::Response => &mut s.upstream,
            };
            // While paused the buffer keeps growing; the filter sees all of it.
            b.bytes.extend_from_slice(chunk);
            b.access = Access::ReadWrite;
            b.bytes.len()
        }
        None => return Ok(FilterStatus::Ended),
    };
    let r = match d {
        Direction::Request => p.vm.on_downstream_data(ctx, len, eos),
        Direction::Response => p.vm.on_upstream_data(ctx, len, eos),
    };
    let raw = match r {
        Ok(raw) => raw,
        Err(Error::Guest(fault)) => {
            p.on_vm_failure(fault);
            p.pump()?;
            return Ok(FilterStatus::Ended);
        }
        Err(e) => return Err(e),
    };
    let status = trailers_status(raw, false);
    if status == FilterStatus::Continue {
        forward(p, id, d);
    } else {
        conn(p, id).paused[d.index()] = true;
    }
    if d == Direction::Response && eos {
        // Envoy raises the upstream's close here, at the end of its data, whatever the filter
        // answered (it does not follow the upstream connection's own events).
        let r = p.vm.on_upstream_close(ctx, PeerType::Unknown);
        p.after_guest_call(r)?;
    }
    p.pump()?;
    Ok(status)
}

/// `proxy_continue_stream(Downstream|Upstream)`.
pub(crate) fn resume(p: &mut PluginVm, ctx: u32, stream: StreamType) -> Result<()> {
    let Some(id) = conn_of_ctx(p, ctx) else {
        return Ok(());
    };
    match stream {
        StreamType::Downstream => forward(p, id, Direction::Request),
        StreamType::Upstream => forward(p, id, Direction::Response),
        _ => {}
    }
    Ok(())
}

/// `proxy_close_stream` on a connection: closed by the proxy (flush, then close).
pub(crate) fn close(p: &mut PluginVm, ctx: u32, _stream: StreamType) {
    if let Some(id) = conn_of_ctx(p, ctx) {
        forward(p, id, Direction::Request);
        forward(p, id, Direction::Response);
        conn(p, id).closed.get_or_insert(PeerType::Local);
    }
}

/// The VM failed: fail-open connections continue without the filter, others are closed.
pub(crate) fn fail_connection(p: &mut PluginVm, id: StreamId) {
    let Some(c) = p.connections.get_mut(&id) else { return };
    let policy = p.plugins[c.plugin.0].info.failure_policy;
    if let Some(ctx) = c.ctx.take() {
        p.vm.drop_context(ctx);
        p.contexts.remove(&ctx);
    }
    let c = conn(p, id);
    if policy == FailurePolicy::LegacyFailOpen {
        c.skip = true;
    } else {
        c.closed.get_or_insert(PeerType::Local);
    }
}
