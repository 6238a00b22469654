//! The admin listener, with Envoy's endpoints and answers: `/` (the list of endpoints), `/ready`,
//! `/listeners` (what tools poll for readiness; `?format=json` too), `/clusters`, `/server_info`,
//! `/stats`, `/stats/prometheus`, `/healthcheck/fail` and `/healthcheck/ok`, `/quitquitquit`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::stats::StatKind;
use super::ServeError;
use super::Shared;
use sluice_core::state::MetricValue;
use std::sync::atomic::{AtomicBool, Ordering};

/// One line per stat, as Envoy's `/stats`, `/stats?format=json` and `/stats/prometheus` print them:
/// the proxy's own stats under Envoy's names, `server.*`, then the plugins' metrics.
fn stats(shared: &Shared, query: Option<&str>, prometheus: bool) -> (u16, String) {
    let param =
        |name: &str| query.into_iter().flat_map(|q| q.split('&')).find_map(|p| p.strip_prefix(name)?.strip_prefix('='));
    let filter = match param("filter").map(percent_decode) {
        Some(f) => match regex::Regex::new(&f) {
            Ok(r) => Some(r),
            Err(e) => return (400, format!("Invalid re2 regex: {e}\n")),
        },
        None => None,
    };
    let json = param("format") == Some("json");
    let keep = |name: &str| filter.as_ref().is_none_or(|r| r.is_match(name));
    let uptime = shared.started.elapsed().as_secs();
    let mut rows: Vec<Row> = Vec::new();
    let server = [
        ("server.live", 1u64, "gauge"),
        ("server.uptime", uptime, "gauge"),
        ("server.concurrency", shared.concurrency as u64, "gauge"),
    ];
    for (name, v, kind) in server {
        rows.push(Row::new(name.to_string(), format!("envoy_{}", name.replace('.', "_")), kind, v.to_string()));
    }
    shared.stats.each(|e| {
        let kind = if e.kind == StatKind::Counter { "counter" } else { "gauge" };
        let mut row = Row::new(e.name.clone(), e.prometheus.clone(), kind, e.value.load(Ordering::Relaxed).to_string());
        row.labels = e.labels.clone();
        rows.push(row);
    });
    for (name, value) in shared.state.metrics.snapshot() {
        // Prometheus drops the `wasmcustom.` namespace, as Envoy's does.
        let short = name.strip_prefix("wasmcustom.").unwrap_or(&name).replace(['.', '-'], "_");
        match value {
            MetricValue::Counter(v) => rows.push(Row::new(name, short, "counter", v.to_string())),
            MetricValue::Gauge(v) => rows.push(Row::new(name, short, "gauge", v.to_string())),
            MetricValue::Histogram { count, sum, .. } => {
                rows.push(Row::new(name, short, "histogram", format!("count={count} sum={sum}")));
            }
        }
    }
    rows.retain(|r| keep(&r.name));
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    if prometheus {
        rows.sort_by(|a, b| a.prometheus.cmp(&b.prometheus));
        let mut last = String::new();
        for Row { prometheus: prom, labels, kind, value, .. } in &rows {
            if *prom != last {
                out.push_str(&format!("# TYPE {prom} {kind}\n"));
                last = prom.clone();
            }
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            if *kind == "histogram" {
                let (count, sum) = value.split_once(' ').unwrap_or(("count=0", "sum=0"));
                let l = labels.join(",");
                out.push_str(&format!("{prom}_count{{{l}}} {}\n{prom}_sum{{{l}}} {}\n", &count[6..], &sum[4..]));
            } else {
                out.push_str(&format!("{prom}{{{}}} {value}\n", labels.join(",")));
            }
        }
    } else if json {
        let items: Vec<String> = rows
            .iter()
            .map(|Row { name, kind, value, .. }| match *kind {
                "histogram" => format!(r#"{{"name":{},"value":{}}}"#, json_string(name), json_string(value)),
                _ => format!(r#"{{"name":{},"value":{value}}}"#, json_string(name)),
            })
            .collect();
        out = format!(r#"{{"stats":[{}]}}"#, items.join(","));
    } else {
        for Row { name, value, .. } in &rows {
            out.push_str(&format!("{name}: {value}\n"));
        }
    }
    (200, out)
}

/// One line of `/stats`: Envoy's name, the Prometheus name and labels, the type and the value.
struct Row {
    name: String,
    prometheus: String,
    labels: Vec<(&'static str, String)>,
    kind: &'static str,
    value: String,
}

impl Row {
    fn new(name: String, prometheus: String, kind: &'static str, value: String) -> Self {
        Self { name, prometheus, labels: Vec::new(), kind, value }
    }
}

/// `%XX` escapes in a query value (filters are regexes: `%5E`, `%24`, `%2E`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the admin endpoints describe: the listeners as bound and the clusters as configured.
pub(super) struct Topology {
    /// Each listener's name and bound address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// Each cluster's name and endpoints.
    pub clusters: Vec<(String, Vec<(String, u16)>)>,
    /// `/config_dump`.
    pub config_dump: super::config_dump::ConfigDump,
}

/// The endpoints `/` lists, with Envoy's descriptions.
const ENDPOINTS: &[(&str, &str)] = &[
    ("/clusters", "upstream cluster status"),
    ("/config_dump", "dump current Envoy configs (experimental)"),
    ("/healthcheck/fail", "cause the server to fail health checks"),
    ("/healthcheck/ok", "cause the server to pass health checks"),
    ("/listeners", "print listener info"),
    ("/logging", "query/change logging levels"),
    ("/quitquitquit", "exit the server"),
    ("/ready", "print server state, return 200 if LIVE, otherwise return 503"),
    ("/server_info", "print server version/status information"),
    ("/stats", "print server stats"),
    ("/stats/prometheus", "print server stats in prometheus format"),
];

fn listeners(t: &Topology, json: bool) -> (&'static str, String) {
    if json {
        let items: Vec<String> = t
            .listeners
            .iter()
            .map(|(name, a)| {
                format!(
                    r#"{{"name":{},"local_address":{{"socket_address":{{"address":"{}","port_value":{}}}}}}}"#,
                    json_string(name),
                    a.ip(),
                    a.port()
                )
            })
            .collect();
        return ("application/json", format!(r#"{{"listener_statuses":[{}]}}"#, items.join(",")));
    }
    ("text/plain; charset=UTF-8", t.listeners.iter().map(|(name, a)| format!("{name}::{a}\n")).collect())
}

fn clusters(t: &Topology) -> String {
    let mut out = String::new();
    for (name, endpoints) in &t.clusters {
        out.push_str(&format!("{name}::observability_name::{name}\n"));
        for (host, port) in endpoints {
            out.push_str(&format!("{name}::{host}:{port}::health_flags::healthy\n"));
        }
    }
    out
}

fn server_info(shared: &Shared, live: bool) -> String {
    let uptime = shared.started.elapsed().as_secs();
    format!(
        r#"{{"version":"0000000000000000000000000000000000000000/1.40.0/Clean/RELEASE/sluice-{}","state":"{}","node":{{"id":{},"cluster":{}}},"uptime_current_epoch":"{uptime}s","uptime_all_epochs":"{uptime}s","hot_restart_version":"disabled"}}"#,
        env!("CARGO_PKG_VERSION"),
        if live { "LIVE" } else { "DRAINING" },
        json_string(&shared.node.id),
        json_string(&shared.node.cluster),
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn home() -> String {
    let mut out = String::from("<!DOCTYPE html><html><head><title>Envoy Admin</title></head><body><table>\n");
    for (path, what) in ENDPOINTS {
        out.push_str(&format!("<tr><td><a href='{path}'>{path}</a></td><td>{what}</td></tr>\n"));
    }
    out.push_str("</table></body></html>\n");
    out
}

/// `/logging`: POST only, as in Envoy; with `COMPONENT=LEVEL` (or `level=LEVEL`) parameters it
/// changes levels first. Answers the listing.
fn logging(control: Option<&dyn super::LogControl>, method: &hyper::Method, query: Option<&str>) -> (u16, String) {
    if method != hyper::Method::POST {
        return (405, "Method GET not allowed, POST required.".to_string());
    }
    let Some(control) = control else { return (404, "logging is not controlled here\n".to_string()) };
    const USAGE: &str = "usage: /logging?<name>=<level> (change single level)\n\
        usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n\
        usage: /logging?level=<level> (change all levels)\n";
    let params: Vec<(String, String)> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    // One parameter, as Envoy takes it; several components go in `paths`.
    let pairs: Vec<(String, String)> = match params.as_slice() {
        [] => Vec::new(),
        [(k, v)] if k == "paths" => v
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((p.to_string(), String::new()))
            })
            .collect(),
        [(k, v)] => vec![(k.clone(), v.clone())],
        _ => return (400, format!("error: invalid number of parameters\n\n{USAGE}")),
    };
    if !pairs.is_empty() {
        if let Err(e) = control.set(&pairs) {
            return (400, format!("{e}\n\n{USAGE}"));
        }
    }
    (200, control.list())
}

/// What the admin endpoint answers from, shared by its connections.
struct Admin {
    shared: Arc<Shared>,
    topology: Topology,
    /// Cleared by `/healthcheck/fail`, set by `/healthcheck/ok`: what `/ready` says.
    healthy: AtomicBool,
    log_control: Option<Arc<dyn super::LogControl>>,
}

impl Admin {
    /// The answer to one request: its status, content type and body.
    fn answer(&self, method: &hyper::Method, path: &str, query: Option<&str>) -> (u16, &'static str, String) {
        let json = query.is_some_and(|q| q.split('&').any(|p| p == "format=json"));
        let live = self.healthy.load(Ordering::Relaxed);
        let text = "text/plain; charset=UTF-8";
        // Endpoints that change the server take POST only, as in Envoy.
        let mutating = matches!(path, "/quitquitquit" | "/healthcheck/fail" | "/healthcheck/ok");
        match path {
            _ if mutating && method != hyper::Method::POST => {
                (405, text, "Method GET not allowed, POST required.".to_string())
            }
            "/" => (200, "text/html; charset=UTF-8", home()),
            "/ready" if live => (200, text, "LIVE\n".to_string()),
            "/ready" => (503, text, "DRAINING\n".to_string()),
            "/listeners" => {
                let (kind, body) = listeners(&self.topology, json);
                (200, kind, body)
            }
            "/clusters" => (200, text, clusters(&self.topology)),
            "/config_dump" => {
                let (status, body) = self.topology.config_dump.answer(query);
                (status, if status == 200 { "application/json" } else { text }, body)
            }
            "/logging" => {
                let (status, body) = logging(self.log_control.as_deref(), method, query);
                (status, text, body)
            }
            "/server_info" => (200, "application/json", server_info(&self.shared, live)),
            "/healthcheck/fail" => {
                self.healthy.store(false, Ordering::Relaxed);
                (200, text, "OK\n".to_string())
            }
            "/healthcheck/ok" => {
                self.healthy.store(true, Ordering::Relaxed);
                (200, text, "OK\n".to_string())
            }
            "/stats" => {
                let (status, body) = stats(&self.shared, query, false);
                (status, if json { "application/json" } else { text }, body)
            }
            "/stats/prometheus" => {
                let (status, body) = stats(&self.shared, query, true);
                (status, text, body)
            }
            "/quitquitquit" => {
                self.shared.stop();
                (200, text, "OK\n".to_string())
            }
            _ => (
                404,
                text,
                "invalid path. admin commands are:\n".to_string()
                    + &ENDPOINTS.iter().map(|(p, w)| format!("  {p}: {w}\n")).collect::<String>(),
            ),
        }
    }
}

/// Serves the admin endpoint on `listener` until the server stops.
async fn serve(admin: Arc<Admin>, listener: tokio::net::TcpListener) {
    while let Some((stream, _)) = super::accept::next(&listener, &admin.shared.stop).await {
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (status, kind, body) = admin.answer(req.method(), req.uri().path(), req.uri().query());
                let response = hyper::Response::builder()
                    .status(status)
                    .header("content-type", kind)
                    .body(Full::new(Bytes::from(body)));
                std::future::ready(response)
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Binds the admin listener and serves it on a thread of its own.
///
/// # Errors
/// The address cannot be bound, or the thread or its event loop cannot be started.
pub(super) fn start(
    addr: SocketAddr,
    shared: Arc<Shared>,
    topology: Topology,
    log_control: Option<Arc<dyn super::LogControl>>,
) -> Result<SocketAddr, ServeError> {
    let listener = super::bind(addr)?;
    let bound = listener.local_addr().map_err(|source| ServeError::Listen { addr, source })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Thread { what: "the admin thread's event loop", source })?;
    let listener = {
        let _in_runtime = rt.enter();
        tokio::net::TcpListener::from_std(listener)
            .map_err(|source| ServeError::Serve { listener: "admin".into(), source })?
    };
    let admin = Arc::new(Admin { shared, topology, healthy: AtomicBool::new(true), log_control });
    std::thread::Builder::new()
        .name("sluice-admin".into())
        .spawn(move || rt.block_on(serve(admin, listener)))
        .map_err(|source| ServeError::Thread { what: "the admin thread", source })?;
    Ok(bound)
}
