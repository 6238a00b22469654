//! A proxy process on a bootstrap: the real Envoy, `sluice` started through a link named `envoy`
//! (with Envoy's command line), or another host; the bootstrap first made to run on loopback
//! ([`loopback`]), and the two proxies run side by side on it ([`in_both`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_yaml_ng::{Mapping, Value};

use crate::proxy_log::PROBE_IP;
use crate::wasm::workspace_root;

/// A bootstrap made to run on loopback ([`loopback`]): the YAML and what changed: each listener's (and the admin's) original port and its new one.
#[derive(Debug, Clone, Default)]
pub struct Rewritten {
    /// The YAML to run.
    pub yaml: String,
    /// Original listener port → port on 127.0.0.1.
    pub ports: BTreeMap<u16, u16>,
    /// The admin port.
    pub admin_port: u16,
    /// Whether the config has an admin listener (without one, readiness is the listeners accepting).
    pub has_admin: bool,
}

/// Rewrites addresses and nothing else: listeners and admin to fresh ports on 127.0.0.1, cluster
/// endpoints that point at one of the file's own listeners to that listener, and every other
/// endpoint to `upstream_port` on 127.0.0.1. Every other field, spelling and wrapper stays as
/// written.
///
/// # Errors
/// If `original` is not YAML.
pub fn loopback(original: &str, upstream_port: u16) -> Result<Rewritten> {
    loopback_with(original, upstream_port, &[], &|_| None)
}

/// [`loopback`], with the endpoints of the clusters named in `per_cluster` sent to their own port,
/// and each module `filename` for which `module` gives a path replaced by it (a config written for
/// a container names modules where the container has them).
///
/// # Errors
/// If `original` is not YAML.
pub fn loopback_with(
    original: &str,
    upstream_port: u16,
    per_cluster: &[(&str, u16)],
    module: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Rewritten> {
    let mut tree: Value = serde_yaml_ng::from_str(original).context("the example's envoy.yaml")?;
    let mut out = Rewritten::default();
    // First the listeners (and admin), so endpoints can point at their new ports.
    let mut listener_ports = Vec::new();
    collect_listener_ports(&tree, &mut listener_ports);
    for p in listener_ports {
        out.ports.insert(p, crate::ports::free_port());
    }
    out.admin_port = crate::ports::free_port();
    walk(&mut tree, &mut |key, m| {
        if key == Some("socket_address") {
            let port = m.get("port_value").and_then(Value::as_u64).unwrap_or(0) as u16;
            m.insert("address".into(), "127.0.0.1".into());
            let new = out.ports.get(&port).copied().unwrap_or(upstream_port);
            m.insert("port_value".into(), Value::from(new));
        }
        if let Some(Value::String(f)) = m.get_mut("filename") {
            if let Some(path) = module(f) {
                *f = path.display().to_string();
            }
        }
    });
    // Admin and listeners get their own ports (the walk above sent them all through one table).
    if let Some(Value::Sequence(clusters)) = tree.get_mut("static_resources").and_then(|r| r.get_mut("clusters")) {
        for c in clusters {
            let Some(port) =
                per_cluster.iter().find(|(n, _)| c.get("name").and_then(Value::as_str) == Some(n)).map(|(_, p)| *p)
            else {
                continue;
            };
            walk(c, &mut |key, m| {
                if key == Some("socket_address") {
                    m.insert("port_value".into(), Value::from(port));
                }
            });
        }
    }
    out.has_admin = tree.get("admin").is_some();
    if let Some(admin) =
        tree.get_mut("admin").and_then(|a| a.get_mut("address")).and_then(|a| a.get_mut("socket_address"))
    {
        admin["port_value"] = Value::from(out.admin_port);
    }
    out.yaml = serde_yaml_ng::to_string(&tree)?;
    Ok(out)
}

fn collect_listener_ports(tree: &Value, out: &mut Vec<u16>) {
    let listeners = &tree["static_resources"]["listeners"];
    let one = [listeners.clone()];
    let items: &[Value] = match listeners {
        Value::Sequence(s) => s,
        Value::Mapping(_) => &one,
        _ => &[],
    };
    for l in items {
        if let Some(p) = l["address"]["socket_address"]["port_value"].as_u64() {
            out.push(p as u16);
        }
    }
}

/// Calls `f` on every mapping with the key it sits under.
fn walk(v: &mut Value, f: &mut impl FnMut(Option<&str>, &mut Mapping)) {
    fn go(v: &mut Value, key: Option<&str>, f: &mut impl FnMut(Option<&str>, &mut Mapping)) {
        match v {
            Value::Mapping(m) => {
                f(key, m);
                for (k, child) in m.iter_mut() {
                    let k = k.as_str().map(str::to_owned);
                    go(child, k.as_deref(), f);
                }
            }
            Value::Sequence(items) => items.iter_mut().for_each(|i| go(i, key, f)),
            _ => {}
        }
    }
    go(v, None, f)
}

/// A blocking TCP connection to 127.0.0.1:`port` from the loopback address `from`.
pub fn connect_from(from: &str, port: u16) -> std::io::Result<std::net::TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        let ip: std::net::IpAddr =
            from.parse().map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP"))?;
        socket.bind((ip, 0).into())?;
        socket.connect(([127, 0, 0, 1], port).into()).await?.into_std()
    })?;
    s.set_nonblocking(false)?;
    Ok(s)
}

