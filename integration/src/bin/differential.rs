//! The differential engine's long run: scenarios from a range of seeds, played in Envoy 1.40 and
//! `sluice serve`; prints the figures and every difference, shrunk, and writes each as a case file.
//!
//! ```text
//! cargo run -p sluice-integration --release --bin differential -- [--seed S] [--scenarios N] [--workers W] [--cases DIR] [--agreed]
//! ```
//! `--survey` only counts the scenarios that differ at first play (no replays, no shrinking).
//! `--play FILE` plays one case file (`integration/cases/differential/`) and prints both outcomes.
//! Defaults: seed 1, 1000 scenarios, 6 workers, case files into `target/differential-cases/`, the
//! whole space (`--agreed`: without the classes known to differ still, as the test suite's run).

use anyhow::{bail, Context, Result};
use sluice_integration::differential::generate::Space;
use sluice_integration::differential::{case_file, Engine};

fn main() -> Result<()> {
    let mut seed = 1u64;
    let mut scenarios = 1000u64;
    let mut workers = 6usize;
    let mut space = Space::All;
    let mut play = None;
    let mut survey = false;
    let mut cases = sluice_integration::wasm::workspace_root().join("target/differential-cases");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seed" => seed = value()?.parse().context("--seed")?,
            "--scenarios" => scenarios = value()?.parse().context("--scenarios")?,
            "--workers" => workers = value()?.parse().context("--workers")?,
            "--cases" => cases = value()?.into(),
            "--agreed" => space = Space::Agreed,
            "--survey" => survey = true,
            "--play" => play = Some(std::path::PathBuf::from(value()?)),
            other => bail!("unknown argument {other}; see the file's docs for usage"),
        }
    }
    let engine = Engine::start()?;
    if let Some(file) = play {
        let case = case_file::read(&file)?;
        let (envoy, sluice) = engine.play(&case.scenario);
        println!(
            "{}\n--- envoy ---\n{}\n{:#?}\n{}",
            case.scenario,
            envoy.client,
            envoy.upstream,
            envoy.callbacks.join("\n")
        );
        println!("--- sluice ---\n{}\n{:#?}\n{}", sluice.client, sluice.upstream, sluice.callbacks.join("\n"));
        return Ok(());
    }
    if survey {
        println!("{}", engine.survey(seed..seed + scenarios, space, workers).summary());
        return Ok(());
    }
    let run = engine.run(seed..seed + scenarios, space, workers);
    for d in &run.differences {
        let path = case_file::write(d, &cases)?;
        println!("=== {}\n{}", path.display(), d.report());
    }
    for s in &run.unsteady {
        println!("=== unsteady (differed once, agreed when played again): {s}");
    }
    println!("{}", run.summary());
    Ok(())
}
