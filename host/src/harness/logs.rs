//! Keeps every guest log line for inspection.

use std::sync::Mutex;

use crate::vm::{LogRecord, LogSink};

/// A [`LogSink`] that remembers lines (and echoes them to `tracing`).
#[derive(Debug, Default)]
pub struct LogCollector {
    records: Mutex<Vec<LogRecord>>,
}

impl LogCollector {
    /// A copy of every line so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl LogSink for LogCollector {
    fn log(&self, record: LogRecord) {
        crate::vm::TracingLogSink.log(record.clone());
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }
}
