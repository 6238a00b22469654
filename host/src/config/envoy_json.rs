//! Envoy's own leniencies in reading a bootstrap, applied to the YAML tree before it is read into the
//! model, so that every spelling Envoy 1.40 accepts reaches the model in one canonical form:
//!
//! - a `typed_config` wrapped in `udpa.type.v1.TypedStruct` or `xds.type.v3.TypedStruct`
//!   (`type_url` + `value`) is the message `type_url` names, as if written inline;
//! - a repeated field written as one value (`listeners:` as a mapping) is a list of that value, as
//!   protobuf's JSON parser that Envoy uses reads it;
//! - enum values are matched without regard to case (`codec_type: auto`), as Envoy parses with
//!   `case_insensitive_enum_parsing`.
//!
//! Values that are the plugin's or the user's data (`configuration`, `metadata`, environment
//! variables) are left exactly as written.

use serde_yaml_ng::{Mapping, Value};

/// The two `TypedStruct` wrappers Envoy unpacks.
const TYPED_STRUCTS: &[&str] =
    &["type.googleapis.com/udpa.type.v1.TypedStruct", "type.googleapis.com/xds.type.v3.TypedStruct"];

/// Repeated fields of the messages sluice reads, by field name.
const REPEATED: &[&str] = &[
    "listeners",
    "clusters",
    "filter_chains",
    "filters",
    "http_filters",
    "virtual_hosts",
    "domains",
    "routes",
    "headers",
    "endpoints",
    "lb_endpoints",
    "bootstrap_extensions",
    "host_env_keys",
    "access_log",
];

/// Enum-typed fields of the messages sluice reads, by field name.
const ENUMS: &[&str] = &["codec_type", "type", "lb_policy", "failure_policy", "response_code", "protocol"];

/// Fields whose value is data (a `Struct`, an `Any` of the plugin's, a map of the user's): kept as
/// written.
const OPAQUE: &[&str] = &["configuration", "metadata", "key_values"];

/// Rewrites `v` in place into the canonical form the model reads.
pub fn canonicalize(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            unwrap_typed_struct(m);
            for (k, child) in m.iter_mut() {
                let Some(key) = k.as_str() else { continue };
                if OPAQUE.contains(&key) {
                    continue;
                }
                if REPEATED.contains(&key) && !matches!(child, Value::Sequence(_) | Value::Null) {
                    *child = Value::Sequence(vec![std::mem::take(child)]);
                }
                if ENUMS.contains(&key) {
                    if let Value::String(s) = child {
                        s.make_ascii_uppercase();
                    }
                }
                canonicalize(child);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(canonicalize),
        Value::Tagged(t) => canonicalize(&mut t.value),
        _ => {}
    }
}

/// `{"@type": TypedStruct, type_url: T, value: {...}}` becomes `{"@type": T, ...}`.
fn unwrap_typed_struct(m: &mut Mapping) {
    let is_typed_struct = m.get("@type").and_then(Value::as_str).is_some_and(|t| TYPED_STRUCTS.contains(&t));
    if !is_typed_struct {
        return;
    }
    let type_url = m.get("type_url").cloned().unwrap_or(Value::String(String::new()));
    let value = m.get("value").cloned();
    let extra: Vec<Value> =
        m.keys().filter(|k| !matches!(k.as_str(), Some("@type" | "type_url" | "value"))).cloned().collect();
    let mut out = Mapping::new();
    out.insert(Value::from("@type"), type_url);
    match value {
        Some(Value::Mapping(fields)) => out.extend(fields),
        Some(Value::Null) | None => {}
        // Not a Struct: leave a field the model refuses, with its path.
        Some(other) => {
            out.insert(Value::from("value"), other);
        }
    }
    // Unknown fields of the wrapper itself stay, so they are refused with their path.
    for k in extra {
        if let Some(v) = m.get(&k) {
            out.insert(k, v.clone());
        }
    }
    *m = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(yaml: &str) -> Value {
        let mut v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        canonicalize(&mut v);
        v
    }

    #[test]
    fn typed_struct_is_the_message_it_names() {
        let v = canon(
            "typed_config:\n  '@type': type.googleapis.com/udpa.type.v1.TypedStruct\n  type_url: type.googleapis.com/x.Y\n  value:\n    config: {name: n}\n",
        );
        assert_eq!(v, canon("typed_config:\n  '@type': type.googleapis.com/x.Y\n  config: {name: n}\n"));
        let v = canon("a:\n  '@type': type.googleapis.com/xds.type.v3.TypedStruct\n  type_url: t\n  value: {b: 1}\n");
        assert_eq!(v, canon("a: {'@type': t, b: 1}"));
    }

    #[test]
    fn one_value_for_a_repeated_field_is_a_list() {
        assert_eq!(canon("listeners: {name: a}"), canon("listeners: [{name: a}]"));
        assert_eq!(canon("domains: '*'"), canon("domains: ['*']"));
        assert_eq!(canon("listeners: [{name: a}]"), canon("listeners: [{name: a}]"));
    }

    #[test]
    fn enum_values_ignore_case_and_data_is_kept() {
        assert_eq!(canon("codec_type: auto\ntype: strict_dns"), canon("codec_type: AUTO\ntype: STRICT_DNS"));
        assert_eq!(
            canon("configuration: {type: abc, listeners: x}"),
            canon("configuration: {type: abc, listeners: x}")
        );
        let v = canon("metadata: {filter_metadata: {k: {type: lower}}}");
        assert_eq!(v["metadata"]["filter_metadata"]["k"]["type"], Value::from("lower"));
    }
}
