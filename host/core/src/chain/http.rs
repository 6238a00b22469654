//! An HTTP stream's chain of filters: requests pass the filters in order, responses in reverse.

use super::{Link, Vms};
use crate::error::{Error, Result};
use crate::plugin_vm::{Direction, FinalHeaders, Forwarded, PluginId, PluginVm, StreamId, BODY_CHUNK};
use crate::stream::{FilterStatus, HeaderMap, StreamInfo};

/// Which filter answered the stream itself, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The filter's place in the chain (0 is the first the request passes).
    pub by: usize,
    /// True if it reset the stream (the client gets no response); false for a local reply, which
    /// goes back to the client through the filters before it.
    pub reset: bool,
}

/// One HTTP stream through a chain of filters, stepped as Envoy's filter manager steps them.
///
/// What a filter lets through goes on to the next one at once; a filter that stops holds the rest
/// (the filters after it see nothing until it resumes); a filter that answers locally sends its
/// reply back through the filters before it, and the upstream's response is then not read; a
/// reset ends the stream for every filter. The driver feeds the ends ([`HttpChain::push`]) and
/// takes what leaves them ([`HttpChain::pull`]), and after a callout's answer, a timer or a failed
/// VM moved a filter on by itself, pulls again.
#[derive(Debug)]
pub struct HttpChain<K> {
    links: Vec<Link<K>>,
    /// The first filter that answered or reset the stream, once one has.
    answer: Option<Answer>,
    /// What went in on a side with no filter on its way: it leaves as it came. (Boxed, as is an
    /// error: a chain is made for each stream and moved about, so it stays small.)
    through: Option<Box<[Forwarded; 2]>>,
    /// The first error a step met (the host's own: a guest's fault is the VM's failure policy's
    /// business), with the filter it met it in. The stream is then reset.
    failed: Option<Box<(usize, Error)>>,
    /// Every filter has run its end of the stream (`on_log`, then `on_done`).
    completed: bool,
    /// A filter answered with a direct reply (see [`StreamEnd::direct_reply`](crate::plugin_vm::StreamEnd)).
    direct_reply: bool,
    /// The whole response left the chain.
    response_ended: bool,
}

impl<K> HttpChain<K> {
    /// Opens the stream in each filter (`(vm, plugin)`, in the order the request passes them),
    /// with the stream's facts `info` and the listener's `per_connection_buffer_limit_bytes`.
    /// Contexts are created at the first request headers, as in Envoy.
    pub fn open<V: Vms<Key = K>>(
        vms: &mut V,
        filters: impl IntoIterator<Item = (K, PluginId)>,
        info: &StreamInfo,
        buffer_limit: usize,
    ) -> Self {
        let links = filters
            .into_iter()
            .map(|(vm, plugin)| {
                let stream = vms.step(&vm, |p| p.open_http(plugin, info.clone(), buffer_limit));
                Link { vm, plugin, stream }
            })
            .collect();
        Self {
            links,
            answer: None,
            through: None,
            failed: None,
            completed: false,
            direct_reply: false,
            response_ended: false,
        }
    }

    /// The filters, in the order the request passes them.
    pub fn links(&self) -> &[Link<K>] {
        &self.links
    }

    /// How many filters side `d` passes: every one for the request; for the response, the filters
    /// up to the one that answered locally, if one did.
    fn path(&self, d: Direction) -> usize {
        match (d, self.answer) {
            (Direction::Response, Some(Answer { by, reset: false })) => by + 1,
            _ => self.links.len(),
        }
    }

    /// The filter that takes side `d`'s input first: the first for the request, the last on the
    /// response's path; `None` if no filter does (an empty chain, or a response that is not read
    /// because a filter answered).
    fn entry(&self, d: Direction) -> Option<&Link<K>> {
        match d {
            Direction::Request => self.links.first(),
            Direction::Response if self.answer.is_some() => None,
            Direction::Response => self.links.last(),
        }
    }

