//! HTTP streams: Envoy's filter-manager rules for one wasm filter between a client and an
//! upstream — stop and resume, buffering with the listener's buffer limit, local replies that pass back
//! through the filter, failure policies, and `on_log`/`on_done`/`on_delete` at the end.

use super::{Direction, PluginId, PluginVm, StreamId};
use crate::error::{Error, Result};
use crate::stream::{
    data_status, headers_status, trailers_status, Access, FilterStatus, HeaderMap, HttpStreamState, MapSlot, StreamInfo,
};
use crate::vm::{ContextId, FailurePolicy, HostAction, LocalReply};
use crate::wire::status::StreamType;

/// How much of a body one data callback gets at most: what Envoy's codec reads from a socket at
/// a time.
pub const BODY_CHUNK: usize = 64 << 10;

/// Envoy's default `per_connection_buffer_limit_bytes`.
pub const DEFAULT_BUFFER_LIMIT: usize = 1 << 20;

/// A message as it left the filter: what the upstream got (request) or the client got (response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers after the filter's changes.
    pub headers: HeaderMap,
    /// True once the headers went past the filter.
    pub headers_forwarded: bool,
    /// Body bytes that went past the filter, in order.
    pub body: Vec<u8>,
    /// Trailers that went past the filter.
    pub trailers: HeaderMap,
    /// True once the whole message went past the filter.
    pub end_of_stream: bool,
}

impl Message {
    /// The `:status` of a response message.
    pub fn status(&self) -> Option<u16> {
        self.headers.get_str(":status").and_then(|s| s.parse().ok())
    }
}

/// What went past a filter since a driver last asked (see [`PluginVm::pass_on`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// The headers, the first time they are there.
    pub headers: Option<HeaderMap>,
    /// Body bytes not taken before.
    pub body: Vec<u8>,
    /// The trailers, once, if the message has any.
    pub trailers: Option<HeaderMap>,
    /// True once: the message is complete.
    pub end_of_stream: bool,
}

impl Forwarded {
    /// Whether there is nothing new.
    pub fn is_empty(&self) -> bool {
        self.headers.is_none() && self.body.is_empty() && self.trailers.is_none() && !self.end_of_stream
    }
}

/// How a stream stands (see [`PluginVm::stream_end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnd {
    /// A local reply was sent (by the filter, or for it: 413, a failed VM).
    pub local_reply: bool,
    /// The stream was reset.
    pub reset: bool,
    /// The stream's way through the filter is over: its request ended (or was answered) and the
    /// whole response went past it, or it was reset. The chain then completes it
    /// ([`PluginVm::log_http`], [`PluginVm::end_http`]).
    pub over: bool,
    /// The stream is complete for the filter (`on_done` and `on_delete` ran, or it had no
    /// context to run them in).
    pub done: bool,
    /// The filter answered locally once the response had reached it: Envoy sends such a reply
    /// straight to the client, past every other filter's response callbacks.
    pub direct_reply: bool,
}

/// The stream's headers as the whole chain left them: what every filter's `on_log` reads, as
/// Envoy's filters of one stream share one header map per kind.
#[derive(Debug, Clone, Default)]
pub struct FinalHeaders {
    /// The request headers as the last filter that saw them left them.
    pub request: Option<HeaderMap>,
    /// The response headers as the client got them.
    pub response: Option<HeaderMap>,
    /// The response trailers as the client got them.
    pub response_trailers: Option<HeaderMap>,
}

/// How much of a side's output a streaming driver has taken.
#[derive(Debug, Default, Clone, Copy)]
struct Taken {
    headers: bool,
    trailers: bool,
    end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    #[default]
    Idle,
    /// Headers held by the filter; `all` = later data is held by the filter manager too.
    HeadersStopped {
        all: bool,
    },
    /// Headers went through; body chunks stream.
    Open,
    /// Headers went on after a stop; what the filter manager held meanwhile reaches the filter
    /// once they have passed the filters after it (Envoy continues the headers down the chain
    /// first, then the held data from the filter that stopped).
    Continuing,
    /// The filter is accumulating the body: StopIterationAndBuffer (`limited`: more than the buffer
    /// limit is answered with 413) or StopIterationAndWatermark (the connection is throttled instead).
    Buffering {
        limited: bool,
    },
    /// Trailers held by the filter.
    TrailersStopped,
    Ended,
}

#[derive(Debug, Default)]
struct Side {
    stage: Stage,
    pending: Vec<u8>,
    /// Data held while headers are stopped counts against the buffer limit (StopAllIterationAndBuffer);
    /// with StopAllIterationAndWatermark the connection is throttled instead.
    pending_limited: bool,
    pending_eos: bool,
    pending_trailers: Option<HeaderMap>,
    eos_seen: bool,
}

/// The core's bookkeeping for one HTTP stream.
#[derive(Debug, Default)]
pub(crate) struct StreamDriver {
    /// The plugin (filter) this stream passes.
    plugin: PluginId,
    ctx: Option<u32>,
    skip: bool,
    req: Side,
    resp: Side,
    upstream: Message,
    downstream: Message,
    local_reply: Option<LocalReply>,
    reset: bool,
    /// The stream's way through the filter is over (see [`StreamEnd::over`]).
    over: bool,
    /// `on_log` ran.
    logged: bool,
    /// `on_done` and `on_delete` ran.
    done: bool,
    /// A local reply went straight out (see [`StreamEnd::direct_reply`]).
    direct_reply: bool,
    /// The body of a local reply passing this filter's response callbacks, until its headers
    /// have gone on.
    reply_body: Option<Vec<u8>>,
    grpc: bool,
    replying: bool,
    /// The stream's facts, until the context is created with them.
    info: Option<StreamInfo>,
    /// `per_connection_buffer_limit_bytes` of the stream's listener.
    limit: usize,
    /// What `pass_on` handed out: [request, response].
    taken: [Taken; 2],
    /// The response passing is another filter's local reply.
    reply_passing: bool,
}

