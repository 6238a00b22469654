//! The ABI's wire encodings: header maps (pairs) and property paths.
//!
//! A map is `u32 count`, then `count × (u32 key_len, u32 value_len)`, then each key and value followed
//! by a NUL byte, all little-endian. Envoy rejects maps over 1 MiB or 1024 pairs.

/// The largest map Envoy accepts from a guest, in bytes.
pub const MAX_MAP_BYTES: usize = 1 << 20;
/// The most pairs Envoy accepts in one map from a guest.
pub const MAX_MAP_PAIRS: usize = 1024;

/// Size of the encoding of `pairs`.
pub fn encoded_len<'a, I>(pairs: I) -> usize
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    4 + pairs.into_iter().map(|(k, v)| 10 + k.len() + v.len()).sum::<usize>()
}

/// Encodes `pairs` into `out`, which must be exactly [`encoded_len`] bytes long.
pub fn encode_into<'a, I>(pairs: I, out: &mut [u8])
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let count = pairs.clone().into_iter().count();
    out[..4].copy_from_slice(&(count as u32).to_le_bytes());
    let mut lens = 4;
    let mut data = 4 + count * 8;
    for (k, v) in pairs {
        out[lens..lens + 4].copy_from_slice(&(k.len() as u32).to_le_bytes());
        out[lens + 4..lens + 8].copy_from_slice(&(v.len() as u32).to_le_bytes());
        lens += 8;
        out[data..data + k.len()].copy_from_slice(k);
        data += k.len();
        out[data] = 0;
        data += 1;
        out[data..data + v.len()].copy_from_slice(v);
        data += v.len();
        out[data] = 0;
        data += 1;
    }
}

/// Encodes `pairs` into a new vector.
pub fn encode<'a, I>(pairs: I) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let mut out = vec![0; encoded_len(pairs.clone())];
    encode_into(pairs, &mut out);
    out
}

/// Decodes a map a guest sent. Like Envoy, anything malformed (missing NUL, trailing bytes, over the
/// limits) decodes as `None`, which callers treat as an empty map. An empty input is an empty map.
pub fn decode(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    if bytes.len() > MAX_MAP_BYTES || bytes.len() < 4 {
        return None;
    }
    let count = u32::from_le_bytes(bytes[..4].try_into().ok()?) as usize;
    if count > MAX_MAP_PAIRS {
        return None;
    }
    let mut lens = 4usize;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    if data > bytes.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let kl = u32::from_le_bytes(bytes[lens..lens + 4].try_into().ok()?) as usize;
        let vl = u32::from_le_bytes(bytes[lens + 4..lens + 8].try_into().ok()?) as usize;
        lens += 8;
        let k_end = data.checked_add(kl)?;
        if k_end >= bytes.len() || bytes[k_end] != 0 {
            return None;
        }
        let key = bytes[data..k_end].to_vec();
        data = k_end + 1;
        let v_end = data.checked_add(vl)?;
        if v_end >= bytes.len() || bytes[v_end] != 0 {
            return None;
        }
        let value = bytes[data..v_end].to_vec();
        data = v_end + 1;
        out.push((key, value));
    }
    if data != bytes.len() {
        return None;
    }
    Some(out)
}

/// Splits a property path on NUL bytes, ignoring one trailing NUL (Envoy tolerates it).
pub fn split_path(path: &[u8]) -> Vec<&[u8]> {
    let path = path.strip_suffix(&[0]).unwrap_or(path);
    path.split(|b| *b == 0).collect()
}

/// Joins property path segments with NUL bytes, as SDKs send them.
pub fn join_path(segments: &[&str]) -> Vec<u8> {
    segments.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x", b"")];
        let enc = encode(pairs.iter().copied());
        // count, two length pairs, then ":path\0/a\0x\0\0".
        assert_eq!(enc.len(), 4 + 8 * 2 + (5 + 1 + 2 + 1) + (1 + 1 + 1));
        let dec = decode(&enc).unwrap();
        assert_eq!(dec, vec![(b":path".to_vec(), b"/a".to_vec()), (b"x".to_vec(), vec![])]);
    }

    #[test]
    fn malformed_maps_are_rejected() {
        let mut enc = encode([(&b"k"[..], &b"v"[..])]);
        assert!(decode(&enc[..enc.len() - 1]).is_none(), "missing final NUL");
        enc.push(0);
        assert!(decode(&enc).is_none(), "trailing byte");
        assert!(decode(&[1, 0, 0]).is_none(), "short header");
        assert!(decode(&(2000u32).to_le_bytes()).is_none(), "too many pairs");
        assert_eq!(decode(&[0, 0, 0, 0]), Some(vec![]));
    }

    #[test]
    fn paths() {
        assert_eq!(split_path(b"request\0path"), vec![&b"request"[..], b"path"]);
        assert_eq!(split_path(b"request\0path\0"), vec![&b"request"[..], b"path"]);
        assert_eq!(join_path(&["a", "b"]), b"a\0b");
    }
}