    /// Feeds what arrived from the client (`Request`) or the upstream (`Response`) into the chain:
    /// headers, then the body in socket-sized chunks ([`BODY_CHUNK`]), then trailers, the last of
    /// them with `end_of_stream`. A response that arrives after a filter answered is dropped.
    pub fn push<V: Vms<Key = K>>(&mut self, vms: &mut V, d: Direction, input: Forwarded) {
        if self.links.is_empty() {
            merge(&mut self.through.get_or_insert_with(Default::default)[d.index()], input);
            return;
        }
        let k = match d {
            Direction::Request => 0,
            Direction::Response if self.answer.is_some() => return,
            Direction::Response => self.links.len() - 1,
        };
        let l = &self.links[k];
        let mut input = input;
        if let Err(e) = vms.step(&l.vm, |p| feed(p, l.stream, d, &mut input, BODY_CHUNK)) {
            self.failed.get_or_insert_with(|| Box::new((k, e)));
        }
    }

    /// Request or response headers into the chain's entry, as one step; what the entry filter
    /// answered. (For a driver that steps one callback at a time, as the harness does.)
    ///
    /// # Errors
    /// The host's own failure in the step (a guest fault is not an error: its filter's failure
    /// policy applies).
    pub fn push_headers<V: Vms<Key = K>>(
        &mut self,
        vms: &mut V,
        d: Direction,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        self.push_one(vms, d, |p, id| p.headers(id, d, headers, end_of_stream))
    }

    /// A body chunk into the chain's entry, as one step (see [`HttpChain::push_headers`]).
    ///
    /// # Errors
    /// As for [`HttpChain::push_headers`]; also a body before its headers.
    pub fn push_data<V: Vms<Key = K>>(
        &mut self,
        vms: &mut V,
        d: Direction,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        self.push_one(vms, d, |p, id| p.data(id, d, chunk, end_of_stream))
    }

    /// Trailers into the chain's entry, as one step (see [`HttpChain::push_headers`]).
    ///
    /// # Errors
    /// As for [`HttpChain::push_headers`].
    pub fn push_trailers<V: Vms<Key = K>>(
        &mut self,
        vms: &mut V,
        d: Direction,
        trailers: HeaderMap,
    ) -> Result<FilterStatus> {
        self.push_one(vms, d, |p, id| p.trailers(id, d, trailers))
    }

    fn push_one<V: Vms<Key = K>>(
        &mut self,
        vms: &mut V,
        d: Direction,
        step: impl FnOnce(&mut PluginVm, StreamId) -> Result<FilterStatus>,
    ) -> Result<FilterStatus> {
        let Some(l) = self.entry(d) else { return Ok(FilterStatus::Ended) };
        vms.step(&l.vm, |p| step(p, l.stream))
    }

    /// Moves what each filter let through on side `d` into the next one, and returns what left
    /// the chain: towards the upstream for `Request`, towards the client for `Response`.
    pub fn pull<V: Vms<Key = K>>(&mut self, vms: &mut V, d: Direction) -> Forwarded {
        if let (Direction::Response, Some(Answer { by, reset: false })) = (d, self.answer) {
            for l in &self.links[..by] {
                vms.step(&l.vm, |p| p.local_reply_passing(l.stream));
            }
        }
        let mut out = self.pass(vms, d);
        // A local reply's body, and data a filter's stopped headers held, follow the headers
        // through the chain in passes of their own (each filter has at most one of each to
        // deliver, so the passes are bounded even if a pass stops short of a filter).
        let mut passes = 2 * self.links.len();
        // Once a filter answered, the request goes no further: what an earlier filter held of
        // it is never delivered (Envoy's decoding ends with the local reply).
        while passes > 0
            && !self.answer.is_some_and(|a| a.reset || d == Direction::Request)
            && self.links[..self.path(d)].iter().any(|l| vms.peek(&l.vm, |p| p.has_deferred(l.stream, d)))
        {
            passes -= 1;
            let more = self.pass(vms, d);
            merge(&mut out, more);
        }
        out
    }

