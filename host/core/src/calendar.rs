//! Calendar dates of instants, in UTC, for Envoy's log line and access-log time stamps (no time
//! zone database: Envoy's containers and these machines run in UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant split into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// What is left below the second.
    pub subsec: Duration,
    /// Whole seconds since the Unix epoch.
    pub epoch_seconds: i64,
}

impl UtcTime {
    /// `t` in UTC (instants before 1970 count as 1970).
    pub fn of(t: SystemTime) -> Self {
        Self::since_epoch(t.duration_since(UNIX_EPOCH).unwrap_or_default())
    }

    /// The instant `d` after the Unix epoch.
    pub fn since_epoch(d: Duration) -> Self {
        let secs = d.as_secs() as i64;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let t = secs.rem_euclid(86_400) as u32;
        Self {
            year,
            month,
            day,
            hour: t / 3600,
            minute: t / 60 % 60,
            second: t % 60,
            subsec: Duration::from_nanos(u64::from(d.subsec_nanos())),
            epoch_seconds: secs,
        }
    }

    /// `2026-12-01T10:25:58.429Z`: RFC 3339 with milliseconds, as Envoy writes `%START_TIME%` and
    /// protobuf timestamps.
    pub fn iso8601_millis(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.subsec.as_millis()
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_423), (2025, 12, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = UtcTime::since_epoch(Duration::from_millis(1_796_120_758_429));
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2026, 12, 1, 10, 25, 58));
        assert_eq!(t.subsec.as_millis(), 429);
    }
}
