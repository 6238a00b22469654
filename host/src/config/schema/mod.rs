//! Envoy's API schema, from the descriptor set of Envoy's data-plane API (embedded by `build.rs`).
//!
//! Every bootstrap is read against it before sluice's model sees it, so that what is accepted and
//! refused is decided by Envoy's own messages rather than by hand-written structs:
//!
//! 1. [`leniency`]: the spellings Envoy's loader accepts besides the canonical one (`TypedStruct`
//!    wrappers, one value for a repeated field, enum names in any case), and the errors it gives for
//!    names no message has (unknown fields, unknown `@type`s, two members of one `oneof`);
//! 2. protobuf's JSON mapping (field names or their camelCase JSON names, durations as strings,
//!    numbers as strings, `Any`), through `prost-reflect`;
//! 3. [`rules`]: the `protoc-gen-validate` constraints Envoy checks on every message (required
//!    fields, lengths, ranges, header-name patterns, …).
//!
//! What comes out is the same bootstrap in one canonical form (proto field names, enum names in
//! upper case, `TypedStruct`s unwrapped), which is what the model reads and `/config_dump` shows.

mod leniency;
mod rules;

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_yaml_ng::Value;

use super::ConfigError;

/// The descriptor set of Envoy's API (`envoy-types`' `types.bin`), copied in by `build.rs`.
static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin"));

/// The bootstrap's message.
const BOOTSTRAP: &str = "envoy.config.bootstrap.v3.Bootstrap";

/// The decoded pool, shared for the life of the process (decoding takes tens of milliseconds, so
/// it is done once and only when a configuration is read).
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTORS).expect("the embedded descriptor set is valid"))
}

/// Reads a bootstrap tree as Envoy does and returns it in canonical form, or the first error with
/// its YAML path.
pub(crate) fn normalize_bootstrap(tree: Value) -> Result<Value, ConfigError> {
    let bootstrap = pool().get_message_by_name(BOOTSTRAP).expect("Envoy's schema has the bootstrap");
    normalize(tree, &bootstrap)
}

/// [`normalize_bootstrap`] for any message of Envoy's API.
fn normalize(mut tree: Value, desc: &MessageDescriptor) -> Result<Value, ConfigError> {
    leniency::apply(&mut tree, desc, "")?;
    let message = deserialize(tree, desc)?;
    rules::check(&message, "")?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    message
        .serialize_with_options(serde_yaml_ng::value::Serializer, &options)
        .map_err(|e| ConfigError::new("(top level)", format!("the configuration cannot be written back: {e}")))
}

/// The bytes Envoy hands a plugin for a `configuration` of a type it does not unwrap (anything but
/// `StringValue` and `BytesValue`): the message, serialized as protobuf.
pub(crate) fn any_message_bytes(any: Value) -> Result<Vec<u8>, ConfigError> {
    let desc = pool().get_message_by_name("google.protobuf.Any").expect("Envoy's schema has Any");
    let message = deserialize(any, &desc)?;
    Ok(message.get_field_by_name("value").and_then(|v| v.as_bytes().map(|b| b.to_vec())).unwrap_or_default())
}

/// protobuf's JSON mapping, with the path of a value it refuses.
fn deserialize(tree: Value, desc: &MessageDescriptor) -> Result<DynamicMessage, ConfigError> {
    let mut track = serde_path_to_error::Track::new();
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let tracked = serde_path_to_error::Deserializer::new(tree, &mut track);
    DynamicMessage::deserialize_with_options(desc.clone(), tracked, &options).map_err(|e| {
        let path = track.path().to_string();
        ConfigError::new(if path == "." { "(top level)".to_string() } else { path }, e.to_string())
    })
}

/// `parent.name`, or `name` at the top.
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`.
fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The path for an error: the top level has a name.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "(top level)".to_string()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Value, ConfigError> {
        normalize_bootstrap(serde_yaml_ng::from_str(yaml).unwrap())
    }

    #[test]
    fn camel_case_names_and_durations_come_out_canonical() {
        let v = read("staticResources: {clusters: [{name: c, connectTimeout: 0.25s, type: strict_dns}]}").unwrap();
        let c = &v["static_resources"]["clusters"][0];
        assert_eq!(c["connect_timeout"], Value::from("0.250s"));
        assert_eq!(c["type"], Value::from("STRICT_DNS"));
    }

    #[test]
    fn an_any_of_another_type_is_its_protobuf_bytes() {
        let any =
            serde_yaml_ng::from_str("{'@type': type.googleapis.com/google.protobuf.UInt32Value, value: 150}").unwrap();
        // Field 1, varint 150: the encoding in protobuf's own documentation.
        assert_eq!(any_message_bytes(any).unwrap(), [0x08, 0x96, 0x01]);
    }

    #[test]
    fn a_wrong_type_is_refused_with_its_path() {
        let e = read("static_resources: {clusters: [{name: c, connect_timeout: soon}]}").unwrap_err();
        assert_eq!(e.path, "static_resources.clusters[0].connect_timeout");
        let e = read("admin: {address: {socket_address: {address: 127.0.0.1, port_value: [1]}}}").unwrap_err();
        assert_eq!(e.path, "admin.address.socket_address.port_value");
    }
}
