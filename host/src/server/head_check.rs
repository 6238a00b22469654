//! Envoy's HTTP/1 codec refusals, decided on a connection's raw request bytes before hyper parses
//! them.
//!
//! hyper's parser forgives or discards what Envoy's refuses: it serves `Content-Length` together
//! with `Transfer-Encoding` (dropping the length), two equal `Content-Length`s, a
//! `Transfer-Encoding` whose last coding is `chunked`, and drops a `#fragment` from the target; the
//! request it hands on no longer shows any of it. And where hyper does refuse, its answer has
//! neither Envoy's status for every case (400 where Envoy says 426 or 501) nor Envoy's body. So each
//! request head is read here first, with the parser hyper uses (httparse), and checked in the order
//! Envoy 1.40 checks it (each asked of a real Envoy; `integration/tests/hostile_http1.rs` pins
//! them). A refused head never reaches hyper: in its place hyper gets a stand-in request, marked
//! with [`STAND_IN_HEADER`], which the service answers with the [`Refusal`] (see [`Verdict`]), and
//! nothing after it, as a refusal ends the connection.
//!
//! To find the next head, bodies are framed as hyper frames them (its `Content-Length` and chunked
//! decoders, step for step). Only framing both accept can lead to a later head: wherever hyper
//! would fail a body (a bad chunk) the connection ends there, and wherever the two could disagree
//! (an upgrade, a `CONNECT`) the checks stop for the rest of the connection rather than guess.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::stream::HeaderMap;

/// Why Envoy refuses a request head, and how it answers: each a local reply that closes the
/// connection, with the response code details Envoy logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// More header bytes than `max_request_headers_kb` (the request target counts).
    HeadersTooLarge,
    /// More than 100 headers.
    TooManyHeaders,
    /// A head the parser cannot read: a bad token, a bad `Content-Length`, two of them.
    CodecError,
    /// A header value with a byte HTTP does not allow.
    InvalidCharacters,
    /// A request target Envoy cannot take: `*` but for OPTIONS, a port that is not one.
    InvalidUrl,
    /// An absolute target whose scheme is neither http nor https.
    InvalidScheme,
    /// `Content-Length` and `Transfer-Encoding` together (a request-smuggling shape).
    ContentLengthAndChunked,
    /// A `Transfer-Encoding` other than one `chunked`.
    InvalidTransferEncoding,
    /// HTTP/1.0 or older (Envoy's default `accept_http_10: false`).
    LowVersion,
    /// A `Host` with bytes an authority cannot hold.
    InvalidAuthority,
    /// HTTP/1.1 without `Host`.
    MissingHost,
    /// A `#fragment` in the request target.
    Fragment,
    /// A `QUERY` request without `content-type` (RFC 9110's draft QUERY method wants one).
    QueryWithoutContentType,
}

impl Refusal {
    /// The answer's status.
    pub(crate) fn status(self) -> u16 {
        match self {
            Refusal::HeadersTooLarge | Refusal::TooManyHeaders => 431,
            Refusal::InvalidTransferEncoding => 501,
            Refusal::LowVersion => 426,
            _ => 400,
        }
    }

    /// Whether Envoy's codec refuses it (response flag `DPE`, `downstream_cx_protocol_error`),
    /// rather than the connection manager after the codec took the request: those two answer with
    /// an empty body.
    pub(crate) fn is_protocol_error(self) -> bool {
        !matches!(self, Refusal::MissingHost | Refusal::Fragment | Refusal::QueryWithoutContentType)
    }

    /// The response code details Envoy gives it (`%RESPONSE_CODE_DETAILS%`).
    pub(crate) fn details(self) -> &'static str {
        match self {
            Refusal::HeadersTooLarge => "http1.headers_too_large",
            Refusal::TooManyHeaders => "http1.too_many_headers",
            Refusal::CodecError => "http1.codec_error",
            Refusal::InvalidCharacters => "http1.invalid_characters",
            Refusal::InvalidUrl => "http1.invalid_url",
            Refusal::InvalidScheme => "http1.invalid_scheme",
            Refusal::ContentLengthAndChunked => "http1.content_length_and_chunked_not_allowed",
            Refusal::InvalidTransferEncoding => "http1.invalid_transfer_encoding",
            Refusal::LowVersion => "low_version",
            Refusal::InvalidAuthority => "http.invalid_authority",
            Refusal::MissingHost => "missing_host_header",
            Refusal::Fragment => "path_normalization_failed",
            Refusal::QueryWithoutContentType => "query_missing_content_type",
        }
    }
}

