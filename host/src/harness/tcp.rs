//! TCP connections through a network filter: data both ways, pause and resume, closes, and the
//! network order of the end (`on_done`, `on_log`, `on_delete`).

use super::Harness;
use crate::abi::status::{PeerType, StreamType};
use crate::error::{Error, Result};
use crate::stream::{trailers_status, Access, FilterStatus, StreamInfo, TcpStreamState};
use crate::vm::FailurePolicy;

/// The harness's bookkeeping for one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnDriver {
    ctx: Option<u32>,
    skip: bool,
    to_upstream: Vec<u8>,
    to_downstream: Vec<u8>,
    paused: [bool; 2],
    eos: [bool; 2],
    closed: Option<PeerType>,
    done: bool,
}

/// One TCP connection through the plugin.
pub struct TcpStream<'h> {
    h: &'h mut Harness,
    id: u32,
}

impl Harness {
    /// Accepts a new connection from `127.0.0.1:50000` to `127.0.0.1:10000`: creates its context and
    /// calls `on_new_connection`.
    pub fn tcp_stream(&mut self) -> Result<TcpStream<'_>> {
        self.tcp_stream_between(([127, 0, 0, 1], 50000).into(), ([127, 0, 0, 1], 10000).into())
    }

    /// Accepts a new connection from `source` to `destination` (what `source.address` and
    /// `destination.address` answer): creates its context and calls `on_new_connection`.
    pub fn tcp_stream_between(
        &mut self,
        source: std::net::SocketAddr,
        destination: std::net::SocketAddr,
    ) -> Result<TcpStream<'_>> {
        let info = StreamInfo {
            source: Some(source),
            destination: Some(destination),
            listener_metadata: Some(Default::default()),
            ..Default::default()
        };
        self.tcp_stream_with(info)
    }

    /// Accepts a new connection whose facts (addresses, the listener's metadata) are `info`:
    /// creates its context and calls `on_new_connection`.
    pub fn tcp_stream_with(&mut self, info: StreamInfo) -> Result<TcpStream<'_>> {
        self.next_stream_id += 1;
        let id = self.next_stream_id;
        self.tcp.insert(id, ConnDriver::default());
        self.maybe_reload()?;
        if self.vm.failure().is_some() {
            match self.plugin().failure_policy {
                FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => conn(self, id).skip = true,
                _ => conn(self, id).closed = Some(PeerType::Local),
            }
            return Ok(TcpStream { h: self, id });
        }
        let mut info = info;
        info.connection_id = self.next_connection_id();
        info.extra = self.preset_properties().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let root = self.root_id;
        let ctx = self.vm.create_tcp_context(root, TcpStreamState { info, ..Default::default() });
        let ctx = match ctx {
            Ok(c) => c,
            Err(e) if e.is_guest_fault() => {
                self.on_vm_failure(e.to_string());
                return Ok(TcpStream { h: self, id });
            }
            Err(e) => return Err(e),
        };
        conn(self, id).ctx = Some(ctx);
        let r = self.vm.on_new_connection(ctx);
        self.after_guest_call(r)?;
        Ok(TcpStream { h: self, id })
    }
}

fn conn(h: &mut Harness, id: u32) -> &mut ConnDriver {
    h.tcp.get_mut(&id).expect("connection exists")
}

fn conn_of_ctx(h: &Harness, ctx: u32) -> Option<u32> {
    h.tcp.iter().find(|(_, d)| d.ctx == Some(ctx)).map(|(id, _)| *id)
}

fn forward(h: &mut Harness, id: u32, downstream: bool) {
    let Some(ctx) = h.tcp[&id].ctx else { return };
    let bytes = h.vm.tcp_state_mut(ctx).map(|s| {
        let b = if downstream { &mut s.downstream } else { &mut s.upstream };
        b.access = Access::None;
        std::mem::take(&mut b.bytes)
    });
    let c = conn(h, id);
    let i = usize::from(!downstream);
    c.paused[i] = false;
    if let Some(bytes) = bytes {
        if downstream {
            c.to_upstream.extend_from_slice(&bytes);
        } else {
            c.to_downstream.extend_from_slice(&bytes);
        }
    }
}

