//! HTTP streams in the harness: Envoy's filter-manager rules for one wasm filter between a client and
//! an upstream — stop and resume, buffering with the 1 MiB limit, local replies that pass back
//! through the filter, failure policies, and `on_log`/`on_done`/`on_delete` at the end.

use super::Harness;
use crate::abi::status::StreamType;
use crate::error::{Error, Result};
use crate::stream::{
    data_status, headers_status, trailers_status, Access, FilterStatus, HeaderMap, HttpStreamState, MapSlot, StreamInfo,
};
use crate::vm::{FailurePolicy, HostAction, LocalReply};

/// Envoy's default `per_connection_buffer_limit_bytes`.
pub const BUFFER_LIMIT: usize = 1 << 20;

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

/// What went past a filter since a driver last asked (see [`Harness::take_forwarded`]).
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

/// How a stream stands (see [`Harness::stream_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnd {
    /// A local reply was sent (by the filter, or for it: 413, a failed VM).
    pub local_reply: bool,
    /// The stream was reset.
    pub reset: bool,
    /// The stream is complete (`on_log` ran).
    pub done: bool,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

/// The harness's bookkeeping for one HTTP stream.
#[derive(Debug, Default)]
pub(crate) struct StreamDriver {
    ctx: Option<u32>,
    skip: bool,
    req: Side,
    resp: Side,
    upstream: Message,
    downstream: Message,
    local_reply: Option<LocalReply>,
    reset: bool,
    done: bool,
    grpc: bool,
    replying: bool,
    /// Properties and addresses to set when the context is created.
    preset: Option<StreamInfo>,
    /// What `take_forwarded` handed out: [request, response].
    taken: [Taken; 2],
}

impl StreamDriver {
    fn side(&mut self, d: Dir) -> &mut Side {
        match d {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }

    fn out(&mut self, d: Dir) -> &mut Message {
        match d {
            Dir::Request => &mut self.upstream,
            Dir::Response => &mut self.downstream,
        }
    }

    fn finished(&self) -> bool {
        self.reset || self.done
    }
}

/// One HTTP stream through the plugin. Borrowed from the [`Harness`]; get it back later with
/// [`Harness::http`].
pub struct HttpStream<'h> {
    h: &'h mut Harness,
    id: u32,
}

impl Harness {
    /// Forgets a finished stream's bookkeeping (long-running drivers call it after each stream).
    pub fn forget_http_stream(&mut self, id: u32) {
        if let Some(d) = self.streams.remove(&id) {
            if let Some(ctx) = d.ctx {
                if !d.done {
                    self.vm.drop_context(ctx);
                }
            }
        }
    }

    /// Moves out what stream `id` let through on one side (`request`: towards the upstream; else
    /// towards the client) since the last call. A streaming driver calls this after each step so
    /// that bodies do not pile up; [`HttpStream::upstream_request`] and
    /// [`HttpStream::downstream_response`] then show only what was not taken.
    pub fn take_forwarded(&mut self, id: u32, request: bool) -> Forwarded {
        let Some(drv) = self.streams.get_mut(&id) else { return Forwarded::default() };
        let (msg, taken) =
            if request { (&mut drv.upstream, &mut drv.taken[0]) } else { (&mut drv.downstream, &mut drv.taken[1]) };
        let mut f = Forwarded::default();
        if msg.headers_forwarded && !taken.headers {
            taken.headers = true;
            f.headers = Some(msg.headers.clone());
        }
        if taken.headers {
            f.body = std::mem::take(&mut msg.body);
        }
        if msg.end_of_stream && taken.headers && !taken.end {
            taken.end = true;
            f.end_of_stream = true;
            if !msg.trailers.is_empty() && !taken.trailers {
                taken.trailers = true;
                f.trailers = Some(msg.trailers.clone());
            }
        }
        f
    }

