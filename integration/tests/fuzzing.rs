//! Every fuzz target of `fuzz/` (FUZZING.md) run by cargo-fuzz for a bounded time, from the kept
//! seeds and regressions: a crash, a hang (an input over 120 s), a leak or out-of-memory that
//! libFuzzer finds fails the test with the input it wrote. `SLUICE_FUZZ_SECONDS` sets the time per
//! target (default 30). The first run installs cargo-fuzz and builds the targets with coverage
//! instrumentation: a second build of everything, wasmtime included (about 5 minutes on 2 cores).
//! That is why `cargo test --workspace` reports it as ignored, with the reason, and leaves it to
//! the fuzz tier: `cargo test -p sluice-integration --test fuzzing -- --ignored`, which `.ci/run`
//! runs. The inputs the targets keep are replayed by every `cargo test` (`fuzz_inputs.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_integration::fuzz;
use sluice_integration::wasm::{reference_filter, workspace_root};

fn seconds() -> Duration {
    let s = std::env::var("SLUICE_FUZZ_SECONDS")
        .ok()
        .map(|s| s.parse::<u64>().unwrap_or_else(|_| panic!("SLUICE_FUZZ_SECONDS={s:?} is not a number of seconds")));
    Duration::from_secs(s.unwrap_or(30))
}

fn kept(target: &str) -> Vec<PathBuf> {
    let fuzz = workspace_root().join("fuzz");
    vec![fuzz.join("corpus").join(target), fuzz.join("regressions").join(target)]
}

#[test]
#[ignore = "the fuzz tier: builds the fuzz targets (~5 min); run with --ignored, as .ci/run does"]
fn every_fuzz_target_survives_a_bounded_run() {
    let root = workspace_root();
    // Grown corpora and findings of this run; the kept seeds are only read.
    let scratch = root.join("target/fuzz-runs").join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&scratch);
    let hello = reference_filter("hello");
    let sluice = sluice_integration::sluice::sluice_binary();
    // The module target also starts from a real module the official SDK built.
    let modules = scratch.join("module-seeds");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::copy(&hello, modules.join("ref_hello.wasm")).unwrap();

    let mut config_seeds = kept("config");
    config_seeds.push(root.join("envoy-config"));
    let mut module_seeds = kept("module");
    module_seeds.push(modules);
    let env: &[(&str, &Path)] = &[("SLUICE_BIN", &sluice), ("SLUICE_FRONT_MODULE", &hello)];
    let targets: [(&str, Vec<PathBuf>, &[&str]); 5] = [
        ("config", config_seeds, &[]),
        ("hostcalls", kept("hostcalls"), &[]),
        ("module", module_seeds, &["-max_len=200000"]),
        ("heads", kept("heads"), &["-max_len=4096"]),
        ("front", kept("front"), &["-max_len=4096"]),
    ];
    let mut failures = Vec::new();
    for (target, seeds, flags) in &targets {
        let seeds: Vec<&Path> = seeds.iter().map(PathBuf::as_path).filter(|p| p.is_dir()).collect();
        let run = fuzz::run(target, &seeds, seconds(), flags, env, &scratch.join(target))
            .unwrap_or_else(|e| panic!("fuzz target {target}: {e:#}"));
        eprintln!(
            "fuzz target {target}: {} executions in {} s, {} coverage edges, {} findings",
            run.executions,
            seconds().as_secs(),
            run.edges.map_or("?".into(), |e| e.to_string()),
            run.findings.len()
        );
        // A run that executed nothing tested nothing.
        if run.executions == 0 || !run.findings.is_empty() || !run.clean_exit {
            failures.push(format!("{target}: {run:?}\n{}", run.log_tail));
            // Keep what it found where the developer can replay it (`cargo fuzz run TARGET FILE`).
            let keep = root.join("fuzz/artifacts").join(target);
            let _ = std::fs::create_dir_all(&keep);
            for f in &run.findings {
                let _ = std::fs::copy(f, keep.join(f.file_name().unwrap()));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(failures.is_empty(), "fuzz findings (copied under fuzz/artifacts/):\n{}", failures.join("\n\n"));
}