fn data(h: &mut Harness, id: u32, downstream: bool, chunk: &[u8], eos: bool) -> Result<FilterStatus> {
    let c = conn(h, id);
    if c.closed.is_some() || c.done {
        return Ok(FilterStatus::Ended);
    }
    let i = usize::from(!downstream);
    c.eos[i] |= eos;
    if c.skip {
        if downstream {
            c.to_upstream.extend_from_slice(chunk)
        } else {
            c.to_downstream.extend_from_slice(chunk)
        }
        return Ok(FilterStatus::Skipped);
    }
    let Some(ctx) = c.ctx else {
        return Ok(FilterStatus::Ended);
    };
    let len = match h.vm.tcp_state_mut(ctx) {
        Some(s) => {
            let b = if downstream { &mut s.downstream } else { &mut s.upstream };
            // While paused the buffer keeps growing; the filter sees all of it.
            b.bytes.extend_from_slice(chunk);
            b.access = Access::ReadWrite;
            b.bytes.len()
        }
        None => return Ok(FilterStatus::Ended),
    };
    let r = if downstream { h.vm.on_downstream_data(ctx, len, eos) } else { h.vm.on_upstream_data(ctx, len, eos) };
    let raw = match r {
        Ok(raw) => raw,
        Err(e) if e.is_guest_fault() => {
            h.on_vm_failure(e.to_string());
            h.pump()?;
            return Ok(FilterStatus::Ended);
        }
        Err(e) => return Err(e),
    };
    let status = trailers_status(raw, false);
    if status == FilterStatus::Continue {
        forward(h, id, downstream);
    } else {
        conn(h, id).paused[i] = true;
    }
    h.pump()?;
    Ok(status)
}

/// `proxy_continue_stream(Downstream|Upstream)`.
pub(crate) fn resume(h: &mut Harness, ctx: u32, stream: StreamType) -> Result<()> {
    let Some(id) = conn_of_ctx(h, ctx) else {
        return Ok(());
    };
    match stream {
        StreamType::Downstream => forward(h, id, true),
        StreamType::Upstream => forward(h, id, false),
        _ => {}
    }
    Ok(())
}

/// `proxy_close_stream` on a connection: closed by the proxy (flush, then close).
pub(crate) fn close(h: &mut Harness, ctx: u32, _stream: StreamType) {
    if let Some(id) = conn_of_ctx(h, ctx) {
        forward(h, id, true);
        forward(h, id, false);
        conn(h, id).closed.get_or_insert(PeerType::Local);
    }
}

/// The VM failed: fail-open connections continue without the filter, others are closed.
pub(crate) fn fail_connection(h: &mut Harness, id: u32) {
    let policy = h.plugin().failure_policy;
    let Some(c) = h.tcp.get_mut(&id) else { return };
    if let Some(ctx) = c.ctx.take() {
        h.vm.drop_context(ctx);
    }
    let c = conn(h, id);
    if policy == FailurePolicy::LegacyFailOpen {
        c.skip = true;
    } else {
        c.closed.get_or_insert(PeerType::Local);
    }
}

impl Harness {
    /// An open connection by [`TcpStream::id`].
    ///
    /// # Panics
    /// If no connection has that id.
    pub fn tcp(&mut self, id: u32) -> TcpStream<'_> {
        assert!(self.tcp.contains_key(&id), "no TCP connection with id {id}");
        TcpStream { h: self, id }
    }

    /// Forgets a finished connection's bookkeeping.
    pub fn forget_tcp_stream(&mut self, id: u32) {
        if let Some(c) = self.tcp.remove(&id) {
            if let (Some(ctx), false) = (c.ctx, c.done) {
                self.vm.drop_context(ctx);
            }
        }
    }
}

