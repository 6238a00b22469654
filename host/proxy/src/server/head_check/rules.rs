//! A listener's limits on request heads, and Envoy's checks of one complete head, in Envoy's order.

use super::framing::{Chunked, Framing};
use super::refusal::Refusal;

/// What a listener's codec takes: its limits and `http_protocol_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
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
    /// Envoy's defaults, with `max_request_headers_kb` = `limit` bytes and an unended head
    /// refused past `most` bytes.
    pub fn defaults(limit: usize, most: usize) -> Self {
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

/// How Envoy refuses a head httparse cannot read.
pub(super) fn parse_refusal(e: httparse::Error, data: &[u8]) -> Refusal {
    match e {
        httparse::Error::TooManyHeaders => Refusal::TooManyHeaders,
        httparse::Error::HeaderValue => Refusal::InvalidCharacters,
        // The HTTP/2 preface, on a connection whose codec is HTTP/1 only: a bad request, not an
        // old version (Envoy 1.40 with `codec_type: HTTP1`).
        _ if data.starts_with(b"PRI * HTTP/2.0\r\n") => Refusal::CodecError,
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
pub(super) fn check(req: &httparse::Request<'_, '_>, rules: &Rules) -> Result<Framing, Refusal> {
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