/// Header slots kept on the stack: Envoy's default `max_headers_count` (and hyper's).
const STACK_HEADERS: usize = 100;
/// hyper's limits on chunk extensions and trailers: past them it fails the body.
const CHUNK_EXTENSIONS_LIMIT: u64 = 16 * 1024;
const TRAILERS_LIMIT: usize = 16 * 1024;

/// The header that marks the request a refused head is replaced with. The service answers such a
/// request with the refusal when its connection has one; a client that sends the header itself can
/// only have its own connection's refusal answered early.
pub(crate) const STAND_IN_HEADER: &str = "x-sluice-refused-head";
/// The request a refused head is replaced with: it reaches the service, which answers the refusal.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nhost: refused\r\nx-sluice-refused-head: 1\r\n\r\n";
/// The same for an HTTP/1.0 request the connection manager refuses (with `accept_http_10`): it
/// answers in the request's version.
const STAND_IN_10: &[u8] = b"GET / HTTP/1.0\r\nhost: refused\r\nx-sluice-refused-head: 1\r\n\r\n";

/// What a listener's codec takes: its limits and `http_protocol_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// `max_request_headers_kb` in bytes: names, values and the target.
    pub limit: usize,
    /// How many bytes of a head may come before its end: past them, 431.
    pub most: usize,
    /// `max_headers_count`.
    pub max_headers: usize,
    /// `accept_http_10`.
    pub accept_http_10: bool,
    /// Whether `default_host_for_http_10` is set (an HTTP/1.0 request may then lack `Host`).
    pub default_host_for_http_10: bool,
    /// `allow_chunked_length`.
    pub allow_chunked_length: bool,
}

impl Rules {
    /// Envoy's defaults for `max_request_headers_kb` = `limit` bytes.
    #[cfg(test)]
    fn defaults(limit: usize, most: usize) -> Self {
        Self {
            limit,
            most,
            max_headers: 100,
            accept_http_10: false,
            default_host_for_http_10: false,
            allow_chunked_length: false,
        }
    }
}

/// What became of the bytes given to [`Heads::scan`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The first `n` bytes may go to hyper; the rest begin a head not yet complete, to be given
    /// again with the bytes that follow.
    Pass(usize),
    /// The first `pass` bytes may go to hyper (earlier requests); the head after them is refused.
    Refuse { pass: usize, refusal: Refusal },
}

/// Where the stream is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// At a request head (or inside one not yet complete).
    Head,
    /// Inside a `Content-Length` body: this many bytes to go.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunked),
    /// After a request that may take the connection over (an upgrade, `CONNECT`), or a body hyper
    /// fails: no more checks on this connection.
    Off,
}

/// hyper's chunked decoder's states, with what each carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64, u64),
    SizeLf(u64),
    Body(u64),
    BodyCr,
    BodyLf,
    Trailer(usize),
    TrailerLf(usize),
    EndCr(usize),
    EndLf,
}

/// One step of a chunked body: the next state, `None` at the body's end, or `Err` where hyper
/// fails the body.
fn chunk_step(state: Chunked, b: u8) -> Result<Option<Chunked>, ()> {
    use Chunked::*;
    let hex = |b: u8| (b as char).to_digit(16).map(u64::from);
    let grow = |size: u64, d: u64| size.checked_mul(16).and_then(|s| s.checked_add(d)).ok_or(());
    Ok(Some(match state {
        Start => Size(grow(0, hex(b).ok_or(())?)?),
        Size(size) => match b {
            b'\t' | b' ' => SizeLws(size),
            b';' => Extension(size, 0),
            b'\r' => SizeLf(size),
            _ => Size(grow(size, hex(b).ok_or(())?)?),
        },
        SizeLws(size) => match b {
            b'\t' | b' ' => SizeLws(size),
            b';' => Extension(size, 0),
            b'\r' => SizeLf(size),
            _ => return Err(()),
        },
        Extension(size, n) => match b {
            b'\r' => SizeLf(size),
            b'\n' => return Err(()),
            _ if n + 1 >= CHUNK_EXTENSIONS_LIMIT => return Err(()),
            _ => Extension(size, n + 1),
        },
        SizeLf(0) if b == b'\n' => EndCr(0),
        SizeLf(size) if b == b'\n' => Body(size),
        Body(_) => unreachable!("a body's bytes are skipped in bulk"),
        BodyCr if b == b'\r' => BodyLf,
        BodyLf if b == b'\n' => Start,
        EndCr(_) if b == b'\r' => EndLf,
        EndCr(n) => Trailer(n + 1),
        Trailer(n) if n >= TRAILERS_LIMIT => return Err(()),
        Trailer(n) if b == b'\r' => TrailerLf(n + 1),
        Trailer(n) => Trailer(n + 1),
        TrailerLf(n) if b == b'\n' => EndCr(n + 1),
        EndLf if b == b'\n' => return Ok(None),
        _ => return Err(()),
    }))
}

