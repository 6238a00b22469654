//! Envoy `Metadata` (of a listener, virtual host, route or cluster) and `Struct`s (the node's
//! metadata), as the `xds.*_metadata` and `xds.node.metadata` properties serve them: the whole
//! message as serialized protobuf, and every field below it as Envoy's CEL values are encoded
//! (`filter_metadata` and a `Struct` are maps in the pairs format, a string is its bytes, a number
//! an 8-byte double, a bool one byte, a list the pairs format with empty values).

use std::sync::Arc;

use serde_yaml_ng::Value;

use super::PropertyValue;
use crate::wire::status::Status;

/// One `envoy.config.core.v3.Metadata` as a filter reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// The message, serialized as protobuf (`xds.route_metadata` as a whole).
    proto: Arc<[u8]>,
    /// The message as written (`filter_metadata`, `typed_filter_metadata`).
    tree: Arc<Value>,
}

impl Metadata {
    /// Metadata with its protobuf encoding and its canonical tree.
    pub fn new(proto: Vec<u8>, tree: Value) -> Self {
        Self { proto: proto.into(), tree: Arc::new(tree) }
    }

    /// The property at `rest` below the metadata (`[]` is the whole message).
    ///
    /// # Errors
    /// [`Status::NotFound`] when nothing is at the path.
    pub fn property(&self, rest: &[&[u8]]) -> Result<PropertyValue, Status> {
        match rest {
            [] => Ok(PropertyValue::Bytes(self.proto.to_vec())),
            [b"filter_metadata", below @ ..] => {
                let map = self.tree.get("filter_metadata").cloned().unwrap_or(Value::Mapping(Default::default()));
                struct_property(&map, below)
            }
            _ => Err(Status::NotFound),
        }
    }
}

/// The value at `path` below a `Struct` (or any JSON-like tree), encoded as Envoy encodes CEL
/// values.
///
/// # Errors
/// [`Status::NotFound`] when nothing is at the path.
pub fn struct_property(tree: &Value, path: &[&[u8]]) -> Result<PropertyValue, Status> {
    let mut at = tree;
    for segment in path {
        let key = std::str::from_utf8(segment).map_err(|_| Status::NotFound)?;
        at = match at {
            Value::Mapping(m) => m.get(key).ok_or(Status::NotFound)?,
            Value::Sequence(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)).ok_or(Status::NotFound)?,
            _ => return Err(Status::NotFound),
        };
    }
    cel(at)
}

/// A `google.protobuf.Value` as Envoy's CEL layer hands it to `serializeValue`.
fn cel(v: &Value) -> Result<PropertyValue, Status> {
    Ok(match v {
        Value::String(s) => PropertyValue::String(s.clone()),
        Value::Number(n) => PropertyValue::Double(n.as_f64().unwrap_or_default()),
        Value::Bool(b) => PropertyValue::Bool(*b),
        Value::Mapping(m) => PropertyValue::Map(
            m.iter()
                .map(|(k, v)| Ok((k.as_str().unwrap_or_default().to_string(), cel(v)?)))
                .collect::<Result<_, _>>()?,
        ),
        // A list: each element is a key, with an empty value.
        Value::Sequence(items) => PropertyValue::Map(
            items
                .iter()
                .map(|i| {
                    Ok((String::from_utf8_lossy(&cel(i)?.encode()).into_owned(), PropertyValue::Bytes(Vec::new())))
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Tagged(t) => return cel(&t.value),
        // CEL's null has no encoding.
        Value::Null => return Err(Status::SerializationFailure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(yaml: &str) -> Metadata {
        Metadata::new(b"proto".to_vec(), serde_yaml_ng::from_str(yaml).unwrap())
    }

    #[test]
    fn fields_below_filter_metadata_are_cel_values() {
        let m = md("filter_metadata: {envoy.filters.http.wasm: {auth: cookie, n: 2, on: true}}");
        let at = |p: &[&[u8]]| m.property(p).map(|v| v.encode());
        assert_eq!(at(&[]), Ok(b"proto".to_vec()));
        assert_eq!(at(&[b"filter_metadata", b"envoy.filters.http.wasm", b"auth"]), Ok(b"cookie".to_vec()));
        assert_eq!(at(&[b"filter_metadata", b"envoy.filters.http.wasm", b"n"]), Ok(2f64.to_le_bytes().to_vec()));
        assert_eq!(at(&[b"filter_metadata", b"envoy.filters.http.wasm", b"on"]), Ok(vec![1]));
        assert_eq!(at(&[b"filter_metadata", b"nope"]), Err(Status::NotFound));
        let whole = m.property(&[b"filter_metadata", b"envoy.filters.http.wasm"]).unwrap();
        assert!(matches!(whole, PropertyValue::Map(ref pairs) if pairs.len() == 3), "{whole:?}");
    }

    #[test]
    fn empty_metadata_is_an_empty_message() {
        let m = Metadata::default();
        assert_eq!(m.property(&[]).map(|v| v.encode()), Ok(Vec::new()));
        assert_eq!(m.property(&[b"filter_metadata", b"x"]), Err(Status::NotFound));
    }
}
