//! Metrics as typed handles, defined once (usually in `configure`) and used from any stream.
//! Envoy shows them as `wasmcustom.<name>`.

use crate::abi;
use crate::error::Result;

/// A counter: only goes up.
///
/// ```no_run
/// let requests = sluice::metrics::Counter::new("my_filter.requests")?;
/// requests.inc();
/// # Ok::<(), sluice::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Counter(u32);

/// A gauge: goes up and down, or is set.
#[derive(Debug, Clone, Copy)]
pub struct Gauge(u32);

/// A histogram: records samples.
#[derive(Debug, Clone, Copy)]
pub struct Histogram(u32);

impl Counter {
    /// Defines (or looks up) the counter `name`.
    pub fn new(name: &str) -> Result<Self> {
        abi::define_metric(0, name).map(Self)
    }

    /// Adds one. Failures are logged, never panics.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` (zero does nothing).
    pub fn add(&self, n: u64) {
        if n > 0 {
            if let Err(e) = abi::increment_metric(self.0, n.min(i64::MAX as u64) as i64) {
                log::warn!("counter update failed: {e}");
            }
        }
    }

    /// The current value.
    pub fn get(&self) -> Result<u64> {
        abi::get_metric(self.0)
    }
}

impl Gauge {
    /// Defines (or looks up) the gauge `name`.
    pub fn new(name: &str) -> Result<Self> {
        abi::define_metric(1, name).map(Self)
    }

    /// Adds `delta` (may be negative).
    pub fn add(&self, delta: i64) {
        if let Err(e) = abi::increment_metric(self.0, delta) {
            log::warn!("gauge update failed: {e}");
        }
    }

    /// Sets the value.
    pub fn set(&self, value: u64) {
        if let Err(e) = abi::record_metric(self.0, value) {
            log::warn!("gauge update failed: {e}");
        }
    }

    /// The current value.
    pub fn get(&self) -> Result<i64> {
        abi::get_metric(self.0).map(|v| v as i64)
    }
}

impl Histogram {
    /// Defines (or looks up) the histogram `name`.
    pub fn new(name: &str) -> Result<Self> {
        abi::define_metric(2, name).map(Self)
    }

    /// Records a sample.
    pub fn record(&self, value: u64) {
        if let Err(e) = abi::record_metric(self.0, value) {
            log::warn!("histogram update failed: {e}");
        }
    }
}