impl StreamDriver {
    fn side(&mut self, d: Direction) -> &mut Side {
        match d {
            Direction::Request => &mut self.req,
            Direction::Response => &mut self.resp,
        }
    }

    fn out(&mut self, d: Direction) -> &mut Message {
        match d {
            Direction::Request => &mut self.upstream,
            Direction::Response => &mut self.downstream,
        }
    }

    fn finished(&self) -> bool {
        self.reset || self.over
    }

    fn end(&self) -> StreamEnd {
        StreamEnd {
            local_reply: self.local_reply.is_some(),
            reset: self.reset,
            over: self.over,
            done: self.done,
            direct_reply: self.direct_reply,
        }
    }

    /// Moves what went past the filter on side `d` since the last call into `f`, which is empty
    /// (a chain reuses one as it goes).
    fn take_into(&mut self, d: Direction, f: &mut Forwarded) {
        let taken = &mut self.taken[d.index()];
        let msg = match d {
            Direction::Request => &mut self.upstream,
            Direction::Response => &mut self.downstream,
        };
        // Moved, not copied: the guest's own copy (the context's map, read-only from now on) is
        // what the access-log pass reads at the end.
        if msg.headers_forwarded && !taken.headers {
            taken.headers = true;
            f.headers = Some(std::mem::take(&mut msg.headers));
        }
        if taken.headers {
            std::mem::swap(&mut f.body, &mut msg.body);
        }
        if msg.end_of_stream && taken.headers && !taken.end {
            taken.end = true;
            f.end_of_stream = true;
            if !msg.trailers.is_empty() && !taken.trailers {
                taken.trailers = true;
                f.trailers = Some(std::mem::take(&mut msg.trailers));
            }
        }
    }
}

impl PluginVm {
    /// Opens an HTTP stream through `plugin` whose facts (addresses, protocol, route, cluster,
    /// connection id) are `info`, on a listener whose `per_connection_buffer_limit_bytes` is
    /// `buffer_limit`. Its context is created at the first request headers, as in Envoy.
    pub fn open_http(&mut self, plugin: PluginId, info: StreamInfo, buffer_limit: usize) -> StreamId {
        let id = self.new_stream_id();
        let drv = StreamDriver { plugin, info: Some(info), limit: buffer_limit, ..Default::default() };
        self.streams.insert(id, Box::new(drv));
        id
    }

    /// Replaces the facts of stream `id` before its context is created (later, it changes nothing).
    pub fn set_http_info(&mut self, id: StreamId, info: StreamInfo) {
        if let Some(d) = self.streams.get_mut(&id) {
            if d.ctx.is_none() {
                d.info = Some(info);
            }
        }
    }

    /// Headers from the client (`Request`, pseudo-headers included) or the upstream (`Response`,
    /// with `:status`). What the filter lets through comes out of [`PluginVm::pass_on`].
    pub fn headers(
        &mut self,
        id: StreamId,
        d: Direction,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        if !self.taking(id, d) {
            return Ok(FilterStatus::Ended);
        }
        self.step(id, |p| headers_step(p, id, d, headers, end_of_stream))
    }

