//! A header map with Envoy's rules: lower-case keys, pseudo-headers first, repeated keys kept in order.

/// An ordered multimap of header names to values, as Envoy's `HeaderMap` presents it to filters.
///
/// Names are stored lower-cased. Values are bytes: nothing here assumes UTF-8.
///
/// ```
/// use sluice_host::HeaderMap;
/// let mut h = HeaderMap::from_pairs([("X-Id", "1"), (":path", "/")]);
/// assert_eq!(h.get("x-id"), Some(&b"1"[..]));
/// assert_eq!(h.iter().next().unwrap().0, b":path"); // pseudo-headers come first
/// h.add("x-id", "2");
/// assert_eq!(h.get_all("x-id").count(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn lower(key: &[u8]) -> Vec<u8> {
    key.to_ascii_lowercase()
}

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

    /// Number of entries (repeated names count once per value).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        let key = key.as_ref();
        self.pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as UTF-8 text, if it is text.
    pub fn get_str(&self, key: impl AsRef<[u8]>) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.pairs.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(key.as_bytes())).map(|(_, v)| v.as_slice())
    }

    /// Appends a value, keeping existing ones. Pseudo-headers go after the other pseudo-headers.
    pub fn add(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = lower(key.as_ref());
        let value = value.as_ref().to_vec();
        if key.first() == Some(&b':') {
            let at = self.pairs.iter().position(|(k, _)| k.first() != Some(&b':')).unwrap_or(self.pairs.len());
            self.pairs.insert(at, (key, value));
        } else {
            self.pairs.push((key, value));
        }
    }

    /// Sets `key` to one value, replacing all existing values (in place of the first one).
    pub fn replace(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key_ref = key.as_ref();
        match self.pairs.iter().position(|(k, _)| k.eq_ignore_ascii_case(key_ref)) {
            Some(first) => {
                self.pairs[first].1 = value.as_ref().to_vec();
                let mut i = 0;
                self.pairs.retain(|(k, _)| {
                    let keep = i <= first || !k.eq_ignore_ascii_case(key_ref);
                    i += 1;
                    keep
                });
            }
            None => self.add(key_ref, value),
        }
    }

    /// Removes every value of `key`.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        let key = key.as_ref();
        self.pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Σ(name + value) bytes: what Envoy's `byteSize()` reports for `proxy_get_header_map_size`.
    pub fn byte_size(&self) -> usize {
        self.pairs.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Replaces the whole map (as `proxy_set_header_map_pairs` does).
    pub fn set_all(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        self.pairs.clear();
        for (k, v) in pairs {
            self.add(k, v);
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.pairs.clear();
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
}