    /// One pass of [`HttpChain::pull`] through the filters of side `d`: what each let through
    /// goes into the next; then the first answer, and the end of the stream, if they came.
    fn pass<V: Vms<Key = K>>(&mut self, vms: &mut V, d: Direction) -> Forwarded {
        let n = self.path(d);
        if n == 0 {
            return self.through.as_mut().map(|t| std::mem::take(&mut t[d.index()])).unwrap_or_default();
        }
        let mut carry = Forwarded::default();
        let mut failed = None;
        let (mut first_over, mut answer) = (false, None);
        for step in 0..n {
            let k = if d == Direction::Request { step } else { n - 1 - step };
            let l = &self.links[k];
            let end = vms.step(&l.vm, |p| {
                if step > 0 && !carry.is_empty() {
                    // Between filters a body goes on as it was let through: what a filter
                    // buffered reaches the next in one callback, as in Envoy.
                    if let Err(e) = feed(p, l.stream, d, &mut carry, usize::MAX) {
                        failed.get_or_insert((k, e));
                        carry = Forwarded::default();
                    }
                }
                p.pass_on(l.stream, d, &mut carry).unwrap_or_else(|e| {
                    failed.get_or_insert((k, e));
                    p.stream_end(l.stream)
                })
            });
            let Some(end) = end else { continue };
            first_over |= k == 0 && end.over;
            let failed_here = failed.as_ref().is_some_and(|(f, _)| *f == k);
            if (end.local_reply || end.reset || failed_here) && answer.is_none_or(|a: Answer| k < a.by) {
                answer = Some(Answer { by: k, reset: end.reset || failed_here });
            }
            if d == Direction::Response && end.direct_reply {
                // A reply made once the response had reached its filter goes straight to the
                // client, past the other filters' response callbacks (Envoy's direct reply).
                self.direct_reply = true;
                break;
            }
        }
        if let Some(f) = failed {
            self.failed.get_or_insert_with(|| Box::new(f));
        }
        if self.answer.is_none() {
            self.answer = answer;
        }
        self.response_ended |= d == Direction::Response && carry.end_of_stream;
        let over = first_over || self.answer.is_some_and(|a| a.reset) || (self.direct_reply && self.response_ended);
        if over && !self.completed {
            self.complete(vms);
        }
        carry
    }

    /// Ends the stream in every filter as Envoy does at the end of a stream: each filter's
    /// access-log pass (`on_log`) in the chain's order, then each one's `on_done` and `on_delete`.
    fn complete<V: Vms<Key = K>>(&mut self, vms: &mut V) {
        self.completed = true;
        // One filter's own maps are the stream's; a chain's filters all read the stream's final
        // ones, and a filter the stream never reached gets its context for this pass.
        let shared = (self.links.len() > 1).then(|| self.final_headers(vms));
        let mut failed = None;
        for (k, l) in self.links.iter().enumerate() {
            if let Err(e) = vms.step(&l.vm, |p| p.log_http(l.stream, shared.as_ref())) {
                failed.get_or_insert((k, e));
            }
        }
        for (k, l) in self.links.iter().enumerate() {
            if let Err(e) = vms.step(&l.vm, |p| p.end_http(l.stream)) {
                failed.get_or_insert((k, e));
            }
        }
        if let Some(f) = failed {
            self.failed.get_or_insert_with(|| Box::new(f));
        }
    }

    /// The headers as the chain left them: the request's from the last filter that had them,
    /// the response's (and its trailers) from the first.
    fn final_headers<V: Vms<Key = K>>(&self, vms: &V) -> FinalHeaders {
        let mut out = FinalHeaders::default();
        for l in self.links.iter().rev() {
            out.request = vms.peek(&l.vm, |p| p.log_headers(l.stream)[0].cloned());
            if out.request.is_some() {
                break;
            }
        }
        for l in &self.links {
            let [_, response, trailers] = vms.peek(&l.vm, |p| {
                let [_, r, t] = p.log_headers(l.stream);
                [None, r.cloned(), t.cloned()]
            });
            if response.is_some() {
                (out.response, out.response_trailers) = (response, trailers);
                break;
            }
        }
        out
    }

    /// Whether every filter has ended the stream (`on_log`, `on_done` and `on_delete` ran).
    pub fn is_complete(&self) -> bool {
        self.completed
    }

