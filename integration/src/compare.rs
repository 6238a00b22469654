//! Runs the same requests through a filter in the harness and in the real Envoy and compares what
//! the client sees.

use std::time::Duration;

use anyhow::Result;
use sluice_host::harness::{CalloutReply, Filter, Harness, HarnessBuilder, Request};
use sluice_host::vm::HttpCallout;

use crate::envoy::{Envoy, EnvoyConfig, WasmFilter};
use crate::observed::Observed;
use crate::upstream::{regular_headers, respond_to, Collected, Upstream};

/// One request of a comparison.
#[derive(Debug, Clone)]
pub struct Case {
    /// Method.
    pub method: &'static str,
    /// Path with query.
    pub path: &'static str,
    /// Extra request headers.
    pub headers: Vec<(&'static str, &'static str)>,
    /// Body.
    pub body: &'static str,
}

impl Case {
    /// A GET of `path`.
    pub fn get(path: &'static str) -> Self {
        Self { method: "GET", path, headers: Vec::new(), body: "" }
    }

    /// A POST of `body` to `path`.
    pub fn post(path: &'static str, body: &'static str) -> Self {
        Self { method: "POST", path, headers: Vec::new(), body }
    }

    /// Adds a request header.
    pub fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.push((k, v));
        self
    }

    fn request(&self) -> Request {
        let mut r = Request::new(self.method, self.path).body(self.body);
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        r
    }
}

/// Answers harness callouts the way the test upstream answers Envoy's (a `slow` user times out).
pub fn upstream_callouts(c: &HttpCallout) -> Option<CalloutReply> {
    Some(callout_reply(&Collected::default(), c))
}

/// The answer the test upstream (with this collector store) gives to callout `c`.
pub fn callout_reply(collected: &Collected, c: &HttpCallout) -> CalloutReply {
    let get = |n: &[u8]| c.headers.iter().find(|(k, _)| k == n).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let user = get(b"x-user");
    if user.as_deref() == Some("slow") {
        return CalloutReply::timeout();
    }
    let headers = regular_headers(c.headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    let r =
        collected.respond(&get(b":method").unwrap_or_default(), &get(b":path").unwrap_or_default(), &headers, &c.body);
    let mut reply = CalloutReply::new(r.status);
    for (k, v) in &r.headers {
        if k != "content-length" {
            reply = reply.header(k, v);
        }
    }
    reply.body(r.body)
}

/// A harness set up as `config` sets up Envoy: its wasm filters as the harness's chain, in order;
/// the cluster `upstream` and the `extra_clusters`; the names of the route, virtual host and
/// cluster [`EnvoyConfig`] gives them; callouts answered as the test upstream answers Envoy's.
pub fn harness_like(config: &EnvoyConfig, extra_clusters: &[&str]) -> HarnessBuilder {
    let mut filters = config.filters().iter();
    let mut b = Harness::builder();
    if let Some(f) = filters.next() {
        b = b
            .module_file(&f.wasm)
            .name(&f.name)
            .root_id(&f.root_id)
            .vm_id(&f.vm_id)
            .plugin_config(f.configuration.as_bytes())
            .allow_on_headers_stop_iteration(f.allow_on_headers_stop_iteration)
            .vm_config(f.vm_configuration.as_bytes());
    }
    for f in filters {
        b = b.filter(
            Filter::module_file(&f.wasm)
                .name(&f.name)
                .root_id(&f.root_id)
                .vm_id(&f.vm_id)
                .plugin_config(f.configuration.as_bytes())
                .allow_on_headers_stop_iteration(f.allow_on_headers_stop_iteration)
                .vm_config(f.vm_configuration.as_bytes()),
        );
    }
    b = b
        .cluster("upstream")
        .property(&["xds", "route_name"], "route0")
        .property(&["xds", "cluster_name"], "upstream")
        .property(&["xds", "virtual_host_name"], "vh0")
        .on_http_callout(upstream_callouts);
    for c in extra_clusters {
        b = b.cluster(*c);
    }
    b
}

/// Both sides of one comparison: a running Envoy with the filter, and a harness with the same plugin.
pub struct SideBySide {
    /// The configuration both run.
    pub config: EnvoyConfig,
    /// The real Envoy.
    pub envoy: Envoy,
    /// The harness.
    pub harness: Harness,
    _upstream: Upstream,
}

impl SideBySide {
    /// Starts an upstream, Envoy with `filter` (clusters `upstream` and the `extra_clusters`, all
    /// pointing at the test upstream), and a harness built by `customize` from the same settings.
    pub fn start(
        filter: WasmFilter,
        extra_clusters: &[&str],
        customize: impl FnOnce(HarnessBuilder) -> HarnessBuilder,
    ) -> Result<Self> {
        let upstream = Upstream::start()?;
        let mut config = EnvoyConfig::http(filter.clone()).cluster("upstream", upstream.port);
        for c in extra_clusters {
            config = config.cluster(c, upstream.port);
        }
        let envoy = Envoy::start(&config)?;
        let harness = customize(harness_like(&config, extra_clusters)).build()?;
        Ok(Self { config, envoy, harness, _upstream: upstream })
    }

    /// Sends `case` through Envoy.
    pub fn envoy(&self, case: &Case) -> Result<Observed> {
        let raw = crate::client::send(self.envoy.port, case.method, case.path, &case.headers, case.body.as_bytes())?;
        Ok(Observed::from(&raw))
    }

    /// Sends `case` through the harness.
    pub fn harness(&mut self, case: &Case) -> Result<Observed> {
        harness_answer(&mut self.harness, case)
    }

    /// Sends `case` through both and fails with both answers if they differ. Returns the answer.
    pub fn check(&mut self, case: &Case) -> Result<Observed> {
        let e = self.envoy(case)?;
        let h = self.harness(case)?;
        if e != h {
            anyhow::bail!(
                "harness and Envoy disagree on {} {}\n--- envoy ---\n{e}\n--- harness ---\n{h}\n--- envoy log ---\n{}",
                case.method,
                case.path,
                self.envoy.log_tail()
            );
        }
        Ok(e)
    }

    /// Lets real and virtual time pass.
    pub fn sleep(&mut self, d: Duration) -> Result<()> {
        std::thread::sleep(d);
        Ok(self.harness.advance_time(d)?)
    }
}

/// What the client of `harness` gets for `case`, with the test upstream answering.
pub fn harness_answer(harness: &mut Harness, case: &Case) -> Result<Observed> {
    let ex = harness.exchange(case.request(), respond_to)?;
    Ok(Observed::from(&ex))
}

/// A filter config for reference filter `name` with these settings.
pub fn reference(name: &str, configuration: &str) -> WasmFilter {
    WasmFilter {
        wasm: crate::wasm::reference_filter(name),
        name: format!("ref_{name}"),
        root_id: format!("{name}_root"),
        vm_id: format!("{name}_vm"),
        configuration: configuration.into(),
        failure_policy: None,
        allow_on_headers_stop_iteration: false,
        vm_configuration: String::new(),
    }
}
