//! Views of the header and trailer maps. Values are bytes; nothing panics on non-UTF-8 input.

use http::header::{HeaderName, HeaderValue};

use super::MapType;
use crate::abi;
use crate::error::Result;

/// Operations shared by every header map view.
pub trait Headers {
    #[doc(hidden)]
    fn map_type(&self) -> u32;

    /// The first value of `name`, as bytes; `None` if absent.
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        abi::get_map_value(self.map_type(), name.as_bytes()).ok().flatten()
    }

    /// The first value of `name` if it is UTF-8.
    fn header_str(&self, name: &str) -> Option<String> {
        self.header(name).and_then(|v| String::from_utf8(v).ok())
    }

    /// Every entry in order, pseudo-headers included, as bytes.
    fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        abi::get_map(self.map_type()).unwrap_or_default()
    }

    /// The regular headers as an [`http::HeaderMap`] (pseudo-headers and invalid entries left out).
    fn to_header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in self.pairs() {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(&k), HeaderValue::from_bytes(&v)) {
                map.append(k, v);
            }
        }
        map
    }

    /// Sets `name` to `value`, replacing every existing value.
    fn set_header(&self, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        abi::replace_map_value(self.map_type(), name.as_bytes(), value.as_ref())
    }

    /// Adds a value, keeping existing ones.
    fn add_header(&self, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        abi::add_map_value(self.map_type(), name.as_bytes(), value.as_ref())
    }

    /// Removes every value of `name`.
    fn remove_header(&self, name: &str) -> Result<()> {
        abi::remove_map_value(self.map_type(), name.as_bytes())
    }

    /// Replaces the whole map.
    fn set_pairs(&self, pairs: &[(&str, &[u8])]) -> Result<()> {
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
        abi::set_map(self.map_type(), &refs)
    }
}

/// The request headers, readable and writable in [`on_request_headers`](super::HttpFilter::on_request_headers)
/// (and while the request is paused there).
#[derive(Debug, Clone, Copy, Default)]
pub struct Request(());

impl Request {
    pub(crate) fn new() -> Self {
        Self(())
    }

    /// `:method`.
    pub fn method(&self) -> Option<String> {
        self.header_str(":method")
    }

    /// `:path`, with the query.
    pub fn path(&self) -> Option<String> {
        self.header_str(":path")
    }

    /// `:authority`.
    pub fn authority(&self) -> Option<String> {
        self.header_str(":authority")
    }
}

impl Headers for Request {
    fn map_type(&self) -> u32 {
        MapType::RequestHeaders as u32
    }
}

/// The response headers, readable and writable in [`on_response_headers`](super::HttpFilter::on_response_headers).
#[derive(Debug, Clone, Copy, Default)]
pub struct Response(());

impl Response {
    pub(crate) fn new() -> Self {
        Self(())
    }

    /// `:status`, if present and numeric.
    pub fn status(&self) -> Option<u16> {
        self.header_str(":status").and_then(|s| s.parse().ok())
    }
}

impl Headers for Response {
    fn map_type(&self) -> u32 {
        MapType::ResponseHeaders as u32
    }
}

/// Request or response trailers.
#[derive(Debug, Clone, Copy)]
pub struct Trailers(MapType);

impl Trailers {
    pub(crate) fn request() -> Self {
        Self(MapType::RequestTrailers)
    }

    pub(crate) fn response() -> Self {
        Self(MapType::ResponseTrailers)
    }
}

impl Headers for Trailers {
    fn map_type(&self) -> u32 {
        self.0 as u32
    }
}
