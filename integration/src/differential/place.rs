//! A place a scenario plays in: a proxy process (the real Envoy, or `sluice serve`, or another
//! host) started on the engine's bootstrap, with its own scenario upstream and its log followed.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::log_tail::LogTail;
use super::outcome::{ClientView, Outcome};
use super::scenario::{Client, Scenario};
use super::upstream::ScenarioUpstream;
use crate::client::read_message_with;
use crate::envoy::WasmFilter;
use crate::sluice::{sluice_binary, SluiceServe};
use crate::{reference, Envoy, EnvoyConfig};

/// How long a client waits for an answer before it gives up (a filter that never resumes).
pub const CLIENT_PATIENCE: Duration = Duration::from_millis(2000);

/// How long, after the client is done, a place has to log the end of the scenario's stream.
const SETTLE: Duration = Duration::from_millis(2500);

/// Which proxy a place runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    /// The real Envoy 1.40.
    Envoy,
    /// `sluice serve` (debug build).
    Sluice,
    /// Another proxy-wasm host that reads an Envoy bootstrap: its command line with `{config}`
    /// for the file (`SLUICE_CASES_HOST`, as for the cases); it must log guest lines as Envoy
    /// does (`wasm log NAME ROOT VM: MESSAGE`) to its standard output or error.
    Other(String),
}

/// One proxy with the engine's bootstrap: the scripted filter twice (`A` then `B`) before the
/// router, cluster `upstream` (its scenario upstream) and `dead` (nobody listens).
pub struct Place {
    /// Which proxy.
    pub proxy: Proxy,
    port: u16,
    upstream: ScenarioUpstream,
    log: LogTail,
    /// The process, stopped when the place is dropped.
    _process: Box<dyn std::any::Any + Send + Sync>,
}

/// A scripted filter tagged `tag`.
fn scripted(tag: &str) -> WasmFilter {
    let mut f = reference("scripted", tag);
    f.name = tag.into();
    f.root_id = tag.into();
    f.vm_id = tag.into();
    f
}

/// The engine's bootstrap for an upstream on `port`.
pub fn bootstrap(port: u16) -> EnvoyConfig {
    let dead = crate::ports::free_port();
    EnvoyConfig::http(scripted("A")).and_filter(scripted("B")).cluster("upstream", port).cluster("dead", dead)
}

impl Place {
    /// Starts `proxy` with the engine's bootstrap, logging at info.
    ///
    /// # Errors
    /// When the upstream or the proxy does not start.
    pub fn start(proxy: Proxy) -> Result<Self> {
        let proxy_kind = proxy.clone();
        let upstream = ScenarioUpstream::start().context("starting the scenario upstream")?;
        let config = bootstrap(upstream.port);
        let (port, log, process) = match proxy {
            Proxy::Envoy => {
                let envoy = Envoy::start_logging(&config, &["-l", "info"])?;
                (envoy.port, envoy.log_path(), Box::new(envoy) as Box<dyn std::any::Any + Send + Sync>)
            }
            Proxy::Sluice => {
                let sluice = SluiceServe::start_logging(&config, &sluice_binary(), "info")?;
                (sluice.port, sluice.log_path(), Box::new(sluice) as _)
            }
            Proxy::Other(cmd) => {
                let (_, port, _, running) = crate::places::start_other(&cmd, &config)?;
                let log = running.log_path().unwrap_or_default();
                (port, log, Box::new(running) as _)
            }
        };
        Ok(Self { proxy: proxy_kind, port, upstream, log: LogTail::new(log), _process: process })
    }

    /// Plays `scenario` as scenario `sid` (unique in this place): what the client saw, what the
    /// upstream received and the filters' callbacks.
    pub fn play(&self, scenario: &Scenario, sid: &str) -> Outcome {
        let client = self.ask(scenario, sid).unwrap_or_else(|e| ClientView::Failed(format!("{e:#}")));
        let deadline = Instant::now() + SETTLE;
        let callbacks = loop {
            let lines = self.log.lines(sid);
            let done = lines.iter().filter(|l| l.ends_with(" done")).count();
            if done >= 2 || Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Outcome { client, upstream: self.upstream.received(sid), callbacks }
    }

    fn ask(&self, scenario: &Scenario, sid: &str) -> Result<ClientView> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).context("connecting")?;
        s.write_all(&scenario.request(sid))?;
        if scenario.client == Client::Abandons {
            return Ok(ClientView::Abandoned);
        }
        s.set_read_timeout(Some(CLIENT_PATIENCE))?;
        let mut r = BufReader::new(s);
        Ok(match read_message_with(&mut r, true, scenario.method == "HEAD") {
            Ok(Some(raw)) => ClientView::answered(&raw),
            Ok(None) => ClientView::Closed,
            Err(e) => match e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
                Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => ClientView::NoAnswer,
                _ => ClientView::Broken(format!("{e:#}")),
            },
        })
    }
}
