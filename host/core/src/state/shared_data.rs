//! Shared data: a key/value store per vm_id, with one process-wide CAS counter as in Envoy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::RwLock;

use crate::wire::status::Status;

/// One vm_id's entries: key → (value, CAS).
type Store = HashMap<Vec<u8>, (Vec<u8>, u32)>;

/// The store behind `proxy_get_shared_data` / `proxy_set_shared_data`.
#[derive(Debug, Default)]
pub struct SharedData {
    entries: RwLock<HashMap<String, Store>>,
    cas: AtomicU32,
}

impl SharedData {
    fn next_cas(&self) -> u32 {
        loop {
            let v = self.cas.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if v != 0 {
                return v;
            }
        }
    }

    /// Reads `key` in `vm_id`'s store, calling `f` with the value and its CAS while the lock is held.
    pub fn with<R>(&self, vm_id: &str, key: &[u8], f: impl FnOnce(&[u8], u32) -> R) -> Option<R> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(vm_id)?.get(key).map(|(v, cas)| f(v, *cas))
    }

    /// A copy of the value and CAS of `key`.
    pub fn get(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.with(vm_id, key, |v, cas| (v.to_vec(), cas))
    }

    /// Sets `key`. `cas == 0` is unconditional; otherwise an existing key's CAS must match
    /// (CAS_MISMATCH), and a new key is inserted whatever the CAS.
    ///
    /// # Errors
    /// [`Status::CasMismatch`] when `cas` is not the key's current CAS.
    pub fn set(&self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> Result<(), Status> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let store = entries.entry(vm_id.to_string()).or_default();
        match store.get_mut(key) {
            Some(entry) => {
                if cas != 0 && entry.1 != cas {
                    return Err(Status::CasMismatch);
                }
                entry.0.clear();
                entry.0.extend_from_slice(value);
                entry.1 = self.next_cas();
            }
            None => {
                let c = self.next_cas();
                store.insert(key.to_vec(), (value.to_vec(), c));
            }
        }
        Ok(())
    }

    /// The keys stored for `vm_id` (for inspection in tests).
    pub fn keys(&self, vm_id: &str) -> Vec<Vec<u8>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(vm_id).map(|s| s.keys().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules() {
        let d = SharedData::default();
        assert!(d.get("vm", b"k").is_none());
        d.set("vm", b"k", b"a", 77).unwrap(); // a new key ignores the cas
        let (_, c1) = d.get("vm", b"k").unwrap();
        assert_eq!(d.set("vm", b"k", b"b", c1 + 1), Err(Status::CasMismatch));
        d.set("vm", b"k", b"b", c1).unwrap();
        let (v, c2) = d.get("vm", b"k").unwrap();
        assert_eq!((v.as_slice(), c2 > c1), (&b"b"[..], true));
        d.set("other", b"x", b"", 0).unwrap();
        assert!(d.get("other", b"x").unwrap().1 > c2, "one counter across keys and vm ids");
        assert!(d.get("vm", b"x").is_none(), "stores are separate per vm_id");
    }
}
