//! Cases as data: a YAML file names a sample filter, its configuration, and exchanges with what the
//! client must see. [`run`] plays each exchange in the harness, in `sluice serve` and in the real
//! Envoy; all three must agree, and the expectations must hold.
//!
//! ```yaml
//! filter: headers                 # a crate under filters/
//! config: { request: { set: { x-env: prod } } }   # becomes the plugin's JSON configuration
//! clusters: [auth]                # extra clusters, all pointing at the test upstream
//! exchanges:
//!   - name: sets a header
//!     request: { method: GET, path: /, headers: { x-a: "1" } }
//!     expect: { status: 200, body_contains: ["x-env: prod"], headers: { }, absent: [ ] }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::compare::{Case, SideBySide};
use crate::envoy::WasmFilter;
use crate::observed::Observed;
use crate::sluice::SluiceServe;

/// One case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The sample filter (crate name under `filters/`).
    pub filter: String,
    /// Its configuration, sent as JSON.
    #[serde(default)]
    pub config: serde_yaml_ng::Value,
    /// Extra clusters (they all reach the test upstream).
    #[serde(default)]
    pub clusters: Vec<String>,
    /// The exchanges, in order.
    pub exchanges: Vec<Exchange>,
}

/// One request and what must come back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// What it shows.
    pub name: String,
    /// The request.
    pub request: Request,
    /// The expectations.
    #[serde(default)]
    pub expect: Expect,
}

/// A request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Method (GET by default).
    #[serde(default = "get")]
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body.
    #[serde(default)]
    pub body: String,
}

fn get() -> String {
    "GET".into()
}

/// What the client must see.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status code.
    pub status: Option<u16>,
    /// Response headers with these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response headers that must not be there.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Texts the body contains.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// The exact body.
    pub body: Option<String>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn check(expect: &Expect, o: &Observed) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(s) = expect.status {
        if o.status != s {
            problems.push(format!("status {} (expected {s})", o.status));
        }
    }
    let header = |n: &str| o.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    for (k, v) in &expect.headers {
        if header(k) != Some(v) {
            problems.push(format!("header {k}: {:?} (expected {v:?})", header(k)));
        }
    }
    for k in &expect.absent {
        if header(k).is_some() {
            problems.push(format!("header {k} is present"));
        }
    }
    for t in &expect.body_contains {
        if !o.body.contains(t.as_str()) {
            problems.push(format!("body lacks {t:?}"));
        }
    }
    if let Some(b) = &expect.body {
        if &o.body != b {
            problems.push(format!("body is {:?} (expected {b:?})", o.body));
        }
    }
    problems
}

/// Runs one case file in the three places. Fails with every disagreement and unmet expectation.
pub fn run(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let case: CaseFile = serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let configuration = match &case.config {
        serde_yaml_ng::Value::Null => String::new(),
        v => serde_json::to_string(v)?,
    };
    let filter = WasmFilter {
        wasm: crate::wasm::sample_filter(&case.filter),
        name: case.filter.clone(),
        root_id: case.filter.clone(),
        vm_id: case.filter.clone(),
        configuration,
        failure_policy: None,
    };
    let clusters: Vec<&str> = case.clusters.iter().map(String::as_str).collect();
    let mut side = SideBySide::start(filter, &clusters, |b| b)?;
    let sluice = SluiceServe::start(&side.config)?;
    let mut failures = Vec::new();
    for ex in &case.exchanges {
        let mut c = Case {
            method: leak(&ex.request.method),
            path: leak(&ex.request.path),
            headers: vec![],
            body: leak(&ex.request.body),
        };
        for (k, v) in &ex.request.headers {
            c.headers.push((leak(k), leak(v)));
        }
        let envoy = side.envoy(&c)?;
        let harness = side.harness(&c)?;
        let raw = crate::client::send(sluice.port, c.method, c.path, &c.headers, c.body.as_bytes())?;
        let serve = Observed::from(&raw);
        if envoy != harness || envoy != serve {
            failures.push(format!(
                "{}: the three places disagree\n--- envoy ---\n{envoy}\n--- harness ---\n{harness}\n--- sluice serve ---\n{serve}",
                ex.name
            ));
            continue;
        }
        let problems = check(&ex.expect, &envoy);
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n{envoy}", ex.name, problems.join("; ")));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}: {} of {} exchanges failed\n\n{}",
            path.display(),
            failures.len(),
            case.exchanges.len(),
            failures.join("\n\n")
        );
    }
    Ok(())
}