    /// A body chunk.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn data(&mut self, id: StreamId, d: Direction, chunk: &[u8], end_of_stream: bool) -> Result<FilterStatus> {
        if !self.taking(id, d) {
            return Ok(FilterStatus::Ended);
        }
        self.step(id, |p| body_step(p, id, d, chunk, end_of_stream))
    }

    /// Trailers (they end the message).
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn trailers(&mut self, id: StreamId, d: Direction, trailers: HeaderMap) -> Result<FilterStatus> {
        if !self.taking(id, d) {
            return Ok(FilterStatus::Ended);
        }
        self.step(id, |p| trailers_step(p, id, d, trailers))
    }

    /// Whether stream `id` still takes input on side `d` (a locally answered stream takes no
    /// more of either side).
    fn taking(&self, id: StreamId, d: Direction) -> bool {
        self.streams.get(&id).is_some_and(|s| d == Direction::Request || s.local_reply.is_none())
    }

    /// Closes stream `id` and forgets it (a driver calls this once the exchange is over; a stream
    /// not complete yet gets no more callbacks).
    pub fn close_http(&mut self, id: StreamId) {
        if let Some(d) = self.streams.remove(&id) {
            if let Some(ctx) = d.ctx {
                self.contexts.remove(&ctx);
                if !d.done {
                    self.vm.drop_context(ctx);
                }
            }
        }
    }

    /// A chain's step past this filter on side `d`: the body of the filter's own local reply
    /// first, once the reply's headers have gone on (response side, see
    /// [`PluginVm::deliver_reply_body`]); then what the filter let through since the last pass,
    /// moved, not copied (the guest's own copy is what `on_log` reads); how the stream stands
    /// (`None`: not open).
    ///
    /// # Errors
    /// The host's own failure while the reply's body passes the filter.
    ///
    /// What it let through goes into `out`, which is empty (a chain reuses one as it goes: it is
    /// large to move).
    pub fn pass_on(&mut self, id: StreamId, d: Direction, out: &mut Forwarded) -> Result<Option<StreamEnd>> {
        let Some(drv) = self.streams.get_mut(&id) else { return Ok(None) };
        if d == Direction::Response && drv.reply_body.is_some() {
            self.deliver_reply_body(id)?;
        }
        if self.has_held_data(id, d) {
            self.step(id, |p| deliver_held(p, id, d))?;
        }
        let Some(drv) = self.streams.get_mut(&id) else { return Ok(None) };
        drv.take_into(d, out);
        Ok(Some(drv.end()))
    }

    /// Bytes of side `d` of stream `id` held without a limit (a filter that stopped with
    /// watermarks): a driver with a real socket stops reading while this exceeds the buffer limit,
    /// as Envoy's watermarks do.
    pub fn held_bytes(&self, id: StreamId, d: Direction) -> usize {
        let Some(s) = self.streams.get(&id) else { return 0 };
        let side = match d {
            Direction::Request => &s.req,
            Direction::Response => &s.resp,
        };
        let mut n = if side.pending_limited { 0 } else { side.pending.len() };
        if side.stage == (Stage::Buffering { limited: false }) {
            n += s
                .ctx
                .and_then(|c| self.vm.http_state(c))
                .map(|st| match d {
                    Direction::Request => st.request_body.bytes.len(),
                    Direction::Response => st.response_body.bytes.len(),
                })
                .unwrap_or(0);
        }
        n
    }

    /// Whether the filter holds more of side `d` than the stream's buffer limit (with
    /// watermarks): then the driver stops reading that peer until it lets go.
    pub fn throttled(&self, id: StreamId, d: Direction) -> bool {
        self.streams.get(&id).is_some_and(|s| self.held_bytes(id, d) > s.limit)
    }

    /// Whether stream `id` was answered locally, reset, or finished (`None`: not open).
    pub fn stream_end(&self, id: StreamId) -> Option<StreamEnd> {
        self.streams.get(&id).map(|d| d.end())
    }

    /// The local reply the filter sent on stream `id` (or the host sent for it: 413,
    /// `wasm_fail_stream`).
    pub fn local_reply(&self, id: StreamId) -> Option<&LocalReply> {
        self.streams.get(&id)?.local_reply.as_ref()
    }

    /// The guest's context id for stream `id`, once created.
    pub fn context_of(&self, id: StreamId) -> Option<ContextId> {
        self.streams.get(&id)?.ctx.map(ContextId)
    }

    /// Stream `id` as the guest sees it (headers, bodies, properties), while its context lives.
    pub fn http_state(&self, id: StreamId) -> Option<&HttpStreamState> {
        self.vm.http_state(self.context_of(id)?.0)
    }

    /// Records the upstream host that is answering (`upstream.address`, `upstream.port`), as
    /// Envoy's router does once it has a connection.
    pub fn set_upstream_address(&mut self, id: StreamId, addr: std::net::SocketAddr) {
        if let Some(s) = state(self, id) {
            s.info.upstream = Some(addr);
        }
    }
}

fn driver(p: &mut PluginVm, id: StreamId) -> &mut StreamDriver {
    // Every caller got `id` from an entry point that checked the stream exists.
    p.streams.get_mut(&id).expect("stream exists")
}

fn stream_of_ctx(p: &PluginVm, ctx: u32) -> Option<StreamId> {
    p.contexts.get(&ctx).copied().filter(|id| p.streams.contains_key(id))
}

fn state(p: &mut PluginVm, id: StreamId) -> Option<&mut HttpStreamState> {
    let ctx = p.streams.get(&id)?.ctx?;
    p.vm.http_state_mut(ctx)
}

fn slot(s: &mut HttpStreamState, d: Direction, trailers: bool) -> &mut MapSlot {
    match (d, trailers) {
        (Direction::Request, false) => &mut s.request_headers,
        (Direction::Request, true) => &mut s.request_trailers,
        (Direction::Response, false) => &mut s.response_headers,
        (Direction::Response, true) => &mut s.response_trailers,
    }
}

fn body_slot(s: &mut HttpStreamState, d: Direction) -> &mut crate::stream::BufferSlot {
    match d {
        Direction::Request => &mut s.request_body,
        Direction::Response => &mut s.response_body,
    }
}

/// True if the guest asked for a local reply on `ctx` during the call that just returned.
fn local_reply_pending(p: &PluginVm, ctx: u32) -> bool {
    p.vm.host().actions.iter().any(|a| matches!(a, HostAction::LocalReply { context_id, .. } if *context_id == ctx))
}

/// Creates the context on first use, or decides the filter is skipped / the stream fails.
fn ensure_context(p: &mut PluginVm, id: StreamId) -> Result<bool> {
    if driver(p, id).ctx.is_some() || driver(p, id).skip {
        return Ok(true);
    }
    let plugin = driver(p, id).plugin;
    p.maybe_reload(plugin)?;
    if p.vm.failure().is_some() {
        match p.root(plugin).info.failure_policy {
            FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => driver(p, id).skip = true,
            _ => fail_stream(p, id),
        }
        return Ok(!driver(p, id).finished());
    }
    let mut info = driver(p, id).info.take().unwrap_or_default();
    info.request_time_nanos = Some(p.env.clock.now_nanos());
    let state = HttpStreamState { info, ..Default::default() };
    let root = p.root(plugin).root_id;
    match p.vm.create_http_context(root, state) {
        Ok(ctx) => {
            driver(p, id).ctx = Some(ctx);
            p.contexts.insert(ctx, id);
            Ok(true)
        }
        Err(Error::Guest(fault)) => {
            p.on_vm_failure(fault);
            Ok(!driver(p, id).finished())
        }
        Err(e) => Err(e),
    }
}

