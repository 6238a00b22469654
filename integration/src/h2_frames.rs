//! HTTP/2 as bytes on the wire, for tests that talk to a proxy below any client library: the
//! connection preface and frames (RFC 9113 §3.4, §4.1), written and read back.

/// The client connection preface.
pub const MAGIC: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A frame: its header (length, `kind`, `flags`, `stream`) and `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The frames in `bytes`: (type, flags, stream, payload); a last frame cut short keeps what came.
pub fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        let payload = bytes[9..].get(..len).unwrap_or(&bytes[9..]).to_vec();
        out.push((bytes[3], bytes[4], stream, payload));
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    out
}
