//! Views of the header and trailer maps. Values are bytes; nothing panics on non-UTF-8 input.
//!
//! A view exists only inside the callback (or the paused handler) that was given it, or borrowed
//! from the [`HttpStream`] it belongs to: none can be made from nothing, kept in the filter, or
//! moved into a spawned task. Each names its stream, so it reads and writes that stream's maps
//! whichever context's callback is running.

use std::marker::PhantomData;

use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::{HttpStream, MapType};
use crate::abi;
use crate::dispatch::within;
use crate::error::Result;

mod sealed {
    /// Keeps [`Headers`](super::Headers) implemented by this crate's views only.
    pub trait Sealed {
        fn map(&self) -> (u32, u32);
    }
}

/// Operations shared by every header map view ([`Request`], [`Response`], [`Trailers`]). Header
/// names are `&str` (pseudo-headers such as `:path` included) or [`HeaderName`]s; values are
/// bytes, `&str` or [`HeaderValue`]s.
///
/// Every read returns the host's failure as an error (for instance `BadArgument` when the map is
/// not available in this callback, as the response headers are not while the request is read).
pub trait Headers: sealed::Sealed {
    /// The first value of `name`, as bytes; `None` if absent.
    fn header(&self, name: impl AsRef<str>) -> Result<Option<Vec<u8>>> {
        let (context, map) = self.map();
        within(context, || abi::get_map_value(map, name.as_ref().as_bytes()))
    }

    /// The first value of `name` if it is present and UTF-8.
    fn header_str(&self, name: impl AsRef<str>) -> Result<Option<String>> {
        Ok(self.header(name)?.and_then(|v| String::from_utf8(v).ok()))
    }

    /// Every entry in order, pseudo-headers included, as bytes.
    fn pairs(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (context, map) = self.map();
        within(context, || abi::get_map(map))
    }

    /// The regular headers as an [`http::HeaderMap`] (pseudo-headers and entries that are not
    /// valid HTTP left out).
    fn to_header_map(&self) -> Result<http::HeaderMap> {
        let mut out = http::HeaderMap::new();
        for (k, v) in self.pairs()? {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(&k), HeaderValue::from_bytes(&v)) {
                out.append(k, v);
            }
        }
        Ok(out)
    }

    /// The map's size as Envoy counts it: the bytes of every name and value
    /// (`proxy_get_header_map_size`).
    fn byte_size(&self) -> Result<usize> {
        let (context, map) = self.map();
        within(context, || abi::get_header_map_size(map))
    }

    /// Sets `name` to `value`, replacing every existing value (in Envoy and sluice the header
    /// then comes last among the regular headers).
    fn set_header(&self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Result<()> {
        let (context, map) = self.map();
        within(context, || abi::replace_map_value(map, name.as_ref().as_bytes(), value.as_ref()))
    }

    /// Adds a value, keeping existing ones. A header the host keeps one entry of (Envoy's inline
    /// headers: `content-type`, `transfer-encoding`, `x-forwarded-for`, `:authority`, …) gets the
    /// value joined to the one it has with a comma instead of a second entry.
    fn add_header(&self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Result<()> {
        let (context, map) = self.map();
        within(context, || abi::add_map_value(map, name.as_ref().as_bytes(), value.as_ref()))
    }

    /// Removes every value of `name`.
    fn remove_header(&self, name: impl AsRef<str>) -> Result<()> {
        let (context, map) = self.map();
        within(context, || abi::remove_map_value(map, name.as_ref().as_bytes()))
    }

    /// Replaces the whole map.
    fn set_pairs(&self, pairs: &[(&str, &[u8])]) -> Result<()> {
        let (context, map) = self.map();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
        within(context, || abi::set_map(map, &refs))
    }
}

/// The request headers: given to
/// [`on_request_headers`](super::HttpFilter::on_request_headers), or borrowed from the stream
/// with [`HttpStream::request_headers`] (while the request is paused, Envoy lets a body handler
/// change them).
///
/// A view cannot be made from nothing:
///
/// ```compile_fail
/// let req = sluice::http::Request::default();
/// ```
///
/// nor outlive its callback (a task takes the stream's handle instead, see [`HttpStream`]):
///
/// ```compile_fail
/// fn keep(req: sluice::http::Request<'_>) {
///     sluice::spawn(async move {
///         let _ = req.path();
///     });
/// }
/// ```
#[derive(Debug)]
pub struct Request<'a> {
    context: u32,
    _callback: PhantomData<&'a ()>,
}

impl Request<'_> {
    pub(crate) fn new(context: u32) -> Self {
        Self { context, _callback: PhantomData }
    }

    /// `:method`; `None` if absent or not a method.
    pub fn method(&self) -> Result<Option<Method>> {
        Ok(self.header(":method")?.and_then(|m| Method::from_bytes(&m).ok()))
    }

    /// `:path`, with the query.
    pub fn path(&self) -> Result<Option<String>> {
        self.header_str(":path")
    }

    /// `:authority`.
    pub fn authority(&self) -> Result<Option<String>> {
        self.header_str(":authority")
    }

    /// The stream these headers belong to: a handle that may outlive the callback.
    pub fn stream(&self) -> HttpStream {
        HttpStream::new(self.context)
    }
}

impl sealed::Sealed for Request<'_> {
    fn map(&self) -> (u32, u32) {
        (self.context, MapType::RequestHeaders as u32)
    }
}
impl Headers for Request<'_> {}

/// The response headers: given to
/// [`on_response_headers`](super::HttpFilter::on_response_headers), or borrowed from the stream
/// with [`HttpStream::response_headers`].
#[derive(Debug)]
pub struct Response<'a> {
    context: u32,
    _callback: PhantomData<&'a ()>,
}

impl Response<'_> {
    pub(crate) fn new(context: u32) -> Self {
        Self { context, _callback: PhantomData }
    }

    /// `:status`; `None` if absent or not a status code.
    pub fn status(&self) -> Result<Option<StatusCode>> {
        Ok(self.header(":status")?.and_then(|s| StatusCode::from_bytes(&s).ok()))
    }

    /// The stream these headers belong to: a handle that may outlive the callback.
    pub fn stream(&self) -> HttpStream {
        HttpStream::new(self.context)
    }
}

impl sealed::Sealed for Response<'_> {
    fn map(&self) -> (u32, u32) {
        (self.context, MapType::ResponseHeaders as u32)
    }
}
impl Headers for Response<'_> {}

/// Request or response trailers: given to the trailer handlers, or borrowed from the stream.
#[derive(Debug)]
pub struct Trailers<'a> {
    context: u32,
    map: MapType,
    _callback: PhantomData<&'a ()>,
}

impl Trailers<'_> {
    pub(crate) fn new(context: u32, map: MapType) -> Self {
        Self { context, map, _callback: PhantomData }
    }

    /// The stream these trailers belong to: a handle that may outlive the callback.
    pub fn stream(&self) -> HttpStream {
        HttpStream::new(self.context)
    }
}

impl sealed::Sealed for Trailers<'_> {
    fn map(&self) -> (u32, u32) {
        (self.context, self.map as u32)
    }
}
impl Headers for Trailers<'_> {}
