//! Envoy's v3 bootstrap YAML (the subset filter authors use), read into a plan the server runs.
//!
//! Errors name the YAML path (`static_resources.clusters[1].type: …`). Fields sluice does not model
//! are errors when they would change behaviour, and one warning each when they are harmless
//! (stats, tracing, access logs).

pub mod log_format;
pub mod model;
mod plan;
mod schema;
mod validate;

pub use schema::{has_field_path, hold as hold_schema, node_proto, Schema};

pub use plan::{
    AccessLogPlan, ClusterPlan, Codec, HeaderCondition, HeaderTest, Http1Options, HttpListener, ListenerKind,
    ListenerPlan, PathMatch, Plan, PluginSpec, RouteAction, RoutePlan, VirtualHostPlan,
};

use std::path::Path;

/// A configuration problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The YAML path (`static_resources.listeners[0].address`), or the file for read errors.
    pub path: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// Reads and checks a bootstrap file. Relative file names in it are resolved from the working
/// directory, as Envoy does, so one file runs in both.
///
/// # Errors
/// A [`ConfigError`] naming the YAML path and what is wrong there. A file that cannot be read is one too,
/// under the file's name.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
    parse(&text, Path::new("."))
}

/// Parses and checks bootstrap YAML; `base` resolves relative file names.
///
/// # Errors
/// A [`ConfigError`] naming the YAML path and what is wrong there.
pub fn parse(text: &str, base: &Path) -> Result<Plan, ConfigError> {
    let _schema = schema::hold();
    let tree: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::new("(top level)", e.to_string()))?;
    let canonical = schema::normalize_bootstrap(tree)?;
    let bootstrap: model::Bootstrap = serde_path_to_error::deserialize(canonical.model).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { "(top level)".to_string() } else { path };
        ConfigError::new(path, explain(&e.into_inner().to_string()))
    })?;
    let mut plan = validate::plan(&bootstrap, base)?;
    plan.bootstrap = canonical.dump;
    plan.node.proto = node_proto(&plan.node);
    Ok(plan)
}

/// Reads bootstrap YAML against Envoy's API schema only (no module files are read, nothing of
/// sluice's model is checked) and returns it in canonical form, as `/config_dump` shows it: what
/// Envoy 1.40 would accept, with its errors and their YAML paths.
///
/// ```
/// let tree = sluice_proxy::config::canonical("staticResources: {clusters: [{name: c, type: strict_dns}]}").unwrap();
/// assert_eq!(tree["static_resources"]["clusters"][0]["type"], "STRICT_DNS");
/// let err = sluice_proxy::config::canonical("static_resources: {clusters: [{name: ''}]}").unwrap_err();
/// assert_eq!(err.path, "static_resources.clusters[0].name");
/// ```
///
/// # Errors
/// A [`ConfigError`] naming the YAML path and what is wrong there.
pub fn canonical(text: &str) -> Result<serde_yaml_ng::Value, ConfigError> {
    let tree: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::new("(top level)", e.to_string()))?;
    Ok(schema::normalize_bootstrap(tree)?.dump)
}

/// Merges `over` (Envoy's `--config-yaml`) into the bootstrap `base`, as protobuf's `MergeFrom`
/// does: mappings field by field, lists appended, scalars replaced.
///
/// # Errors
/// A [`ConfigError`] naming the YAML path and what is wrong there. Either text that is not YAML is one at
/// `(top level)`.
pub fn merge_yaml(base: &str, over: &str) -> Result<String, ConfigError> {
    fn merge(into: &mut serde_yaml_ng::Value, from: serde_yaml_ng::Value) {
        use serde_yaml_ng::Value;
        match (into, from) {
            (Value::Mapping(a), Value::Mapping(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(slot) => merge(slot, v),
                        None => {
                            a.insert(k, v);
                        }
                    }
                }
            }
            (Value::Sequence(a), Value::Sequence(b)) => a.extend(b),
            (slot, v) => *slot = v,
        }
    }
    let read = |t: &str, what: &str| {
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(t).map_err(|e| ConfigError::new(what, e.to_string()))
    };
    let mut tree = read(base, "(top level)")?;
    merge(&mut tree, read(over, "--config-yaml")?);
    serde_yaml_ng::to_string(&tree).map_err(|e| ConfigError::new("--config-yaml", e.to_string()))
}

/// serde names an `@type` it has no variant for "unknown variant"; a user needs to hear that sluice
/// lacks that extension.
fn explain(message: &str) -> String {
    match message.strip_prefix("unknown variant `").and_then(|m| m.split_once('`')) {
        Some((type_url, rest)) if type_url.starts_with("type.googleapis.com/") => {
            let known = rest.split_once("expected ").map_or("", |(_, k)| k);
            format!("sluice does not have the extension `{type_url}` (it has {known})")
        }
        _ => message.to_string(),
    }
}