/// The request heads of one HTTP/1 connection, checked as they arrive (the sans-IO core of
/// [`Checked`]).
#[derive(Debug)]
pub(crate) struct Heads {
    framing: Framing,
    rules: Rules,
    /// Heads passed so far (the tests read it: hyper serves as many).
    passed: u64,
    /// How much of the pending head is known to have no end yet.
    looked: usize,
    /// The refused request as the connection manager read it, for a refusal of its own, and
    /// whether it was HTTP/1.0.
    refused_request: Option<(HeaderMap, bool)>,
}

impl Heads {
    /// Checks by a listener's `rules`.
    pub(crate) fn new(rules: Rules) -> Self {
        Self { framing: Framing::Head, rules, passed: 0, looked: 0, refused_request: None }
    }

    /// No checks: an HTTP/2 connection, whose requests hyper's h2 reads whole.
    pub(crate) fn unchecked() -> Self {
        let rules = Rules {
            limit: 0,
            most: 0,
            max_headers: 0,
            accept_http_10: false,
            default_host_for_http_10: false,
            allow_chunked_length: false,
        };
        Self { framing: Framing::Off, rules, passed: 0, looked: 0, refused_request: None }
    }

    /// How many heads have been passed on (the number of the next request).
    #[cfg(test)]
    pub(crate) fn passed(&self) -> u64 {
        self.passed
    }

    /// Looks at the bytes after everything passed so far.
    pub(crate) fn scan(&mut self, data: &[u8]) -> Step {
        let mut at = 0;
        loop {
            match self.framing {
                Framing::Off => return Step::Pass(data.len()),
                Framing::Length(left) => {
                    let take = left.min((data.len() - at) as u64);
                    at += take as usize;
                    self.framing = if take == left { Framing::Head } else { Framing::Length(left - take) };
                    if at == data.len() {
                        return Step::Pass(at);
                    }
                }
                Framing::Chunked(mut state) => {
                    let mut done = false;
                    while at < data.len() && !done {
                        if let Chunked::Body(left) = state {
                            let take = left.min((data.len() - at) as u64);
                            at += take as usize;
                            state = if take == left { Chunked::BodyCr } else { Chunked::Body(left - take) };
                            continue;
                        }
                        match chunk_step(state, data[at]) {
                            Ok(Some(next)) => state = next,
                            Ok(None) => done = true,
                            Err(()) => {
                                // hyper fails the body here and the connection ends.
                                self.framing = Framing::Off;
                                return Step::Pass(data.len());
                            }
                        }
                        at += 1;
                    }
                    if !done {
                        self.framing = Framing::Chunked(state);
                        return Step::Pass(at);
                    }
                    self.framing = Framing::Head;
                }
                Framing::Head => {
                    let rest = &data[at..];
                    if rest.is_empty() {
                        return Step::Pass(at);
                    }
                    match self.head(rest) {
                        None if rest.len() > self.rules.most => {
                            return Step::Refuse { pass: at, refusal: Refusal::HeadersTooLarge };
                        }
                        None => return Step::Pass(at),
                        Some(Err(refusal)) => return Step::Refuse { pass: at, refusal },
                        Some(Ok((len, next))) => {
                            at += len;
                            self.passed += 1;
                            self.looked = 0;
                            self.framing = next;
                        }
                    }
                }
            }
        }
    }

    /// The head at the start of `data`: `None` while it has not ended, else its length and the
    /// framing of what follows, or Envoy's refusal.
    fn head(&mut self, data: &[u8]) -> Option<Result<(usize, Framing), Refusal>> {
        // A head ends with a line feed: without a new one there is nothing new to parse (a client
        // that sends a byte at a time costs one scan for the byte, not one parse of the head).
        let fresh = &data[self.looked.min(data.len())..];
        if !fresh.contains(&b'\n') {
            self.looked = data.len();
            return None;
        }
        let (mut stack, mut heap);
        let slots: &mut [httparse::Header<'_>] = if self.rules.max_headers <= STACK_HEADERS {
            stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
            &mut stack[..self.rules.max_headers]
        } else {
            heap = vec![httparse::EMPTY_HEADER; self.rules.max_headers];
            &mut heap
        };
        let mut req = httparse::Request::new(slots);
        let verdict = match req.parse(data) {
            Ok(httparse::Status::Complete(len)) => {
                let checked = check(&req, &self.rules);
                if let Err(refusal) = checked {
                    // The connection manager's refusals are of a request it read: its access log
                    // shows the request, and it answers in the request's version.
                    self.refused_request =
                        (!refusal.is_protocol_error()).then(|| (request_headers(&req), req.version == Some(0)));
                }
                Some(checked.map(|next| (len, next)))
            }
            Ok(httparse::Status::Partial) => None,
            // Envoy reads the whole head before it judges it: a bad byte early in a head that
            // grows past the limit is still a 431.
            Err(e) => ended(data).then(|| Err(parse_refusal(e, data))),
        };
        if verdict.is_none() {
            self.looked = data.len();
        }
        verdict
    }
}

