//! The `service` argument of `proxy_grpc_call` and `proxy_grpc_stream`: a serialized
//! `envoy.config.core.v3.GrpcService` (as the C++ and Go SDKs send it) or a plain cluster name (as
//! the Rust SDK does). Envoy reads the cluster from `envoy_grpc.cluster_name`.

/// The cluster a gRPC `service` argument names.
///
/// ```
/// use sluice_core::wire::grpc_service::cluster_name;
/// // GrpcService { envoy_grpc: EnvoyGrpc { cluster_name: "auth" } }
/// assert_eq!(cluster_name(&[0x0a, 0x06, 0x0a, 0x04, b'a', b'u', b't', b'h']), "auth");
/// assert_eq!(cluster_name(b"auth"), "auth");
/// ```
pub fn cluster_name(service: &[u8]) -> String {
    let from_proto = first_field(service).and_then(first_field).and_then(|c| std::str::from_utf8(c).ok());
    match from_proto {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => String::from_utf8_lossy(service).into_owned(),
    }
}

/// `field 1 (bytes)` of a protobuf message, if the message is exactly that field.
fn first_field(b: &[u8]) -> Option<&[u8]> {
    let rest = b.strip_prefix(&[0x0a])?;
    let (len, n) = varint(rest)?;
    rest.get(n..n + len)
}

/// A protobuf varint of at most five bytes: its value and its length.
fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, byte) in b.iter().enumerate().take(5) {
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_is_not_a_grpc_service_is_the_cluster_itself() {
        // A field-1 prefix whose length runs past the end is no GrpcService.
        assert_eq!(cluster_name(&[0x0a, 0x09, b'x']), "\n\tx");
        assert_eq!(cluster_name(b""), "");
        // An empty cluster name inside a GrpcService falls back to the bytes as they are.
        assert_eq!(cluster_name(&[0x0a, 0x02, 0x0a, 0x00]), "\n\u{2}\n\u{0}");
    }
}
