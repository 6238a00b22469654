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
