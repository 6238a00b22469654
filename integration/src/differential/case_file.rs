//! Differences kept as data: `integration/cases/differential/NAME.yaml`, one scenario each, played
//! by `tests/differential.rs` in Envoy and `sluice serve`. A case fails while the two differ,
//! unless it says the difference is deliberate (then it fails when they agree: the README's
//! account of the difference would be stale).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::engine::Difference;
use super::scenario::Scenario;
use crate::wasm::workspace_root;

/// One case file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseFile {
    /// What the case is about, for a person.
    pub about: String,
    /// Where it came from (the seed of a run, or a person).
    #[serde(default)]
    pub found: String,
    /// When set, the reason sluice differs from Envoy on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliberate: Option<String>,
    /// The scenario.
    pub scenario: Scenario,
}

/// Where the case files live.
pub fn dir() -> PathBuf {
    workspace_root().join("integration/cases/differential")
}

/// Every case file, by file name.
///
/// # Errors
/// When the directory or a file cannot be read or parsed.
pub fn all() -> Result<Vec<(String, CaseFile)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir()) else { return Ok(out) };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        out.push((file_name(&path), read(&path)?));
    }
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads one case file.
///
/// # Errors
/// When it cannot be read or is not a case.
pub fn read(path: &Path) -> Result<CaseFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Writes `difference` as a new case file in `into`; its path.
///
/// # Errors
/// When the file cannot be written.
pub fn write(difference: &Difference, into: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(into)?;
    let parts = difference.parts();
    let what: Vec<&str> = [(parts.client, "client"), (parts.upstream, "upstream"), (parts.callbacks, "callbacks")]
        .iter()
        .filter_map(|(on, name)| on.then_some(*name))
        .collect();
    let case = CaseFile {
        about: format!("differs in: {}", what.join(", ")),
        found: difference.seed.map(|s| format!("seed {s}")).unwrap_or_default(),
        deliberate: None,
        scenario: difference.shrunk.clone(),
    };
    let name = format!("{}-{:08x}.yaml", difference.seed.unwrap_or(0), fingerprint(&difference.shrunk.to_string()));
    let path = into.join(name);
    std::fs::write(&path, serde_yaml_ng::to_string(&case)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// FNV-1a, to name a case by its scenario.
fn fingerprint(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}
