//! Where a case runs: the real Envoy (the reference), `sluice serve`, the in-process harness, and
//! any other proxy-wasm host that reads an Envoy bootstrap (`SLUICE_CASES_HOST`). Each place gets its
//! own upstream, so state an upstream keeps (what a collector received) is per place.
//!
//! To run the cases against another host, give a command with `{config}` where the bootstrap YAML's
//! path goes; the listener and admin ports are fixed in that YAML before it starts:
//!
//! ```text
//! SLUICE_CASES_HOST='/opt/myhost/bin/host -c {config}' cargo test -p sluice-integration --test cases
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sluice_host::abi::status::PeerType;
use sluice_host::harness::{CalloutReply, Harness, HarnessBuilder};
use sluice_host::state::{MetricValue, SharedState};
use sluice_host::vm::HttpCallout;

use crate::cases::{CaseFile, Connection, Kind, Request, Step};
use crate::envoy::{unique, Envoy, EnvoyConfig};
use crate::observed::Observed;
use crate::sluice::SluiceServe;
use crate::upstream::{Collected, Upstream};

/// The environment variable naming another host to run the cases against.
pub const OTHER_HOST: &str = "SLUICE_CASES_HOST";

/// What one TCP connection saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSeen {
    /// Everything received.
    pub reply: String,
    /// Whether the proxy closed the connection.
    pub closed: bool,
}

/// What a place answered to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The HTTP response.
    Http(Observed),
    /// Each connection.
    Tcp(Vec<TcpSeen>),
    /// Time passed.
    Waited,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Http(o) => write!(f, "{o}"),
            Answer::Tcp(seen) => {
                for (i, s) in seen.iter().enumerate() {
                    writeln!(f, "connection {i}: received {:?}, closed: {}", s.reply, s.closed)?;
                }
                Ok(())
            }
            Answer::Waited => write!(f, "(waited)"),
        }
    }
}

/// A host that runs the case.
pub trait Place {
    /// Its name in reports.
    fn name(&self) -> &str;
    /// Sends one request.
    fn http(&mut self, r: &Request) -> Result<Observed>;
    /// Opens the connections in order, sends on each, and reports what each saw.
    fn tcp(&mut self, conns: &[Connection]) -> Result<Vec<TcpSeen>>;
    /// Lets time pass.
    fn wait(&mut self, d: Duration) -> Result<()>;
    /// A stat as Envoy's `/stats` names it.
    fn stat(&mut self, name: &str) -> Result<Option<u64>>;
    /// What the plugins logged.
    fn log(&self) -> String;
}

/// Every place of one case; the first is Envoy.
pub struct Places {
    list: Vec<Box<dyn Place>>,
    envoy_log: Box<dyn Fn() -> String>,
}

impl Places {
    /// Starts Envoy, `sluice serve`, the harness and (if `SLUICE_CASES_HOST` is set) the other host.
    pub fn start(case: &CaseFile) -> Result<Self> {
        let envoy = Proxy::start(case, Process::Envoy)?;
        let log_dir = match &envoy.process {
            Running::Envoy(e) => e.dir().join("envoy.log"),
            _ => unreachable!("started as Envoy"),
        };
        let mut list: Vec<Box<dyn Place>> = vec![Box::new(envoy)];
        list.push(Box::new(Proxy::start(case, Process::Sluice)?));
        list.push(Box::new(InProcess::start(case)?));
        if let Ok(cmd) = std::env::var(OTHER_HOST) {
            list.push(Box::new(Proxy::start(case, Process::Other(cmd))?));
        }
        let envoy_log = Box::new(move || {
            let log = std::fs::read_to_string(&log_dir).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        });
        Ok(Self { list, envoy_log })
    }

