//! Builds the reference filters (official `proxy-wasm` 0.2.5) once per test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("integration/ has a parent").to_path_buf()
}

/// Makes sure the toolchain pinned by `rust-toolchain.toml` can build for `target_triple`, adding the
/// target with rustup when it is missing.
///
/// rustup does not add a toolchain file's targets by itself to a toolchain that is already installed
/// (and not at all with `RUSTUP_AUTO_INSTALL=0`), so a fresh machine would otherwise end a long build
/// with E0463 ("can't find crate for `std`").
pub fn ensure_target(target_triple: &str) -> Result<(), String> {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|t| t == target_triple) {
        return Ok(());
    }
    let root = workspace_root();
    let fix = format!("run `rustup target add {target_triple}` in {}", root.display());
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run rustc to find the toolchain ({e}): install rustup, then {fix}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib").join(target_triple).join("lib").is_dir() {
        eprintln!("the Rust target {target_triple} is missing: adding it with rustup (one download, about 20 MB)");
        let out =
            Command::new("rustup").args(["target", "add", target_triple]).current_dir(&root).output().map_err(|e| {
                format!("the Rust target {target_triple} is missing and rustup cannot run ({e}): {fix}")
            })?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
            return Err(format!(
                "the Rust target {target_triple} is missing and rustup could not add it ({why}): {fix}"
            ));
        }
    }
    done.push(target_triple.to_owned());
    Ok(())
}

/// Builds the filter workspace at `dir` (relative to the workspace root) for `target_triple`.
fn build(dir: &str, target_triple: &str) -> Result<PathBuf, String> {
    ensure_target(target_triple)?;
    let root = workspace_root();
    let target = root.join("target").join(dir.replace('/', "-"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--target", target_triple, "--manifest-path"])
        .arg(root.join(dir).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .map_err(|e| format!("cannot run cargo to build {dir}: {e}"))?;
    if !out.status.success() {
        return Err(format!("building {dir} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(target.join(target_triple).join("release"))
}

/// The `.wasm` of reference filter `name` (a crate under `reference-filters/`, e.g. `headers`).
///
/// # Panics
/// If the filters do not build: the test cannot run without them.
pub fn reference_filter(name: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir =
        DIR.get_or_init(|| build("reference-filters", "wasm32-wasip1")).as_ref().unwrap_or_else(|e| panic!("{e}"));
    filter_in(dir, "ref_", name)
}

/// The `.wasm` of reference filter `name` built for `wasm32-unknown-unknown` (no WASI, `malloc`).
pub fn reference_filter_unknown_unknown(name: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| build("reference-filters", "wasm32-unknown-unknown"))
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    filter_in(dir, "ref_", name)
}

/// The `.wasm` of test filter `name` written with the `sluice` SDK (a crate under `sdk/test-filters/`).
///
/// # Panics
/// If the filters do not build.
pub fn sdk_filter(name: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| build("sdk/test-filters", "wasm32-wasip1")).as_ref().unwrap_or_else(|e| panic!("{e}"));
    filter_in(dir, "sdk_", name)
}

/// The `.wasm` of sample filter `name` (a crate under `filters/`).
///
/// # Panics
/// If the samples do not build.
pub fn sample_filter(name: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| build("filters", "wasm32-wasip1")).as_ref().unwrap_or_else(|e| panic!("{e}"));
    filter_in(dir, "", name)
}

/// The built module of crate `name` in `dir` (cargo names it `<prefix><name with _>.wasm`).
fn filter_in(dir: &Path, prefix: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{prefix}{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "no filter module at {}", path.display());
    path
}
