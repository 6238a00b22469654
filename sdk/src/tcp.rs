//! TCP (network) filters.

use std::ops::{Deref, DerefMut};

use crate::abi;
use crate::buffer::Buffer;
use crate::dispatch::within;
use crate::error::Result;
use crate::http::BufferType;

/// What a network filter tells Envoy to do with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// One TCP connection, by its context: what a handler or a spawned task uses to resume or close
/// *this* connection, whichever callback runs. Given to [`TcpFilter::on_new_connection`], and
/// reachable from every [`Data`] view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConnection {
    context: u32,
}

impl TcpConnection {
    pub(crate) fn new(context: u32) -> Self {
        Self { context }
    }

    /// Closes the client connection (after flushing).
    pub fn close_downstream(&self) -> Result<()> {
        within(self.context, || abi::close_stream(2))
    }

    /// Resumes data from the client paused with [`TcpAction::Pause`].
    pub fn resume_downstream(&self) -> Result<()> {
        within(self.context, || abi::continue_stream(2))
    }
}

/// The bytes of one direction of a connection, as the filter holds them now: [`Buffer`]'s reads
/// and edits, and the [`TcpConnection`] they belong to.
#[derive(Debug)]
pub struct Data<'a>(Buffer<'a>);

impl Data<'_> {
    pub(crate) fn new(context: u32, downstream: bool, size: usize) -> Self {
        let kind = if downstream { BufferType::DownstreamData } else { BufferType::UpstreamData };
        Self(Buffer::new(context, kind, size))
    }

    /// The connection these bytes belong to.
    pub fn connection(&self) -> TcpConnection {
        TcpConnection::new(self.0.context())
    }
}

impl<'a> Deref for Data<'a> {
    type Target = Buffer<'a>;
    fn deref(&self) -> &Buffer<'a> {
        &self.0
    }
}

impl<'a> DerefMut for Data<'a> {
    fn deref_mut(&mut self) -> &mut Buffer<'a> {
        &mut self.0
    }
}

/// A network filter: one value per TCP connection.
///
/// The data handlers return `Result<TcpAction>`, so `?` works on every hostcall; an error is
/// logged (naming the handler) and closes the connection: a filter that could not decide lets
/// nothing more through.
pub trait TcpFilter: 'static {
    /// A client connected.
    fn on_new_connection(&mut self, connection: TcpConnection) -> Result<TcpAction> {
        let _ = connection;
        Ok(TcpAction::Continue)
    }

    /// Bytes from the client.
    fn on_downstream_data(&mut self, data: Data<'_>, end_of_stream: bool) -> Result<TcpAction> {
        let _ = (data, end_of_stream);
        Ok(TcpAction::Continue)
    }

    /// Bytes from the upstream.
    fn on_upstream_data(&mut self, data: Data<'_>, end_of_stream: bool) -> Result<TcpAction> {
        let _ = (data, end_of_stream);
        Ok(TcpAction::Continue)
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
