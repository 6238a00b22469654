//! TCP connections driven by a test.

use super::Harness;
use crate::abi::status::PeerType;
use crate::error::Result;
use crate::manager::{Direction, PluginId, StreamId};
use crate::stream::{FilterStatus, StreamInfo};

/// One TCP connection through the plugin.
pub struct TcpStream<'h> {
    h: &'h mut Harness,
    id: StreamId,
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
    pub fn tcp_stream_with(&mut self, mut info: StreamInfo) -> Result<TcpStream<'_>> {
        self.complete_info(&mut info);
        let r = self.core.open_tcp(PluginId::FIRST, info);
        self.settle()?;
        Ok(TcpStream { h: self, id: r? })
    }

    /// An open connection by [`TcpStream::id`].
    ///
    /// # Panics
    /// If no connection has that id (it was forgotten with [`Harness::forget_tcp_stream`]).
    pub fn tcp(&mut self, id: StreamId) -> TcpStream<'_> {
        assert!(self.core.has_connection(id), "no TCP connection with id {id}");
        TcpStream { h: self, id }
    }

    /// Forgets a finished connection's bookkeeping.
    pub fn forget_tcp_stream(&mut self, id: StreamId) {
        self.core.forget_tcp(id);
    }
}

impl TcpStream<'_> {
    /// Takes the bytes let through to the upstream since the last call.
    pub fn take_sent_upstream(&mut self) -> Vec<u8> {
        self.h.core.take_tcp_output(self.id, Direction::Request)
    }

    /// Takes the bytes let through to the client since the last call.
    pub fn take_sent_downstream(&mut self) -> Vec<u8> {
        self.h.core.take_tcp_output(self.id, Direction::Response)
    }

    /// The connection's id in the harness.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// A value a filter set with `set_envoy_filter_state` (`envoy.tcp_proxy.cluster`, …), as
    /// Envoy's tcp_proxy reads it once the filters let the connection through.
    pub fn envoy_filter_state(&mut self, name: &str) -> Option<Vec<u8>> {
        self.h.core.tcp_filter_state(self.id, name)
    }

    /// Records the upstream host the connection was proxied to (`upstream.address`,
    /// `upstream.port`), as Envoy's tcp_proxy does once it has connected.
    pub fn set_upstream_address(&mut self, addr: std::net::SocketAddr) {
        self.h.core.set_tcp_upstream_address(self.id, addr);
    }

    /// Records the cluster the connection goes to (`xds.cluster_name`, `xds.cluster_metadata`),
    /// as Envoy's tcp_proxy does once it has picked one.
    pub fn set_cluster(&mut self, name: &str, metadata: crate::stream::Metadata) {
        self.h.core.set_tcp_cluster(self.id, name, metadata);
    }

    /// The harness, to answer callouts or advance time while the connection is open.
    pub fn harness(&mut self) -> &mut Harness {
        self.h
    }

    fn data(&mut self, d: Direction, chunk: &[u8], end_of_stream: bool) -> Result<FilterStatus> {
        let r = self.h.core.tcp_data(self.id, d, chunk, end_of_stream);
        self.h.settle()?;
        r
    }

    /// Bytes from the client.
    pub fn downstream_data(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.data(Direction::Request, chunk.as_ref(), end_of_stream)
    }

    /// Bytes from the upstream.
    pub fn upstream_data(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.data(Direction::Response, chunk.as_ref(), end_of_stream)
    }

    /// What the filter let through to the upstream.
    pub fn sent_upstream(&self) -> &[u8] {
        self.h.core.tcp_output(self.id, Direction::Request)
    }

    /// What the filter let through to the client.
    pub fn sent_downstream(&self) -> &[u8] {
        self.h.core.tcp_output(self.id, Direction::Response)
    }

    /// Who closed the connection, if it is closed (Local: the filter or the host did).
    pub fn closed(&self) -> Option<PeerType> {
        self.h.core.tcp_closed(self.id)
    }

    /// The connection ends: `on_upstream_connection_close` (Unknown, as Envoy raises it),
    /// `on_downstream_connection_close(peer)`, then `on_done`, `on_log`, `on_delete`.
    pub fn close(&mut self, peer: PeerType) -> Result<()> {
        let r = self.h.core.close_tcp(self.id, peer);
        self.h.settle()?;
        r
    }
}