impl TcpStream<'_> {
    /// Takes the bytes let through to the upstream since the last call (for drivers that write
    /// them to a socket).
    pub fn take_sent_upstream(&mut self) -> Vec<u8> {
        std::mem::take(&mut conn(self.h, self.id).to_upstream)
    }

    /// Takes the bytes let through to the client since the last call.
    pub fn take_sent_downstream(&mut self) -> Vec<u8> {
        std::mem::take(&mut conn(self.h, self.id).to_downstream)
    }

    /// The connection's id in the harness.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// A value a filter set with `set_envoy_filter_state` (`envoy.tcp_proxy.cluster`, …), as
    /// Envoy's tcp_proxy reads it once the filters let the connection through.
    pub fn envoy_filter_state(&mut self, name: &str) -> Option<Vec<u8>> {
        let ctx = self.h.tcp.get(&self.id).and_then(|d| d.ctx)?;
        let key = [b"envoy:".as_slice(), name.as_bytes()].concat();
        self.h.vm.tcp_state_mut(ctx)?.filter_state.get(&key).cloned()
    }

    /// Records the upstream host the connection was proxied to (`upstream.address`,
    /// `upstream.port`), as Envoy's tcp_proxy does once it has connected.
    pub fn set_upstream_address(&mut self, addr: std::net::SocketAddr) {
        let ctx = self.h.tcp.get(&self.id).and_then(|d| d.ctx);
        if let Some(s) = ctx.and_then(|c| self.h.vm.tcp_state_mut(c)) {
            s.info.upstream = Some(addr);
        }
    }

    /// Records the cluster the connection goes to (`xds.cluster_name`, `xds.cluster_metadata`),
    /// as Envoy's tcp_proxy does once it has picked one.
    pub fn set_cluster(&mut self, name: &str, metadata: crate::stream::Metadata) {
        let ctx = self.h.tcp.get(&self.id).and_then(|d| d.ctx);
        if let Some(s) = ctx.and_then(|c| self.h.vm.tcp_state_mut(c)) {
            s.info.cluster_name = Some(name.to_string());
            s.info.cluster_metadata = Some(metadata);
        }
    }

    /// The harness, to answer callouts or advance time while the connection is open.
    pub fn harness(&mut self) -> &mut Harness {
        self.h
    }

    /// Bytes from the client.
    pub fn downstream_data(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        data(self.h, self.id, true, chunk.as_ref(), end_of_stream)
    }

    /// Bytes from the upstream.
    pub fn upstream_data(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        data(self.h, self.id, false, chunk.as_ref(), end_of_stream)
    }

    /// What the filter let through to the upstream.
    pub fn sent_upstream(&self) -> &[u8] {
        &self.h.tcp[&self.id].to_upstream
    }

    /// What the filter let through to the client.
    pub fn sent_downstream(&self) -> &[u8] {
        &self.h.tcp[&self.id].to_downstream
    }

    /// Who closed the connection, if it is closed (Local: the filter or the host did).
    pub fn closed(&self) -> Option<PeerType> {
        self.h.tcp[&self.id].closed
    }

    /// The connection ends: `on_upstream_connection_close` (Unknown, as Envoy raises it),
    /// `on_downstream_connection_close(peer)`, then `on_done`, `on_log`, `on_delete`.
    pub fn close(&mut self, peer: PeerType) -> Result<()> {
        let c = conn(self.h, self.id);
        if c.done {
            return Err(Error::Usage("connection already finished".into()));
        }
        c.done = true;
        c.closed.get_or_insert(peer);
        let Some(ctx) = c.ctx else { return Ok(()) };
        let h = &mut *self.h;
        let r = h.vm.on_upstream_close(ctx, PeerType::Unknown);
        h.after_guest_call(r)?;
        if h.vm.failure().is_none() {
            let r = h.vm.on_downstream_close(ctx, peer);
            h.after_guest_call(r)?;
        }
        if h.vm.failure().is_none() {
            let r = h.vm.on_done(ctx);
            h.after_guest_call(r)?;
        }
        if h.vm.failure().is_none() {
            let r = h.vm.on_log(ctx);
            h.after_guest_call(r)?;
        }
        if h.vm.failure().is_none() {
            let r = h.vm.on_delete(ctx);
            h.after_guest_call(r)?;
        }
        Ok(())
    }
}
