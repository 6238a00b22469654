//! The differential conformance engine: seeded scenarios over what a proxy-wasm HTTP filter can do
//! (`reference-filters/scripted`, written with the official SDK, takes its script from the
//! request), played in the real Envoy 1.40 and in `sluice serve` side by side; compared are what
//! the client received, what the upstream received, and every callback the filters got with its
//! arguments. A difference is shrunk to the simplest scenario that still shows it and can be kept
//! as a case file (`integration/cases/differential/`) that fails until fixed.

pub mod case_file;
pub mod engine;
pub mod generate;
pub mod log_tail;
pub mod outcome;
pub mod place;
pub mod scenario;
pub mod upstream;

pub use engine::{Difference, Engine, Run};
pub use scenario::Scenario;
