//! What Envoy's bootstrap loader accepts beyond protobuf's canonical JSON, and the name errors it
//! gives, applied to the YAML tree with the schema in hand:
//!
//! - a `typed_config` wrapped in `udpa.type.v1.TypedStruct` or `xds.type.v3.TypedStruct`
//!   (`type_url` + `value`) is checked as the message `type_url` names, as if written inline (and
//!   kept as written: Envoy's `/config_dump` shows the wrapper);
//! - a repeated field written as one value (`listeners:` as a mapping) is a list of that value;
//! - enum values are matched without regard to case (`codec_type: auto`), as Envoy parses with
//!   `case_insensitive_enum_parsing`;
//! - a name that is no field of its message, an `@type` that is no message of Envoy's API, and two
//!   members of one `oneof` are refused with the path of the offending key.
//!
//! Values of the well-known types (`Struct`, `Value`, durations, wrappers) are data: they are
//! left exactly as written, as is everything inside an `Any` of a type the schema lacks.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_yaml_ng::{Mapping, Value};

use super::{index, join, pool, shown};
use crate::config::ConfigError;

/// The two `TypedStruct` wrappers Envoy unpacks.
const TYPED_STRUCTS: &[&str] =
    &["type.googleapis.com/udpa.type.v1.TypedStruct", "type.googleapis.com/xds.type.v3.TypedStruct"];

/// `google.protobuf.Any`.
const ANY: &str = "google.protobuf.Any";

/// Envoy's reading of YAML scalars (its YAML-to-`Value` step, before protobuf sees the tree): an
/// integer that fits in 32 bits is a number, a larger one and every float are strings (`n: 2.5`
/// in a `Struct` reads back as `"2.5"`). Fields of numeric type take either, so only `Struct`s
/// show the difference.
pub(super) fn yaml_scalars(v: &mut Value) {
    match v {
        Value::Number(n) => {
            let small_int = n.as_i64().is_some_and(|i| i32::try_from(i).is_ok());
            if !small_int {
                *v = Value::String(n.to_string());
            }
        }
        Value::Mapping(m) => m.iter_mut().for_each(|(_, child)| yaml_scalars(child)),
        Value::Sequence(items) => items.iter_mut().for_each(yaml_scalars),
        Value::Tagged(t) => yaml_scalars(&mut t.value),
        _ => {}
    }
}

/// Rewrites the message `v` (of type `desc`, at `path`) in place into canonical form.
pub(super) fn apply(v: &mut Value, desc: &MessageDescriptor, path: &str) -> Result<(), ConfigError> {
    let Some(m) = untagged(v).as_mapping_mut() else { return Ok(()) };
    if desc.full_name() == ANY {
        return any(m, path);
    }
    if desc.full_name().starts_with("google.protobuf.") {
        return Ok(());
    }
    fields(m, desc, path, &[])
}

/// The fields of a mapping that is a `desc`; `skip` are keys that are not fields (`@type`).
fn fields(m: &mut Mapping, desc: &MessageDescriptor, path: &str, skip: &[&str]) -> Result<(), ConfigError> {
    let mut oneofs: Vec<(String, String)> = Vec::new();
    for (k, child) in m.iter_mut() {
        let Some(key) = k.as_str() else {
            return Err(ConfigError::new(shown(path), format!("a field name must be a string, not {k:?}")));
        };
        if skip.contains(&key) {
            continue;
        }
        let here = join(path, key);
        let field = desc.get_field_by_name(key).or_else(|| desc.get_field_by_json_name(key)).ok_or_else(|| {
            ConfigError::new(&here, format!("unknown field `{key}`: Envoy's {} has no such field", desc.full_name()))
        })?;
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            if let Some((_, other)) = oneofs.iter().find(|(o, _)| o == oneof.name()) {
                return Err(ConfigError::new(
                    &here,
                    format!("`{other}` is set too; only one of the `{}` fields may be set", oneof.name()),
                ));
            }
            oneofs.push((oneof.name().to_string(), key.to_string()));
        }
        value(untagged(child), &field, &here)?;
    }
    Ok(())
}

/// One field's value.
fn value(v: &mut Value, field: &FieldDescriptor, path: &str) -> Result<(), ConfigError> {
    if v.is_null() {
        return Ok(());
    }
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { return Ok(()) };
        let value_field = entry.map_entry_value_field();
        if let Some(m) = v.as_mapping_mut() {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_string);
                single(untagged(item), &value_field.kind(), &join(path, &key), false)?;
            }
        }
        return Ok(());
    }
    if field.is_list() {
        if !matches!(v, Value::Sequence(_)) {
            *v = Value::Sequence(vec![std::mem::take(v)]);
        }
        let Value::Sequence(items) = v else { unreachable!("made a sequence above") };
        for (i, item) in items.iter_mut().enumerate() {
            single(untagged(item), &field.kind(), &index(path, i), false)?;
        }
        return Ok(());
    }
    single(v, &field.kind(), path, field.name() == "typed_config")
}

/// One value of kind `kind`; `extension` when it is an extension's `typed_config`, where Envoy
/// unwraps a `TypedStruct`.
fn single(v: &mut Value, kind: &Kind, path: &str, extension: bool) -> Result<(), ConfigError> {
    match kind {
        Kind::Enum(e) => {
            if let Value::String(s) = v {
                if let Some(named) = e.values().find(|n| n.name().eq_ignore_ascii_case(s)) {
                    *s = named.name().to_string();
                }
            }
            Ok(())
        }
        Kind::Message(desc) => {
            if let Some(inner) = v.as_mapping().filter(|_| extension).and_then(typed_struct_contents) {
                let any = pool().get_message_by_name(ANY).expect("Envoy's schema has Any");
                super::normalize(inner, &any, path)?;
            }
            apply(v, desc, path)
        }
        _ => Ok(()),
    }
}

