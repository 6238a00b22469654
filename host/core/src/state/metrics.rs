//! Stats defined by plugins, under Envoy's names (`wasmcustom.<name>`), with Envoy's update rules.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::wire::status::{MetricType, Status};

/// Samples a histogram keeps for percentiles; count and sum stay exact beyond it.
const HISTOGRAM_SAMPLES: usize = 4096;

/// One stat.
#[derive(Debug)]
pub struct Metric {
    kind: MetricType,
    value: AtomicU64,
    samples: Mutex<(u64, u64, Vec<u64>)>,
}

/// A snapshot of a stat's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValue {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(i64),
    /// A histogram's sample count, sum, and the most recent samples.
    Histogram {
        /// Samples recorded.
        count: u64,
        /// Their sum.
        sum: u64,
        /// Up to the last 4096 samples.
        samples: Vec<u64>,
    },
}

impl Metric {
    fn new(kind: MetricType) -> Self {
        Self { kind, value: AtomicU64::new(0), samples: Mutex::new((0, 0, Vec::new())) }
    }

    /// The stat's type.
    pub fn kind(&self) -> MetricType {
        self.kind
    }

    /// `proxy_increment_metric`: counters take positive deltas, gauges any, histograms none.
    ///
    /// # Errors
    /// [`Status::BadArgument`] for a histogram, or a counter given a delta that is not positive.
    pub fn increment(&self, delta: i64) -> Result<(), Status> {
        match self.kind {
            MetricType::Counter if delta > 0 => {
                self.value.fetch_add(delta as u64, Ordering::Relaxed);
                Ok(())
            }
            MetricType::Gauge => {
                self.value.fetch_add(delta as u64, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(Status::BadArgument),
        }
    }

    /// `proxy_record_metric`: a counter adds, a gauge is set, a histogram records a sample.
    pub fn record(&self, value: u64) {
        match self.kind {
            MetricType::Counter => {
                self.value.fetch_add(value, Ordering::Relaxed);
            }
            MetricType::Gauge => self.value.store(value, Ordering::Relaxed),
            MetricType::Histogram => {
                let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                s.0 += 1;
                s.1 = s.1.wrapping_add(value);
                if s.2.len() == HISTOGRAM_SAMPLES {
                    s.2.remove(0);
                }
                s.2.push(value);
            }
        }
    }

    /// `proxy_get_metric`: histograms cannot be read (BAD_ARGUMENT).
    ///
    /// # Errors
    /// [`Status::BadArgument`] for a histogram.
    pub fn get(&self) -> Result<u64, Status> {
        match self.kind {
            MetricType::Histogram => Err(Status::BadArgument),
            _ => Ok(self.value.load(Ordering::Relaxed)),
        }
    }

    /// A snapshot for inspection and stats output.
    pub fn value(&self) -> MetricValue {
        match self.kind {
            MetricType::Counter => MetricValue::Counter(self.value.load(Ordering::Relaxed)),
            MetricType::Gauge => MetricValue::Gauge(self.value.load(Ordering::Relaxed) as i64),
            MetricType::Histogram => {
                let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                MetricValue::Histogram { count: s.0, sum: s.1, samples: s.2.clone() }
            }
        }
    }
}

/// The process's plugin-defined stats, by full name (`wasmcustom.<name>`).
#[derive(Debug, Default)]
pub struct Metrics {
    by_name: Mutex<BTreeMap<String, Arc<Metric>>>,
}

impl Metrics {
    /// The stat for a name a plugin defined, created on first use. Defining a name again gives the
    /// same stat. A name reused with another type gets its own stat, so it cannot be corrupted.
    pub fn define(&self, kind: MetricType, name: &str) -> Arc<Metric> {
        let mut by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        let full = format!("wasmcustom.{name}");
        match by_name.get(&full) {
            Some(m) if m.kind == kind => m.clone(),
            Some(_) => by_name.entry(format!("{full}.{kind:?}")).or_insert_with(|| Arc::new(Metric::new(kind))).clone(),
            None => by_name.entry(full).or_insert_with(|| Arc::new(Metric::new(kind))).clone(),
        }
    }

    /// A stat by its full name (`wasmcustom.requests`).
    pub fn get(&self, full_name: &str) -> Option<MetricValue> {
        self.by_name.lock().unwrap_or_else(|e| e.into_inner()).get(full_name).map(|m| m.value())
    }

    /// Every stat, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, MetricValue)> {
        self.by_name.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.value())).collect()
    }
}
