//! gRPC as it crosses the wire, in one place: a message's length-prefixed frame, `grpc-status`
//! values and the numbers a plugin gets for them, and the text Envoy's gRPC client adds to a
//! status that came from the upstream.

/// A gRPC message with its length prefix (uncompressed).
pub(crate) fn framed(message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// The headers of a callout's request after its pseudo-headers, as Envoy's gRPC client sends them
/// (asked of Envoy 1.40 with a recording service): `te`, the deadline as `grpc-timeout`, the
/// content type, the plugin's metadata, then Envoy's own marks of an internal request with its
/// expected timeout. No `content-length`: gRPC frames its messages itself.
pub(crate) fn request_headers(
    metadata: &[(Vec<u8>, Vec<u8>)],
    timeout: Option<std::time::Duration>,
) -> impl Iterator<Item = (&[u8], Vec<u8>)> {
    let ms = timeout.map(|t| t.as_millis());
    let before = [
        Some((&b"te"[..], b"trailers".to_vec())),
        ms.map(|ms| (&b"grpc-timeout"[..], grpc_timeout(ms).into_bytes())),
        Some((&b"content-type"[..], b"application/grpc".to_vec())),
    ];
    let after = [
        Some((&b"x-envoy-internal"[..], b"true".to_vec())),
        ms.map(|ms| (&b"x-envoy-expected-rq-timeout-ms"[..], ms.to_string().into_bytes())),
    ];
    let metadata = metadata.iter().map(|(k, v)| (k.as_slice(), v.clone()));
    before.into_iter().flatten().chain(metadata).chain(after.into_iter().flatten())
}

/// A deadline as `grpc-timeout` says it: at most eight digits, in the finest unit that fits
/// (milliseconds, then seconds, minutes, hours), as Envoy writes it.
fn grpc_timeout(ms: u128) -> String {
    const MAX: u128 = 99_999_999;
    if ms <= MAX {
        format!("{ms}m")
    } else if ms / 1000 <= MAX {
        format!("{}S", ms / 1000)
    } else if ms / 60_000 <= MAX {
        format!("{}M", ms / 60_000)
    } else {
        format!("{}H", (ms / 3_600_000).min(MAX))
    }
}

/// A gRPC status message as Envoy's gRPC client hands it to a plugin when the status came from the
/// upstream: the response-code details appended in braces, or alone when there is no message
/// (pinned by the serve comparison tests).
pub(crate) fn via_upstream(message: &str) -> String {
    if message.is_empty() {
        "via_upstream".into()
    } else {
        format!("{message}{{via_upstream}}")
    }
}

/// A `grpc-status` value as a code (a value that is not one of gRPC's codes reads as `Unknown`).
pub(crate) fn grpc_code(status: &str) -> tonic::Code {
    status.trim().parse().map_or(tonic::Code::Unknown, tonic::Code::from_i32)
}

/// A code as the number a plugin gets in `proxy_on_grpc_close`.
pub(crate) fn code_number(code: tonic::Code) -> u32 {
    i32::from(code).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_keeps_to_eight_digits_in_the_finest_unit_that_fits() {
        assert_eq!(grpc_timeout(1000), "1000m");
        assert_eq!(grpc_timeout(99_999_999), "99999999m");
        assert_eq!(grpc_timeout(100_000_000), "100000S");
        assert_eq!(grpc_timeout(u128::from(u64::MAX)), "99999999H");
    }

    #[test]
    fn a_call_without_a_deadline_sends_no_timeout_headers() {
        let md = vec![(b"x-md".to_vec(), b"1".to_vec())];
        let names: Vec<&[u8]> = request_headers(&md, None).map(|(k, _)| k).collect();
        assert_eq!(names, [&b"te"[..], b"content-type", b"x-md", b"x-envoy-internal"]);
    }
}