/// A parsed head as the connection manager's request headers.
fn request_headers(req: &httparse::Request<'_, '_>) -> HeaderMap {
    let mut h =
        HeaderMap::from_pairs([(":method", req.method.unwrap_or_default()), (":path", req.path.unwrap_or_default())]);
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("host") {
            h.add(":authority", header.value);
        } else {
            h.add(header.name, header.value);
        }
    }
    h
}

/// Whether `data` holds the end of a head (an empty line after the first line), whatever the
/// bytes before it.
fn ended(data: &[u8]) -> bool {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(data.len());
    let data = &data[start..];
    data.windows(2).any(|w| w == b"\n\n") || data.windows(3).any(|w| w == b"\n\r\n")
}

/// How Envoy refuses a head httparse cannot read.
fn parse_refusal(e: httparse::Error, data: &[u8]) -> Refusal {
    match e {
        httparse::Error::TooManyHeaders => Refusal::TooManyHeaders,
        httparse::Error::HeaderValue => Refusal::InvalidCharacters,
        _ if old_client(data) => Refusal::LowVersion,
        _ => Refusal::CodecError,
    }
}

/// Whether the request line is an old or unknown version's: `GET / HTTP/2.0`, or HTTP/0.9's
/// `GET /` with no version at all. Envoy answers both with 426.
fn old_client(data: &[u8]) -> bool {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(data.len());
    let line = data[start..].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let known = |m: &[u8]| METHODS.iter().any(|k| k.as_bytes() == m);
    match words[..] {
        [method, target] => known(method) && !target.is_empty() && !target.starts_with(b"HTTP/"),
        [method, target, version] => {
            known(method)
                && !target.is_empty()
                && version.starts_with(b"HTTP/")
                && !matches!(version, b"HTTP/1.1" | b"HTTP/1.0")
        }
        _ => false,
    }
}

/// The methods Envoy 1.40's HTTP/1 codec takes (asked of it one by one: `M-SEARCH` and the
/// WebDAV versioning and RTSP methods are refused, `QUERY` is taken).
const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "COPY",
    "LOCK",
    "MKCOL",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "SEARCH",
    "UNLOCK",
    "BIND",
    "REBIND",
    "UNBIND",
    "ACL",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PURGE",
    "MKCALENDAR",
    "LINK",
    "UNLINK",
    "SOURCE",
    "QUERY",
];

