//! The fuzz targets of `fuzz/`, run by cargo-fuzz (libFuzzer) for a bounded time, as `cargo test`
//! runs them. cargo-fuzz comes from crates.io on first use (`cargo install cargo-fuzz`, into
//! `target/tools/`, unless one is on `PATH` already). The targets build with the pinned stable
//! toolchain: with `--sanitizer none` cargo-fuzz asks for no nightly flag.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::wasm::workspace_root;

/// The cargo-fuzz release this project is checked with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The build options of every run: the same for each target, so they share one build. An
/// unoptimised build (with debug assertions and overflow checks, which a fuzzer wants anyway)
/// takes half the time of cargo-fuzz's default release build from a clean tree (5 against 10
/// minutes on 2 cores); the long runs in FUZZING.md use the release build.
pub const BUILD_OPTIONS: &[&str] = &["--sanitizer", "none", "--dev"];

/// What one bounded run did.
#[derive(Debug)]
pub struct Run {
    /// Inputs executed (libFuzzer's `stat::number_of_executed_units`).
    pub executions: u64,
    /// Coverage edges reached (libFuzzer's `cov:` at the end), if it printed one.
    pub edges: Option<u64>,
    /// The files libFuzzer wrote for failing inputs (crashes, timeouts, leaks, out-of-memory).
    pub findings: Vec<PathBuf>,
    /// Whether libFuzzer exited as after a clean run.
    pub clean_exit: bool,
    /// The tail of its output, for a failure message.
    pub log_tail: String,
}

/// A `PATH` under which `cargo fuzz` works: this one if it does already, else with cargo-fuzz
/// installed from crates.io into `target/tools/bin` first.
fn path_with_cargo_fuzz() -> Result<std::ffi::OsString> {
    static PATH: OnceLock<Result<std::ffi::OsString, String>> = OnceLock::new();
    PATH.get_or_init(|| find_or_install().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)
}

fn find_or_install() -> Result<std::ffi::OsString> {
    let root = workspace_root();
    let tools = root.join("target/tools");
    let mut dirs = vec![tools.join("bin")];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let path = std::env::join_paths(dirs).context("joining PATH")?;
    let works = |path: &std::ffi::OsStr| {
        Command::new("cargo")
            .args(["fuzz", "--version"])
            .env("PATH", path)
            .current_dir(&root)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&path) {
        return Ok(path);
    }
    eprintln!("cargo-fuzz is missing: installing {CARGO_FUZZ_VERSION} from crates.io into {}", tools.display());
    let out = Command::new("cargo")
        .args(["install", "--locked", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION, "--root"])
        .arg(&tools)
        .current_dir(&root)
        .output()
        .context("running cargo install cargo-fuzz")?;
    if !out.status.success() {
        bail!("cargo install cargo-fuzz failed:\n{}", crate::last_lines(&String::from_utf8_lossy(&out.stderr), 20));
    }
    if !works(&path) {
        bail!("cargo-fuzz was installed into {} but `cargo fuzz --version` still fails", tools.display());
    }
    Ok(path)
}

/// Runs fuzz target `target` for `time`, starting from the inputs in `seeds` (read, never written)
/// with extra libFuzzer `flags`, and `env` for the target process. New inputs and findings go under
/// `scratch`.
pub fn run(
    target: &str,
    seeds: &[&Path],
    time: Duration,
    flags: &[&str],
    env: &[(&str, &Path)],
    scratch: &Path,
) -> Result<Run> {
    let root = workspace_root();
    let grown = scratch.join("corpus");
    let artifacts = scratch.join("artifacts");
    std::fs::create_dir_all(&grown)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut cmd = Command::new("cargo");
    cmd.arg("fuzz")
        .arg("run")
        .args(BUILD_OPTIONS)
        .arg("--fuzz-dir")
        .arg(root.join("fuzz"))
        .arg(target)
        .arg(&grown)
        .args(seeds)
        .arg("--")
        .arg(format!("-max_total_time={}", time.as_secs().max(1)))
        // An input that takes this long is a hang, and a finding. The unoptimised module target
        // takes up to 15 s to compile a 98 KB module.
        .arg("-timeout=120")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(flags)
        .env("PATH", path_with_cargo_fuzz()?)
        .current_dir(&root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().with_context(|| format!("running cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let executions =
        log.lines().find_map(|l| l.strip_prefix("stat::number_of_executed_units:")).and_then(|n| n.trim().parse().ok());
    let Some(executions) = executions else {
        bail!("cargo fuzz run {target} printed no final stats:\n{}", crate::last_lines(&log, 40));
    };
    let edges = log
        .lines()
        .rev()
        .find_map(|l| l.split_once(" cov: ").and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok()));
    // libFuzzer also writes `slow-unit-*` for inputs over 10 s: a report, not a failure (a hang
    // is a `timeout-*`).
    let findings = std::fs::read_dir(&artifacts)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("slow-unit-")))
        .collect();
    // The panic's own message comes before the backtrace that ends the log: keep both.
    let lines: Vec<&str> = log.lines().collect();
    let panics: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("panicked at"))
        .flat_map(|(i, _)| lines[i..(i + 3).min(lines.len())].iter().copied())
        .collect();
    let log_tail = format!("{}\n…\n{}", panics.join("\n"), crate::last_lines(&log, 30));
    Ok(Run { executions, edges, findings, clean_exit: out.status.success(), log_tail })
}
