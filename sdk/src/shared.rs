//! Shared data: a key/value store shared by every VM with the same vm_id (all of Envoy's workers),
//! with compare-and-swap.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi;
use crate::error::{Error, Result, Status};

/// A value as read, with the version to pass back to [`set_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its CAS version.
    pub cas: u32,
}

/// The raw bytes of `key`, if set.
pub fn get_bytes(key: &str) -> Result<Option<Versioned<Vec<u8>>>> {
    Ok(abi::get_shared_data(key)?.map(|(value, cas)| Versioned { value, cas }))
}

/// Sets `key` unconditionally.
pub fn set_bytes(key: &str, value: &[u8]) -> Result<()> {
    abi::set_shared_data(key, value, 0)
}

/// Sets `key` only if it is still at version `cas` (`Err` with [`Status::CasMismatch`] otherwise).
pub fn set_if(key: &str, value: &[u8], cas: u32) -> Result<()> {
    abi::set_shared_data(key, value, cas)
}

/// Reads `key` as JSON.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<Versioned<T>>> {
    match get_bytes(key)? {
        None => Ok(None),
        Some(v) if v.value.is_empty() => Ok(None),
        Some(v) => {
            let value = serde_json::from_slice(&v.value)
                .map_err(|e| Error::Decode { what: "shared data", why: e.to_string() })?;
            Ok(Some(Versioned { value, cas: v.cas }))
        }
    }
}

/// Writes `key` as JSON, unconditionally.
pub fn set<T: Serialize>(key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Decode { what: "shared data", why: e.to_string() })?;
    set_bytes(key, &bytes)
}

/// Read-modify-write with compare-and-swap, retried until no other writer interferes. `f` gets the
/// current value (`None` if unset) and returns the new one; the new value is returned.
///
/// ```no_run
/// let hits: u64 = sluice::shared::update("hits", |n: Option<u64>| n.unwrap_or(0) + 1)?;
/// # Ok::<(), sluice::Error>(())
/// ```
pub fn update<T: Serialize + DeserializeOwned>(key: &str, mut f: impl FnMut(Option<T>) -> T) -> Result<T> {
    for _ in 0..1000 {
        let (current, cas) = match get::<T>(key)? {
            Some(v) => (Some(v.value), v.cas),
            None => (None, abi::get_shared_data(key)?.map(|(_, c)| c).unwrap_or(0)),
        };
        let next = f(current);
        let bytes = serde_json::to_vec(&next).map_err(|e| Error::Decode { what: "shared data", why: e.to_string() })?;
        match set_if(key, &bytes, cas) {
            Ok(()) => return Ok(next),
            Err(e) if e.status() == Some(Status::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Host { call: "proxy_set_shared_data", status: Status::CasMismatch })
}
