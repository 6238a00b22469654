//! Envoy's attributes (`request.path`, `source.address`, `xds.route_name`, …) as typed values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::abi;
use crate::codec::path;
use crate::error::{Error, Result};

/// Raw bytes of a property; `None` if Envoy has no value for it now.
pub fn bytes(segments: &[&str]) -> Result<Option<Vec<u8>>> {
    abi::get_property(&path(segments))
}

/// A string property (lossy on invalid UTF-8).
pub fn string(segments: &[&str]) -> Result<Option<String>> {
    Ok(bytes(segments)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn eight(segments: &[&str], what: &'static str) -> Result<Option<[u8; 8]>> {
    match bytes(segments)? {
        None => Ok(None),
        Some(b) => b
            .get(..8)
            .map(|s| Some([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
            .ok_or(Error::Decode { what, why: format!("{} bytes, expected 8", b.len()) }),
    }
}

/// An integer property (`source.port`, `response.code`, …).
pub fn int(segments: &[&str]) -> Result<Option<i64>> {
    Ok(eight(segments, "integer property")?.map(i64::from_le_bytes))
}

/// A boolean property (`connection.mtls`).
pub fn boolean(segments: &[&str]) -> Result<Option<bool>> {
    Ok(bytes(segments)?.map(|b| b.first() == Some(&1)))
}

/// A timestamp property (`request.time`).
pub fn timestamp(segments: &[&str]) -> Result<Option<SystemTime>> {
    Ok(int(segments)?.map(|ns| UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)))
}

/// A duration property (`request.duration`).
pub fn duration(segments: &[&str]) -> Result<Option<Duration>> {
    Ok(int(segments)?.map(|ns| Duration::from_nanos(ns.max(0) as u64)))
}

/// Entries of a map property: (key, value) as bytes.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A map property (`request.headers`), as pairs.
pub fn map(segments: &[&str]) -> Result<Option<Pairs>> {
    Ok(bytes(segments)?.map(|b| crate::codec::decode_pairs(&b)))
}

/// Stores a value in the stream's filter state (readable back as a property).
pub fn set(segments: &[&str], value: &[u8]) -> Result<()> {
    abi::set_property(&path(segments), value)
}

/// The host's wall-clock time.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(abi::now_nanos())
}

/// The client's IP address, from `source.address` (`ip:port`, or a bare address): the key for
/// per-client limits, since each connection of a client has its own port.
///
/// ```no_run
/// let key = sluice::properties::source_ip()?.map(|ip| ip.to_string()).unwrap_or_default();
/// # Ok::<(), sluice::Error>(())
/// ```
pub fn source_ip() -> Result<Option<std::net::IpAddr>> {
    let Some(addr) = string(&["source", "address"])? else { return Ok(None) };
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return Ok(Some(sa.ip()));
    }
    addr.parse()
        .map(Some)
        .map_err(|_| Error::Decode { what: "source.address", why: format!("{addr:?} is not an address") })
}