/// Envoy's refusal of a request target, if any: origin form (`/p`), absolute form with an http(s)
/// scheme and a port that is a port, `*` for OPTIONS, an authority for CONNECT.
fn target_refusal(method: &str, target: &str) -> Option<Refusal> {
    if target.starts_with('/') {
        return None;
    }
    if method == "CONNECT" {
        return None;
    }
    if target == "*" {
        return (method != "OPTIONS").then_some(Refusal::InvalidUrl);
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return Some(Refusal::CodecError);
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Some(Refusal::InvalidScheme);
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // A port is what follows the last colon outside an IPv6 literal.
    let port = match host_port.rfind(']') {
        Some(end) => host_port[end + 1..].strip_prefix(':'),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    match port {
        Some(p)
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || p.parse::<u32>().map_or(true, |p| p > 65535) =>
        {
            Some(Refusal::InvalidUrl)
        }
        _ => None,
    }
}

/// Envoy's checks of a complete head, in its order; the framing of what follows when it passes.
fn check(req: &httparse::Request<'_, '_>, rules: &Rules) -> Result<Framing, Refusal> {
    let target = req.path.unwrap_or_default();
    let bytes: usize = req.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>() + target.len();
    if bytes > rules.limit {
        return Err(Refusal::HeadersTooLarge);
    }
    let method = req.method.unwrap_or_default();
    if !METHODS.contains(&method) {
        return Err(Refusal::CodecError);
    }
    if let Some(refusal) = target_refusal(method, target) {
        return Err(refusal);
    }
    let (mut length, mut lengths, mut codings, mut chunked) = (None, 0, 0, false);
    let (mut host, mut upgrade, mut content_type) = (None, false, false);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let digits = !h.value.is_empty() && h.value.iter().all(u8::is_ascii_digit);
            let value = std::str::from_utf8(h.value).ok().filter(|_| digits).and_then(|v| v.parse::<u64>().ok());
            // hyper's limit (its two largest values are reserved).
            match value.filter(|&v| v < u64::MAX - 1) {
                Some(v) if lengths == 1 => length = Some(v),
                _ => return Err(Refusal::CodecError),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            codings += 1;
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("host") {
            host = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = true;
        }
    }
    let one_chunked = codings == 1 && chunked;
    if lengths > 0 && codings > 0 {
        // With `allow_chunked_length` the length gives way to one `chunked` (hyper drops it too);
        // with any other coding Envoy's codec still refuses.
        if !rules.allow_chunked_length {
            return Err(Refusal::ContentLengthAndChunked);
        } else if !one_chunked {
            return Err(Refusal::CodecError);
        }
    }
    if codings > 0 && !one_chunked {
        return Err(Refusal::InvalidTransferEncoding);
    }
    let http10 = req.version == Some(0);
    if http10 && !rules.accept_http_10 {
        return Err(Refusal::LowVersion);
    }
    if http10 && codings > 0 {
        // Envoy serves it; hyper's parser refuses a coding in HTTP/1.0 (RFC 9112 §6.1): Envoy's
        // 400 rather than hyper's.
        return Err(Refusal::CodecError);
    }
    let absolute = target.contains("://");
    match host {
        Some(h) if !h.iter().all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@[]%".contains(&b)) => {
            return Err(Refusal::InvalidAuthority);
        }
        None if !(absolute || http10 && rules.default_host_for_http_10) => return Err(Refusal::MissingHost),
        _ => {}
    }
    if target.contains('#') {
        return Err(Refusal::Fragment);
    }
    if method == "QUERY" && !content_type {
        return Err(Refusal::QueryWithoutContentType);
    }
    Ok(if method == "CONNECT" || upgrade {
        // hyper may hand the connection over after this request: its bytes are no longer HTTP/1.
        Framing::Off
    } else if chunked {
        Framing::Chunked(Chunked::Start)
    } else {
        match length {
            Some(n) if n > 0 => Framing::Length(n),
            _ => Framing::Head,
        }
    })
}

/// A refused request head.
#[derive(Debug)]
pub(crate) struct Refused {
    pub refusal: Refusal,
    /// The request, when the connection manager refused it (not the codec).
    pub request: Option<HeaderMap>,
}

/// Why the connection's request head was refused: set by [`Checked`] before hyper reads the
/// stand-in, taken by the service when the stand-in comes.
pub(crate) type Verdict = Rc<RefCell<Option<Refused>>>;

/// A connection's read side, with its request heads checked before hyper reads them.
pub(crate) struct Checked<R> {
    inner: R,
    heads: Heads,
    /// The start of a head that has not ended: read, not yet given to hyper.
    held: Vec<u8>,
    /// Bytes for hyper before anything more is read: held bytes let through, or the stand-in.
    ready: Vec<u8>,
    ready_at: usize,
    /// The client ended its side (after `ready`, hyper reads the end).
    eof: bool,
    /// A head was refused: after the stand-in, hyper reads nothing more (an end would make it
    /// drop the stand-in's answer).
    refused: bool,
    verdict: Verdict,
}

impl<R> Checked<R> {
    /// Wraps `inner`; a refusal is reported through `verdict`.
    pub(crate) fn new(inner: R, heads: Heads, verdict: Verdict) -> Self {
        Self { inner, heads, held: Vec::new(), ready: Vec::new(), ready_at: 0, eof: false, refused: false, verdict }
    }

    /// The head after what was let through is refused: the stand-in goes next, then nothing.
    fn refuse(&mut self, refusal: Refusal) {
        let (request, http10) = match self.heads.refused_request.take() {
            Some((request, http10)) => (Some(request), http10),
            None => (None, false),
        };
        *self.verdict.borrow_mut() = Some(Refused { refusal, request });
        self.ready.extend_from_slice(if http10 { STAND_IN_10 } else { STAND_IN });
        self.refused = true;
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.refused {
                // The service answers the stand-in and hyper closes the connection.
                return Poll::Pending;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.held.is_empty() {
                // Most reads end between requests or inside a body: they go to hyper as read.
                let before = buf.filled().len();
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                let filled = buf.filled().len();
                if filled == before {
                    return Poll::Ready(Ok(()));
                }
                let pass = match this.heads.scan(&buf.filled()[before..]) {
                    Step::Pass(n) => {
                        this.held.extend_from_slice(&buf.filled()[before + n..]);
                        n
                    }
                    Step::Refuse { pass, refusal } => {
                        this.refuse(refusal);
                        pass
                    }
                };
                buf.set_filled(before + pass);
                if pass > 0 {
                    return Poll::Ready(Ok(()));
                }
            } else {
                // A head split across reads: it waits here until it ends.
                let mut more = [0u8; 8192];
                let mut more = ReadBuf::new(&mut more);
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut more))?;
                if more.filled().is_empty() {
                    // The client left mid-head: hyper gets what there was, and the end.
                    this.ready = std::mem::take(&mut this.held);
                    this.eof = true;
                    continue;
                }
                this.held.extend_from_slice(more.filled());
                let step = this.heads.scan(&this.held);
                let pass = match step {
                    Step::Pass(n) => n,
                    Step::Refuse { pass, .. } => pass,
                };
                this.ready.extend(this.held.drain(..pass));
                if let Step::Refuse { refusal, .. } = step {
                    this.held.clear();
                    this.refuse(refusal);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> Heads {
        Heads::new(Rules::defaults(60 * 1024, 63 * 1024))
    }

    /// Scans `stream` in pieces of `piece` bytes, holding back what the checks hold, as
    /// [`Checked`] does: the heads passed, and the refusal if any.
    fn run(stream: &[u8], piece: usize) -> (u64, Option<Refusal>) {
        let mut h = heads();
        let mut held = Vec::new();
        for part in stream.chunks(piece) {
            held.extend_from_slice(part);
            match h.scan(&held) {
                Step::Pass(n) => {
                    held.drain(..n);
                }
                Step::Refuse { refusal, .. } => return (h.passed(), Some(refusal)),
            }
        }
        (h.passed(), None)
    }

    fn verdict(stream: &[u8]) -> Option<Refusal> {
        let whole = run(stream, stream.len());
        for piece in [1, 2, 7] {
            assert_eq!(run(stream, piece), whole, "in pieces of {piece}: {:?}", String::from_utf8_lossy(stream));
        }
        whole.1
    }

    #[test]
    fn well_formed_requests_pass_whatever_the_pieces() {
        let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
            POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
            \r\nGET /d HTTP/1.1\nHost: x\n\n";
        assert_eq!(verdict(stream), None);
        assert_eq!(run(stream, 3).0, 4);
        let taken: &[&[u8]] = &[
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"PURGE http://[::1]:8080/a HTTP/1.1\r\n\r\n",
            b"GET https://u@x:65535/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"QUERY / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\r\n",
            b"GET /a?x=%23 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc",
        ];
        for raw in taken {
            assert_eq!(verdict(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_a_body() {
        let smuggled = b"GET /x#y HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut stream =
            format!("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", smuggled.len()).into_bytes();
        stream.extend_from_slice(smuggled);
        assert_eq!(verdict(&stream), None);
        let chunked = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            smuggled.len(),
            String::from_utf8_lossy(smuggled)
        );
        assert_eq!(verdict(chunked.as_bytes()), None);
    }

    #[test]
    fn envoys_refusals_in_envoys_order() {
        let cases: &[(&[u8], Refusal)] = &[
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::ContentLengthAndChunked),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n", Refusal::ContentLengthAndChunked),
            (b"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::ContentLengthAndChunked),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Refusal::InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::InvalidTransferEncoding),
            (b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", Refusal::InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Refusal::CodecError),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Refusal::CodecError),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", Refusal::CodecError),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", Refusal::CodecError),
            (b"HELLO\r\n\r\n", Refusal::CodecError),
            (b"GET / HTTP/1.1\r\nBad Name: y\r\n\r\n", Refusal::CodecError),
            (b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", Refusal::InvalidCharacters),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", Refusal::LowVersion),
            (b"GET /\r\n\r\n", Refusal::LowVersion),
            (b"GET / HTTP/1.0\r\n\r\n", Refusal::LowVersion),
            (b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::LowVersion),
            (b"GET / HTTP/1.1\r\nHost: x#y\r\n\r\n", Refusal::InvalidAuthority),
            (b"GET / HTTP/1.1\r\n\r\n", Refusal::MissingHost),
            (b"GET /a#x HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::Fragment),
            (b"GET http://x/a#x HTTP/1.1\r\n\r\n", Refusal::Fragment),
            (b"GET /a#b HTTP/1.0\r\nHost: x\r\n\r\n", Refusal::LowVersion),
            (b"GET HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", Refusal::CodecError),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"M-SEARCH / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"QUERY / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::QueryWithoutContentType),
            (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidUrl),
            (b"GET x/y HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"GET http://x:99999/ HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidUrl),
            (b"GET http://x:/ HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidUrl),
            (b"GET ftp://x/a HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidScheme),
        ];
        for (raw, refusal) in cases {
            assert_eq!(verdict(raw), Some(*refusal), "{:?}", String::from_utf8_lossy(raw));
        }
        let many: String = (0..101).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            verdict(format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()),
            Some(Refusal::TooManyHeaders)
        );
    }

    #[test]
    fn http_protocol_options_loosen_what_envoy_loosens() {
        let rules = Rules {
            accept_http_10: true,
            allow_chunked_length: true,
            max_headers: 150,
            ..Rules::defaults(60 * 1024, 63 * 1024)
        };
        let judge = |raw: &[u8]| match Heads::new(rules).scan(raw) {
            Step::Pass(n) => {
                assert_eq!(n, raw.len(), "{:?}", String::from_utf8_lossy(raw));
                None
            }
            Step::Refuse { refusal, .. } => Some(refusal),
        };
        assert_eq!(judge(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"), None);
        assert_eq!(judge(b"GET / HTTP/1.0\r\n\r\n"), Some(Refusal::MissingHost));
        let with_default = Rules { default_host_for_http_10: true, ..rules };
        assert_eq!(Heads::new(with_default).scan(b"GET / HTTP/1.0\r\n\r\n"), Step::Pass(18));
        assert_eq!(
            judge(b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Some(Refusal::CodecError)
        );
        // The length gives way to chunked: the body is framed as chunked.
        assert_eq!(
            judge(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            None
        );
        assert_eq!(
            judge(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Some(Refusal::CodecError)
        );
        let headers = |n: usize| format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-A: b\r\n".repeat(n)).into_bytes();
        assert_eq!(judge(&headers(120)), None);
        assert_eq!(judge(&headers(150)), Some(Refusal::TooManyHeaders));
    }

    #[test]
    fn size_comes_first_and_an_unended_head_is_too_large_at_the_most() {
        let big = "a".repeat(61 * 1024);
        let over = format!("GET /#x HTTP/1.0\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\nX: {big}\r\n\r\n");
        assert_eq!(verdict(over.as_bytes()), Some(Refusal::HeadersTooLarge));
        let under = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(59 * 1024));
        assert_eq!(verdict(under.as_bytes()), None);
        // A bad name early does not matter when the head never ends within the limit.
        let unended = format!("GET / HTTP/1.1\r\nBad Name: y\r\nX: {}", "a".repeat(70 * 1024));
        assert_eq!(run(unended.as_bytes(), 4096), (0, Some(Refusal::HeadersTooLarge)));
    }

    #[test]
    fn the_request_after_a_refusal_is_never_read() {
        let stream =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b#x HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut h = heads();
        let first = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".len();
        assert_eq!(h.scan(stream), Step::Refuse { pass: first, refusal: Refusal::Fragment });
        assert_eq!(h.passed(), 1, "the refused head is the second request");
    }

    #[test]
    fn after_an_upgrade_or_a_failed_body_nothing_is_checked() {
        let upgrade =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nGET /#x HTTP/1.1\r\n\r\n";
        assert_eq!(verdict(upgrade), None);
        let bad_chunk =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /#x HTTP/1.1\r\n\r\n";
        assert_eq!(verdict(bad_chunk), None);
    }

    #[test]
    fn a_chunked_body_is_framed_as_hyper_frames_it() {
        let ok: &[&[u8]] =
            &[b"0\r\n\r\n", b"5 \t;a=b\r\nhello\r\n0\r\n\r\n", b"A\r\n0123456789\r\n0\r\nT: 1\r\nU: 2\r\n\r\n"];
        for body in ok {
            let mut c = Chunked::Start;
            let mut ended = false;
            let mut i = 0;
            while i < body.len() {
                if let Chunked::Body(n) = c {
                    i += n as usize;
                    c = Chunked::BodyCr;
                    continue;
                }
                match chunk_step(c, body[i]) {
                    Ok(Some(next)) => c = next,
                    Ok(None) => {
                        ended = i == body.len() - 1;
                        break;
                    }
                    Err(()) => panic!("{:?} failed at {i}", String::from_utf8_lossy(body)),
                }
                i += 1;
            }
            assert!(ended, "{:?}", String::from_utf8_lossy(body));
        }
        for bad in [&b"x\r\n"[..], b"5 5\r\n", b"5\n", b"5;a\nb\r\n", b"1\r\nab"] {
            let mut c = Chunked::Start;
            let failed = bad.iter().try_for_each(|&b| match c {
                Chunked::Body(_) => {
                    c = Chunked::BodyCr;
                    Ok(())
                }
                _ => chunk_step(c, b).map(|n| c = n.unwrap_or(Chunked::Start)),
            });
            assert!(failed.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
    /// hyper, reading through [`Checked`], serves exactly the requests Envoy takes, in order, then
    /// the stand-in for the first one Envoy refuses, and nothing after it: 400 random pipelines of
    /// requests (bodies that look like heads included) written in random pieces.
    #[test]
    fn hyper_serves_exactly_the_heads_let_through() {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let hidden = "GET /#x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (a, b) = hidden.split_at(20);
        // A request, and what hyper should hand the service for it (`None`: Envoy refuses it).
        let pieces: Vec<(String, Option<(&str, String)>)> = vec![
            ("GET /a HTTP/1.1\r\nHost: x\r\n\r\n".into(), Some(("/a", String::new()))),
            (format!("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{hidden}", hidden.len()), Some(("/b", hidden.into()))),
            (
                format!("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x};e=1\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\nT: 1\r\n\r\n", a.len(), b.len()),
                Some(("/c", hidden.into())),
            ),
            ("\r\nGET /d HTTP/1.1\nHost: x\n\n".into(), Some(("/d", String::new()))),
            ("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(), Some(("/e", String::new()))),
            ("POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n".into(), Some(("/f", "0123456789".into()))),
            (hidden.into(), None),
            ("GET /g#x HTTP/1.1\r\nHost: x\r\n\r\n".into(), None),
            ("HELLO\r\n\r\n".into(), None),
            ("POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz".into(), None),
        ];
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for round in 0..400 {
            let chosen: Vec<usize> = (0..1 + next() % 4).map(|_| (next() % pieces.len() as u64) as usize).collect();
            let stream: Vec<u8> = chosen.iter().flat_map(|&i| pieces[i].0.bytes()).collect();
            let mut expected: Vec<(String, String)> = Vec::new();
            for &i in &chosen {
                match &pieces[i].1 {
                    Some((path, body)) => expected.push((path.to_string(), body.clone())),
                    None => {
                        expected.push(("stand-in".into(), String::new()));
                        break;
                    }
                }
            }
            let cuts: Vec<usize> = (0..next() % 6).map(|_| (next() as usize) % stream.len()).collect();
            let served = rt.block_on(async {
                let (client, server) = tokio::io::duplex(1 << 20);
                let (read, write) = tokio::io::split(server);
                let verdict = Verdict::default();
                let io = tokio::io::join(
                    Checked::new(read, Heads::new(Rules::defaults(60 * 1024, 63 * 1024)), verdict.clone()),
                    write,
                );
                let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
                let log = seen.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (log, verdict) = (log.clone(), verdict.clone());
                    async move {
                        let stand_in = req.headers().contains_key(STAND_IN_HEADER);
                        let path = if stand_in { "stand-in".to_string() } else { req.uri().to_string() };
                        assert_eq!(stand_in, verdict.borrow().is_some() && stand_in, "a stand-in without a refusal");
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        log.borrow_mut().push((path, String::from_utf8_lossy(&body).into_owned()));
                        let mut answer = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                        if stand_in {
                            answer.headers_mut().insert("connection", hyper::header::HeaderValue::from_static("close"));
                        }
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                // Half-close on, so that the client's end after its last request does not cut off
                // the answers (the checks do not depend on it).
                let conn = hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .max_buf_size(63 * 1024)
                    .serve_connection(hyper_util::rt::TokioIo::new(io), service);
                let talk = async move {
                    let (mut rx, mut tx) = tokio::io::split(client);
                    let mut at = 0;
                    let mut cuts = cuts.clone();
                    cuts.sort_unstable();
                    for cut in cuts.into_iter().chain([stream.len()]) {
                        // After a refusal the server may be gone before the rest is written.
                        if cut > at {
                            if tx.write_all(&stream[at..cut]).await.is_err() {
                                break;
                            }
                            tokio::task::yield_now().await;
                            at = cut;
                        }
                    }
                    let _ = tx.shutdown().await;
                    let mut sink = Vec::new();
                    let _ = rx.read_to_end(&mut sink).await;
                };
                let both = async { tokio::join!(conn, talk) };
                let (_conn_result, ()) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), both).await.expect("the connection ended");
                seen.take()
            });
            assert_eq!(
                served,
                expected,
                "round {round}: {:?}",
                String::from_utf8_lossy(&chosen.iter().flat_map(|&i| pieces[i].0.bytes()).collect::<Vec<u8>>())
            );
        }
    }
}