    /// The first filter that answered the stream itself (a local reply) or reset it, if one has.
    /// The driver asks after its steps: an answer came at most with the last one.
    pub fn answer(&self) -> Option<Answer> {
        self.answer
    }

    /// Whether the response was reset on its way back (by a filter it passes, or a host error in
    /// one): the client's response breaks off.
    pub fn response_reset<V: Vms<Key = K>>(&self, vms: &V) -> bool {
        self.answer.is_some_and(|a| a.reset)
            || self.links[..self.path(Direction::Response)]
                .iter()
                .any(|l| vms.peek(&l.vm, |p| p.stream_end(l.stream)).is_some_and(|s| s.reset))
    }

    /// Whether a filter holds more of side `d` than the buffer limit allows with watermarks: then
    /// the driver stops reading that peer until the filters let go (Envoy's flow control).
    pub fn throttled<V: Vms<Key = K>>(&self, vms: &V, d: Direction) -> bool {
        self.links.iter().any(|l| vms.peek(&l.vm, |p| p.throttled(l.stream, d)))
    }

    /// Records the upstream host that answers (`upstream.address`, `upstream.port`) in the filters
    /// the response passes, as Envoy's router does once it has a connection.
    pub fn set_upstream_address<V: Vms<Key = K>>(&self, vms: &mut V, addr: std::net::SocketAddr) {
        for l in &self.links[..self.path(Direction::Response)] {
            vms.step(&l.vm, |p| p.set_upstream_address(l.stream, addr));
        }
    }

    /// The host error that reset the stream, if one did, with the name of the filter it met it
    /// in; taken once.
    pub fn take_error<V: Vms<Key = K>>(&mut self, vms: &V) -> Option<(String, Error)> {
        let (k, e) = *self.failed.take()?;
        let l = &self.links[k];
        Some((vms.peek(&l.vm, |p| p.info(l.plugin).name.clone()), e))
    }

    /// Closes the stream in every filter and forgets it. A stream not over yet (the client went
    /// away, the driver gave up on it) ends in every filter first, as Envoy ends a reset stream:
    /// each filter's `on_log`, then each one's `on_done` and `on_delete`.
    pub fn close<V: Vms<Key = K>>(&mut self, vms: &mut V) {
        if !self.completed && !self.links.is_empty() {
            self.complete(vms);
        }
        for l in &self.links {
            vms.step(&l.vm, |p| p.close_http(l.stream));
        }
    }
}

/// Adds `more` to what is waiting in `into`.
fn merge(into: &mut Forwarded, more: Forwarded) {
    if more.headers.is_some() {
        into.headers = more.headers;
    }
    into.body.extend_from_slice(&more.body);
    if more.trailers.is_some() {
        into.trailers = more.trailers;
    }
    into.end_of_stream |= more.end_of_stream;
}

/// Feeds `f` into one side of a filter's stream, as Envoy's filter manager would: headers, then
/// the body in chunks of at most `chunk` bytes, then trailers; `end_of_stream` on the last of them.
///
/// `f` is drained in place (it is large to move, and a chain moves one along at every filter).
fn feed(p: &mut PluginVm, id: StreamId, d: Direction, f: &mut Forwarded, chunk: usize) -> Result<()> {
    let more = !f.body.is_empty() || f.trailers.is_some();
    let end = std::mem::take(&mut f.end_of_stream);
    if let Some(headers) = f.headers.take() {
        let eos = end && !more;
        p.headers(id, d, headers, eos)?;
        if eos {
            return Ok(());
        }
    }
    let body_eos = end && f.trailers.is_none();
    if !f.body.is_empty() || body_eos {
        let body = std::mem::take(&mut f.body);
        let mut chunks = body.chunks(chunk).peekable();
        if chunks.peek().is_none() {
            p.data(id, d, &[], true)?;
        }
        while let Some(c) = chunks.next() {
            let eos = body_eos && chunks.peek().is_none();
            p.data(id, d, c, eos)?;
        }
    }
    if let Some(t) = f.trailers.take() {
        p.trailers(id, d, t)?;
    }
    Ok(())
}
