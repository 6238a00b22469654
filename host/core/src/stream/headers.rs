//! A header map with Envoy's rules: lower-case keys, pseudo-headers first, repeated keys kept in order.

/// An ordered multimap of header names to values, as Envoy's `HeaderMap` presents it to filters.
///
/// Names are stored lower-cased. Values are bytes: nothing here assumes UTF-8.
///
/// ```
/// use sluice_core::HeaderMap;
/// let mut h = HeaderMap::from_pairs([("X-Id", "1"), (":path", "/")]);
/// assert_eq!(h.get("x-id"), Some(&b"1"[..]));
/// assert_eq!(h.iter().next().unwrap().0, b":path"); // pseudo-headers come first
/// h.add("x-id", "2");
/// assert_eq!(h.get_all("x-id").count(), 2);
/// ```
#[derive(Clone, Default)]
pub struct HeaderMap {
    /// Every name and value, back to back (a map is one allocation for its bytes and one for its
    /// entries, however many headers it has: copies and drops stay cheap on the request path).
    bytes: Vec<u8>,
    /// The entries in order, as ranges of `bytes`.
    entries: Vec<Entry>,
    /// Bytes of `bytes` no entry uses any more (removed or replaced).
    garbage: usize,
}

/// One header: its name and its value, as ranges of the map's bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: (u32, u32),
    value: (u32, u32),
}

impl Entry {
    fn len(&self) -> usize {
        (self.name.1 - self.name.0 + self.value.1 - self.value.0) as usize
    }
}

impl std::fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_list().entries(self.iter().map(|(k, v)| (text(k), text(v)))).finish()
    }
}

impl PartialEq for HeaderMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HeaderMap {}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a map from pairs, lower-casing names and placing pseudo-headers first.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut map = Self::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.bytes[start as usize..end as usize]
    }

    fn push_bytes(&mut self, b: &[u8]) -> (u32, u32) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        (start as u32, self.bytes.len() as u32)
    }

    /// The index of the first entry named `key` (any case).
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| self.slice(e.name).eq_ignore_ascii_case(key))
    }

    /// Makes room for `bytes` more bytes of names and values in `entries` more entries.
    pub fn reserve(&mut self, bytes: usize, entries: usize) {
        self.bytes.reserve(bytes);
        self.entries.reserve(entries);
    }

    /// The index of the first entry named `key` (any case), for [`HeaderMap::value_at`].
    pub fn position(&self, key: impl AsRef<[u8]>) -> Option<usize> {
        self.find(key.as_ref())
    }

    /// The value of the entry at `index`.
    pub fn value_at(&self, index: usize) -> Option<&[u8]> {
        self.entries.get(index).map(|e| self.slice(e.value))
    }

    /// Number of entries (repeated names count once per value).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.find(key.as_ref()).map(|i| self.slice(self.entries[i].value))
    }

    /// The first value of `key` as UTF-8 text, if it is text.
    pub fn get_str(&self, key: impl AsRef<[u8]>) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(key.as_bytes())).map(|(_, v)| v)
    }

    /// Appends a value, keeping existing ones. Pseudo-headers go after the other pseudo-headers.
    pub fn add(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = key.as_ref();
        let name = self.push_bytes(key);
        self.bytes[name.0 as usize..].make_ascii_lowercase();
        let value = self.push_bytes(value.as_ref());
        let e = Entry { name, value };
        if key.first() == Some(&b':') {
            let at = self.entries.iter().position(|e| self.bytes[e.name.0 as usize] != b':');
            self.entries.insert(at.unwrap_or(self.entries.len()), e);
        } else {
            self.entries.push(e);
        }
    }

    /// Sets `key` to one value, replacing all existing values (in place of the first one).
    pub fn replace(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = key.as_ref();
        let Some(first) = self.find(key) else { return self.add(key, value) };
        let old = self.entries[first].value;
        self.garbage += (old.1 - old.0) as usize;
        self.entries[first].value = self.push_bytes(value.as_ref());
        let mut i = 0;
        let (bytes, garbage) = (&self.bytes, &mut self.garbage);
        self.entries.retain(|e| {
            let keep = i <= first || !bytes[e.name.0 as usize..e.name.1 as usize].eq_ignore_ascii_case(key);
            if !keep {
                *garbage += e.len();
            }
            i += 1;
            keep
        });
        self.compact_if_sparse();
    }

    /// Removes every value of `key`.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        let key = key.as_ref();
        let (bytes, garbage) = (&self.bytes, &mut self.garbage);
        self.entries.retain(|e| {
            let keep = !bytes[e.name.0 as usize..e.name.1 as usize].eq_ignore_ascii_case(key);
            if !keep {
                *garbage += e.len();
            }
            keep
        });
        self.compact_if_sparse();
    }

    /// Rewrites the bytes when most of them are no longer used (a filter replacing one header in
    /// a loop must not grow the map without end).
    fn compact_if_sparse(&mut self) {
        if self.garbage <= 4096 || self.garbage * 2 <= self.bytes.len() {
            return;
        }
        let mut fresh = HeaderMap::new();
        fresh.bytes.reserve(self.bytes.len() - self.garbage);
        fresh.entries.reserve(self.entries.len());
        for (k, v) in self.iter() {
            let name = fresh.push_bytes(k);
            let value = fresh.push_bytes(v);
            fresh.entries.push(Entry { name, value });
        }
        *self = fresh;
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.entries.iter().map(|e| (self.slice(e.name), self.slice(e.value)))
    }

    /// Σ(name + value) bytes: what Envoy's `byteSize()` reports for `proxy_get_header_map_size`.
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(Entry::len).sum()
    }

    /// Replaces the whole map (as `proxy_set_header_map_pairs` does).
    pub fn set_all(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        self.clear();
        for (k, v) in pairs {
            self.add(k, v);
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.garbage = 0;
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for HeaderMap {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_position_and_drops_repeats() {
        let mut h = HeaderMap::from_pairs([("a", "1"), ("b", "2"), ("a", "3")]);
        h.replace("A", "9");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![(&b"a"[..], &b"9"[..]), (b"b", b"2")]);
        h.replace("c", "x");
        assert_eq!(h.get("c"), Some(&b"x"[..]));
        assert_eq!(h.byte_size(), 2 + 2 + 2);
    }

    #[test]
    fn names_are_lower_case_and_pseudo_headers_come_first() {
        let mut h = HeaderMap::from_pairs([("X-A", "1"), (":path", "/")]);
        h.add(":Method", "GET");
        let keys: Vec<&[u8]> = h.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [&b":path"[..], b":method", b"x-a"]);
        h.remove("x-a");
        assert_eq!(h.len(), 2);
        assert_eq!(h, HeaderMap::from_pairs([(":path", "/"), (":method", "GET")]));
    }

    #[test]
    fn replacing_in_a_loop_keeps_the_map_small() {
        let mut h = HeaderMap::from_pairs([("a", "x")]);
        for n in 0..100_000 {
            h.replace("a", format!("value-{n}"));
        }
        assert_eq!(h.get_str("a"), Some("value-99999"));
        assert!(h.bytes.len() < 16 * 1024, "{} bytes held for one header", h.bytes.len());
    }
}
