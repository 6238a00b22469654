//! Connection and request facts that Envoy serves as properties (`source.address`, `xds.route_name`, …).

use std::collections::HashMap;
use std::net::SocketAddr;

/// A typed property value, encoded the way Envoy's `serializeValue` encodes it (raw bytes, no tag).
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// UTF-8 text, sent as raw bytes.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// 8 bytes little-endian.
    Int(i64),
    /// 8 bytes little-endian.
    UInt(u64),
    /// 8-byte IEEE-754 little-endian.
    Double(f64),
    /// One byte, 0 or 1.
    Bool(bool),
    /// Nanoseconds since the Unix epoch, 8 bytes little-endian.
    Timestamp(i64),
    /// Nanoseconds, 8 bytes little-endian.
    Duration(i64),
    /// The pairs encoding, values encoded recursively.
    Map(Vec<(String, PropertyValue)>),
}

impl PropertyValue {
    /// The bytes a guest receives from `proxy_get_property`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::String(s) => s.as_bytes().to_vec(),
            Self::Bytes(b) => b.clone(),
            Self::Int(v) | Self::Timestamp(v) | Self::Duration(v) => v.to_le_bytes().to_vec(),
            Self::UInt(v) => v.to_le_bytes().to_vec(),
            Self::Double(v) => v.to_le_bytes().to_vec(),
            Self::Bool(b) => vec![u8::from(*b)],
            Self::Map(entries) => {
                let encoded: Vec<(Vec<u8>, Vec<u8>)> =
                    entries.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.encode())).collect();
                crate::wire::codec::encode(encoded.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            }
        }
    }
}

impl From<&str> for PropertyValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_string())
    }
}

impl From<String> for PropertyValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for PropertyValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for PropertyValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// What the host knows about a connection and its current request.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    /// `source.address` / `source.port`: the client.
    pub source: Option<SocketAddr>,
    /// `destination.address` / `destination.port`: the listener address the client reached.
    pub destination: Option<SocketAddr>,
    /// `upstream.address` / `upstream.port`: the upstream host that answered, once known.
    pub upstream: Option<SocketAddr>,
    /// `connection.id` and `connection_id`.
    pub connection_id: u64,
    /// `request.time`, nanoseconds since the epoch.
    pub request_time_nanos: Option<i64>,
    /// `request.protocol`, e.g. `HTTP/1.1`.
    pub protocol: Option<String>,
    /// `xds.route_name`.
    pub route_name: Option<String>,
    /// `xds.virtual_host_name`.
    pub virtual_host_name: Option<String>,
    /// `xds.cluster_name`: the cluster the route chose.
    pub cluster_name: Option<String>,
    /// `xds.listener_metadata`.
    pub listener_metadata: Option<super::Metadata>,
    /// `xds.virtual_host_metadata`, once a virtual host is chosen.
    pub virtual_host_metadata: Option<super::Metadata>,
    /// `xds.route_metadata`, once a route is chosen.
    pub route_metadata: Option<super::Metadata>,
    /// `xds.cluster_metadata`, once a cluster is chosen.
    pub cluster_metadata: Option<super::Metadata>,
    /// `response.code`, once a response started.
    pub response_code: Option<u32>,
    /// `response.code_details`.
    pub response_code_details: Option<String>,
    /// `request.duration`, set when the request is complete (nanoseconds).
    pub request_duration_nanos: Option<i64>,
    /// `request.size`: request body bytes received so far.
    pub request_body_bytes: u64,
    /// `response.size`: response body bytes received so far.
    pub response_body_bytes: u64,
    /// Extra properties set by the driver, keyed by NUL-joined path (harness presets).
    pub extra: HashMap<Vec<u8>, PropertyValue>,
}
