//! The admin listener, with Envoy's endpoints and answers: `/` (the list of endpoints), `/ready`,
//! `/listeners` (what tools poll for readiness; `?format=json` too), `/clusters`, `/server_info`,
//! `/stats`, `/stats/prometheus`, `/healthcheck/fail` and `/healthcheck/ok`, `/quitquitquit`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::Shared;
use crate::error::{Error, Result};
use crate::state::MetricValue;

fn stats(shared: &Shared, prometheus: bool) -> String {
    let mut out = String::new();
    out.push_str(&if prometheus {
        format!(
            "# TYPE sluice_requests counter\nsluice_requests{{}} {}\n",
            shared.requests.load(std::sync::atomic::Ordering::Relaxed)
        )
    } else {
        format!("http.requests: {}\n", shared.requests.load(std::sync::atomic::Ordering::Relaxed))
    });
    for (name, value) in shared.state.metrics.snapshot() {
        // Prometheus drops the `wasmcustom.` namespace, as Envoy's does.
        let short = name.strip_prefix("wasmcustom.").unwrap_or(&name).replace(['.', '-'], "_");
        match value {
            MetricValue::Counter(v) if prometheus => {
                out.push_str(&format!("# TYPE {short} counter\n{short}{{}} {v}\n"))
            }
            MetricValue::Gauge(v) if prometheus => out.push_str(&format!("# TYPE {short} gauge\n{short}{{}} {v}\n")),
            MetricValue::Counter(v) => out.push_str(&format!("{name}: {v}\n")),
            MetricValue::Gauge(v) => out.push_str(&format!("{name}: {v}\n")),
            MetricValue::Histogram { count, sum, .. } if prometheus => {
                out.push_str(&format!("# TYPE {short} histogram\n{short}_count{{}} {count}\n{short}_sum{{}} {sum}\n"))
            }
            MetricValue::Histogram { count, sum, .. } => out.push_str(&format!("{name}: count={count} sum={sum}\n")),
        }
    }
    out
}

/// What the admin endpoints describe: the listeners as bound and the clusters as configured.
pub(super) struct Topology {
    /// Each listener's name and bound address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// Each cluster's name and endpoints.
    pub clusters: Vec<(String, Vec<(String, u16)>)>,
}

/// The endpoints `/` lists, with Envoy's descriptions.
const ENDPOINTS: &[(&str, &str)] = &[
    ("/clusters", "upstream cluster status"),
    ("/healthcheck/fail", "cause the server to fail health checks"),
    ("/healthcheck/ok", "cause the server to pass health checks"),
    ("/listeners", "print listener info"),
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
        json_string(&shared.node.0),
        json_string(&shared.node.1),
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

pub(super) fn start(addr: SocketAddr, shared: Arc<Shared>, topology: Topology) -> Result<SocketAddr> {
    let topology = Arc::new(topology);
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listener = super::bind(addr)?;
    let bound = listener.local_addr().map_err(|e| Error::Runtime(e.to_string()))?;
    std::thread::Builder::new()
        .name("sluice-admin".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                loop {
                    let stop = shared.stop.notified();
                    if shared.is_stopped() {
                        return;
                    }
                    let stream = tokio::select! {
                        r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
                        _ = stop => return,
                    };
                    let (shared, topology, healthy) = (shared.clone(), topology.clone(), healthy.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let (shared, topology, healthy) = (shared.clone(), topology.clone(), healthy.clone());
                            async move {
                                let json = req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "format=json"));
                                let live = healthy.load(std::sync::atomic::Ordering::Relaxed);
                                let text = "text/plain; charset=UTF-8";
                                let (status, kind, body) = match req.uri().path() {
                                    "/" => (200, "text/html; charset=UTF-8", home()),
                                    "/ready" if live => (200, text, "LIVE\n".to_string()),
                                    "/ready" => (503, text, "DRAINING\n".to_string()),
                                    "/listeners" => {
                                        let (kind, body) = listeners(&topology, json);
                                        (200, kind, body)
                                    }
                                    "/clusters" => (200, text, clusters(&topology)),
                                    "/server_info" => (200, "application/json", server_info(&shared, live)),
                                    "/healthcheck/fail" => {
                                        healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                                        (200, text, "OK\n".to_string())
                                    }
                                    "/healthcheck/ok" => {
                                        healthy.store(true, std::sync::atomic::Ordering::Relaxed);
                                        (200, text, "OK\n".to_string())
                                    }
                                    "/stats" => (200, text, stats(&shared, false)),
                                    "/stats/prometheus" => (200, text, stats(&shared, true)),
                                    "/quitquitquit" => {
                                        shared.stop();
                                        (200, text, "OK\n".to_string())
                                    }
                                    _ => (404, text, "invalid path. admin commands are:\n".to_string()
                                        + &ENDPOINTS.iter().map(|(p, w)| format!("  {p}: {w}\n")).collect::<String>()),
                                };
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", kind)
                                    .body(Full::new(Bytes::from(body)))
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })
        .map_err(|e| Error::Runtime(format!("cannot start the admin thread: {e}")))?;
    Ok(bound)
}
