//! Every input kept under `fuzz/corpus/` and `fuzz/regressions/` (what the fuzzers found, and the
//! seeds they grew from), replayed through the same checks the cargo-fuzz targets run
//! (`fuzz/src/checks.rs`), so nothing a fuzzer once broke breaks again, without nightly. A check
//! that panics fails this test with the file's name.

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = sluice_integration::wasm::workspace_root().join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d).join(target)).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no kept inputs for `{target}` under fuzz/");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("fuzz/{}: the `{target}` check panicked", f.display());
        }
    }
}

#[test]
fn kept_config_inputs_do_not_panic() {
    replay("config", checks::config);
}

#[test]
fn kept_module_inputs_do_not_panic() {
    replay("module", checks::module);
}

#[test]
fn kept_hostcall_scripts_do_not_panic() {
    replay("hostcalls", checks::hostcalls);
}

/// The hostcall-script module itself loads and runs a script (else the `hostcalls` target would
/// test nothing): a script that logs its own first record.
#[test]
fn the_hostcall_script_module_runs_scripts() {
    let script =
        std::fs::read(sluice_integration::wasm::workspace_root().join("fuzz/corpus/hostcalls/log-own-script.bin"))
            .unwrap();
    let wat = std::fs::read(sluice_integration::wasm::workspace_root().join("fuzz/hostcalls.wat")).unwrap();
    let h = sluice_host::harness::Harness::builder().module_bytes(wat).plugin_config(script).build();
    let h = h.unwrap_or_else(|e| panic!("the script module does not start: {e}"));
    assert_eq!(h.logs().len(), 1, "one log line from the script: {:?}", h.logs());
}
