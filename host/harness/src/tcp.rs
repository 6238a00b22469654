//! TCP connections driven by a test.

use super::{ChainConnection, Harness};
use crate::StreamId;
use sluice_core::chain::TcpChain;
use sluice_core::error::Result;
use sluice_core::plugin_vm::Direction;
use sluice_core::stream::{FilterStatus, StreamInfo};
use sluice_core::wire::status::PeerType;

/// One TCP connection through the plugin (or the chain of them).
pub struct TcpStream<'h> {
    h: &'h mut Harness,
    id: StreamId,
}

impl Harness {
    /// Accepts a new connection from `127.0.0.1:50000` to `127.0.0.1:10000`: creates its context and
    /// calls `on_new_connection`.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn tcp_stream(&mut self) -> Result<TcpStream<'_>> {
        self.tcp_stream_between(([127, 0, 0, 1], 50000).into(), ([127, 0, 0, 1], 10000).into())
    }

    /// Accepts a new connection from `source` to `destination` (what `source.address` and
    /// `destination.address` answer): creates its context and calls `on_new_connection`.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
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

    /// Accepts a new connection whose facts (addresses, the listener's metadata) are `info`: each
    /// filter creates its context and calls `on_new_connection`.
    ///
    /// # Errors
    /// The host's own failure in a filter, or a callout handler that never settles.
    pub fn tcp_stream_with(&mut self, mut info: StreamInfo) -> Result<TcpStream<'_>> {
        self.complete_info(&mut info);
        let r = TcpChain::open(&mut self.vms, self.filters.iter().copied(), &info);
        let id = self.new_stream_id();
        let opened = r.map(|chain| {
            self.connections.insert(id, ChainConnection { chain, sent: Default::default() });
        });
        self.settle()?;
        opened?;
        Ok(TcpStream { h: self, id })
    }

    /// An open connection by [`TcpStream::id`].
    ///
    /// # Panics
    /// If no connection has that id (it was forgotten with [`Harness::forget_tcp_stream`]).
    pub fn tcp(&mut self, id: StreamId) -> TcpStream<'_> {
        assert!(self.connections.contains_key(&id), "no TCP connection with id {id}");
        TcpStream { h: self, id }
    }

    /// Forgets a finished connection's bookkeeping.
    pub fn forget_tcp_stream(&mut self, id: StreamId) {
        if let Some(c) = self.connections.remove(&id) {
            c.chain.forget(&mut self.vms);
        }
    }
}

impl TcpStream<'_> {
    fn connection(&self) -> &ChainConnection {
        // `Harness::tcp` checked the connection exists; only `forget_tcp_stream` removes it.
        &self.h.connections[&self.id]
    }

    fn connection_mut(&mut self) -> &mut ChainConnection {
        self.h.connections.get_mut(&self.id).expect("the connection is open")
    }

    /// Takes the bytes let through to the upstream since the last call.
    pub fn take_sent_upstream(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.connection_mut().sent[Direction::Request.index()])
    }

    /// Takes the bytes let through to the client since the last call.
    pub fn take_sent_downstream(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.connection_mut().sent[Direction::Response.index()])
    }

    /// The connection's id in the harness.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// A value a filter set with `set_envoy_filter_state` (`envoy.tcp_proxy.cluster`, …), as
    /// Envoy's tcp_proxy reads it once the filters let the connection through (the last
    /// filter's that set it).
    pub fn envoy_filter_state(&mut self, name: &str) -> Option<Vec<u8>> {
        self.connection().chain.filter_state(&self.h.vms, name)
    }

    /// Records the upstream host the connection was proxied to (`upstream.address`,
    /// `upstream.port`), as Envoy's tcp_proxy does once it has connected.
    pub fn set_upstream_address(&mut self, addr: std::net::SocketAddr) {
        let h = &mut *self.h;
        h.connections[&self.id].chain.set_upstream_address(&mut h.vms, addr);
    }

    /// Records the cluster the connection goes to (`xds.cluster_name`, `xds.cluster_metadata`),
    /// as Envoy's tcp_proxy does once it has picked one.
    pub fn set_cluster(&mut self, name: &str, metadata: sluice_core::stream::Metadata) {
        let h = &mut *self.h;
        h.connections[&self.id].chain.set_cluster(&mut h.vms, name, &metadata);
    }

    /// The harness, to answer callouts or advance time while the connection is open.
    pub fn harness(&mut self) -> &mut Harness {
        self.h
    }

    fn data(&mut self, d: Direction, chunk: &[u8], end_of_stream: bool) -> Result<FilterStatus> {
        let h = &mut *self.h;
        let c = h.connections.get_mut(&self.id).expect("the connection is open");
        let out = c.chain.pass(&mut h.vms, d, chunk, end_of_stream);
        c.sent[0].extend(out.to_upstream);
        c.sent[1].extend(out.to_client);
        let failed = c.chain.take_error(&h.vms);
        h.settle()?;
        match failed {
            Some((_, e)) => Err(e),
            None => Ok(out.status),
        }
    }

    /// Bytes from the client.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn downstream_data(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.data(Direction::Request, chunk.as_ref(), end_of_stream)
    }

    /// Bytes from the upstream.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn upstream_data(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.data(Direction::Response, chunk.as_ref(), end_of_stream)
    }

    /// What the filters let through to the upstream and was not taken.
    pub fn sent_upstream(&self) -> &[u8] {
        &self.connection().sent[Direction::Request.index()]
    }

    /// What the filters let through to the client and was not taken.
    pub fn sent_downstream(&self) -> &[u8] {
        &self.connection().sent[Direction::Response.index()]
    }

    /// Who closed the connection, if it is closed (Local: a filter or the host did).
    pub fn closed(&self) -> Option<PeerType> {
        self.connection().chain.closed(&self.h.vms)
    }

    /// The connection ends: `on_upstream_connection_close` (Unknown, as Envoy raises it),
    /// `on_downstream_connection_close(peer)` (`Local` if a filter closed it), then `on_done`,
    /// `on_log`, `on_delete`, in every filter.
    ///
    /// # Errors
    /// A connection that ended already, or the host's own failure in a filter.
    pub fn close(&mut self, peer: PeerType) -> Result<()> {
        let h = &mut *self.h;
        let r = h.connections[&self.id].chain.close(&mut h.vms, peer);
        h.settle()?;
        r
    }
}
