//! Cases as data: a YAML file names a sample filter, its configuration, and steps with what the
//! client must see. [`run`] plays each step in every [`Place`](crate::places::Place) (the harness,
//! `sluice serve`, the real Envoy, and any other host named by `SLUICE_CASES_HOST`); all must agree
//! with Envoy, and the expectations must hold.
//!
//! ```yaml
//! filter: auth                    # a crate under filters/
//! root_id: auth                   # which plugin of the module (default: the filter's name)
//! kind: http                      # or tcp: a network filter in front of tcp_proxy to an echo server
//! config: { cluster: auth }       # the plugin's configuration, sent as JSON
//! service: { root_id: collector, config: { } }   # a bootstrap service plugin from the same module
//! clusters: [auth, { name: dead, down: true }]   # extra clusters: the test upstream, or nobody
//! exchanges:
//!   - name: allowed
//!     request: { method: GET, path: /, headers: { x-user: alice } }
//!     expect: { status: 200, body_contains: ["x-user: alice"], headers: { }, absent: [ ] }
//!   - name: let the timer fire
//!     wait_ms: 600
//!   - name: three connections
//!     tcp: [ { send: "hello" }, { send: "hello" } ]
//!     expect: { connections: [ { reply: "hello" }, { closed: true } ], stats: { wasmcustom.x: 2 } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::envoy::WasmFilter;
use crate::observed::Observed;
use crate::places::{Answer, Place, Places, TcpSeen};

/// One case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The sample filter (crate name under `filters/`).
    pub filter: String,
    /// The plugin's root_id (default: the filter's name).
    #[serde(default)]
    pub root_id: Option<String>,
    /// HTTP filter or network filter.
    #[serde(default)]
    pub kind: Kind,
    /// Its configuration, sent as JSON.
    #[serde(default)]
    pub config: serde_yaml_ng::Value,
    /// A bootstrap service plugin from the same module and VM.
    #[serde(default)]
    pub service: Option<Service>,
    /// Extra clusters.
    #[serde(default)]
    pub clusters: Vec<ClusterSpec>,
    /// Every place must refuse to start, saying this (a configuration the plugin rejects).
    #[serde(default)]
    pub refused: Option<String>,
    /// The steps, in order.
    #[serde(default)]
    pub exchanges: Vec<Step>,
}

/// Whether the filter is an HTTP or a network filter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `envoy.filters.http.wasm` before the router; the route goes to the test upstream.
    #[default]
    Http,
    /// `envoy.filters.network.wasm` before `tcp_proxy` to an echo server.
    Tcp,
}

/// A bootstrap service plugin (`envoy.bootstrap.wasm`, singleton) from the filter's module.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Its root_id.
    pub root_id: String,
    /// Its configuration, sent as JSON.
    #[serde(default)]
    pub config: serde_yaml_ng::Value,
}

/// An extra cluster: a name (it reaches the test upstream) or a name with `down: true` (nothing
/// listens there).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ClusterSpec {
    /// Reaches the test upstream.
    Up(String),
    /// Spelled out.
    Spec {
        /// Cluster name.
        name: String,
        /// Nothing listens at its endpoint.
        #[serde(default)]
        down: bool,
    },
}

impl ClusterSpec {
    /// The cluster's name and whether it is down.
    pub fn parts(&self) -> (&str, bool) {
        match self {
            Self::Up(n) => (n, false),
            Self::Spec { name, down } => (name, *down),
        }
    }
}

/// One step: a request, TCP connections, or a pause.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What it shows.
    pub name: String,
    /// An HTTP request.
    #[serde(default)]
    pub request: Option<Request>,
    /// TCP connections, opened in order and held open until the step ends.
    #[serde(default)]
    pub tcp: Option<Vec<Connection>>,
    /// Let this much time pass (real time for proxies, virtual time in the harness).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// The expectations.
    #[serde(default)]
    pub expect: Expect,
}

/// A request.
#[derive(Debug, Clone, Deserialize)]
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
    /// Instead of `body`: this many bytes of `x`.
    #[serde(default)]
    pub body_size: Option<usize>,
}

impl Request {
    /// The body to send.
    pub fn body_bytes(&self) -> Vec<u8> {
        match self.body_size {
            Some(n) => vec![b'x'; n],
            None => self.body.clone().into_bytes(),
        }
    }
}

/// One TCP connection of a step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// What the client sends first.
    pub send: String,
}

fn get() -> String {
    "GET".into()
}

/// What must be seen after a step.
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
    /// For a TCP step, each connection in order.
    #[serde(default)]
    pub connections: Vec<TcpExpect>,
    /// Counter values as Envoy's `/stats` names them (`wasmcustom.<name>`).
    #[serde(default)]
    pub stats: BTreeMap<String, u64>,
    /// Texts the plugin's log must contain (within two seconds: `on_log` runs after the response).
    #[serde(default)]
    pub logs: Vec<String>,
}

/// What one TCP connection must see.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpExpect {
    /// Everything the client received.
    pub reply: Option<String>,
    /// Whether the proxy closed it.
    pub closed: Option<bool>,
}

fn check_http(expect: &Expect, o: &Observed, problems: &mut Vec<String>) {
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
}

