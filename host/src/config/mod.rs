//! Envoy's v3 bootstrap YAML (the subset filter authors use), read into a plan the server runs.
//!
//! Errors name the YAML path (`static_resources.clusters[1].type: …`). Fields sluice does not model
//! are errors when they would change behaviour, and one warning each when they are harmless
//! (stats, tracing, access logs).

pub mod model;
mod plan;
mod validate;

pub use plan::{
    ClusterPlan, HeaderCondition, HeaderTest, HttpListener, ListenerKind, ListenerPlan, PathMatch, Plan, PluginSpec,
    RouteAction, RoutePlan, VirtualHostPlan,
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
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
    parse(&text, Path::new("."))
}

/// Parses and checks bootstrap YAML; `base` resolves relative file names.
pub fn parse(text: &str, base: &Path) -> Result<Plan, ConfigError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let bootstrap: model::Bootstrap = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { "(top level)".to_string() } else { path };
        ConfigError::new(path, e.into_inner().to_string())
    })?;
    validate::plan(&bootstrap, base)
}
