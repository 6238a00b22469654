//! The headers Envoy's header maps keep one entry of ("inline" headers): adding to one that is
//! there joins the values with a comma instead of adding a second entry (`HeaderMapImpl`'s
//! `insertByKey` / `appendToHeader`). The lists are Envoy's defaults (`INLINE_REQ_HEADERS`,
//! `INLINE_REQ_RESP_HEADERS`, `INLINE_RESP_HEADERS`, `INLINE_RESP_HEADERS_TRAILERS`).

use crate::wire::status::MapType;

/// Inline in request and response headers alike.
const BOTH: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "keep-alive",
    "proxy-connection",
    "proxy-status",
    "transfer-encoding",
    "upgrade",
    "via",
    "x-envoy-attempt-count",
    "x-envoy-decorator-operation",
    "x-request-id",
];

/// Inline in request headers.
const REQUEST: &[&str] = &[
    ":authority",
    ":method",
    ":path",
    ":protocol",
    ":scheme",
    "expect",
    "grpc-timeout",
    "te",
    "user-agent",
    "x-client-trace-id",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-external-address",
    "x-envoy-force-trace",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-internal",
    "x-envoy-ip-tags",
    "x-envoy-max-retries",
    "x-envoy-original-path",
    "x-envoy-original-url",
    "x-envoy-retriable-header-names",
    "x-envoy-retriable-status-codes",
    "x-envoy-retry-grpc-on",
    "x-envoy-retry-on",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-stream-duration-ms",
    "x-forwarded-client-cert",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// Inline in response headers and trailers.
const RESPONSE_AND_TRAILERS: &[&str] = &["grpc-message", "grpc-status"];

/// Inline in response headers.
const RESPONSE: &[&str] = &[
    ":status",
    "date",
    "location",
    "server",
    "x-envoy-degraded",
    "x-envoy-immediate-health-check-fail",
    "x-envoy-ratelimited",
    "x-envoy-upstream-canary",
    "x-envoy-upstream-healthchecked-cluster",
    "x-envoy-upstream-service-time",
];

/// Whether Envoy keeps `name` (lower case) as one entry in map `t`.
pub(crate) fn is_inline(t: MapType, name: &[u8]) -> bool {
    let lists: &[&[&str]] = match t {
        MapType::RequestHeaders => &[BOTH, REQUEST],
        MapType::ResponseHeaders => &[BOTH, RESPONSE, RESPONSE_AND_TRAILERS],
        MapType::ResponseTrailers => &[RESPONSE_AND_TRAILERS],
        _ => &[],
    };
    lists.iter().any(|l| l.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_headers_depend_on_the_map() {
        assert!(is_inline(MapType::RequestHeaders, b"content-type"));
        assert!(is_inline(MapType::ResponseHeaders, b"Content-Type"));
        assert!(is_inline(MapType::RequestHeaders, b":authority"));
        assert!(!is_inline(MapType::ResponseHeaders, b":authority"));
        assert!(is_inline(MapType::ResponseTrailers, b"grpc-status"));
        assert!(!is_inline(MapType::RequestTrailers, b"content-type"));
        assert!(!is_inline(MapType::RequestHeaders, b"x-a"));
    }
}
