//! TCP (network) filters.

use crate::abi;
use crate::error::Result;
use crate::http::BufferType;

/// What a network filter tells Envoy to do with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpAction {
    /// Let it through.
    Continue,
    /// Hold it; later data adds to what the filter sees.
    Pause,
}

/// Who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Not known (Envoy reports upstream closes this way).
    Unknown,
    /// This proxy.
    Local,
    /// The other side.
    Remote,
}

impl Peer {
    pub(crate) fn from_code(c: u32) -> Self {
        match c {
            1 => Peer::Local,
            2 => Peer::Remote,
            _ => Peer::Unknown,
        }
    }
}

/// Data of one direction of a connection, as the filter holds it now.
pub type Data = crate::buffer::Buffer;

/// A network filter: one value per TCP connection.
pub trait TcpFilter: 'static {
    /// A client connected.
    fn on_new_connection(&mut self) -> TcpAction {
        TcpAction::Continue
    }

    /// Bytes from the client.
    fn on_downstream_data(&mut self, data: Data, end_of_stream: bool) -> TcpAction {
        let _ = (data, end_of_stream);
        TcpAction::Continue
    }

    /// Bytes from the upstream.
    fn on_upstream_data(&mut self, data: Data, end_of_stream: bool) -> TcpAction {
        let _ = (data, end_of_stream);
        TcpAction::Continue
    }

    /// The client side closed.
    fn on_downstream_close(&mut self, peer: Peer) {
        let _ = peer;
    }

    /// The upstream side closed.
    fn on_upstream_close(&mut self, peer: Peer) {
        let _ = peer;
    }

    /// The connection is over.
    fn on_log(&mut self) {}
}

pub(crate) fn downstream(size: usize) -> Data {
    Data::new(BufferType::DownstreamData, size)
}

pub(crate) fn upstream(size: usize) -> Data {
    Data::new(BufferType::UpstreamData, size)
}

/// Closes the client connection (after flushing).
pub fn close_downstream() -> Result<()> {
    abi::close_stream(2)
}

/// Resumes data from the client paused with [`TcpAction::Pause`].
pub fn resume_downstream() -> Result<()> {
    abi::continue_stream(2)
}
