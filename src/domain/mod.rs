//! Domain types: validated once at the edge, so the rest of the code never
//! sees an invalid value.

pub mod audit;
pub mod confirmation;
pub mod contact;
pub mod four_eyes;
pub mod metrics;
pub mod mrz;
pub mod process;
pub mod qa;
pub mod queue;
pub mod retake;
pub mod user;
pub mod validation;

pub use process::{Document, Outcome, State, Validation};
pub use user::{Email, Role};

/// Milliseconds since the Unix epoch, the one time representation stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A span as stored milliseconds (saturating; no configured span comes near).
pub fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Formats stored milliseconds for people (UTC, to the second), as
/// `%Y-%m-%d %H:%M:%S UTC`. Written field by field: chrono's `format`
/// parses its pattern again on every call, and a queue page formats two
/// times per row (perf on PostgreSQL's queue at 1M: 4 % of serve's CPU in
/// `StrftimeItems` and `DelayedFormat`).
pub fn fmt_ms(ms: i64) -> String {
    use chrono::Timelike;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                ymd(&d),
                d.hour(),
                d.minute(),
                d.second()
            )
        })
        .unwrap_or_default()
}

/// A UTC day as `%Y-%m-%d` writes it (see [`fmt_ms`] for why not
/// `format`); years outside 0-9999, which chrono writes with a sign, go
/// through chrono.
pub fn ymd(d: &chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&d.year()) {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

/// Formats stored milliseconds as RFC 3339 for JSON.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod time_tests {
    use super::*;

    /// The hand-written formats write what chrono's patterns write, across
    /// the epoch, leap days, the turn of a day and the ends of four-digit
    /// years.
    #[test]
    fn times_read_as_chrono_writes_them() {
        let mut samples: Vec<i64> = vec![
            0,
            -1,
            1_000,
            951_782_400_000,     // 2000-02-29
            1_798_761_599_999,   // 2026-12-31 23:59:59.999
            253_402_300_799_000, // 9999-12-31 23:59:59
            253_402_300_800_000, // 10000-01-01
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // -0001-12-31
        ];
        let mut x: i64 = 0x2545_f491;
        for _ in 0..2_000 {
            // A small xorshift walk over ±300 years around the epoch.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x % 9_500_000_000_000);
        }
        for ms in samples {
            let d = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_else(|| panic!("{ms} is in chrono's range"));
            assert_eq!(
                fmt_ms(ms),
                d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                "{ms}"
            );
            assert_eq!(ymd(&d), d.format("%Y-%m-%d").to_string(), "{ms}");
        }
    }
}
