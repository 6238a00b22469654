//! The harness's clock: it moves only when the test moves it.

use std::sync::atomic::{AtomicI64, Ordering};

use sluice_core::vm::{Clock, MONOTONIC_ORIGIN};

/// A clock that stands still until [`VirtualClock::advance`]: ticks and callout timeouts come due
/// exactly when a test says time has passed.
#[derive(Debug)]
pub struct VirtualClock {
    /// Wall-clock nanoseconds since the epoch.
    now_nanos: AtomicI64,
    /// Monotonic nanoseconds.
    mono_nanos: AtomicI64,
}

impl VirtualClock {
    /// A clock that reads `unix_nanos` until it is moved.
    pub fn at(unix_nanos: i64) -> Self {
        Self { now_nanos: AtomicI64::new(unix_nanos), mono_nanos: AtomicI64::new(MONOTONIC_ORIGIN) }
    }

    /// Moves the clock forward by `nanos`.
    pub fn advance(&self, nanos: i64) {
        self.now_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.mono_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Clock for VirtualClock {
    fn now_nanos(&self) -> i64 {
        self.now_nanos.load(Ordering::Relaxed)
    }

    fn monotonic_nanos(&self) -> i64 {
        self.mono_nanos.load(Ordering::Relaxed)
    }
}
