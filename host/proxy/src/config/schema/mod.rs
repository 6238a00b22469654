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

use std::sync::{Arc, Mutex, Weak};

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_yaml_ng::Value;

use super::ConfigError;

/// The descriptor set of Envoy's API (`envoy-types`' `types.bin`), copied in by `build.rs`.
static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin"));

/// The bootstrap's message.
const BOOTSTRAP: &str = "envoy.config.bootstrap.v3.Bootstrap";

/// Envoy's schema, decoded. Decoding takes ~75 ms and the pool holds ~50 MB, so it lives only
/// while someone holds a `Schema`: reading a configuration holds one from start to end, and a
/// serving proxy holds none.
#[derive(Debug, Clone)]
pub struct Schema(Arc<DescriptorPool>);

/// The pool in use, if any.
static LIVE: Mutex<Weak<DescriptorPool>> = Mutex::new(Weak::new());

/// The schema in use, or a fresh decode of it. Hold the result across a batch of configuration
/// work so that the pool is decoded once for all of it.
pub fn hold() -> Schema {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = live.upgrade() {
        return Schema(pool);
    }
    let mut pool = DescriptorPool::decode(DESCRIPTORS).expect("the embedded descriptor set is valid");
    pool.add_file_descriptor_protos(typed_structs()).expect("the TypedStruct files fit the pool");
    let pool = Arc::new(pool);
    *live = Arc::downgrade(&pool);
    Schema(pool)
}

/// The pool, for the code of this module (whose entry points hold a [`Schema`] throughout).
fn pool() -> Arc<DescriptorPool> {
    hold().0
}