    /// Bytes of one side of stream `id` held without a limit (a filter that stopped with watermarks):
    /// a driver with a real socket stops reading while this exceeds its buffer limit, as Envoy's
    /// watermarks do.
    pub fn held_bytes(&self, id: u32, request: bool) -> usize {
        let Some(d) = self.streams.get(&id) else { return 0 };
        let side = if request { &d.req } else { &d.resp };
        let mut n = if side.pending_limited { 0 } else { side.pending.len() };
        if side.stage == (Stage::Buffering { limited: false }) {
            let ctx = d.ctx;
            n += ctx
                .and_then(|c| self.vm.http_state(c))
                .map(|s| if request { s.request_body.bytes.len() } else { s.response_body.bytes.len() })
                .unwrap_or(0);
        }
        n
    }

    /// Whether stream `id` was answered locally, reset, or finished (no more input is taken).
    pub fn stream_state(&self, id: u32) -> Option<StreamEnd> {
        let d = self.streams.get(&id)?;
        Some(StreamEnd { local_reply: d.local_reply.is_some(), reset: d.reset, done: d.done })
    }

    /// What went upstream, what went downstream, and whether the stream was answered locally or
    /// reset, for stream `id`.
    pub fn streams_view(&self, id: u32) -> Option<(&Message, &Message, bool)> {
        let d = self.streams.get(&id)?;
        Some((&d.upstream, &d.downstream, d.local_reply.is_some() || d.reset))
    }

    /// Opens a new HTTP stream (its context is created at the first request headers, as in Envoy).
    pub fn http_stream(&mut self) -> HttpStream<'_> {
        self.next_stream_id += 1;
        let id = self.next_stream_id;
        self.streams.insert(id, Box::default());
        HttpStream { h: self, id }
    }

    /// An open stream by [`HttpStream::id`].
    ///
    /// # Panics
    /// If no stream has that id: a bug in the test, not in the plugin.
    pub fn http(&mut self, id: u32) -> HttpStream<'_> {
        assert!(self.streams.contains_key(&id), "no HTTP stream with id {id}");
        HttpStream { h: self, id }
    }
}

fn driver(h: &mut Harness, id: u32) -> &mut StreamDriver {
    h.streams.get_mut(&id).expect("stream exists")
}

fn stream_of_ctx(h: &Harness, ctx: u32) -> Option<u32> {
    h.streams.iter().find(|(_, d)| d.ctx == Some(ctx)).map(|(id, _)| *id)
}

fn state(h: &mut Harness, id: u32) -> Option<&mut HttpStreamState> {
    let ctx = h.streams.get(&id)?.ctx?;
    h.vm.http_state_mut(ctx)
}

fn slot(s: &mut HttpStreamState, d: Dir, trailers: bool) -> &mut MapSlot {
    match (d, trailers) {
        (Dir::Request, false) => &mut s.request_headers,
        (Dir::Request, true) => &mut s.request_trailers,
        (Dir::Response, false) => &mut s.response_headers,
        (Dir::Response, true) => &mut s.response_trailers,
    }
}

fn body_slot(s: &mut HttpStreamState, d: Dir) -> &mut crate::stream::BufferSlot {
    match d {
        Dir::Request => &mut s.request_body,
        Dir::Response => &mut s.response_body,
    }
}

/// True if the guest asked for a local reply on `ctx` during the call that just returned.
fn local_reply_pending(h: &Harness, ctx: u32) -> bool {
    h.vm.host().actions.iter().any(|a| matches!(a, HostAction::LocalReply { context_id, .. } if *context_id == ctx))
}

