//! Per-stream state that hostcalls read and write: HTTP headers, bodies, trailers and TCP data, with
//! Envoy's rules for which of them a filter may touch in each callback.

mod headers;
mod info;
mod local_reply;
mod metadata;
mod status;

use std::collections::HashMap;

pub use headers::HeaderMap;
pub use info::{PropertyValue, StreamInfo};
pub use local_reply::{local_reply_message, LocalReply};
pub use metadata::{struct_property, Metadata};
pub use status::{data_status, grpc_status_for_http, headers_status, trailers_status, FilterStatus};

/// Whether a header map or buffer can be used in the running callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Not there in this callback (Envoy holds no pointer to it).
    #[default]
    None,
    /// Readable only (the access-log phase).
    Read,
    /// Readable and writable.
    ReadWrite,
}

impl Access {
    /// True if reads are allowed.
    pub fn readable(self) -> bool {
        self != Access::None
    }
    /// True if writes are allowed.
    pub fn writable(self) -> bool {
        self == Access::ReadWrite
    }
}

/// A header map together with its availability.
#[derive(Debug, Clone, Default)]
pub struct MapSlot {
    /// The entries.
    pub map: HeaderMap,
    /// What the filter may do with them now.
    pub access: Access,
}

/// A body or data buffer together with its availability.
#[derive(Debug, Clone, Default)]
pub struct BufferSlot {
    /// The bytes the filter sees: the current chunk, or everything buffered so far.
    pub bytes: Vec<u8>,
    /// What the filter may do with them now.
    pub access: Access,
}

/// The state of one HTTP stream as its filter sees it.
#[derive(Debug, Clone, Default)]
pub struct HttpStreamState {
    /// Request headers (map type 0).
    pub request_headers: MapSlot,
    /// Request trailers (map type 1).
    pub request_trailers: MapSlot,
    /// Response headers (map type 2).
    pub response_headers: MapSlot,
    /// Response trailers (map type 3).
    pub response_trailers: MapSlot,
    /// Request body (buffer type 0).
    pub request_body: BufferSlot,
    /// Response body (buffer type 1).
    pub response_body: BufferSlot,
    /// Connection and request facts served as properties.
    pub info: StreamInfo,
    /// Values written with `proxy_set_property` (Envoy's filter state `wasm.<path>`).
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
}

impl HttpStreamState {
    /// A finished stream as a wasm access logger reads it: its request and response headers
    /// (read-only) and its facts.
    pub fn finished(request: &HeaderMap, response: Option<&HeaderMap>, info: StreamInfo) -> Self {
        let read = |map: Option<&HeaderMap>| MapSlot { map: map.cloned().unwrap_or_default(), access: Access::Read };
        Self { request_headers: read(Some(request)), response_headers: read(response), info, ..Default::default() }
    }
}

/// The state of one TCP connection as its network filter sees it.
#[derive(Debug, Clone, Default)]
pub struct TcpStreamState {
    /// Bytes from the client (buffer type 2).
    pub downstream: BufferSlot,
    /// Bytes from the upstream (buffer type 3).
    pub upstream: BufferSlot,
    /// Connection facts served as properties.
    pub info: StreamInfo,
    /// Values written with `proxy_set_property`.
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
}