    /// Plays one step everywhere; each place's name and answer, Envoy's first.
    pub fn play(&mut self, step: &Step) -> Result<Vec<(String, Answer)>> {
        let mut answers = Vec::new();
        for p in &mut self.list {
            let answer = if let Some(r) = &step.request {
                Answer::Http(p.http(r).with_context(|| format!("{}: {}", p.name(), step.name))?)
            } else if let Some(c) = &step.tcp {
                Answer::Tcp(p.tcp(c).with_context(|| format!("{}: {}", p.name(), step.name))?)
            } else {
                Answer::Waited
            };
            answers.push((p.name().to_string(), answer));
        }
        if let Some(ms) = step.wait_ms {
            // Real time passes once for every process; the harness's virtual clock moves as much.
            std::thread::sleep(Duration::from_millis(ms));
            for p in &mut self.list {
                p.wait(Duration::from_millis(ms))?;
            }
        }
        Ok(answers)
    }

    /// Every place.
    pub fn all(&mut self) -> impl Iterator<Item = &mut dyn Place> {
        self.list.iter_mut().map(|p| &mut **p as &mut dyn Place)
    }

    /// The end of Envoy's log, for failure reports.
    pub fn envoy_log_tail(&self) -> String {
        (self.envoy_log)()
    }
}

/// Starts each place on its own and stops it at once: each place's name and whether it started.
pub fn start_each(case: &CaseFile) -> Vec<(String, Result<()>)> {
    let mut out = vec![
        ("envoy".to_string(), Proxy::start(case, Process::Envoy).map(drop)),
        ("sluice serve".to_string(), Proxy::start(case, Process::Sluice).map(drop)),
        ("harness".to_string(), InProcess::start(case).map(drop)),
    ];
    if let Ok(cmd) = std::env::var(OTHER_HOST) {
        out.push((cmd.clone(), Proxy::start(case, Process::Other(cmd)).map(drop)));
    }
    out
}

/// A port on 127.0.0.1 where nothing listens, held (bound, never listening) as long as the returned
/// socket lives, so no other listener of the test run can take it: connecting is refused.
fn dead_port() -> Result<(u16, tokio::net::TcpSocket)> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(([127, 0, 0, 1], 0).into())?;
    Ok((s.local_addr()?.port(), s))
}

enum Process {
    Envoy,
    Sluice,
    Other(String),
}

pub(crate) enum Running {
    Envoy(Envoy),
    Sluice(SluiceServe),
    Other { child: Child, dir: PathBuf },
}

/// A proxy process on loopback with its own upstreams.
struct Proxy {
    name: String,
    port: u16,
    admin_port: u16,
    process: Running,
    _upstreams: Vec<Upstream>,
    /// Holds the port of the clusters that are down.
    _dead: tokio::net::TcpSocket,
}

/// The bootstrap a case runs in a proxy: the filter (and service), the `upstream` cluster at
/// `upstream_port`, the extra clusters at `http_port`, or at `dead_port` when down.
pub fn case_config(case: &CaseFile, upstream_port: u16, http_port: u16, dead_port: u16) -> Result<EnvoyConfig> {
    let plugin = case.plugin()?;
    let mut config = match case.kind {
        Kind::Http => EnvoyConfig::http(plugin),
        Kind::Tcp => EnvoyConfig::tcp(plugin),
    }
    .cluster("upstream", upstream_port);
    for c in &case.clusters {
        let (name, down) = c.parts();
        config = config.cluster(name, if down { dead_port } else { http_port });
    }
    if let Some(s) = case.service_plugin()? {
        config = config.service(s);
    }
    Ok(config)
}

impl Proxy {
    fn start(case: &CaseFile, which: Process) -> Result<Self> {
        let http = Upstream::start()?;
        let mut upstreams = Vec::new();
        let upstream_port = match case.kind {
            Kind::Http => http.port,
            Kind::Tcp => {
                let echo = Upstream::start_tcp_echo()?;
                let port = echo.port;
                upstreams.push(echo);
                port
            }
        };
        let (dead, reserved) = dead_port()?;
        let config = case_config(case, upstream_port, http.port, dead)?;
        upstreams.push(http);
        let (name, port, admin_port, process) = match which {
            Process::Envoy => {
                let e = Envoy::start(&config)?;
                ("envoy".to_string(), e.port, e.admin_port, Running::Envoy(e))
            }
            Process::Sluice => {
                let s = SluiceServe::start(&config)?;
                ("sluice serve".to_string(), s.port, s.admin_port, Running::Sluice(s))
            }
            Process::Other(cmd) => start_other(&cmd, &config)?,
        };
        Ok(Self { name, port, admin_port, process, _upstreams: upstreams, _dead: reserved })
    }
}

