//! The ABI's map encoding (`u32 count`, `count × (u32 key_len, u32 value_len)`, NUL-terminated keys
//! and values) and property paths (segments joined by NUL).

pub(crate) fn encode_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let size = 4 + pairs.iter().map(|(k, v)| 10 + k.len() + v.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Decodes pairs; malformed input yields what could be read (never panics).
pub(crate) fn decode_pairs(b: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let u32_at = |i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
    let Some(count) = u32_at(0) else { return Vec::new() };
    let mut out = Vec::with_capacity(count.min(1024));
    let mut data = 4 + count.saturating_mul(8);
    for i in 0..count {
        let (Some(kl), Some(vl)) = (u32_at(4 + i * 8), u32_at(8 + i * 8)) else { break };
        let Some(k) = b.get(data..data + kl) else { break };
        data += kl + 1;
        let Some(v) = b.get(data..data + vl) else { break };
        data += vl + 1;
        out.push((k.to_vec(), v.to_vec()));
    }
    out
}

pub(crate) fn path(segments: &[&str]) -> Vec<u8> {
    segments.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let enc = encode_pairs(&[(b"a", b"1"), (b"bb", b"")]);
        assert_eq!(decode_pairs(&enc), vec![(b"a".to_vec(), b"1".to_vec()), (b"bb".to_vec(), vec![])]);
        assert!(decode_pairs(&[9, 9]).is_empty());
        assert!(decode_pairs(&[200, 0, 0, 0, 1]).is_empty());
    }
}
