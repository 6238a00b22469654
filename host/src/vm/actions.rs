//! Host actions a guest asks for during a callback, applied only after the callback returns, so the
//! guest is never re-entered.

use crate::abi::status::StreamType;

/// A local reply requested with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Response code details, whitespace replaced by `_` as Envoy does.
    pub details: String,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// gRPC status, `None` for -1 or values over 16.
    pub grpc_status: Option<u32>,
}

/// A deferred action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// `proxy_continue_stream`.
    Continue {
        /// The stream's context.
        context_id: u32,
        /// Which side.
        stream: StreamType,
    },
    /// `proxy_close_stream`.
    Close {
        /// The stream's context.
        context_id: u32,
        /// Which side.
        stream: StreamType,
    },
    /// `proxy_send_local_response`.
    LocalReply {
        /// The stream's context.
        context_id: u32,
        /// The reply.
        reply: LocalReply,
    },
    /// `proxy_done` from a root whose `on_done` returned false.
    Done {
        /// The root context.
        context_id: u32,
    },
}
