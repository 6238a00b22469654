//! HTTP streams driven by a test, one step at a time.

use super::{ChainStream, Harness};
use crate::StreamId;
use sluice_core::chain::HttpChain;
use sluice_core::error::Result;
use sluice_core::plugin_vm::{Direction, Message, PluginVm};
use sluice_core::stream::{FilterStatus, HeaderMap, StreamInfo};
use sluice_core::vm::LocalReply;

/// One HTTP stream through the plugin (or the chain of them). Borrowed from the [`Harness`]; get
/// it back later with [`Harness::http`].
pub struct HttpStream<'h> {
    h: &'h mut Harness,
    id: StreamId,
}

impl Harness {
    /// Opens a new HTTP stream from a local HTTP/1.1 client (its contexts are created at the first
    /// request headers, as in Envoy; [`HttpStream::set_info`] changes its facts before that).
    pub fn http_stream(&mut self) -> HttpStream<'_> {
        let info = self.default_http_info();
        let chain = HttpChain::open(&mut self.vms, self.filters.iter().copied(), &info, self.buffer_limit);
        let id = self.new_stream_id();
        let stream = ChainStream { chain, upstream: Message::default(), downstream: Message::default() };
        self.streams.insert(id, stream);
        HttpStream { h: self, id }
    }

    /// An open stream by [`HttpStream::id`].
    ///
    /// # Panics
    /// If the harness has no stream with that id (it was closed with
    /// [`Harness::close_http_stream`]): a bug in the test, not in the plugin.
    pub fn http(&mut self, id: StreamId) -> HttpStream<'_> {
        assert!(self.streams.contains_key(&id), "no HTTP stream with id {id}");
        HttpStream { h: self, id }
    }

    /// Closes and forgets stream `id`. A stream not complete yet ends as Envoy ends a stream its
    /// client abandoned: every filter's `on_log`, then every filter's `on_done` and `on_delete`.
    pub fn close_http_stream(&mut self, id: StreamId) {
        if let Some(mut s) = self.streams.remove(&id) {
            s.chain.close(&mut self.vms);
        }
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
        let h = &mut *self.h;
        for l in h.streams[&self.id].chain.links() {
            h.vms[l.vm].set_http_info(l.stream, info.clone());
        }
    }

    /// Records the upstream host that is answering (`upstream.address`, `upstream.port`), as
    /// Envoy's router does once it has a connection.
    pub fn set_upstream_address(&mut self, addr: std::net::SocketAddr) {
        let h = &mut *self.h;
        h.streams[&self.id].chain.set_upstream_address(&mut h.vms, addr);
    }

    /// The stream in the chain's first filter: its VM and its id there.
    fn first(&self) -> (&PluginVm, sluice_core::plugin_vm::StreamId) {
        let l = &self.stream().chain.links()[0];
        (&self.h.vms[l.vm], l.stream)
    }

    fn stream(&self) -> &ChainStream {
        // `Harness::http` checked the stream exists, and only `close_http_stream` removes it.
        &self.h.streams[&self.id]
    }

    /// The (first) plugin's context id for this stream, once created.
    pub fn context_id(&self) -> Option<sluice_core::vm::ContextId> {
        let (vm, id) = self.first();
        vm.context_of(id)
    }

    /// The context id of the chain's filter `k` (0 is the first the request passes) for this
    /// stream, once created.
    pub fn context_id_of(&self, k: usize) -> Option<sluice_core::vm::ContextId> {
        let l = self.stream().chain.links().get(k)?;
        self.h.vms[l.vm].context_of(l.stream)
    }

    fn headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        d: Direction,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        let h = &mut *self.h;
        let s = h.streams.get_mut(&self.id).expect("the stream is open");
        let r = s.chain.push_headers(&mut h.vms, d, HeaderMap::from_pairs(headers), end_of_stream);
        h.settle()?;
        r
    }

    fn body(&mut self, d: Direction, chunk: &[u8], end_of_stream: bool) -> Result<FilterStatus> {
        let h = &mut *self.h;
        let s = h.streams.get_mut(&self.id).expect("the stream is open");
        let r = s.chain.push_data(&mut h.vms, d, chunk, end_of_stream);
        h.settle()?;
        r
    }

    fn trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        d: Direction,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        let h = &mut *self.h;
        let s = h.streams.get_mut(&self.id).expect("the stream is open");
        let r = s.chain.push_trailers(&mut h.vms, d, HeaderMap::from_pairs(trailers));
        h.settle()?;
        r
    }

    /// Request headers from the client (pseudo-headers included).
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn request_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        self.headers(Direction::Request, headers, end_of_stream)
    }

    /// A request body chunk.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn request_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.body(Direction::Request, chunk.as_ref(), end_of_stream)
    }

    /// Request trailers (end the request).
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn request_trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        self.trailers(Direction::Request, trailers)
    }

    /// Response headers from the upstream (with `:status`).
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn response_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        self.headers(Direction::Response, headers, end_of_stream)
    }

    /// A response body chunk.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn response_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        self.body(Direction::Response, chunk.as_ref(), end_of_stream)
    }

    /// Response trailers.
    ///
    /// # Errors
    /// A guest fault is not an error here: the filter's failure policy applies and the stream shows it (see
    /// [`Harness::vm_failures`](crate::Harness::vm_failures)). The errors are a test's:
    /// [`Error::Usage`](sluice_core::Error::Usage) for a step out of order or a token, queue or stream that does
    /// not exist, [`Error::Runaway`](sluice_core::Error::Runaway) when the plugin keeps making work without end.
    pub fn response_trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        self.trailers(Direction::Response, trailers)
    }

    /// What went upstream so far (what the chain's last filter let through).
    pub fn upstream_request(&self) -> &Message {
        &self.stream().upstream
    }

    /// What the client received so far (what the chain's first filter let through).
    pub fn downstream_response(&self) -> &Message {
        &self.stream().downstream
    }

    /// The local reply a filter sent (or the host sent for it: 413, `wasm_fail_stream`): the
    /// first filter's that answered.
    pub fn local_reply(&self) -> Option<&LocalReply> {
        let links = self.stream().chain.links();
        links.iter().find_map(|l| self.h.vms[l.vm].local_reply(l.stream))
    }

    /// True if the stream was reset (`proxy_close_stream`, a reply too late to send, or a host
    /// error in a filter).
    pub fn is_reset(&self) -> bool {
        let s = self.stream();
        s.chain.answer().is_some_and(|a| a.reset)
            || s.chain.links().iter().any(|l| self.h.vms[l.vm].stream_end(l.stream).is_some_and(|e| e.reset))
    }

    /// True once the stream ended in every filter: each one's `on_log`, then each one's
    /// `on_done` and `on_delete` (nothing for a filter without a context).
    pub fn is_complete(&self) -> bool {
        self.stream().chain.is_complete()
    }

    /// The current request headers as the filter sees them (before they are forwarded).
    pub fn current_request_headers(&self) -> Option<&HeaderMap> {
        self.first_state().map(|s| &s.request_headers.map)
    }

    /// The current response headers as the filter sees them.
    pub fn current_response_headers(&self) -> Option<&HeaderMap> {
        self.first_state().map(|s| &s.response_headers.map)
    }

    /// The request body the filter holds (buffered) right now.
    pub fn buffered_request_body(&self) -> Option<&[u8]> {
        self.first_state().map(|s| s.request_body.bytes.as_slice())
    }

    /// A value the filter stored with `proxy_set_property`, by path.
    pub fn filter_state(&self, path: &[&str]) -> Option<Vec<u8>> {
        let key = path.join("\0").into_bytes();
        self.first_state()?.filter_state.get(&key).cloned()
    }

    /// The stream as the first filter sees it, while its context lives.
    fn first_state(&self) -> Option<&sluice_core::stream::HttpStreamState> {
        let (vm, id) = self.first();
        vm.http_state(id)
    }
}
