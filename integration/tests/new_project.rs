//! `sluice new`: the crate it makes builds, passes its own `cargo test` (which builds the module
//! through the harness, with no build step before it), its `envoy.yaml` is accepted by Envoy's
//! and by sluice's `--mode validate`, and the HTTP filter's answers through it, run as its README
//! says, are the same in Envoy and `sluice serve`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_integration::client::send;
use sluice_integration::envoy::envoy_binary;
use sluice_integration::proxy;
use sluice_integration::sluice::sluice_binary;
use sluice_integration::wasm::{ensure_target, workspace_root};

/// Where the generated crates go: under this repository, so that its `rust-toolchain.toml` (and
/// the wasm target the suite installs for it) applies to them too.
fn scratch(kind: &str) -> PathBuf {
    let dir = workspace_root().join("target").join("new-projects").join(kind);
    let _ = std::fs::remove_dir_all(dir.join(format!("demo-{kind}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn cargo_command(project: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The workspace's own target directory: the generated crates have this checkout's lock file
    // and dependency profile, so most of the harness (wasmtime above all) is already built there.
    cmd.args(args).current_dir(project).env("CARGO_TARGET_DIR", workspace_root().join("target"));
    cmd
}

fn cargo(project: &Path, args: &[&str]) -> String {
    run(&mut cargo_command(project, args))
}

/// Makes a crate of `kind`, runs its `tests` tests, builds and validates it; returns its directory.
fn made(kind: &str, tests: usize) -> PathBuf {
    ensure_target("wasm32-wasip1").unwrap();
    let dir = scratch(kind);
    let name = format!("demo-{kind}");
    let project = dir.join(&name);
    let said = run(Command::new(sluice_binary()).args(["new", &name, &format!("--{kind}"), "--path"]).arg(&project));
    assert!(said.contains("cargo test"), "{said}");
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs", "tests/filter.rs", "envoy.yaml", "README.md", ".gitignore"] {
        assert!(project.join(file).is_file(), "{file} is made");
    }
    // Its own tests, with nothing built before: the harness builds the module.
    let tested = cargo(&project, &["test"]);
    assert!(tested.contains(&format!("test result: ok. {tests} passed")), "{tested}");
    // The module as the README builds it, then the bootstrap in both validators.
    cargo(&project, &["build", "--release", "--target", "wasm32-wasip1"]);
    let wasm = workspace_root().join("target/wasm32-wasip1/release").join(format!("{}.wasm", name.replace('-', "_")));
    assert!(wasm.is_file(), "{} is built", wasm.display());
    // envoy.yaml names the module relative to the project (target/…), as a user runs it there.
    std::fs::create_dir_all(project.join("target/wasm32-wasip1/release")).unwrap();
    std::fs::copy(&wasm, project.join("target/wasm32-wasip1/release").join(wasm.file_name().unwrap())).unwrap();
    let envoy = run(Command::new(envoy_binary())
        .args(["--mode", "validate", "--disable-hot-restart", "-l", "error", "-c", "envoy.yaml"])
        .current_dir(&project));
    assert!(envoy.contains("OK"), "{envoy}");
    run(Command::new(sluice_binary()).args(["serve", "--mode", "validate", "-c", "envoy.yaml"]).current_dir(&project));
    project
}

#[test]
fn a_new_http_filter_builds_tests_and_validates() {
    let project = made("http", 3);
    // Its envoy.yaml, run as its README says (from the project), answers alike in Envoy and sluice.
    let original = std::fs::read_to_string(project.join("envoy.yaml")).unwrap();
    let answers = proxy::in_both(&original, 1, &project, |which, proxy| {
        let port = proxy.ports[&10000];
        let ok = send(port, "GET", "/", &[], b"").unwrap_or_else(|e| panic!("{which:?}: {e:#}"));
        let denied = send(port, "GET", "/", &[("x-deny", "1")], b"").unwrap();
        let hello = ok.headers.iter().find(|(k, _)| k == "x-hello").map(|(_, v)| v.clone());
        (ok.status(), hello, denied.status(), String::from_utf8_lossy(&denied.body).into_owned())
    });
    assert_eq!(answers[0], (200, Some("world".into()), 403, "denied by demo-http\n".into()), "Envoy");
    assert_eq!(answers[1], answers[0], "sluice serve answers as Envoy");
    // A changed source is what the next `cargo test` runs: never a stale module.
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("StatusCode::FORBIDDEN", "StatusCode::UNAUTHORIZED")).unwrap();
    let out = cargo_command(&project, &["test"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the test of the 403 fails once the filter answers 401:\n{text}");
    assert!(text.contains("left: Some(401)") && text.contains("right: Some(403)"), "{text}");
}

#[test]
fn a_new_tcp_filter_builds_tests_and_validates() {
    made("tcp", 2);
}

#[test]
fn a_new_service_builds_tests_and_validates() {
    made("service", 1);
}

#[test]
fn a_bad_name_or_a_used_directory_is_refused() {
    let out = Command::new(sluice_binary()).args(["new", "9lives"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot name a crate"));
    let dir = scratch("used");
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = Command::new(sluice_binary()).args(["new", "demo", "--path"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists and is not empty"));
    assert_eq!(std::fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine", "nothing is overwritten");
}