fn check_tcp(expect: &Expect, seen: &[TcpSeen], problems: &mut Vec<String>) {
    for (i, (e, s)) in expect.connections.iter().zip(seen).enumerate() {
        if let Some(r) = &e.reply {
            if &s.reply != r {
                problems.push(format!("connection {i} got {:?} (expected {r:?})", s.reply));
            }
        }
        if let Some(c) = e.closed {
            if s.closed != c {
                problems.push(format!("connection {i} closed: {} (expected {c})", s.closed));
            }
        }
    }
}

/// Stats and logs, checked in one place (they may take a moment to show: `on_log` runs after the
/// client has its response).
fn check_side_effects(expect: &Expect, place: &mut dyn Place, problems: &mut Vec<String>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut missing = Vec::new();
        for (name, want) in &expect.stats {
            let got = place.stat(name)?;
            if got != Some(*want) {
                missing.push(format!("{}: stat {name} is {got:?} (expected {want})", place.name()));
            }
        }
        let log = if expect.logs.is_empty() { String::new() } else { place.log() };
        for t in &expect.logs {
            if !log.contains(t.as_str()) {
                missing.push(format!("{}: the log lacks {t:?}", place.name()));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            problems.extend(missing);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_config(v: &serde_yaml_ng::Value) -> Result<String> {
    Ok(match v {
        serde_yaml_ng::Value::Null => String::new(),
        v => serde_json::to_string(v)?,
    })
}

impl CaseFile {
    /// Reads and checks a case file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let case: CaseFile = serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for s in &case.exchanges {
            let kinds = [s.request.is_some(), s.tcp.is_some(), s.wait_ms.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                bail!("{}: step `{}` needs exactly one of request, tcp, wait_ms", path.display(), s.name);
            }
            if (s.request.is_some() && case.kind == Kind::Tcp) || (s.tcp.is_some() && case.kind == Kind::Http) {
                bail!("{}: step `{}` does not fit a {:?} filter", path.display(), s.name, case.kind);
            }
        }
        Ok(case)
    }

    /// The filter's plugin settings (module, names, JSON configuration).
    pub fn plugin(&self) -> Result<WasmFilter> {
        Ok(WasmFilter {
            wasm: crate::wasm::sample_filter(&self.filter),
            name: self.filter.clone(),
            root_id: self.root_id.clone().unwrap_or_else(|| self.filter.clone()),
            vm_id: self.filter.clone(),
            configuration: json_config(&self.config)?,
            failure_policy: None,
            allow_on_headers_stop_iteration: false,
            vm_configuration: String::new(),
        })
    }

    /// The service plugin, if any: same module and vm_id as the filter.
    pub fn service_plugin(&self) -> Result<Option<WasmFilter>> {
        let Some(s) = &self.service else { return Ok(None) };
        Ok(Some(WasmFilter {
            wasm: crate::wasm::sample_filter(&self.filter),
            name: s.root_id.clone(),
            root_id: s.root_id.clone(),
            vm_id: self.filter.clone(),
            configuration: json_config(&s.config)?,
            failure_policy: None,
            allow_on_headers_stop_iteration: false,
            vm_configuration: String::new(),
        }))
    }
}

/// Runs one case file in every place. Fails with every disagreement and unmet expectation.
pub fn run(path: &Path) -> Result<()> {
    let case = CaseFile::load(path)?;
    if let Some(text) = &case.refused {
        let problems: Vec<String> = crate::places::start_each(&case)
            .into_iter()
            .filter_map(|(name, started)| match started {
                Ok(()) => Some(format!("{name} started, but it must refuse the configuration")),
                Err(e) if !format!("{e:#}").contains(text.as_str()) => {
                    Some(format!("{name} refused without saying {text:?}:\n{e:#}"))
                }
                Err(_) => None,
            })
            .collect();
        if !problems.is_empty() {
            bail!("{}: {}", path.display(), problems.join("\n\n"));
        }
        return Ok(());
    }
    let mut places = Places::start(&case).with_context(|| format!("{}: starting the places", path.display()))?;
    let mut failures = Vec::new();
    for step in &case.exchanges {
        let answers = places.play(step).with_context(|| format!("{}", path.display()))?;
        let (reference_name, reference) = &answers[0];
        let differ = answers.iter().any(|(_, a)| a != reference);
        if differ {
            let all: Vec<String> = answers.iter().map(|(n, a)| format!("--- {n} ---\n{a}")).collect();
            failures.push(format!("{}: the places disagree\n{}", step.name, all.join("\n")));
            continue;
        }
        let mut problems = Vec::new();
        match reference {
            Answer::Http(o) => check_http(&step.expect, o, &mut problems),
            Answer::Tcp(seen) => check_tcp(&step.expect, seen, &mut problems),
            Answer::Waited => {}
        }
        for place in places.all() {
            let name = place.name().to_string();
            check_side_effects(&step.expect, place, &mut problems).with_context(|| {
                format!("{}: step `{}`: reading stats and logs of {name}", path.display(), step.name)
            })?;
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} (as {reference_name} answered): {}\n{reference}",
                step.name,
                problems.join("; ")
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}: {} of {} steps failed\n\n{}\n\n--- envoy log ---\n{}",
            path.display(),
            failures.len(),
            case.exchanges.len(),
            failures.join("\n\n"),
            places.envoy_log_tail()
        );
    }
    Ok(())
}
