//! Why Envoy refuses a request head, and what it answers.

/// Why Envoy refuses a request head, and how it answers: each a local reply that closes the
/// connection, with the response code details Envoy logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
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
    pub fn status(self) -> u16 {
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
    pub fn is_protocol_error(self) -> bool {
        !matches!(self, Refusal::MissingHost | Refusal::Fragment | Refusal::QueryWithoutContentType)
    }

    /// The response code details Envoy gives it (`%RESPONSE_CODE_DETAILS%`).
    pub fn details(self) -> &'static str {
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
