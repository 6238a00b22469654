//! `observe`: for every request, counts it per route (`observe.<route>.requests` and
//! `observe.<route>.<class>` with class 2xx … 5xx), records its latency in milliseconds
//! (`observe.<route>.latency_ms`, a histogram), and logs one access-log line from `on_log`, when
//! the response is done:
//!
//! ```text
//! access GET /orders 200 route=route0 cluster=upstream duration_ms=3 bytes_in=0 bytes_out=120 x-user=alice
//! ```
//!
//! Envoy shows the metrics with the `wasmcustom.` prefix (`/stats`, `/stats/prometheus`).
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;
use sluice::prelude::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Request headers added to the access-log line (`name=value`, `-` when absent).
    #[serde(default)]
    log_headers: Vec<String>,
    /// Do not write access-log lines (metrics only).
    #[serde(default)]
    no_access_log: bool,
}

/// The metrics of one route, defined the first time the route is seen.
struct RouteMetrics {
    requests: Counter,
    classes: [Counter; 5],
    latency_ms: Histogram,
}

impl RouteMetrics {
    fn new(route: &str) -> sluice::Result<Self> {
        let name = |what: &str| format!("observe.{route}.{what}");
        Ok(RouteMetrics {
            requests: Counter::new(&name("requests"))?,
            classes: [
                Counter::new(&name("1xx"))?,
                Counter::new(&name("2xx"))?,
                Counter::new(&name("3xx"))?,
                Counter::new(&name("4xx"))?,
                Counter::new(&name("5xx"))?,
            ],
            latency_ms: Histogram::new(&name("latency_ms"))?,
        })
    }
}

struct Observe {
    config: Config,
    routes: RefCell<HashMap<String, Rc<RouteMetrics>>>,
}

impl Observe {
    fn route(&self, route: &str) -> Option<Rc<RouteMetrics>> {
        if let Some(m) = self.routes.borrow().get(route) {
            return Some(m.clone());
        }
        match RouteMetrics::new(route) {
            Ok(m) => {
                let m = Rc::new(m);
                self.routes.borrow_mut().insert(route.to_string(), m.clone());
                Some(m)
            }
            Err(e) => {
                log::error!("observe: cannot define the metrics of route {route}: {e}");
                None
            }
        }
    }
}

impl Plugin for Observe {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        Ok(Observe { config, routes: RefCell::new(HashMap::new()) })
    }
}

impl HttpPlugin for Observe {
    type Filter = ObserveFilter;

    fn new_filter(self: &Rc<Self>) -> ObserveFilter {
        ObserveFilter { plugin: self.clone(), logged_headers: Vec::new() }
    }
}

struct ObserveFilter {
    plugin: Rc<Observe>,
    /// The configured request headers, read when they arrive (later filters may change them).
    logged_headers: Vec<String>,
}

fn property(path: &[&str]) -> String {
    sluice::properties::string(path).ok().flatten().unwrap_or_else(|| "-".into())
}

impl HttpFilter for ObserveFilter {
    async fn on_request_headers(&mut self, req: Request<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
        for h in &self.plugin.config.log_headers {
            let v = req.header_str(h)?.unwrap_or_else(|| "-".into());
            self.logged_headers.push(format!("{h}={v}"));
        }
        Ok(Action::Continue)
    }

    fn on_log(&mut self, _stream: &HttpStream) {
        let route = sluice::properties::string(&["xds", "route_name"]).ok().flatten().unwrap_or_else(|| "none".into());
        let status = sluice::properties::int(&["response", "code"]).ok().flatten().unwrap_or(0);
        let duration =
            sluice::properties::duration(&["request", "duration"]).ok().flatten().map(|d| d.as_millis() as u64);
        if let Some(m) = self.plugin.route(&route) {
            m.requests.inc();
            if (100..600).contains(&status) {
                m.classes[(status / 100 - 1) as usize].inc();
            }
            if let Some(ms) = duration {
                m.latency_ms.record(ms);
            }
        }
        if self.plugin.config.no_access_log {
            return;
        }
        let size = |p: &[&str]| sluice::properties::int(p).ok().flatten().map(|n| n.to_string()).unwrap_or("-".into());
        let mut line = format!(
            "access {} {} {status} route={route} cluster={} duration_ms={} bytes_in={} bytes_out={}",
            property(&["request", "method"]),
            property(&["request", "path"]),
            property(&["xds", "cluster_name"]),
            duration.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            size(&["request", "size"]),
            size(&["response", "size"]),
        );
        for h in &self.logged_headers {
            line.push(' ');
            line.push_str(h);
        }
        log::info!("{line}");
    }
}

sluice::http_filter!(Observe);
