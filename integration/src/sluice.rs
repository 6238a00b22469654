//! `sluice serve` as a process, started on the same YAML the real Envoy gets.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::envoy::{unique, EnvoyConfig};
use crate::wasm::workspace_root;

fn build(release: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "sluice-host", "--bin", "sluice"]).current_dir(workspace_root());
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(workspace_root().join(if release { "target/release/sluice" } else { "target/debug/sluice" }))
}

/// The `sluice` binary (debug build), built on first use.
pub fn sluice_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build(false)).clone().unwrap_or_else(|e| panic!("building sluice: {e}"))
}

/// The `sluice` binary (release build, for benchmarks), built on first use.
pub fn sluice_release_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build(true)).clone().unwrap_or_else(|e| panic!("building sluice: {e}"))
}

/// A running `sluice serve`. Dropping it kills the process.
pub struct SluiceServe {
    child: Child,
    dir: PathBuf,
    /// The HTTP (or TCP) listener's port.
    pub port: u16,
    /// The admin port.
    pub admin_port: u16,
}

impl SluiceServe {
    /// Starts `sluice serve --concurrency 1` (debug build) on `config` and waits for its listener.
    pub fn start(config: &EnvoyConfig) -> Result<Self> {
        Self::start_binary(config, &sluice_binary())
    }

    /// Starts the given `sluice` binary with `serve --concurrency 1` on `config`, logging at `level`.
    pub fn start_binary(config: &EnvoyConfig, binary: &std::path::Path) -> Result<Self> {
        Self::start_logging(config, binary, "debug")
    }

    /// Starts the given binary logging only warnings (for load tests).
    pub fn start_quiet(config: &EnvoyConfig, binary: &std::path::Path) -> Result<Self> {
        Self::start_logging(config, binary, "warn")
    }

    /// Starts `sluice serve` (debug build) on a YAML file, from the workspace root.
    pub fn start_file(yaml: &std::path::Path) -> Result<Self> {
        Self::spawn(&sluice_binary(), yaml, "debug", &[], None)
    }

    /// Starts `sluice serve --watch` (debug build) on a YAML file the caller wrote.
    pub fn start_watching(yaml: &std::path::Path) -> Result<Self> {
        Self::spawn(&sluice_binary(), yaml, "debug", &["--watch"], None)
    }

    /// Starts `sluice serve --concurrency N` (debug build) on `config`: N workers.
    pub fn start_with_workers(config: &EnvoyConfig, workers: usize) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("sluice-serve-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir)?;
        let mut yaml = config.render();
        yaml.push_str("admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n");
        std::fs::write(dir.join("envoy.yaml"), &yaml)?;
        let workers = workers.to_string();
        Self::spawn_with(&sluice_binary(), &dir.join("envoy.yaml"), "info", &["--concurrency", &workers], Some(dir))
    }

    /// Starts the given binary with `serve --concurrency 1 -l level` on `config`.
    pub fn start_logging(config: &EnvoyConfig, binary: &std::path::Path, level: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("sluice-serve-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir)?;
        let mut yaml = config.render();
        yaml.push_str("admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n");
        std::fs::write(dir.join("envoy.yaml"), &yaml)?;
        Self::spawn(binary, &dir.join("envoy.yaml"), level, &[], Some(dir))
    }

    fn spawn(
        binary: &std::path::Path,
        yaml: &std::path::Path,
        level: &str,
        extra: &[&str],
        dir: Option<PathBuf>,
    ) -> Result<Self> {
        let mut args = vec!["--concurrency", "1"];
        args.extend_from_slice(extra);
        Self::spawn_with(binary, yaml, level, &args, dir)
    }

    /// Runs `binary serve -l level ARGS -c yaml` and waits until it reports its listener and admin.
    fn spawn_with(
        binary: &std::path::Path,
        yaml: &std::path::Path,
        level: &str,
        args: &[&str],
        dir: Option<PathBuf>,
    ) -> Result<Self> {
        let dir = match dir {
            Some(d) => d,
            None => {
                let d = std::env::temp_dir().join(format!("sluice-serve-{}-{}", std::process::id(), unique()));
                std::fs::create_dir_all(&d)?;
                d
            }
        };
        let mut child = Command::new(binary)
            .args(["serve", "-l", level])
            // Relative module paths resolve from the working directory, as in Envoy.
            .current_dir(workspace_root())
            .args(args)
            .arg("-c")
            .arg(yaml)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sluice.log"))?)
            .spawn()
            .context("starting sluice serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut s = Self { child, dir, port: 0, admin_port: 0 };
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.port == 0 || s.admin_port == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                bail!("sluice serve did not report its listeners:\n{}", s.log());
            };
            let addr = |l: &str| l.rsplit(' ').next().and_then(|a| a.parse::<SocketAddr>().ok()).map(|a| a.port());
            if line.starts_with("listener ") {
                s.port = addr(&line).unwrap_or(0);
            } else if line.starts_with("admin on ") {
                s.admin_port = addr(&line).unwrap_or(0);
            }
        }
        Ok(s)
    }

    /// Sends SIGTERM and waits (up to `within`) for the process to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process id (for reading its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file it logs to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sluice.log")
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sluice.log")).unwrap_or_default()
    }
}

impl Drop for SluiceServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