/// An `Any`: its fields are those of the message `@type` names.
fn any(m: &mut Mapping, path: &str) -> Result<(), ConfigError> {
    let Some(type_url) = m.get("@type").and_then(Value::as_str).map(str::to_string) else {
        return Ok(());
    };
    let name = type_url.rsplit_once('/').map_or(type_url.as_str(), |(_, n)| n);
    let Some(desc) = pool().get_message_by_name(name) else {
        return Err(ConfigError::new(join(path, "@type"), format!("`{type_url}` is not a message of Envoy's API")));
    };
    if desc.full_name().starts_with("google.protobuf.") {
        // Well-known types in an `Any` are `{"@type": …, "value": …}`: data.
        return Ok(());
    }
    fields(m, &desc, path, &["@type"])
}

/// For `{"@type": TypedStruct, type_url: T, value: {...}}`, the message it wraps:
/// `{"@type": T, ...}`.
pub(super) fn typed_struct_contents(m: &Mapping) -> Option<Value> {
    if !m.get("@type").and_then(Value::as_str).is_some_and(|t| TYPED_STRUCTS.contains(&t)) {
        return None;
    }
    let mut out = Mapping::new();
    out.insert(Value::from("@type"), m.get("type_url").cloned().unwrap_or(Value::String(String::new())));
    match m.get("value") {
        Some(Value::Mapping(fields)) => out.extend(fields.clone()),
        Some(Value::Null) | None => {}
        // Not a Struct: leave a field that is refused, with its path.
        Some(other) => {
            out.insert(Value::from("value"), other.clone());
        }
    }
    Some(Value::Mapping(out))
}

/// A YAML tag (`!something`) does not change what a value is.
fn untagged(v: &mut Value) -> &mut Value {
    match v {
        Value::Tagged(t) => untagged(&mut t.value),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::super::normalize_bootstrap;
    use super::*;

    fn canon(yaml: &str) -> Value {
        normalize_bootstrap(serde_yaml_ng::from_str(yaml).unwrap()).unwrap().model
    }

    fn refused(yaml: &str) -> ConfigError {
        normalize_bootstrap(serde_yaml_ng::from_str(yaml).unwrap()).unwrap_err()
    }

    const HCM: &str =
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    fn listener(typed_config: &str) -> String {
        format!(
            "static_resources:\n  listeners:\n  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}\n    filter_chains:\n    - filters:\n      - name: hcm\n        typed_config: {typed_config}\n"
        )
    }

    #[test]
    fn typed_struct_is_the_message_it_names() {
        let wrapped = canon(&listener(&format!(
            "{{'@type': type.googleapis.com/udpa.type.v1.TypedStruct, type_url: {HCM}, value: {{stat_prefix: s, codec_type: auto, route_config: {{}}}}}}"
        )));
        let inline =
            canon(&listener(&format!("{{'@type': {HCM}, stat_prefix: s, codec_type: AUTO, route_config: {{}}}}")));
        assert_eq!(wrapped, inline);
        // The dump keeps the wrapper, as Envoy's does.
        let dump = normalize_bootstrap(serde_yaml_ng::from_str(&listener(&format!(
            "{{'@type': type.googleapis.com/udpa.type.v1.TypedStruct, type_url: {HCM}, value: {{stat_prefix: s, route_config: {{}}}}}}"
        ))).unwrap()).unwrap().dump;
        let typed_config = &dump["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(typed_config["@type"], Value::from("type.googleapis.com/udpa.type.v1.TypedStruct"));
        let e = refused(&listener(&format!(
            "{{'@type': type.googleapis.com/xds.type.v3.TypedStruct, type_url: {HCM}, value: {{stat_prefx: s}}}}"
        )));
        assert_eq!(e.path, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefx");
    }

    #[test]
    fn one_value_for_a_repeated_field_is_a_list() {
        let one = "static_resources:\n  listeners: {name: a, address: {socket_address: {address: 127.0.0.1, port_value: 1}}}\n";
        let list = "static_resources:\n  listeners: [{name: a, address: {socket_address: {address: 127.0.0.1, port_value: 1}}}]\n";
        assert_eq!(canon(one), canon(list));
    }

    #[test]
    fn enum_values_ignore_case_and_data_is_kept() {
        let v = canon("static_resources: {clusters: [{name: c, type: strict_dns, lb_policy: least_request, metadata: {filter_metadata: {k: {type: lower}}}}]}");
        let c = &v["static_resources"]["clusters"][0];
        assert_eq!(c["type"], Value::from("STRICT_DNS"));
        assert_eq!(c["lb_policy"], Value::from("LEAST_REQUEST"));
        assert_eq!(c["metadata"]["filter_metadata"]["k"]["type"], Value::from("lower"));
    }

    #[test]
    fn names_no_message_has_are_refused_where_they_are() {
        let e = refused("static_resources: {clusters: [{name: c, conect_timeout: 1s}]}");
        assert_eq!(e.path, "static_resources.clusters[0].conect_timeout");
        assert!(e.message.contains("envoy.config.cluster.v3.Cluster"), "{e}");
        let e = refused(&listener("{'@type': type.googleapis.com/envoy.Nothing}"));
        assert_eq!(e.path, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.@type");
        let e = refused("admin: {address: {socket_address: {address: 127.0.0.1, port_value: 1, named_port: x}}}");
        assert_eq!(e.path, "admin.address.socket_address.named_port");
        assert!(e.message.contains("port_value"), "{e}");
    }
}