/// Creates the context on first use, or decides the filter is skipped / the stream fails.
fn ensure_context(h: &mut Harness, id: u32) -> Result<bool> {
    if driver(h, id).ctx.is_some() || driver(h, id).skip {
        return Ok(true);
    }
    h.maybe_reload()?;
    if h.vm.failure().is_some() {
        match h.plugin().failure_policy {
            FailurePolicy::FailOpen | FailurePolicy::LegacyFailOpen => driver(h, id).skip = true,
            _ => fail_stream(h, id),
        }
        return Ok(!driver(h, id).finished());
    }
    let mut info = driver(h, id).preset.take().unwrap_or_else(|| StreamInfo {
        source: Some(([127, 0, 0, 1], 50000).into()),
        destination: Some(([127, 0, 0, 1], 10000).into()),
        protocol: Some("HTTP/1.1".into()),
        // The listener, virtual host, route and cluster the stream would have, without metadata.
        listener_metadata: Some(Default::default()),
        virtual_host_metadata: Some(Default::default()),
        route_metadata: Some(Default::default()),
        cluster_metadata: Some(Default::default()),
        ..Default::default()
    });
    info.request_time_nanos = Some(h.now_nanos());
    info.connection_id = h.next_connection_id();
    for (k, v) in h.preset_properties() {
        info.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let state = HttpStreamState { info, ..Default::default() };
    let root = h.root_id;
    match h.vm.create_http_context(root, state) {
        Ok(ctx) => {
            driver(h, id).ctx = Some(ctx);
            Ok(true)
        }
        Err(e) if e.is_guest_fault() => {
            h.on_vm_failure(e.to_string());
            Ok(!driver(h, id).finished())
        }
        Err(e) => Err(e),
    }
}

/// Calls the guest; `None` when it faulted (the harness has applied the failure policy).
fn guest(h: &mut Harness, f: impl FnOnce(&mut crate::vm::Vm) -> Result<i32>) -> Result<Option<i32>> {
    match f(&mut h.vm) {
        Ok(raw) => Ok(Some(raw)),
        Err(e) if e.is_guest_fault() => {
            h.on_vm_failure(e.to_string());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn forward_headers(h: &mut Harness, id: u32, d: Dir, eos: bool) {
    let map = state(h, id).map(|s| {
        let slot = slot(s, d, false);
        // Envoy drops its pointer to the headers once they continue.
        slot.access = Access::None;
        slot.map.clone()
    });
    let drv = driver(h, id);
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

fn forward_body(h: &mut Harness, id: u32, d: Dir, eos: bool) {
    let bytes = state(h, id).map(|s| {
        let b = body_slot(s, d);
        b.access = Access::None;
        std::mem::take(&mut b.bytes)
    });
    let drv = driver(h, id);
    if let Some(bytes) = bytes {
        drv.out(d).body.extend_from_slice(&bytes);
    }
    drv.side(d).stage = if eos { Stage::Ended } else { Stage::Open };
    if eos {
        let trailers = state(h, id).map(|s| slot(s, d, true).map.clone()).unwrap_or_default();
        let out = driver(h, id).out(d);
        out.trailers = trailers;
        out.end_of_stream = true;
    }
}

fn headers_step(h: &mut Harness, id: u32, d: Dir, headers: HeaderMap, eos: bool) -> Result<FilterStatus> {
    if driver(h, id).finished() || (d == Dir::Request && driver(h, id).local_reply.is_some()) {
        return Ok(FilterStatus::Ended);
    }
    if d == Dir::Request {
        driver(h, id).grpc = headers.get("content-type").is_some_and(|v| v.starts_with(b"application/grpc"));
    }
    driver(h, id).side(d).eos_seen = eos;
    if !ensure_context(h, id)? {
        return Ok(FilterStatus::Ended);
    }
    if driver(h, id).skip {
        let drv = driver(h, id);
        let out = drv.out(d);
        out.headers = headers;
        out.headers_forwarded = true;
        out.end_of_stream = eos;
        drv.side(d).stage = if eos { Stage::Ended } else { Stage::Open };
        finish_if_done(h, id)?;
        return Ok(FilterStatus::Skipped);
    }
    if d == Dir::Response {
        let code = headers.get_str(":status").and_then(|s| s.parse().ok());
        if let Some(s) = state(h, id) {
            s.info.response_code = code;
            if s.info.response_code_details.is_none() {
                s.info.response_code_details = Some("via_upstream".into());
            }
        }
    }
    let n = headers.len();
    if let Some(s) = state(h, id) {
        *slot(s, d, false) = MapSlot { map: headers, access: Access::ReadWrite };
    }
    let ctx = driver(h, id).ctx.unwrap_or_default();
    let raw = guest(h, |vm| match d {
        Dir::Request => vm.on_request_headers(ctx, n, eos),
        Dir::Response => vm.on_response_headers(ctx, n, eos),
    })?;
    let Some(raw) = raw else {
        return Ok(FilterStatus::Ended);
    };
    let local = local_reply_pending(h, ctx);
    let status = headers_status(raw, h.plugin().allow_on_headers_stop_iteration, local);
    match status {
        FilterStatus::Continue => forward_headers(h, id, d, eos),
        FilterStatus::StopIteration => driver(h, id).side(d).stage = Stage::HeadersStopped { all: false },
        _ => {
            let side = driver(h, id).side(d);
            side.stage = Stage::HeadersStopped { all: true };
            side.pending_limited = status == FilterStatus::StopAllIterationAndBuffer;
        }
    }
    h.pump()?;
    finish_if_done(h, id)?;
    Ok(status)
}

fn body_step(h: &mut Harness, id: u32, d: Dir, chunk: &[u8], eos: bool) -> Result<FilterStatus> {
    let drv = driver(h, id);
    if drv.finished() || drv.side(d).stage == Stage::Ended || (d == Dir::Request && drv.local_reply.is_some()) {
        return Ok(FilterStatus::Ended);
    }
    if drv.side(d).stage == Stage::Idle {
        return Err(Error::Usage(format!("{d:?} body sent before its headers")));
    }
    drv.side(d).eos_seen |= eos;
    if let Some(s) = drv.ctx.and_then(|c| h.vm.http_state_mut(c)) {
        // `request.size` / `response.size`: every body byte that arrived.
        match d {
            Dir::Request => s.info.request_body_bytes += chunk.len() as u64,
            Dir::Response => s.info.response_body_bytes += chunk.len() as u64,
        }
    }
    let drv = driver(h, id);
    if drv.skip {
        drv.out(d).body.extend_from_slice(chunk);
        drv.out(d).end_of_stream = eos;
        if eos {
            drv.side(d).stage = Stage::Ended;
        }
        finish_if_done(h, id)?;
        return Ok(FilterStatus::Skipped);
    }
    if matches!(drv.side(d).stage, Stage::HeadersStopped { all: true } | Stage::TrailersStopped) {
        let side = drv.side(d);
        side.pending.extend_from_slice(chunk);
        side.pending_eos |= eos;
        if side.pending_limited && side.pending.len() > BUFFER_LIMIT {
            over_limit(h, id, d)?;
        }
        return Ok(FilterStatus::Buffered);
    }
    deliver_body(h, id, d, chunk, eos)
}

/// Gives a chunk to the filter and acts on its answer.
fn deliver_body(h: &mut Harness, id: u32, d: Dir, chunk: &[u8], eos: bool) -> Result<FilterStatus> {
    let stage = driver(h, id).side(d).stage;
    let buffering = matches!(stage, Stage::Buffering { .. });
    if stage == (Stage::Buffering { limited: true }) {
        let held = state(h, id).map(|s| body_slot(s, d).bytes.len()).unwrap_or(0);
        if held + chunk.len() > BUFFER_LIMIT {
            // Envoy checks the limit as data joins the buffer, before the filter sees it again.
            over_limit(h, id, d)?;
            return Ok(FilterStatus::Ended);
        }
    }
    let len = match state(h, id) {
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
    let ctx = driver(h, id).ctx.unwrap_or_default();
    let raw = guest(h, |vm| match d {
        Dir::Request => vm.on_request_body(ctx, len, eos),
        Dir::Response => vm.on_response_body(ctx, len, eos),
    })?;
    let Some(raw) = raw else {
        return Ok(FilterStatus::Ended);
    };
    let status = data_status(raw, local_reply_pending(h, ctx));
    match status {
        FilterStatus::Continue => {
            if matches!(driver(h, id).side(d).stage, Stage::HeadersStopped { .. }) {
                // A body Continue releases headers held by a real StopIteration.
                forward_headers(h, id, d, false);
            }
            forward_body(h, id, d, eos);
        }
        FilterStatus::StopIterationAndBuffer | FilterStatus::StopIterationAndWatermark => {
            let too_big = status == FilterStatus::StopIterationAndBuffer && len > BUFFER_LIMIT;
            driver(h, id).side(d).stage = Stage::Buffering { limited: status == FilterStatus::StopIterationAndBuffer };
            if too_big {
                over_limit(h, id, d)?;
            }
        }
        _ => {
            if let Some(s) = state(h, id) {
                body_slot(s, d).bytes.clear();
            }
            if !matches!(driver(h, id).side(d).stage, Stage::HeadersStopped { .. }) {
                driver(h, id).side(d).stage = Stage::Open;
            }
        }
    }
    h.pump()?;
    finish_if_done(h, id)?;
    Ok(status)
}

fn trailers_step(h: &mut Harness, id: u32, d: Dir, trailers: HeaderMap) -> Result<FilterStatus> {
    let drv = driver(h, id);
    if drv.finished() || drv.side(d).stage == Stage::Ended || (d == Dir::Request && drv.local_reply.is_some()) {
        return Ok(FilterStatus::Ended);
    }
    drv.side(d).eos_seen = true;
    if drv.skip {
        drv.out(d).trailers = trailers;
        drv.out(d).end_of_stream = true;
        drv.side(d).stage = Stage::Ended;
        finish_if_done(h, id)?;
        return Ok(FilterStatus::Skipped);
    }
    if matches!(drv.side(d).stage, Stage::HeadersStopped { all: true }) {
        drv.side(d).pending_trailers = Some(trailers);
        return Ok(FilterStatus::Buffered);
    }
    deliver_trailers(h, id, d, trailers)
}

fn deliver_trailers(h: &mut Harness, id: u32, d: Dir, trailers: HeaderMap) -> Result<FilterStatus> {
    let n = trailers.len();
    match state(h, id) {
        Some(s) => *slot(s, d, true) = MapSlot { map: trailers, access: Access::ReadWrite },
        None => return Ok(FilterStatus::Ended),
    }
    let ctx = driver(h, id).ctx.unwrap_or_default();
    let raw = guest(h, |vm| match d {
        Dir::Request => vm.on_request_trailers(ctx, n),
        Dir::Response => vm.on_response_trailers(ctx, n),
    })?;
    let Some(raw) = raw else {
        return Ok(FilterStatus::Ended);
    };
    let status = trailers_status(raw, local_reply_pending(h, ctx));
    if status == FilterStatus::Continue {
        release_after_trailers(h, id, d);
    } else {
        driver(h, id).side(d).stage = Stage::TrailersStopped;
    }
    h.pump()?;
    finish_if_done(h, id)?;
    Ok(status)
}

fn release_after_trailers(h: &mut Harness, id: u32, d: Dir) {
    if matches!(driver(h, id).side(d).stage, Stage::HeadersStopped { .. }) {
        forward_headers(h, id, d, false);
    }
    forward_body(h, id, d, true);
    if let Some(s) = state(h, id) {
        slot(s, d, true).access = Access::None;
    }
}

fn over_limit(h: &mut Harness, id: u32, d: Dir) -> Result<()> {
    let reply = match d {
        Dir::Request => LocalReply {
            status: 413,
            details: "request_payload_too_large".into(),
            body: b"Payload Too Large".to_vec(),
            headers: Vec::new(),
            grpc_status: None,
        },
        Dir::Response => LocalReply {
            status: 500,
            details: "response_payload_too_large".into(),
            body: b"Internal Server Error".to_vec(),
            headers: Vec::new(),
            grpc_status: None,
        },
    };
    send_reply(h, id, reply)
}

/// `proxy_continue_stream`: releases what the filter held.
pub(crate) fn resume(h: &mut Harness, ctx: u32, stream: StreamType) -> Result<()> {
    let Some(id) = stream_of_ctx(h, ctx) else {
        return Ok(());
    };
    let d = match stream {
        StreamType::HttpRequest => Dir::Request,
        StreamType::HttpResponse => Dir::Response,
        _ => return Ok(()),
    };
    if driver(h, id).finished() || (d == Dir::Request && driver(h, id).local_reply.is_some()) {
        return Ok(());
    }
    match driver(h, id).side(d).stage {
        Stage::HeadersStopped { .. } => {
            let side = driver(h, id).side(d);
            let header_eos =
                side.eos_seen && side.pending.is_empty() && !side.pending_eos && side.pending_trailers.is_none();
            let pending = std::mem::take(&mut side.pending);
            let pending_eos = side.pending_eos;
            let trailers = side.pending_trailers.take();
            forward_headers(h, id, d, header_eos);
            if !pending.is_empty() || pending_eos {
                // Envoy hands everything buffered meanwhile to the filter in one body callback.
                deliver_body(h, id, d, &pending, pending_eos)?;
            }
            if let Some(t) = trailers {
                if !driver(h, id).finished() {
                    deliver_trailers(h, id, d, t)?;
                }
            }
        }
        Stage::Buffering { .. } => {
            let eos = driver(h, id).side(d).eos_seen && driver(h, id).side(d).pending_trailers.is_none();
            forward_body(h, id, d, eos);
        }
        Stage::TrailersStopped => release_after_trailers(h, id, d),
        _ => {}
    }
    finish_if_done(h, id)
}

/// `proxy_close_stream`: the stream is reset; the client sees no response.
pub(crate) fn reset(h: &mut Harness, ctx: u32) {
    if let Some(id) = stream_of_ctx(h, ctx) {
        driver(h, id).reset = true;
        if let Some(s) = state(h, id) {
            s.info.response_code_details = Some("wasm_close_stream".into());
        }
        let _ = complete(h, id);
    }
}

/// `proxy_send_local_response` (or a 413 / failure reply): answers the client. A reply made before
/// the response started goes through this filter's response callbacks, as in Envoy.
pub(crate) fn local_reply(h: &mut Harness, ctx: u32, reply: LocalReply) -> Result<()> {
    let Some(id) = stream_of_ctx(h, ctx) else { return Ok(()) };
    send_reply(h, id, reply)
}

/// Answers the client of stream `id` (not a context id) with `reply`.
fn send_reply(h: &mut Harness, id: u32, reply: LocalReply) -> Result<()> {
    if driver(h, id).finished() {
        return Ok(());
    }
    if driver(h, id).downstream.headers_forwarded {
        // Too late for a reply: the client already has headers. Envoy resets.
        driver(h, id).reset = true;
        return complete(h, id);
    }
    if let Some(s) = state(h, id) {
        s.info.response_code_details = Some(reply.details.clone());
        s.info.response_code = Some(reply.status);
    }
    let grpc = driver(h, id).grpc;
    let (headers, body) = crate::stream::local_reply_message(&reply, grpc);
    let drv = driver(h, id);
    if drv.local_reply.is_none() {
        drv.local_reply = Some(reply);
    }
    drv.req.stage = Stage::Ended;
    let response_started = drv.resp.stage != Stage::Idle;
    if response_started || drv.replying || drv.skip || drv.ctx.is_none() {
        // The filter's own response callbacks are not re-run for a reply made during them.
        let out = &mut drv.downstream;
        out.headers = headers;
        out.headers_forwarded = true;
        out.body = body;
        out.trailers = HeaderMap::new();
        out.end_of_stream = true;
        drv.resp.stage = Stage::Ended;
        return complete(h, id);
    }
    drv.replying = true;
    let eos = body.is_empty();
    headers_step(h, id, Dir::Response, headers, eos)?;
    if !eos {
        body_step(h, id, Dir::Response, &body, true)?;
    }
    if h.streams.contains_key(&id) {
        driver(h, id).replying = false;
    }
    finish_if_done(h, id)
}

/// The VM failed while this stream was open: apply the plugin's failure policy.
pub(crate) fn fail_stream(h: &mut Harness, id: u32) {
    let Some(drv) = h.streams.get(&id) else { return };
    if drv.finished() {
        return;
    }
    let legacy_fail_open = h.plugin.failure_policy == FailurePolicy::LegacyFailOpen;
    if legacy_fail_open {
        // The stream goes on without the filter, with whatever the filter held released as it was.
        for d in [Dir::Request, Dir::Response] {
            let held = state(h, id).map(|s| {
                let headers = slot(s, d, false);
                let map = headers.access.readable().then(|| headers.map.clone());
                (map, std::mem::take(&mut body_slot(s, d).bytes))
            });
            let drv = driver(h, id);
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
    if let Some(ctx) = driver(h, id).ctx.take() {
        // A failed VM gets no more callbacks for this stream: no on_log, on_done or on_delete.
        h.vm.drop_context(ctx);
    }
    if legacy_fail_open {
        driver(h, id).skip = true;
        return;
    }
    let reply = LocalReply {
        status: 503,
        details: "wasm_fail_stream".into(),
        body: Vec::new(),
        headers: Vec::new(),
        grpc_status: None,
    };
    let _ = send_reply(h, id, reply);
}

fn finish_if_done(h: &mut Harness, id: u32) -> Result<()> {
    let drv = driver(h, id);
    let request_done = drv.req.stage == Stage::Ended || drv.local_reply.is_some();
    if !drv.finished() && request_done && drv.downstream.end_of_stream {
        return complete(h, id);
    }
    Ok(())
}

/// The stream is over: the access-log pass (`on_log` with read-only maps), then `on_done` and `on_delete`.
fn complete(h: &mut Harness, id: u32) -> Result<()> {
    let drv = driver(h, id);
    if drv.done {
        return Ok(());
    }
    drv.done = true;
    let Some(ctx) = drv.ctx else { return Ok(()) };
    // Headers and trailers only: the bodies are not needed and may be large.
    let req = drv.upstream.headers_forwarded.then(|| drv.upstream.headers.clone());
    let resp = drv.downstream.headers_forwarded.then(|| drv.downstream.headers.clone());
    let resp_trailers = drv.downstream.trailers.clone();
    if let Some(s) = h.vm.http_state_mut(ctx) {
        // The access log sees the headers as they left each side.
        if let Some(req) = req {
            s.request_headers.map = req;
        }
        if let Some(resp) = resp {
            s.response_headers.map = resp;
        }
        s.response_trailers.map = resp_trailers;
        for m in [&mut s.request_headers, &mut s.request_trailers, &mut s.response_headers, &mut s.response_trailers] {
            m.access = Access::Read;
        }
        s.request_body.access = Access::None;
        s.response_body.access = Access::None;
        s.info.request_duration_nanos = s.info.request_time_nanos.map(|t| h.env.clock.now_nanos() - t);
    }
    let r = h.vm.on_log(ctx);
    h.after_guest_call(r)?;
    if h.vm.failure().is_some() {
        return Ok(());
    }
    let r = h.vm.on_done(ctx);
    h.after_guest_call(r)?;
    if h.vm.failure().is_some() {
        return Ok(());
    }
    let r = h.vm.on_delete(ctx);
    h.after_guest_call(r)
}

impl HttpStream<'_> {
    /// The stream's id in the harness (not its context id).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The harness, to answer callouts or advance time while the stream is open.
    pub fn harness(&mut self) -> &mut Harness {
        self.h
    }

    /// Sets what the stream's properties report (addresses, route, protocol, extra paths) before
    /// the request headers create its context. Without it the stream looks like a local HTTP/1.1
    /// client.
    pub fn set_info(&mut self, info: StreamInfo) {
        self.h.streams.get_mut(&self.id).expect("stream exists").preset = Some(info);
    }

    /// Records the upstream host that is answering (`upstream.address`, `upstream.port`), as
    /// Envoy's router does once it has a connection.
    pub fn set_upstream_address(&mut self, addr: std::net::SocketAddr) {
        let ctx = self.h.streams.get(&self.id).and_then(|d| d.ctx);
        if let Some(s) = ctx.and_then(|c| self.h.vm.http_state_mut(c)) {
            s.info.upstream = Some(addr);
        }
    }

    /// The plugin's context id for this stream, once created.
    pub fn context_id(&self) -> Option<u32> {
        self.h.streams[&self.id].ctx
    }

    /// Request headers from the client (pseudo-headers included).
    pub fn request_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        headers_step(self.h, self.id, Dir::Request, HeaderMap::from_pairs(headers), end_of_stream)
    }

    /// A request body chunk.
    pub fn request_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        body_step(self.h, self.id, Dir::Request, chunk.as_ref(), end_of_stream)
    }

    /// Request trailers (end the request).
    pub fn request_trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        trailers_step(self.h, self.id, Dir::Request, HeaderMap::from_pairs(trailers))
    }

    /// Response headers from the upstream (with `:status`).
    pub fn response_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: impl IntoIterator<Item = (K, V)>,
        end_of_stream: bool,
    ) -> Result<FilterStatus> {
        if self.h.streams[&self.id].local_reply.is_some() {
            return Ok(FilterStatus::Ended);
        }
        headers_step(self.h, self.id, Dir::Response, HeaderMap::from_pairs(headers), end_of_stream)
    }

    /// A response body chunk.
    pub fn response_body(&mut self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Result<FilterStatus> {
        if self.h.streams[&self.id].local_reply.is_some() {
            return Ok(FilterStatus::Ended);
        }
        body_step(self.h, self.id, Dir::Response, chunk.as_ref(), end_of_stream)
    }

    /// Response trailers.
    pub fn response_trailers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<FilterStatus> {
        if self.h.streams[&self.id].local_reply.is_some() {
            return Ok(FilterStatus::Ended);
        }
        trailers_step(self.h, self.id, Dir::Response, HeaderMap::from_pairs(trailers))
    }

    /// What went upstream so far.
    pub fn upstream_request(&self) -> &Message {
        &self.h.streams[&self.id].upstream
    }

    /// What the client received so far.
    pub fn downstream_response(&self) -> &Message {
        &self.h.streams[&self.id].downstream
    }

    /// The local reply the filter sent (or the host sent for it: 413, `wasm_fail_stream`).
    pub fn local_reply(&self) -> Option<&LocalReply> {
        self.h.streams[&self.id].local_reply.as_ref()
    }

    /// True if the stream was reset (`proxy_close_stream`, or a reply too late to send).
    pub fn is_reset(&self) -> bool {
        self.h.streams[&self.id].reset
    }

    /// True once `on_log`/`on_done`/`on_delete` ran (or the stream ended without a context).
    pub fn is_complete(&self) -> bool {
        self.h.streams[&self.id].done
    }

    /// The current request headers as the filter sees them (before they are forwarded).
    pub fn current_request_headers(&self) -> Option<&HeaderMap> {
        let ctx = self.context_id()?;
        self.h.vm.http_state(ctx).map(|s| &s.request_headers.map)
    }

    /// The current response headers as the filter sees them.
    pub fn current_response_headers(&self) -> Option<&HeaderMap> {
        let ctx = self.context_id()?;
        self.h.vm.http_state(ctx).map(|s| &s.response_headers.map)
    }

    /// The request body the filter holds (buffered) right now.
    pub fn buffered_request_body(&self) -> Option<&[u8]> {
        let ctx = self.context_id()?;
        self.h.vm.http_state(ctx).map(|s| s.request_body.bytes.as_slice())
    }

    /// A value the filter stored with `proxy_set_property`, by path.
    pub fn filter_state(&self, path: &[&str]) -> Option<Vec<u8>> {
        let ctx = self.context_id()?;
        let key = path.join("\0").into_bytes();
        self.h.vm.http_state(ctx)?.filter_state.get(&key).cloned()
    }
}