/// Calls the guest; `None` when it faulted (the harness has applied the failure policy).
fn guest(p: &mut PluginVm, f: impl FnOnce(&mut crate::vm::Vm) -> Result<i32>) -> Result<Option<i32>> {
    match f(&mut p.vm) {
        Ok(raw) => Ok(Some(raw)),
        Err(Error::Guest(fault)) => {
            p.on_vm_failure(fault);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn forward_headers(p: &mut PluginVm, id: StreamId, d: Direction, eos: bool) {
    let map = state(p, id).map(|s| {
        let slot = slot(s, d, false);
        // Envoy drops its pointer to the headers once they continue.
        slot.access = Access::None;
        slot.map.clone()
    });
    let drv = driver(p, id);
    let out = drv.out(d);
    if let Some(map) = map {
        out.headers = map;
    }
    out.headers_forwarded = true;
    if eos {
        out.end_of_stream = true;
        drv.side(d).stage = Stage::Ended;
    } else {
        drv.side(d).stage = Stage::Open;
    }
}

fn forward_body(p: &mut PluginVm, id: StreamId, d: Direction, eos: bool) {
    let bytes = state(p, id).map(|s| {
        let b = body_slot(s, d);
        b.access = Access::None;
        std::mem::take(&mut b.bytes)
    });
    let drv = driver(p, id);
    if let Some(bytes) = bytes {
        drv.out(d).body.extend_from_slice(&bytes);
    }
    drv.side(d).stage = if eos { Stage::Ended } else { Stage::Open };
    if eos {
        let trailers = state(p, id).map(|s| slot(s, d, true).map.clone()).unwrap_or_default();
        let out = driver(p, id).out(d);
        out.trailers = trailers;
        out.end_of_stream = true;
    }
}

fn headers_step(p: &mut PluginVm, id: StreamId, d: Direction, headers: HeaderMap, eos: bool) -> Result<FilterStatus> {
    if driver(p, id).finished() || (d == Direction::Request && driver(p, id).local_reply.is_some()) {
        return Ok(FilterStatus::Ended);
    }
    if d == Direction::Request {
        driver(p, id).grpc = headers.get("content-type").is_some_and(|v| v.starts_with(b"application/grpc"));
    }
    driver(p, id).side(d).eos_seen = eos;
    if !ensure_context(p, id)? {
        return Ok(FilterStatus::Ended);
    }
    if driver(p, id).skip {
        let drv = driver(p, id);
        let out = drv.out(d);
        out.headers = headers;
        out.headers_forwarded = true;
        out.end_of_stream = eos;
        drv.side(d).stage = if eos { Stage::Ended } else { Stage::Open };
        finish_if_done(p, id)?;
        return Ok(FilterStatus::Skipped);
    }
    if d == Direction::Response {
        let reply_passing = driver(p, id).reply_passing;
        let code = headers.get_str(":status").and_then(|s| s.parse().ok());
        if let Some(s) = state(p, id) {
            s.info.response_code = code;
            // A local reply (another filter's) has the details its sender gave, not the
            // upstream's.
            if s.info.response_code_details.is_none() && !reply_passing {
                s.info.response_code_details = Some("via_upstream".into());
            }
        }
    }
    let n = headers.len();
    let mut headers = headers;
    // Room for a filter's usual edits without growing the map on each one.
    headers.reserve(256, 8);
    if let Some(s) = state(p, id) {
        *slot(s, d, false) = MapSlot { map: headers, access: Access::ReadWrite };
    }
    let ctx = driver(p, id).ctx.unwrap_or_default();
    let raw = guest(p, |vm| match d {
        Direction::Request => vm.on_request_headers(ctx, n, eos),
        Direction::Response => vm.on_response_headers(ctx, n, eos),
    })?;
    let Some(raw) = raw else {
        return Ok(FilterStatus::Ended);
    };
    let local = local_reply_pending(p, ctx);
    let plugin = driver(p, id).plugin;
    let allow_stop = p.root(plugin).info.allow_on_headers_stop_iteration;
    let status = headers_status(raw, allow_stop, local);
    match status {
        FilterStatus::Continue => forward_headers(p, id, d, eos),
        FilterStatus::StopIteration => driver(p, id).side(d).stage = Stage::HeadersStopped { all: false },
        _ => {
            let side = driver(p, id).side(d);
            side.stage = Stage::HeadersStopped { all: true };
            side.pending_limited = status == FilterStatus::StopAllIterationAndBuffer;
        }
    }
    p.pump()?;
    finish_if_done(p, id)?;
    Ok(status)
}

fn body_step(p: &mut PluginVm, id: StreamId, d: Direction, chunk: &[u8], eos: bool) -> Result<FilterStatus> {
    let drv = driver(p, id);
    if drv.finished() || drv.side(d).stage == Stage::Ended || (d == Direction::Request && drv.local_reply.is_some()) {
        return Ok(FilterStatus::Ended);
    }
    if drv.side(d).stage == Stage::Idle {
        return Err(Error::Usage(format!("{d:?} body sent before its headers")));
    }
    drv.side(d).eos_seen |= eos;
    if let Some(s) = drv.ctx.and_then(|c| p.vm.http_state_mut(c)) {
        // `request.size` / `response.size`: every body byte that arrived.
        match d {
            Direction::Request => s.info.request_body_bytes += chunk.len() as u64,
            Direction::Response => s.info.response_body_bytes += chunk.len() as u64,
        }
    }
    let drv = driver(p, id);
    if drv.skip {
        drv.out(d).body.extend_from_slice(chunk);
        drv.out(d).end_of_stream = eos;
        if eos {
            drv.side(d).stage = Stage::Ended;
        }
        finish_if_done(p, id)?;
        return Ok(FilterStatus::Skipped);
    }
    if matches!(drv.side(d).stage, Stage::HeadersStopped { all: true } | Stage::TrailersStopped | Stage::Continuing) {
        let limit = drv.limit;
        let side = drv.side(d);
        side.pending.extend_from_slice(chunk);
        side.pending_eos |= eos;
        if side.pending_limited && side.pending.len() > limit {
            over_limit(p, id, d)?;
        }
        return Ok(FilterStatus::Buffered);
    }
    deliver_body(p, id, d, chunk, eos)
}

/// Gives a chunk to the filter and acts on its answer.
fn deliver_body(p: &mut PluginVm, id: StreamId, d: Direction, chunk: &[u8], eos: bool) -> Result<FilterStatus> {
    let stage = driver(p, id).side(d).stage;
    let buffering = matches!(stage, Stage::Buffering { .. });
    if stage == (Stage::Buffering { limited: true }) {
        let held = state(p, id).map(|s| body_slot(s, d).bytes.len()).unwrap_or(0);
        if held + chunk.len() > driver(p, id).limit {
            // Envoy checks the limit as data joins the buffer, before the filter sees it again.
            over_limit(p, id, d)?;
            return Ok(FilterStatus::Ended);
        }
    }
    let len = match state(p, id) {
        Some(s) => {
            let b = body_slot(s, d);
            if !buffering {
                b.bytes.clear();
            }
            b.bytes.extend_from_slice(chunk);
            b.access = Access::ReadWrite;
            let len = b.bytes.len();
            if eos {
                // At the last chunk a filter may add trailers.
                let t = slot(s, d, true);
                if t.access == Access::None {
                    t.access = Access::ReadWrite;
                }
            }
            len
        }
        None => return Ok(FilterStatus::Ended),
    };
    let ctx = driver(p, id).ctx.unwrap_or_default();
    let raw = guest(p, |vm| match d {
        Direction::Request => vm.on_request_body(ctx, len, eos),
        Direction::Response => vm.on_response_body(ctx, len, eos),
    })?;
    let Some(raw) = raw else {
        return Ok(FilterStatus::Ended);
    };
    let status = data_status(raw, local_reply_pending(p, ctx));
    match status {
        FilterStatus::Continue => {
            if !driver(p, id).out(d).headers_forwarded {
                // A body Continue releases headers held by a real StopIteration (held still
                // while the filter buffered body chunks since).
                forward_headers(p, id, d, false);
            }
            forward_body(p, id, d, eos);
        }
        FilterStatus::StopIterationAndBuffer | FilterStatus::StopIterationAndWatermark => {
            let too_big = status == FilterStatus::StopIterationAndBuffer && len > driver(p, id).limit;
            driver(p, id).side(d).stage = Stage::Buffering { limited: status == FilterStatus::StopIterationAndBuffer };
            if too_big {
                over_limit(p, id, d)?;
            }
        }
        _ => {
            if let Some(s) = state(p, id) {
                body_slot(s, d).bytes.clear();
            }
            if !matches!(driver(p, id).side(d).stage, Stage::HeadersStopped { .. }) {
                driver(p, id).side(d).stage = Stage::Open;
            }
        }
    }
    p.pump()?;
    finish_if_done(p, id)?;
    Ok(status)
}

fn trailers_step(p: &mut PluginVm, id: StreamId, d: Direction, trailers: HeaderMap) -> Result<FilterStatus> {
    let drv = driver(p, id);
    if drv.finished() || drv.side(d).stage == Stage::Ended || (d == Direction::Request && drv.local_reply.is_some()) {
        return Ok(FilterStatus::Ended);
    }
    drv.side(d).eos_seen = true;
    if drv.skip {
        drv.out(d).trailers = trailers;
        drv.out(d).end_of_stream = true;
        drv.side(d).stage = Stage::Ended;
        finish_if_done(p, id)?;
        return Ok(FilterStatus::Skipped);
    }
    if matches!(drv.side(d).stage, Stage::HeadersStopped { all: true } | Stage::Continuing) {
        drv.side(d).pending_trailers = Some(trailers);
        return Ok(FilterStatus::Buffered);
    }
    deliver_trailers(p, id, d, trailers)
}

fn deliver_trailers(p: &mut PluginVm, id: StreamId, d: Direction, trailers: HeaderMap) -> Result<FilterStatus> {
    let n = trailers.len();
    match state(p, id) {
        Some(s) => *slot(s, d, true) = MapSlot { map: trailers, access: Access::ReadWrite },
        None => return Ok(FilterStatus::Ended),
    }
    let ctx = driver(p, id).ctx.unwrap_or_default();
    let raw = guest(p, |vm| match d {
        Direction::Request => vm.on_request_trailers(ctx, n),
        Direction::Response => vm.on_response_trailers(ctx, n),
    })?;
    let Some(raw) = raw else {
        return Ok(FilterStatus::Ended);
    };
    let status = trailers_status(raw, local_reply_pending(p, ctx));
    if status == FilterStatus::Continue {
        release_after_trailers(p, id, d);
    } else {
        driver(p, id).side(d).stage = Stage::TrailersStopped;
    }
    p.pump()?;
    finish_if_done(p, id)?;
    Ok(status)
}

fn release_after_trailers(p: &mut PluginVm, id: StreamId, d: Direction) {
    if !driver(p, id).out(d).headers_forwarded {
        forward_headers(p, id, d, false);
    }
    forward_body(p, id, d, true);
    if let Some(s) = state(p, id) {
        slot(s, d, true).access = Access::None;
    }
}

fn over_limit(p: &mut PluginVm, id: StreamId, d: Direction) -> Result<()> {
    let reply = match d {
        Direction::Request => LocalReply {
            status: 413,
            details: "request_payload_too_large".into(),
            body: b"Payload Too Large".to_vec(),
            headers: Vec::new(),
            grpc_status: None,
        },
        Direction::Response => LocalReply {
            status: 500,
            details: "response_payload_too_large".into(),
            body: b"Internal Server Error".to_vec(),
            headers: Vec::new(),
            grpc_status: None,
        },
    };
    send_reply(p, id, reply)
}

/// `proxy_continue_stream`: releases what the filter held.
pub(crate) fn resume(p: &mut PluginVm, ctx: u32, stream: StreamType) -> Result<()> {
    let Some(id) = stream_of_ctx(p, ctx) else {
        return Ok(());
    };
    let d = match stream {
        StreamType::HttpRequest => Direction::Request,
        StreamType::HttpResponse => Direction::Response,
        _ => return Ok(()),
    };
    if driver(p, id).finished() || (d == Direction::Request && driver(p, id).local_reply.is_some()) {
        return Ok(());
    }
    match driver(p, id).side(d).stage {
        Stage::HeadersStopped { .. } => {
            let side = driver(p, id).side(d);
            let held = !side.pending.is_empty() || side.pending_eos || side.pending_trailers.is_some();
            let header_eos = side.eos_seen && !held;
            forward_headers(p, id, d, header_eos);
            if held {
                // Delivered by `pass_on` once the headers have gone on (see `Stage::Continuing`).
                driver(p, id).side(d).stage = Stage::Continuing;
            }
        }
        Stage::Buffering { .. } => {
            let eos = driver(p, id).side(d).eos_seen && driver(p, id).side(d).pending_trailers.is_none();
            if !driver(p, id).out(d).headers_forwarded {
                forward_headers(p, id, d, false);
            }
            forward_body(p, id, d, eos);
        }
        Stage::TrailersStopped => release_after_trailers(p, id, d),
        _ => {}
    }
    finish_if_done(p, id)
}

/// Gives the filter what the filter manager held while its headers were stopped: everything in
/// one body callback, as Envoy does, then the trailers.
fn deliver_held(p: &mut PluginVm, id: StreamId, d: Direction) -> Result<()> {
    let side = driver(p, id).side(d);
    side.stage = Stage::Open;
    let pending = std::mem::take(&mut side.pending);
    let pending_eos = std::mem::take(&mut side.pending_eos);
    let trailers = side.pending_trailers.take();
    if !pending.is_empty() || pending_eos {
        deliver_body(p, id, d, &pending, pending_eos)?;
    }
    if let Some(t) = trailers {
        if !driver(p, id).finished() {
            deliver_trailers(p, id, d, t)?;
        }
    }
    finish_if_done(p, id)
}

/// `proxy_close_stream`: the stream is reset; the client sees no response.
pub(crate) fn reset(p: &mut PluginVm, ctx: u32) {
    if let Some(id) = stream_of_ctx(p, ctx) {
        driver(p, id).reset = true;
        if let Some(s) = state(p, id) {
            s.info.response_code_details = Some("wasm_close_stream".into());
        }
        let _ = complete(p, id);
    }
}

/// `proxy_send_local_response` (or a 413 / failure reply): answers the client. A reply made before
/// the response started goes through this filter's response callbacks, as in Envoy.
pub(crate) fn local_reply(p: &mut PluginVm, ctx: u32, reply: LocalReply) -> Result<()> {
    let Some(id) = stream_of_ctx(p, ctx) else { return Ok(()) };
    send_reply(p, id, reply)
}

/// Answers the client of stream `id` (not a context id) with `reply`.
fn send_reply(p: &mut PluginVm, id: StreamId, reply: LocalReply) -> Result<()> {
    if driver(p, id).finished() {
        return Ok(());
    }
    if driver(p, id).downstream.headers_forwarded {
        // Too late for a reply: the client already has headers. Envoy resets.
        driver(p, id).reset = true;
        return complete(p, id);
    }
    if let Some(s) = state(p, id) {
        s.info.response_code_details = Some(reply.details.clone());
        s.info.response_code = Some(reply.status);
    }
    let grpc = driver(p, id).grpc;
    let (headers, body) = crate::stream::local_reply_message(&reply, grpc);
    let drv = driver(p, id);
    if drv.local_reply.is_none() {
        drv.local_reply = Some(reply);
    }
    drv.req.stage = Stage::Ended;
    let response_started = drv.resp.stage != Stage::Idle;
    if response_started || drv.replying || drv.skip || drv.ctx.is_none() {
        // The filter's own response callbacks are not re-run for a reply made during them; made
        // once the response reached the filter, it skips every filter's (Envoy's direct reply).
        drv.direct_reply |= response_started;
        let ctx = drv.ctx;
        if let Some(s) = ctx.and_then(|c| p.vm.http_state_mut(c)) {
            // What `on_log` reads: the response the client got.
            s.response_headers.map = headers.clone();
        }
        let drv = driver(p, id);
        let out = &mut drv.downstream;
        out.headers = headers;
        out.headers_forwarded = true;
        out.body = body;
        out.trailers = HeaderMap::new();
        out.end_of_stream = true;
        drv.resp.stage = Stage::Ended;
        return complete(p, id);
    }
    drv.replying = true;
    let eos = body.is_empty();
    headers_step(p, id, Direction::Response, headers, eos)?;
    if eos {
        driver(p, id).replying = false;
    } else {
        // The body follows once the headers have gone on through the filters before this one, as
        // Envoy passes a reply's headers through the chain before its body.
        driver(p, id).reply_body = Some(body);
    }
    finish_if_done(p, id)
}

impl PluginVm {
    /// Gives the filter the body of its own local reply (`on_http_response_body`), once the
    /// reply's headers have been taken on through the chain; whether there was one to give.
    ///
    /// # Errors
    /// The host's own failure (a guest's fault applies the failure policy instead).
    pub fn deliver_reply_body(&mut self, id: StreamId) -> Result<bool> {
        let Some(d) = self.streams.get_mut(&id) else { return Ok(false) };
        if d.reply_body.is_none() || !d.taken[Direction::Response.index()].headers {
            return Ok(false);
        }
        let body = d.reply_body.take().unwrap_or_default();
        self.step(id, |p| {
            body_step(p, id, Direction::Response, &body, true)?;
            driver(p, id).replying = false;
            finish_if_done(p, id)
        })?;
        Ok(true)
    }

    /// Whether stream `id` holds data of side `d` for the filter that the next pass delivers: the
    /// body of its local reply (see [`PluginVm::deliver_reply_body`]), or what arrived while it
    /// stopped the headers, once they have gone on.
    pub fn has_deferred(&self, id: StreamId, d: Direction) -> bool {
        (d == Direction::Response && self.has_reply_body(id)) || self.has_held_data(id, d)
    }

    fn has_held_data(&self, id: StreamId, d: Direction) -> bool {
        self.streams.get(&id).is_some_and(|s| {
            let side = match d {
                Direction::Request => &s.req,
                Direction::Response => &s.resp,
            };
            side.stage == Stage::Continuing && s.taken[d.index()].headers
        })
    }

    /// Tells stream `id` that the response coming through is another filter's local reply (its
    /// `response.code_details` are not the upstream's).
    pub fn local_reply_passing(&mut self, id: StreamId) {
        if let Some(d) = self.streams.get_mut(&id) {
            d.reply_passing = true;
        }
    }

    /// Whether the HTTP stream of context `ctx` is over in this filter (both sides passed it, or
    /// it was reset).
    pub(crate) fn stream_over(&self, ctx: u32) -> bool {
        stream_of_ctx(self, ctx).and_then(|id| self.streams.get(&id)).is_some_and(|d| d.finished())
    }

    /// Whether stream `id` holds the body of a local reply for [`PluginVm::deliver_reply_body`].
    pub fn has_reply_body(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|d| d.reply_body.is_some() && d.taken[Direction::Response.index()].headers)
    }
}

/// The VM failed while this stream was open: apply the plugin's failure policy.
pub(crate) fn fail_stream(p: &mut PluginVm, id: StreamId) {
    let Some(drv) = p.streams.get(&id) else { return };
    if drv.finished() {
        return;
    }
    let legacy_fail_open = p.root(drv.plugin).info.failure_policy == FailurePolicy::LegacyFailOpen;
    if legacy_fail_open {
        // The stream goes on without the filter, with whatever the filter held released as it was.
        for d in [Direction::Request, Direction::Response] {
            let held = state(p, id).map(|s| {
                let headers = slot(s, d, false);
                let map = headers.access.readable().then(|| headers.map.clone());
                (map, std::mem::take(&mut body_slot(s, d).bytes))
            });
            let drv = driver(p, id);
            let side = drv.side(d);
            if side.stage == Stage::Ended
                || (side.stage == Stage::Idle && held.as_ref().is_none_or(|(m, _)| m.is_none()))
            {
                continue;
            }
            let eos = side.eos_seen;
            let pending = std::mem::take(&mut side.pending);
            side.stage = if eos { Stage::Ended } else { Stage::Open };
            let out = drv.out(d);
            if let Some((map, body)) = held {
                if let Some(map) = map.filter(|_| !out.headers_forwarded) {
                    out.headers = map;
                }
                out.body.extend_from_slice(&body);
            }
            out.headers_forwarded = true;
            out.body.extend_from_slice(&pending);
            out.end_of_stream = eos;
        }
    }
    if let Some(ctx) = driver(p, id).ctx.take() {
        // A failed VM gets no more callbacks for this stream: no on_log, on_done or on_delete.
        p.vm.drop_context(ctx);
        p.contexts.remove(&ctx);
    }
    if legacy_fail_open {
        driver(p, id).skip = true;
        return;
    }
    let reply = LocalReply {
        status: 503,
        details: "wasm_fail_stream".into(),
        body: Vec::new(),
        headers: Vec::new(),
        grpc_status: None,
    };
    let _ = send_reply(p, id, reply);
}

fn finish_if_done(p: &mut PluginVm, id: StreamId) -> Result<()> {
    let drv = driver(p, id);
    let request_done = drv.req.stage == Stage::Ended || drv.local_reply.is_some();
    if !drv.finished() && request_done && drv.downstream.end_of_stream {
        return complete(p, id);
    }
    Ok(())
}

/// The stream's way through this filter is over. Its callbacks (`on_log`, `on_done`) come when
/// the stream is over for the whole chain, as Envoy runs them: every filter's `on_log`, then
/// every filter's `on_done` (see [`crate::chain::HttpChain`]).
fn complete(p: &mut PluginVm, id: StreamId) -> Result<()> {
    driver(p, id).over = true;
    Ok(())
}

impl PluginVm {
    /// The access-log pass of stream `id` (`on_log`, with every map read-only and the headers as
    /// they left the filter), once; nothing for a stream without a context or in a failed VM.
    ///
    /// # Errors
    /// The host's own failure (a guest's fault applies the failure policy instead).
    ///
    /// With `shared`, the headers `on_log` reads are the whole chain's (Envoy's filters share
    /// them); a filter the stream never reached gets its context now, as Envoy creates it for the
    /// access-log pass.
    pub fn log_http(&mut self, id: StreamId, shared: Option<&FinalHeaders>) -> Result<()> {
        match self.streams.get_mut(&id) {
            Some(d) if !d.logged => d.logged = true,
            _ => return Ok(()),
        }
        if self.vm.failure().is_some() {
            return Ok(());
        }
        let d = driver(self, id);
        if d.ctx.is_none() && !d.skip && shared.is_some() {
            let info = d.info.take().unwrap_or_default();
            let plugin = d.plugin;
            let root = self.root(plugin).root_id;
            match self.vm.create_http_context(root, HttpStreamState { info, ..Default::default() }) {
                Ok(ctx) => {
                    driver(self, id).ctx = Some(ctx);
                    self.contexts.insert(ctx, id);
                }
                Err(Error::Guest(fault)) => {
                    self.on_vm_failure(fault);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if let Some((shared, s)) = shared.and_then(|shared| Some((shared, state(self, id)?))) {
            let maps = [
                (&mut s.request_headers, &shared.request),
                (&mut s.response_headers, &shared.response),
                (&mut s.response_trailers, &shared.response_trailers),
            ];
            for (slot, map) in maps {
                if let Some(map) = map {
                    slot.map = map.clone();
                }
            }
        }
        log_pass(self, id)
    }

    /// The headers stream `id` holds for its filter's `on_log`: request, response, response
    /// trailers (`None` for a map it never had).
    pub fn log_headers(&self, id: StreamId) -> [Option<&HeaderMap>; 3] {
        let Some(s) = self.http_state(id) else { return [None, None, None] };
        [&s.request_headers, &s.response_headers, &s.response_trailers]
            .map(|slot| (!slot.map.is_empty()).then_some(&slot.map))
    }

    /// Ends stream `id` for its filter: `on_done`, then `on_delete`, once (nothing for a stream
    /// without a context or in a failed VM).
    ///
    /// # Errors
    /// The host's own failure (a guest's fault applies the failure policy instead).
    pub fn end_http(&mut self, id: StreamId) -> Result<()> {
        let Some(d) = self.streams.get_mut(&id) else { return Ok(()) };
        if d.done {
            return Ok(());
        }
        (d.done, d.over) = (true, true);
        let Some(ctx) = d.ctx else { return Ok(()) };
        if self.vm.failure().is_some() {
            return Ok(());
        }
        self.step(id, |p| {
            let r = p.vm.on_done(ctx);
            p.after_guest_call(r)?;
            if p.vm.failure().is_some() {
                return Ok(());
            }
            let r = p.vm.on_delete(ctx);
            p.after_guest_call(r)
        })
    }
}

/// `on_log` for stream `id`, with its maps made read-only and the headers as they left each side.
fn log_pass(p: &mut PluginVm, id: StreamId) -> Result<()> {
    if p.vm.failure().is_some() {
        return Ok(());
    }
    let drv = driver(p, id);
    let Some(ctx) = drv.ctx else { return Ok(()) };
    // Headers and trailers only: the bodies are not needed and may be large. What a driver took
    // is still in the context's maps, as it left the filter; the rest is copied back from the
    // messages (a local reply, a harness that inspects them).
    let [req_taken, resp_taken] = drv.taken;
    let req = (drv.upstream.headers_forwarded && !req_taken.headers).then(|| drv.upstream.headers.clone());
    let resp = (drv.downstream.headers_forwarded && !resp_taken.headers).then(|| drv.downstream.headers.clone());
    let resp_trailers = (!resp_taken.trailers).then(|| drv.downstream.trailers.clone());
    if let Some(s) = p.vm.http_state_mut(ctx) {
        // The access log sees the headers as they left each side.
        if let Some(req) = req {
            s.request_headers.map = req;
        }
        if let Some(resp) = resp {
            s.response_headers.map = resp;
        }
        if let Some(t) = resp_trailers {
            s.response_trailers.map = t;
        }
        for m in [&mut s.request_headers, &mut s.request_trailers, &mut s.response_headers, &mut s.response_trailers] {
            m.access = Access::Read;
        }
        s.request_body.access = Access::None;
        s.response_body.access = Access::None;
        s.info.request_duration_nanos = s.info.request_time_nanos.map(|t| p.env.clock.now_nanos() - t);
    }
    p.step(id, |p| {
        let r = p.vm.on_log(ctx);
        p.after_guest_call(r)
    })
}