/// Starts another host on `config` with fixed ports and waits until its listener accepts.
pub(crate) fn start_other(cmd: &str, config: &EnvoyConfig) -> Result<(String, u16, u16, Running)> {
    let (port, admin_port) = (crate::ports::free_port(), crate::ports::free_port());
    let dir = std::env::temp_dir().join(format!("sluice-other-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir)?;
    let mut yaml = config.render().replacen("port_value: 0 }", &format!("port_value: {port} }}"), 1);
    yaml.push_str(&format!(
        "admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }} }}\n"
    ));
    let file = dir.join("envoy.yaml");
    std::fs::write(&file, yaml)?;
    let line = cmd.replace("{config}", &file.display().to_string());
    let log = std::fs::File::create(dir.join("host.log"))?;
    let child = Command::new("sh")
        .args(["-c", &format!("exec {line}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {line}"))?;
    let mut running = Running::Other { child, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    // The admin port first: every probe of the listener is a connection its filters see.
    let up = |p: u16| TcpStream::connect(("127.0.0.1", p)).is_ok();
    while !up(admin_port) || !up(port) {
        if let Running::Other { child, dir } = &mut running {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("host.log")).unwrap_or_default();
                bail!("`{line}` exited with {status} before listening:\n{log}");
            }
        }
        if Instant::now() > deadline {
            bail!("`{line}` did not listen on port {port} (admin {admin_port}) within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((line, port, admin_port, running))
}

impl Running {
    /// Where another host's output goes (`None` for Envoy and sluice, which say it themselves).
    pub(crate) fn log_path(&self) -> Option<PathBuf> {
        match self {
            Running::Other { dir, .. } => Some(dir.join("host.log")),
            _ => None,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Other { child, dir } = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Reads until the peer closes or `quiet` passes without data; what arrived and whether it closed.
fn read_for(s: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = s.set_read_timeout(Some(quiet));
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (got, false)
            }
            Err(_) => return (got, true),
        }
    }
}

impl Place for Proxy {
    fn name(&self) -> &str {
        &self.name
    }

    fn http(&mut self, r: &Request) -> Result<Observed> {
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let raw = crate::client::send(self.port, &r.method, &r.path, &headers, &r.body_bytes())?;
        Ok(Observed::from(&raw))
    }

    fn tcp(&mut self, conns: &[Connection]) -> Result<Vec<TcpSeen>> {
        let mut open = Vec::new();
        let mut seen = Vec::new();
        for c in conns {
            let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
            // A proxy that closes at once may refuse the write; what the client then reads says so.
            let _ = s.write_all(c.send.as_bytes());
            let (reply, closed) = read_for(&mut s, Duration::from_millis(400));
            seen.push(TcpSeen { reply: String::from_utf8_lossy(&reply).into_owned(), closed });
            open.push(s);
        }
        drop(open);
        // Let the proxy see the closes before the next step.
        std::thread::sleep(Duration::from_millis(300));
        Ok(seen)
    }

    fn wait(&mut self, _: Duration) -> Result<()> {
        Ok(())
    }

    fn stat(&mut self, name: &str) -> Result<Option<u64>> {
        Ok(crate::client::stat(self.admin_port, name)?.and_then(|v| v.parse().ok()))
    }

    fn log(&self) -> String {
        match &self.process {
            Running::Envoy(e) => e.log(),
            Running::Sluice(s) => s.log(),
            Running::Other { dir, .. } => std::fs::read_to_string(dir.join("host.log")).unwrap_or_default(),
        }
    }
}

/// The in-process harness: the filter's plugin, and the service plugin in a second harness that
/// shares its shared data and queues (as a singleton on Envoy's main thread shares the VM's).
struct InProcess {
    http: Harness,
    service: Option<Harness>,
    collected: Collected,
}

/// Answers harness callouts as the test upstream answers the proxies' (a `slow` user times out;
/// a cluster that is down fails to connect).
fn answer_callouts(collected: Collected, down: Vec<String>) -> impl FnMut(&HttpCallout) -> Option<CalloutReply> {
    move |c| {
        if down.contains(&c.cluster) {
            return Some(CalloutReply::connect_failure());
        }
        Some(crate::compare::callout_reply(&collected, c))
    }
}

impl InProcess {
    fn start(case: &CaseFile) -> Result<Self> {
        let collected = Collected::default();
        let down: Vec<String> = case.clusters.iter().filter(|c| c.parts().1).map(|c| c.parts().0.to_string()).collect();
        let shared = Arc::new(SharedState::default());
        let builder = |p: &crate::envoy::WasmFilter| -> HarnessBuilder {
            let mut b = Harness::builder()
                .module_file(&p.wasm)
                .name(&p.name)
                .root_id(&p.root_id)
                .vm_id(&p.vm_id)
                .plugin_config(p.configuration.as_bytes())
                .shared_state(shared.clone())
                .cluster("upstream")
                .property(&["xds", "route_name"], "route0")
                .property(&["xds", "cluster_name"], "upstream")
                .property(&["xds", "virtual_host_name"], "vh0")
                .on_http_callout(answer_callouts(collected.clone(), down.clone()));
            for c in &case.clusters {
                b = b.cluster(c.parts().0);
            }
            b
        };
        // The service starts first, as bootstrap extensions do, so its queue exists for the filter.
        let service = match case.service_plugin()? {
            Some(s) => Some(builder(&s).build()?),
            None => None,
        };
        let http = builder(&case.plugin()?).build()?;
        Ok(Self { http, service, collected })
    }
}

impl Place for InProcess {
    fn name(&self) -> &str {
        "harness"
    }

    fn http(&mut self, r: &Request) -> Result<Observed> {
        let mut req = sluice_host::harness::Request::new(&r.method, &r.path).body(r.body_bytes());
        for (k, v) in &r.headers {
            req = req.header(k, v);
        }
        let collected = self.collected.clone();
        let ex = self.http.exchange(req, |m| collected.respond_to(m))?;
        if let Some(s) = &mut self.service {
            // Deliver what the filter queued, as Envoy's main thread would right away.
            s.advance_time(Duration::ZERO)?;
        }
        Ok(Observed::from(&ex))
    }

    fn tcp(&mut self, conns: &[Connection]) -> Result<Vec<TcpSeen>> {
        let mut ids = Vec::new();
        let mut seen = Vec::new();
        for c in conns {
            let mut s = self.http.tcp_stream()?;
            ids.push(s.id());
            if s.closed().is_none() {
                s.downstream_data(c.send.as_bytes(), false)?;
            }
            // The echo upstream returns what reached it.
            let up = s.take_sent_upstream();
            if s.closed().is_none() && !up.is_empty() {
                s.upstream_data(&up, false)?;
            }
            let reply = s.take_sent_downstream();
            seen.push(TcpSeen { reply: String::from_utf8_lossy(&reply).into_owned(), closed: s.closed().is_some() });
        }
        for id in ids {
            let mut s = self.http.tcp(id);
            let peer = s.closed().unwrap_or(PeerType::Remote);
            if let Err(e) = s.close(peer) {
                // A connection the filter closed has already finished.
                if !matches!(e, sluice_host::Error::Usage(_)) {
                    return Err(e.into());
                }
            }
            self.http.forget_tcp_stream(id);
        }
        Ok(seen)
    }

    fn wait(&mut self, d: Duration) -> Result<()> {
        self.http.advance_time(d)?;
        if let Some(s) = &mut self.service {
            s.advance_time(d)?;
        }
        Ok(())
    }

    fn stat(&mut self, name: &str) -> Result<Option<u64>> {
        let short = name.strip_prefix("wasmcustom.").unwrap_or(name);
        Ok(match self.http.metric(short) {
            Some(MetricValue::Counter(v)) => Some(v),
            Some(MetricValue::Gauge(v)) => u64::try_from(v).ok(),
            Some(MetricValue::Histogram { count, .. }) => Some(count),
            None => None,
        })
    }

    fn log(&self) -> String {
        let mut records = self.http.logs();
        if let Some(s) = &self.service {
            records.extend(s.logs());
        }
        records.iter().map(|r| r.message.as_str()).collect::<Vec<_>>().join("\n")
    }
}
