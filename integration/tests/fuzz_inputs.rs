//! Every input kept under `fuzz/corpus/` and `fuzz/regressions/` (what the fuzzers found, and the
//! seeds they grew from), replayed through the same checks the cargo-fuzz targets run
//! (`fuzz/src/checks.rs`), so nothing a fuzzer once broke breaks again, without nightly. A check
//! that panics fails this test with the file's name.

#[path = "../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../fuzz/src/front.rs"]
mod front;

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

#[test]
fn kept_request_head_streams_scan_alike_whole_and_in_pieces() {
    replay("heads", checks::heads);
}

#[test]
fn kept_client_byte_streams_never_reach_the_upstream_unless_whole() {
    let dir = std::env::temp_dir().join(format!("sluice-front-replay-{}", std::process::id()));
    let mut f = front::Front::start(
        &sluice_integration::sluice::sluice_binary(),
        &sluice_integration::wasm::reference_filter("hello"),
        &dir,
    );
    let files = inputs("front");
    assert!(files.len() >= 9, "the seeds and regressions are there");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.check(&data))) {
            let why = e.downcast_ref::<String>().cloned().unwrap_or_default();
            panic!("fuzz/{}: the `front` check failed: {why}", file.display());
        }
    }
    drop(f);
    let _ = std::fs::remove_dir_all(dir);
}

/// The front check is not vacuous: the well-formed seeds do reach the upstream whole, and the
/// upstream would be caught taking a request the client never finished.
#[test]
fn the_front_check_sees_whole_and_broken_requests() {
    let dir = std::env::temp_dir().join(format!("sluice-front-seeds-{}", std::process::id()));
    let mut f = front::Front::start(
        &sluice_integration::sluice::sluice_binary(),
        &sluice_integration::wasm::reference_filter("hello"),
        &dir,
    );
    let root = sluice_integration::wasm::workspace_root().join("fuzz/corpus/front");
    for (seed, whole) in [("get", 1), ("post", 1), ("chunked", 1), ("pipelined", 3)] {
        let before = f.received();
        f.check(&std::fs::read(root.join(seed)).unwrap());
        assert_eq!(f.received() - before, whole, "{seed}: requests that reached the upstream");
    }
    // Envoy's refusals: the refused request and what it hides never reach it; a request before
    // it does.
    let regressions = sluice_integration::wasm::workspace_root().join("fuzz/regressions/front");
    for (input, whole) in [
        ("fragment-then-request", 0),
        ("two-lengths-then-request", 0),
        ("gzip-chunked", 0),
        ("pipelined-content-length-and-chunked", 1),
    ] {
        let before = f.received();
        f.check(&std::fs::read(regressions.join(input)).unwrap());
        assert_eq!(f.received() - before, whole, "{input}: requests that reached the upstream");
    }
    drop(f);
    let _ = std::fs::remove_dir_all(dir);
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
