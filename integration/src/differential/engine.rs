//! Runs scenarios in the real Envoy and in `sluice serve` side by side, compares, and shrinks each
//! difference to the simplest scenario that still shows it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::generate::{self, Space};
use super::outcome::{Outcome, Parts};
use super::place::{Place, Proxy};
use super::scenario::Scenario;

/// How many candidates shrinking one difference may play.
const MAX_SHRINK_PLAYS: usize = 40;

/// The real Envoy and `sluice serve`, each with its own upstream, ready to play scenarios.
pub struct Engine {
    envoy: Place,
    sluice: Place,
    next_sid: AtomicU64,
}

/// A scenario whose outcomes differ, shrunk.
#[derive(Debug, Clone)]
pub struct Difference {
    /// The seed that generated it (none for a replayed case).
    pub seed: Option<u64>,
    /// The scenario as generated.
    pub original: Scenario,
    /// The simplest scenario found that still differs.
    pub shrunk: Scenario,
    /// Its outcome in Envoy.
    pub envoy: Outcome,
    /// Its outcome in sluice.
    pub sluice: Outcome,
}

impl Difference {
    /// Which parts differ.
    pub fn parts(&self) -> Parts {
        self.envoy.differs(&self.sluice)
    }

    /// The difference described for a person.
    pub fn report(&self) -> String {
        format!(
            "{}scenario: {}\nshrunk:   {}\n{}",
            self.seed.map(|s| format!("seed {s}\n")).unwrap_or_default(),
            self.original,
            self.shrunk,
            self.envoy.side_by_side(&self.sluice, "envoy", "sluice")
        )
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Run {
    /// Scenarios played.
    pub scenarios: usize,
    /// How long playing them took.
    pub elapsed: Duration,
    /// How long replaying and shrinking the differences took.
    pub shrinking: Duration,
    /// Distinct callback sequences seen (callbacks without their arguments).
    pub sequences: usize,
    /// Scenarios that differed when first played (before replaying and shrinking).
    pub differing: usize,
    /// Scenarios that differed once and agreed the three times they were played again.
    pub unsteady: Vec<Scenario>,
    /// Differences, shrunk, one per distinct shrunk scenario.
    pub differences: Vec<Difference>,
}

impl Run {
    /// The figures in one line.
    pub fn summary(&self) -> String {
        let per_minute = self.scenarios as f64 / self.elapsed.as_secs_f64().max(0.001) * 60.0;
        format!(
            "{} scenarios in {:.1} s ({per_minute:.0}/min), {} distinct callback sequences, {} differed, {} differences (shrunk in {:.1} s), {} unsteady",
            self.scenarios,
            self.elapsed.as_secs_f64(),
            self.sequences,
            self.differing,
            self.differences.len(),
            self.shrinking.as_secs_f64(),
            self.unsteady.len()
        )
    }
}

impl Engine {
    /// Starts Envoy and `sluice serve`, or instead of sluice the host `SLUICE_CASES_HOST` names
    /// (the same contract as the cases: the engine checks any proxy-wasm host against Envoy).
    ///
    /// # Errors
    /// When either does not start.
    pub fn start() -> Result<Self> {
        let other = match std::env::var(crate::places::OTHER_HOST) {
            Ok(cmd) => Proxy::Other(cmd),
            Err(_) => Proxy::Sluice,
        };
        Ok(Self { envoy: Place::start(Proxy::Envoy)?, sluice: Place::start(other)?, next_sid: AtomicU64::new(1) })
    }

    /// Plays `scenario` in both proxies (at the same time); both outcomes.
    pub fn play(&self, scenario: &Scenario) -> (Outcome, Outcome) {
        let sid = self.next_sid.fetch_add(1, Ordering::Relaxed).to_string();
        std::thread::scope(|s| {
            let e = s.spawn(|| self.envoy.play(scenario, &sid));
            let l = self.sluice.play(scenario, &sid);
            (e.join().expect("the Envoy side does not panic"), l)
        })
    }

    /// Whether `scenario` still differs in the parts `parts` names (at least one of them).
    fn still_differs(&self, scenario: &Scenario, parts: Parts) -> Option<(Outcome, Outcome)> {
        let (e, s) = self.play(scenario);
        let now = e.differs(&s);
        let kept =
            (parts.client && now.client) || (parts.upstream && now.upstream) || (parts.callbacks && now.callbacks);
        kept.then_some((e, s))
    }

    /// The simplest scenario of `space` reachable from `scenario` one simplification at a time
    /// that still differs in the same parts; it and its outcomes.
    pub fn shrink(
        &self,
        scenario: &Scenario,
        space: Space,
        outcomes: (Outcome, Outcome),
    ) -> (Scenario, Outcome, Outcome) {
        let parts = outcomes.0.differs(&outcomes.1);
        let (mut best, mut outcomes) = (scenario.clone(), outcomes);
        // Bounded: a scenario whose client waits out its patience costs seconds a play.
        let mut plays = MAX_SHRINK_PLAYS;
        'simplify: loop {
            for candidate in best.simpler().into_iter().filter(|c| space.admits(c)) {
                if plays == 0 {
                    break 'simplify (best, outcomes.0, outcomes.1);
                }
                plays -= 1;
                if let Some(found) = self.still_differs(&candidate, parts) {
                    best = candidate;
                    outcomes = found;
                    continue 'simplify;
                }
            }
            return (best, outcomes.0, outcomes.1);
        }
    }

    /// Plays the scenarios of seeds `seeds` in `space` with `workers` clients at a time, then shrinks each
    /// difference that shows again when played alone.
    pub fn run(&self, seeds: std::ops::Range<u64>, space: Space, workers: usize) -> Run {
        self.run_with(seeds, space, workers, true)
    }

    /// [`Engine::run`] without replaying and shrinking: how many scenarios differ at first play
    /// (a survey of a space with slow classes in it, where shrinking costs seconds a play).
    pub fn survey(&self, seeds: std::ops::Range<u64>, space: Space, workers: usize) -> Run {
        self.run_with(seeds, space, workers, false)
    }

    fn run_with(&self, seeds: std::ops::Range<u64>, space: Space, workers: usize, shrink: bool) -> Run {
        let start = Instant::now();
        let next = AtomicU64::new(seeds.start);
        let played = AtomicUsize::new(0);
        let sequences = Mutex::new(BTreeSet::new());
        let differing = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..workers.max(1) {
                s.spawn(|| loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        return;
                    }
                    let scenario = generate::scenario_in(seed, space);
                    let (e, l) = self.play(&scenario);
                    played.fetch_add(1, Ordering::Relaxed);
                    sequences.lock().unwrap_or_else(|e| e.into_inner()).insert(e.shape());
                    if e.differs(&l).any() {
                        differing.lock().unwrap_or_else(|e| e.into_inner()).push((seed, scenario));
                    }
                });
            }
        });
        let mut run = Run {
            elapsed: start.elapsed(),
            scenarios: played.into_inner(),
            sequences: sequences.into_inner().unwrap_or_default().len(),
            ..Run::default()
        };
        let mut differing = differing.into_inner().unwrap_or_default();
        differing.sort_by_key(|(seed, _)| *seed);
        run.differing = differing.len();
        if !shrink {
            return run;
        }
        let mut seen = BTreeSet::new();
        for (seed, scenario) in differing {
            // Played again, up to three times: a difference that does not come back is timing
            // (which of two events a proxy handled first under load), kept apart.
            let again = (0..3).map(|_| self.play(&scenario)).find(|(e, l)| e.differs(l).any());
            let Some((e, l)) = again else {
                run.unsteady.push(scenario);
                continue;
            };
            let began = Instant::now();
            let (shrunk, envoy, sluice) = self.shrink(&scenario, space, (e, l));
            if std::env::var_os("SLUICE_DIFFERENTIAL_VERBOSE").is_some() {
                eprintln!("seed {seed}: shrunk in {:.1} s to {shrunk}", began.elapsed().as_secs_f64());
            }
            if seen.insert(shrunk.to_string()) {
                run.differences.push(Difference { seed: Some(seed), original: scenario, shrunk, envoy, sluice });
            }
        }
        run.shrinking = start.elapsed() - run.elapsed;
        run
    }
}
