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

/// Formats stored milliseconds for people (UTC, to the second).
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Formats stored milliseconds as RFC 3339 for JSON.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
