//! Host actions a guest asks for during a callback, applied only after the callback returns, so the
//! guest is never re-entered.

use crate::stream::LocalReply;
use crate::wire::status::StreamType;

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
