//! The admin listener: `/ready`, `/stats`, `/stats/prometheus`, `/quitquitquit`.

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

pub(super) fn start(addr: SocketAddr, shared: Arc<Shared>) -> Result<SocketAddr> {
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
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let shared = shared.clone();
                            async move {
                                let (status, body) = match req.uri().path() {
                                    "/ready" => (200, "LIVE\n".to_string()),
                                    "/stats" => (200, stats(&shared, false)),
                                    "/stats/prometheus" => (200, stats(&shared, true)),
                                    "/quitquitquit" => {
                                        shared.stop();
                                        (200, "OK\n".to_string())
                                    }
                                    _ => (404, "not found\n".to_string()),
                                };
                                hyper::Response::builder().status(status).body(Full::new(Bytes::from(body)))
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
