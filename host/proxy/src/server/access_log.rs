//! Access logs: one line per finished request (connection manager) or connection (tcp_proxy) in the
//! configured format, appended to a file or written to stdout/stderr. Files are opened once and
//! shared by every worker; a line is written whole under the file's lock.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::log_format::{Operator, Piece};
use crate::config::AccessLogPlan;
use sluice_core::stream::HeaderMap;

/// What a line can say about one connection or request.
#[derive(Debug, Default)]
pub(crate) struct Entry<'a> {
    pub start: Option<SystemTime>,
    pub duration: Duration,
    pub request: Option<&'a HeaderMap>,
    pub response: Option<&'a HeaderMap>,
    pub protocol: Option<&'a str>,
    pub response_code: u16,
    /// `%RESPONSE_FLAGS%` (Envoy's short names, such as `DPE`), when there are any.
    pub response_flags: Option<&'a str>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<&'a str>,
    pub downstream_remote: Option<SocketAddr>,
    pub downstream_local: Option<SocketAddr>,
}

/// One configured access log, ready to write.
#[derive(Clone)]
pub(crate) struct AccessLog {
    format: Vec<Piece>,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").field("format", &self.format).finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Opens where `plan` writes.
    pub(crate) fn open(plan: &AccessLogPlan) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match plan.path.as_str() {
            "/dev/stdout" => Box::new(std::io::stdout()),
            "/dev/stderr" => Box::new(std::io::stderr()),
            path => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        Ok(Self { format: plan.format.clone(), out: Arc::new(Mutex::new(out)) })
    }

    /// Writes the line for `e`.
    pub(crate) fn write(&self, e: &Entry<'_>) {
        let line = render(&self.format, e);
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

fn header(map: Option<&HeaderMap>, names: &[String], max: Option<usize>) -> String {
    let value = map.and_then(|m| names.iter().find_map(|n| m.get_str(n)));
    match value {
        Some(v) => max.map_or(v, |n| &v[..v.char_indices().nth(n).map_or(v.len(), |(i, _)| i)]).to_string(),
        None => "-".to_string(),
    }
}

fn render(format: &[Piece], e: &Entry<'_>) -> String {
    let mut out = String::new();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    for p in format {
        let text = match p {
            Piece::Text(t) => t.clone(),
            Piece::Op(op) => match op {
                Operator::StartTime { epoch_seconds } => or_dash(e.start.map(|t| {
                    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                    if *epoch_seconds {
                        d.as_secs().to_string()
                    } else {
                        iso8601_millis(d)
                    }
                })),
                Operator::Request(names, max) => header(e.request, names, *max),
                Operator::Response(names, max) => header(e.response, names, *max),
                Operator::Protocol => or_dash(e.protocol.map(str::to_string)),
                Operator::ResponseCode => e.response_code.to_string(),
                Operator::ResponseFlags => or_dash(e.response_flags.map(str::to_string)),
                Operator::BytesReceived => e.bytes_received.to_string(),
                Operator::BytesSent => e.bytes_sent.to_string(),
                Operator::Duration => e.duration.as_millis().to_string(),
                Operator::UpstreamHost => or_dash(e.upstream_host.map(|a| a.to_string())),
                Operator::UpstreamCluster => or_dash(e.upstream_cluster.map(str::to_string)),
                Operator::DownstreamRemoteAddress => or_dash(e.downstream_remote.map(|a| a.to_string())),
                Operator::DownstreamRemoteAddressWithoutPort => {
                    or_dash(e.downstream_remote.map(|a| a.ip().to_string()))
                }
                Operator::DownstreamLocalAddress => or_dash(e.downstream_local.map(|a| a.to_string())),
                Operator::DownstreamLocalAddressWithoutPort => or_dash(e.downstream_local.map(|a| a.ip().to_string())),
            },
        };
        out.push_str(&text);
    }
    out
}

/// `2026-12-01T10:25:58.429Z`, Envoy's default `%START_TIME%`.
fn iso8601_millis(since_epoch: Duration) -> String {
    sluice_core::calendar::UtcTime::since_epoch(since_epoch).iso8601_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoys_start_time_shape() {
        assert_eq!(iso8601_millis(Duration::from_millis(1_796_120_758_429)), "2026-12-01T10:25:58.429Z");
    }
}
