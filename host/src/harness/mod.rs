//! The in-process test harness.
