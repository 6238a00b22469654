//! HTTP streams driven by a test, one step at a time.

use super::Harness;
use crate::error::Result;
use crate::manager::{Direction, Message, PluginId, StreamId};
use crate::stream::{FilterStatus, HeaderMap, StreamInfo};
use crate::vm::LocalReply;

/// One HTTP stream through the plugin. Borrowed from the [`Harness`]; get it back later with
/// [`Harness::http`].
pub struct HttpStream<'h> {
    h: &'h mut Harness,
    id: StreamId,
}

impl Harness {
    /// Opens a new HTTP stream from a local HTTP/1.1 client (its context is created at the first
    /// request headers, as in Envoy; [`HttpStream::set_info`] changes its facts before that).
    pub fn http_stream(&mut self) -> HttpStream<'_> {
        let info = self.default_http_info();
        let id = self.core.open_http(PluginId::FIRST, info, self.buffer_limit);
        HttpStream { h: self, id }
    }

    /// An open stream by [`HttpStream::id`].
    ///
    /// # Panics
    /// If the harness has no stream with that id (it was closed with
    /// [`Harness::close_http_stream`]): a bug in the test, not in the plugin.
    pub fn http(&mut self, id: StreamId) -> HttpStream<'_> {
        assert!(self.core.stream_end(id).is_some(), "no HTTP stream with id {id}");
        HttpStream { h: self, id }
    }

    /// Closes and forgets stream `id` (a stream not complete yet gets no more callbacks).
    pub fn close_http_stream(&mut self, id: StreamId) {
        self.core.close_http(id);
    }
}

impl HttpStream<'_> {
    /// The stream's id in the harness (not its context id).
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The harness, to answer callouts or advance time while the stream is open.
    pub fn harness(&mut self) -> &mut Harness {
        self.h
    }

    /// Sets what the stream's properties report (addresses, route, protocol, extra paths) before
    /// the request headers create its context. Without it the stream looks like a local HTTP/1.1
    /// client.
    pub fn set_info(&mut self, mut info: StreamInfo) {
        self.h.complete_info(&mut info);
        self.h.core.set_http_info(self.id, info);
    }

    /// Records the upstream host that is answering (`upstream.address`, `upstream.port`), as
    /// Envoy's router does once it has a connection.
    pub fn set_upstream_address(&mut self, addr: std::net::SocketAddr) {
        self.h.core.set_upstream_address(self.id, addr);
    }

    /// The plugin's context id for this stream, once created.
    pub fn context_id(&self) -> Option<crate::vm::ContextId> {
        self.h.core.context_of(self.id)
    }

    fn headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        d: Direction,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        let r = self.h.core.headers(self.id, d, HeaderMap::from_pairs(headers), end_of_stream);
        self.h.settle()?;
        r
    }

    fn body(&mut self, d: Direction, chunk: &[u8], end_of_stream: bool) -> Result<FilterStatus> {
        let r = self.h.core.data(self.id, d, chunk, end_of_stream);
        self.h.settle()?;
        r
    }

    fn trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        d: Direction,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        let r = self.h.core.trailers(self.id, d, HeaderMap::from_pairs(trailers));
        self.h.settle()?;
        r
    }

    /// Request headers from the client (pseudo-headers included).
    pub fn request_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        self.headers(Direction::Request, headers, end_of_stream)
    }

    /// A request body chunk.
    pub fn request_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.body(Direction::Request, chunk.as_ref(), end_of_stream)
    }

    /// Request trailers (end the request).
    pub fn request_trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        self.trailers(Direction::Request, trailers)
    }

    /// Response headers from the upstream (with `:status`).
    pub fn response_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        self.headers(Direction::Response, headers, end_of_stream)
    }

    /// A response body chunk.
    pub fn response_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.body(Direction::Response, chunk.as_ref(), end_of_stream)
    }

    /// Response trailers.
    pub fn response_trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        self.trailers(Direction::Response, trailers)
    }

    fn message(&self, d: Direction) -> &Message {
        // `Harness::http` checked the stream exists, and only `close_http_stream` removes it.
        self.h.core.message(self.id, d).expect("the stream is open")
    }

    /// What went upstream so far.
    pub fn upstream_request(&self) -> &Message {
        self.message(Direction::Request)
    }

    /// What the client received so far.
    pub fn downstream_response(&self) -> &Message {
        self.message(Direction::Response)
    }

    /// The local reply the filter sent (or the host sent for it: 413, `wasm_fail_stream`).
    pub fn local_reply(&self) -> Option<&LocalReply> {
        self.h.core.local_reply(self.id)
    }

    /// True if the stream was reset (`proxy_close_stream`, or a reply too late to send).
    pub fn is_reset(&self) -> bool {
        self.h.core.stream_end(self.id).is_some_and(|e| e.reset)
    }

    /// True once `on_log`/`on_done`/`on_delete` ran (or the stream ended without a context).
    pub fn is_complete(&self) -> bool {
        self.h.core.stream_end(self.id).is_some_and(|e| e.done)
    }

    /// The current request headers as the filter sees them (before they are forwarded).
    pub fn current_request_headers(&self) -> Option<&HeaderMap> {
        self.h.core.http_state(self.id).map(|s| &s.request_headers.map)
    }

    /// The current response headers as the filter sees them.
    pub fn current_response_headers(&self) -> Option<&HeaderMap> {
        self.h.core.http_state(self.id).map(|s| &s.response_headers.map)
    }

    /// The request body the filter holds (buffered) right now.
    pub fn buffered_request_body(&self) -> Option<&[u8]> {
        self.h.core.http_state(self.id).map(|s| s.request_body.bytes.as_slice())
    }

    /// A value the filter stored with `proxy_set_property`, by path.
    pub fn filter_state(&self, path: &[&str]) -> Option<Vec<u8>> {
        let key = path.join("\0").into_bytes();
        self.h.core.http_state(self.id)?.filter_state.get(&key).cloned()
    }
}
