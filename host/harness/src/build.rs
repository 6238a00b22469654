//! Builds a filter crate for `wasm32-wasip1` on demand, so that a filter's own `cargo test` runs
//! the module it has just changed, with no build step before it.
//!
//! Cargo decides what to rebuild (its own freshness check: a changed source, manifest or
//! dependency), and each crate is built at most once per test process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use sluice_core::error::{Error, Result};

/// The target filters are built for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// Builds the crate whose `Cargo.toml` is in `dir` for [`WASM_TARGET`] and returns the path of
/// its `.wasm`. Built once per process; later calls return the same path.
///
/// The build is the crate's release profile with line tables kept and nothing stripped (the same
/// code as the module it ships, plus what a trap's backtrace needs for function names, files and
/// lines). It goes to `sluice-harness/` in the crate's target directory (the workspace's, as
/// `cargo metadata` names it), a directory of its own, so it never waits for the `cargo test`
/// that runs it.
///
/// ```no_run
/// let wasm = sluice_harness::build_crate(env!("CARGO_MANIFEST_DIR"))?;
/// # Ok::<(), sluice_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Build`] with cargo's first error line when the crate does not build, or with the
/// command to run when the `wasm32-wasip1` target is not installed.
pub fn build_crate(dir: impl AsRef<Path>) -> Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Arc<Built>>>> = OnceLock::new();
    let dir = dir.as_ref();
    let dir = dir.canonicalize().map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let slot = {
        let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        built.entry(dir.clone()).or_default().clone()
    };
    // Tests of one crate run in parallel: one builds, the others wait for its answer.
    slot.get_or_init(|| build(&dir)).clone().map_err(|Failure { message, source }| Error::Build {
        dir,
        message: message.into(),
        source,
    })
}

/// One crate's build, made once: its `.wasm`, or why it failed.
type Built = OnceLock<Result<PathBuf, Failure>>;

/// Why a build failed, kept for every test that asks for the same crate.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    /// Cargo could not be run at all.
    source: Option<Arc<std::io::Error>>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, source: None }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// Cargo could not be run.
fn no_cargo(e: std::io::Error) -> Failure {
    Failure { message: "cannot run cargo".into(), source: Some(Arc::new(e)) }
}

/// The crate's target directory, as cargo resolves it (its workspace's, `CARGO_TARGET_DIR`, …).
fn target_dir(cargo: &std::ffi::OsStr, dir: &Path) -> Result<PathBuf, Failure> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .current_dir(dir)
        .output()
        .map_err(no_cargo)?;
    if !out.status.success() {
        return Err(failure(&String::from_utf8_lossy(&out.stderr)).into());
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata gave no JSON: {e}"))?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata named no target directory".into())
}

fn build(dir: &Path) -> Result<PathBuf, Failure> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = target_dir(&cargo, dir)?.join("sluice-harness");
    let out = Command::new(&cargo)
        .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
        .args(["--config", "profile.release.debug=\"line-tables-only\"", "--config", "profile.release.strip=false"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .current_dir(dir)
        .output()
        .map_err(no_cargo)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(failure(&stderr).into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wasm = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["manifest_path"] == dir.join("Cargo.toml").to_string_lossy().as_ref()
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    wasm.ok_or_else(|| "it built, but made no .wasm: is it a `crate-type = [\"cdylib\"]` library?".into())
}

/// Cargo's failure as one line a user can act on.
fn failure(stderr: &str) -> String {
    if stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") {
        return format!("the Rust target {WASM_TARGET} is not installed: run `rustup target add {WASM_TARGET}`");
    }
    let first = stderr.lines().find(|l| l.starts_with("error")).or_else(|| stderr.lines().last()).unwrap_or("");
    format!("{}\n{stderr}", first.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_target_is_one_line_that_says_what_to_run() {
        let cargo_said = "   Compiling sluice v0.1.0\nerror[E0463]: can't find crate for `core`\n  |\n  = note: the `wasm32-wasip1` target may not be installed\n  = help: consider downloading the target with `rustup target add wasm32-wasip1`\n";
        assert_eq!(
            failure(cargo_said),
            "the Rust target wasm32-wasip1 is not installed: run `rustup target add wasm32-wasip1`"
        );
    }

    #[test]
    fn a_compile_error_leads_with_its_first_line() {
        let cargo_said =
            "   Compiling demo v0.1.0\nerror[E0425]: cannot find value `x` in this scope\n --> src/lib.rs:3:5\n";
        assert!(failure(cargo_said).starts_with("error[E0425]: cannot find value `x` in this scope\n"));
    }

    #[test]
    fn a_directory_without_a_crate_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("sluice-no-crate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = build_crate(&dir).unwrap_err();
        assert!(matches!(err, Error::Build { .. }), "{err}");
        assert!(err.to_string().contains("Cargo.toml"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