/// Which proxy a [`Proxy`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The real Envoy 1.40.
    Envoy,
    /// `sluice`, started through a link named `envoy`, with Envoy's own command line.
    Sluice,
    /// Another host, as the cases kit names it (`SLUICE_CASES_HOST='myhost -c {config}'`).
    Host(String),
}

impl Which {
    /// The proxy to compare with Envoy: `SLUICE_CASES_HOST` if set, else sluice.
    pub fn under_test() -> Self {
        std::env::var("SLUICE_CASES_HOST").map(Which::Host).unwrap_or(Which::Sluice)
    }
}

/// A proxy started the way tools start Envoy (`--base-id N --concurrency 1 -l info
/// --component-log-level wasm:trace -c FILE`), ready once admin `/listeners` lists every listener.
/// Dropping it kills the process.
pub struct Proxy {
    child: std::process::Child,
    dir: PathBuf,
    /// Original listener port → the port it listens on.
    pub ports: BTreeMap<u16, u16>,
    /// Its admin port.
    pub admin_port: u16,
}

/// A link named `envoy` to the `sluice` binary, so sluice runs under Envoy's name.
pub fn sluice_as_envoy() -> PathBuf {
    static LINK: OnceLock<PathBuf> = OnceLock::new();
    LINK.get_or_init(|| {
        let dir = workspace_root().join("target/sluice-as-envoy");
        let _ = std::fs::create_dir_all(&dir);
        let link = dir.join("envoy");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(crate::sluice::sluice_binary(), &link)
            .unwrap_or_else(|e| panic!("cannot link {}: {e}", link.display()));
        link
    })
    .clone()
}

/// `original` made to run on loopback ([`loopback`]) and started in Envoy, then in sluice, from
/// `cwd`; `f` sees each while it runs. What `f` returns, Envoy's first.
///
/// # Panics
/// If either proxy does not start.
pub fn in_both<T>(original: &str, upstream_port: u16, cwd: &Path, f: impl FnMut(&Which, &Proxy) -> T) -> Vec<T> {
    in_both_rewritten(|| loopback(original, upstream_port), cwd, f)
}

/// [`in_both`], with the bootstrap each proxy runs made by `config` (once per proxy: each gets
/// fresh ports).
///
/// # Panics
/// If `config` fails or either proxy does not start.
pub fn in_both_rewritten<T>(
    config: impl Fn() -> Result<Rewritten>,
    cwd: &Path,
    mut f: impl FnMut(&Which, &Proxy) -> T,
) -> Vec<T> {
    [Which::Envoy, Which::Sluice]
        .iter()
        .map(|which| {
            let config = config().unwrap_or_else(|e| panic!("rewriting: {e:#}"));
            let proxy = Proxy::start(which.clone(), &config, cwd).unwrap_or_else(|e| panic!("{which:?}: {e:#}"));
            f(which, &proxy)
        })
        .collect()
}

