//! How the desk shows times to people: "3 h ago", with the exact UTC time
//! on hover and a machine-readable `datetime`.

use crate::domain::{fmt_ms, rfc3339_ms};

/// A moment as the desk shows it (`<time datetime=iso title=exact>ago</time>`).
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub ago: String,
    pub exact: String,
    pub iso: String,
}

impl When {
    pub fn at(ms: i64, now: i64) -> When {
        When {
            ago: ago(ms, now),
            exact: fmt_ms(ms),
            iso: rfc3339_ms(ms),
        }
    }
}

/// A coarse age, the way a reviewer says it. Past a month the date reads
/// better than a count of days.
pub fn ago(ms: i64, now: i64) -> String {
    let secs = (now - ms) / 1000;
    if secs < 0 {
        return "in the future".into();
    }
    match secs {
        0..=44 => "just now".into(),
        45..=3_599 => format!("{} min ago", (secs + 30) / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        86_400..=2_591_999 => match secs / 86_400 {
            1 => "yesterday".into(),
            d => format!("{d} days ago"),
        },
        _ => format!(
            "on {}",
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| crate::domain::ymd(&d))
                .unwrap_or_default()
        ),
    }
}

/// An age as a duration ("2 h 5 min", "3 d 4 h"), for the queue's age column.
pub fn age(ms: i64, now: i64) -> String {
    let mins = ((now - ms) / 60_000).max(0);
    match mins {
        0..=59 => format!("{mins} min"),
        60..=1_439 => format!("{} h {} min", mins / 60, mins % 60),
        _ => format!("{} d {} h", mins / 1_440, (mins % 1_440) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn ages_read_like_a_person_says_them() {
        let now = 1_800_000_000_000;
        assert_eq!(ago(now - 10_000, now), "just now");
        assert_eq!(ago(now - 5 * MIN, now), "5 min ago");
        assert_eq!(ago(now - 3 * 60 * MIN - 1, now), "3 h ago");
        assert_eq!(ago(now - 25 * 60 * MIN, now), "yesterday");
        assert_eq!(ago(now - 3 * 24 * 60 * MIN, now), "3 days ago");
        assert_eq!(ago(now - 40 * 24 * 60 * MIN, now), "on 2026-12-06");
        assert_eq!(ago(now + MIN, now), "in the future");
        assert_eq!(age(now - 125 * MIN, now), "2 h 5 min");
        assert_eq!(age(now - (3 * 1_440 + 4 * 60) * MIN, now), "3 d 4 h");
        assert_eq!(age(now - 7 * MIN, now), "7 min");
    }

    #[test]
    fn when_carries_the_exact_time_for_hover() {
        let w = When::at(0, 60 * MIN);
        assert_eq!(w.ago, "1 h ago");
        assert_eq!(w.exact, "1970-01-01 00:00:00 UTC");
        assert_eq!(w.iso, "1970-01-01T00:00:00.000Z");
    }
}