/// `xds.type.v3.TypedStruct` and `udpa.type.v1.TypedStruct` (`string type_url = 1;
/// google.protobuf.Struct value = 2;`), which Envoy's API refers to by name only: the
/// descriptor set lacks the files that define them.
fn typed_structs() -> Vec<prost_reflect::prost_types::FileDescriptorProto> {
    use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
    use prost_reflect::prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};
    let field = |name: &str, json: &str, number, kind: Type, type_name: Option<&str>| FieldDescriptorProto {
        name: Some(name.into()),
        json_name: Some(json.into()),
        number: Some(number),
        label: Some(Label::Optional.into()),
        r#type: Some(kind.into()),
        type_name: type_name.map(Into::into),
        ..Default::default()
    };
    [("xds/type/v3/typed_struct.proto", "xds.type.v3"), ("udpa/type/v1/typed_struct.proto", "udpa.type.v1")]
        .into_iter()
        .map(|(file, package)| FileDescriptorProto {
            name: Some(file.into()),
            package: Some(package.into()),
            dependency: vec!["google/protobuf/struct.proto".into()],
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("TypedStruct".into()),
                field: vec![
                    field("type_url", "typeUrl", 1, Type::String, None),
                    field("value", "value", 2, Type::Message, Some(".google.protobuf.Struct")),
                ],
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect()
}

/// A bootstrap as read, in the two forms sluice uses.
#[derive(Debug, Clone)]
pub(crate) struct Canonical {
    /// As Envoy holds it and writes it back in `/config_dump`: proto field names, defaults left
    /// out, enum names in upper case, `TypedStruct` wrappers kept as written.
    pub dump: Value,
    /// As the model reads it: the same with every `TypedStruct` replaced by the message it names.
    pub model: Value,
}

/// Reads a bootstrap tree as Envoy does, or gives the first error with its YAML path.
pub(crate) fn normalize_bootstrap(tree: Value) -> Result<Canonical, ConfigError> {
    let _schema = hold();
    let bootstrap = pool().get_message_by_name(BOOTSTRAP).expect("Envoy's schema has the bootstrap");
    let mut tree = tree;
    leniency::yaml_scalars(&mut tree);
    let dump = normalize(tree, &bootstrap, "")?;
    let mut model = dump.clone();
    unwrap_typed_structs(&mut model)?;
    Ok(Canonical { dump, model })
}

/// Reads the message `tree` (of type `desc`, at `path`) as Envoy does and writes it back in
/// canonical form.
fn normalize(mut tree: Value, desc: &MessageDescriptor, path: &str) -> Result<Value, ConfigError> {
    leniency::apply(&mut tree, desc, path)?;
    let message = deserialize(tree, desc, path)?;
    rules::check(&message, path)?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    message
        .serialize_with_options(serde_yaml_ng::value::Serializer, &options)
        .map_err(|e| ConfigError::new(shown(path), format!("the configuration cannot be written back: {e}")))
}

/// Replaces each `TypedStruct` (already checked by [`leniency`]) with the canonical form of the
/// message it wraps.
fn unwrap_typed_structs(v: &mut Value) -> Result<(), ConfigError> {
    match v {
        Value::Mapping(m) => {
            if let Some(inner) = leniency::typed_struct_contents(m) {
                let any = pool().get_message_by_name("google.protobuf.Any").expect("Envoy's schema has Any");
                *v = normalize(inner, &any, "")?;
                return unwrap_typed_structs(v);
            }
            m.iter_mut().try_for_each(|(_, child)| unwrap_typed_structs(child))
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(unwrap_typed_structs),
        _ => Ok(()),
    }
}

/// The bytes Envoy hands a plugin for a `configuration` of a type it does not unwrap (anything but
/// `StringValue` and `BytesValue`): the message, serialized as protobuf.
pub(crate) fn any_message_bytes(any: Value) -> Result<Vec<u8>, ConfigError> {
    let _schema = hold();
    let desc = pool().get_message_by_name("google.protobuf.Any").expect("Envoy's schema has Any");
    let message = deserialize(any, &desc, "")?;
    Ok(message.get_field_by_name("value").and_then(|v| v.as_bytes().map(|b| b.to_vec())).unwrap_or_default())
}

/// `envoy.config.core.v3.Metadata` (`filter_metadata`, `typed_filter_metadata`, canonical form)
/// serialized as protobuf: what `xds.route_metadata` and its kin are as a whole.
pub(crate) fn metadata_proto(metadata: &Value) -> Result<Vec<u8>, ConfigError> {
    encode("envoy.config.core.v3.Metadata", metadata.clone())
}

/// The node (`id`, `cluster`, `metadata`) serialized as an `envoy.config.core.v3.Node`: what
/// `xds.node` is as a whole.
pub fn node_proto(node: &sluice_core::vm::NodeInfo) -> Vec<u8> {
    let _schema = hold();
    let mut m = serde_yaml_ng::Mapping::new();
    m.insert("id".into(), node.id.as_str().into());
    m.insert("cluster".into(), node.cluster.as_str().into());
    if !node.metadata.is_null() {
        m.insert("metadata".into(), node.metadata.clone());
    }
    // The metadata was read against the schema already: this cannot fail.
    encode("envoy.config.core.v3.Node", Value::Mapping(m)).unwrap_or_default()
}

/// A canonical tree of the message `type_name`, serialized as protobuf.
fn encode(type_name: &str, tree: Value) -> Result<Vec<u8>, ConfigError> {
    let _schema = hold();
    let desc = pool().get_message_by_name(type_name).expect("Envoy's schema has the message");
    Ok(prost_reflect::prost::Message::encode_to_vec(&deserialize(tree, &desc, "")?))
}

/// Whether `path` (`a.b.c`, protobuf field names) names a field of the message `type_name`
/// (`envoy.admin.v3.ClustersConfigDump`), each part inside the one before: what a `FieldMask`
/// on that message may hold.
pub fn has_field_path(type_name: &str, path: &str) -> bool {
    let _schema = hold();
    let Some(mut desc) = pool().get_message_by_name(type_name) else { return false };
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(field) = desc.get_field_by_name(part) else { return false };
        if parts.peek().is_none() {
            return true;
        }
        match field.kind() {
            // What an `Any` holds is known only from its value: Envoy looks inside it.
            prost_reflect::Kind::Message(m) if m.full_name() == "google.protobuf.Any" => return true,
            prost_reflect::Kind::Message(m) => desc = m,
            _ => return false,
        }
    }
    false
}

/// protobuf's JSON mapping, with the path of a value it refuses (`path` is where `tree` is).
fn deserialize(tree: Value, desc: &MessageDescriptor, path: &str) -> Result<DynamicMessage, ConfigError> {
    let mut track = serde_path_to_error::Track::new();
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let tracked = serde_path_to_error::Deserializer::new(tree, &mut track);
    DynamicMessage::deserialize_with_options(desc.clone(), tracked, &options).map_err(|e| {
        let inner = track.path().to_string();
        let at = match (path, inner.as_str()) {
            (p, ".") => shown(p),
            ("", i) => i.to_string(),
            (p, i) if i.starts_with('[') => format!("{p}{i}"),
            (p, i) => format!("{p}.{i}"),
        };
        ConfigError::new(at, e.to_string())
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
        normalize_bootstrap(serde_yaml_ng::from_str(yaml).unwrap()).map(|c| c.model)
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
    fn floats_are_strings_as_in_envoys_yaml_reading() {
        let v = read("node: {metadata: {f: 2.5, i: 7, big: 3000000000}}\nstatic_resources: {clusters: [{name: c, common_lb_config: {healthy_panic_threshold: {value: 40.5}}}]}").unwrap();
        assert_eq!(v["node"]["metadata"]["f"], Value::from("2.5"));
        assert_eq!(v["node"]["metadata"]["i"], Value::from(7.0));
        assert_eq!(v["node"]["metadata"]["big"], Value::from("3000000000"));
        // A double field takes the string.
        assert_eq!(
            v["static_resources"]["clusters"][0]["common_lb_config"]["healthy_panic_threshold"]["value"],
            Value::from(40.5)
        );
    }

    #[test]
    fn a_wrong_type_is_refused_with_its_path() {
        let e = read("static_resources: {clusters: [{name: c, connect_timeout: soon}]}").unwrap_err();
        assert_eq!(e.path, "static_resources.clusters[0].connect_timeout");
        let e = read("admin: {address: {socket_address: {address: 127.0.0.1, port_value: [1]}}}").unwrap_err();
        assert_eq!(e.path, "admin.address.socket_address.port_value");
    }
}