impl Proxy {
    /// Starts `which` on `config`, from `cwd` (where relative module paths start).
    pub fn start(which: Which, config: &Rewritten, cwd: &Path) -> Result<Self> {
        static BASE_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!("sluice-proxy-{}-{}", std::process::id(), crate::envoy::unique()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("envoy.yaml"), &config.yaml)?;
        let log = std::fs::File::create(dir.join("proxy.log"))?;
        // Envoy's hot-restart sockets are named by base id: each process gets its own.
        let n = BASE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 64;
        let base_id = (std::process::id() % 10_000 * 64 + n) * 10;
        let file = dir.join("envoy.yaml").display().to_string();
        let envoy_argv = |bin: PathBuf| {
            let mut c = Command::new(bin);
            // Envoy writes access-log files every 10 s by default; the test reads them sooner.
            c.args(["--base-id", &base_id.to_string(), "--concurrency", "1", "-l", "info"])
                .args(["--file-flush-interval-msec", "100"])
                .args(["--component-log-level", "wasm:trace", "-c", &file]);
            c
        };
        let mut cmd = match &which {
            Which::Envoy => envoy_argv(crate::envoy::envoy_binary()),
            Which::Sluice => envoy_argv(sluice_as_envoy()),
            Which::Host(template) => {
                let mut words = template.split_whitespace().map(|w| w.replace("{config}", &file));
                let mut c = Command::new(words.next().context("SLUICE_CASES_HOST is empty")?);
                c.args(words);
                c
            }
        };
        let child = cmd
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {which:?}"))?;
        let mut p = Self { child, dir, ports: config.ports.clone(), admin_port: config.admin_port };
        p.wait_ready(&which, config.has_admin)?;
        Ok(p)
    }

    fn wait_ready(&mut self, which: &Which, has_admin: bool) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{which:?} exited with {status} before it was ready:\n{}", self.log_tail());
            }
            if !has_admin {
                // No admin to ask: ready when every listener accepts (and, with none, once the
                // plugins had a moment to start).
                if self.ports.is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    return Ok(());
                }
                if self.ports.values().all(|p| connect_from(PROBE_IP, *p).is_ok()) {
                    return Ok(());
                }
            } else if let Ok(r) = crate::client::get(self.admin_port, "/listeners") {
                let text = String::from_utf8_lossy(&r.body).into_owned();
                if r.status() == 200 && self.ports.values().all(|p| text.contains(&format!(":{p}\n"))) {
                    return Ok(());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bail!("{which:?} was not ready within 60 s:\n{}", self.log_tail())
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last 30 lines it logged.
    pub fn log_tail(&self) -> String {
        crate::last_lines(&self.log(), 30)
    }

    /// Everything it logged (stdout and stderr).
    pub fn log(&self) -> String {
        // Lossy: a guest may log bytes that are not UTF-8, and Envoy writes them as they are.
        std::fs::read(self.dir.join("proxy.log")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `which` on `config` until it exits (for configs it must refuse); its exit status and log.
pub fn run_to_exit(
    which: Which,
    config: &Rewritten,
    cwd: &Path,
    within: std::time::Duration,
) -> Result<(Option<i32>, String)> {
    match Proxy::start(which, config, cwd) {
        Ok(mut p) => {
            let deadline = std::time::Instant::now() + within;
            while std::time::Instant::now() < deadline {
                if !p.running() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let code = p.child.try_wait().ok().flatten().and_then(|s| s.code());
            Ok((code, p.log()))
        }
        Err(e) => Ok((Some(1), format!("{e:#}"))),
    }
}
