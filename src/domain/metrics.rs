//! What the supervisors' dashboard counts: decision days, the time-to-
//! decision histogram's buckets, backlog age bands, percentiles.

use super::State;

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;

/// The UTC day (days since 1970-01-01) of a stored time.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// Upper bounds (minutes) of the time-to-decision buckets: fine where
/// reviews usually land, coarse beyond a week. The last bucket is open.
pub const TTD_BOUNDS_MIN: [i64; 30] = [
    1, 2, 5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1_080, 1_440, 2_160, 2_880,
    4_320, 5_760, 7_200, 10_080, 14_400, 20_160, 30_240, 43_200, 86_400, 129_600, 525_600,
];

/// The bucket of a time to decision: the first bound at or above it.
pub fn ttd_bucket(ttd_ms: i64) -> i64 {
    let minutes_up = (ttd_ms.max(0) + 59_999) / 60_000;
    TTD_BOUNDS_MIN
        .iter()
        .position(|b| minutes_up <= *b)
        .unwrap_or(TTD_BOUNDS_MIN.len()) as i64
}

/// A bucket's upper bound in words ("≤ 30 min", "≤ 3 d", "> 1 year").
pub fn bucket_label(bucket: usize) -> String {
    match TTD_BOUNDS_MIN.get(bucket) {
        None => "> 1 year".into(),
        Some(m) if *m < 60 => format!("≤ {m} min"),
        Some(m) if *m < 1_440 || m % 1_440 != 0 => {
            if m % 60 == 0 {
                format!("≤ {} h", m / 60)
            } else {
                format!("≤ {:.1} h", *m as f64 / 60.0)
            }
        }
        Some(m) => format!("≤ {} d", m / 1_440),
    }
}

/// The bucket holding the p-th percentile (0 < p ≤ 1) of a histogram
/// indexed by bucket: the smallest bucket whose cumulative count reaches
/// ⌈p·total⌉ (nearest rank). None when the histogram is empty.
pub fn percentile_bucket(hist: &[i64], p: f64) -> Option<usize> {
    let total: i64 = hist.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(i);
        }
    }
    None
}

/// States whose cases wait for a reviewer: the backlog.
pub fn is_awaiting(s: State) -> bool {
    matches!(s, State::PendingVerification | State::PendingValidation)
}

/// Backlog age bands: (label, lower bound in hours, inclusive).
pub const BACKLOG_BANDS: [(&str, i64); 7] = [
    ("< 1 h", 0),
    ("1–4 h", 1),
    ("4–24 h", 4),
    ("1–3 days", 24),
    ("3–7 days", 72),
    ("1–4 weeks", 168),
    ("> 4 weeks", 672),
];

/// The band of an age in whole hours.
pub fn backlog_band(age_hours: i64) -> usize {
    BACKLOG_BANDS
        .iter()
        .rposition(|(_, lo)| age_hours >= *lo)
        .unwrap_or(0)
}

/// The same bands as creation-hour cuts for a database to sum by:
/// `(band, hour)`, oldest band first; a case created at or before a cut's
/// hour, `this_hour` being now, is in that band (age >= the band's lower
/// bound), and a newer one in band 0, as `backlog_band` says.
pub fn backlog_cuts(this_hour: i64) -> Vec<(usize, i64)> {
    BACKLOG_BANDS
        .iter()
        .enumerate()
        .skip(1)
        .rev()
        .map(|(band, (_, lo))| (band, this_hour - lo))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_cuts_agree_with_backlog_band() {
        let now = 500_000;
        let cuts = backlog_cuts(now);
        for hour in now - 2_000..=now + 3 {
            let by_cut = cuts
                .iter()
                .find(|(_, h)| hour <= *h)
                .map_or(0, |(band, _)| *band);
            assert_eq!(by_cut, backlog_band((now - hour).max(0)), "hour {hour}");
        }
    }

    #[test]
    fn buckets_hold_their_bound_and_percentiles_use_nearest_rank() {
        assert_eq!(ttd_bucket(0), 0);
        assert_eq!(ttd_bucket(60_000), 0, "exactly a minute is ≤ 1 min");
        assert_eq!(ttd_bucket(60_001), 1);
        assert_eq!(ttd_bucket(30 * 60_000), 5);
        assert_eq!(ttd_bucket(600 * 24 * HOUR_MS), TTD_BOUNDS_MIN.len() as i64);
        assert_eq!(bucket_label(5), "≤ 30 min");
        assert_eq!(bucket_label(9), "≤ 2 h");
        assert_eq!(bucket_label(8), "≤ 1.5 h");
        assert_eq!(bucket_label(16), "≤ 1 d");
        assert_eq!(bucket_label(30), "> 1 year");
        let hist = [0, 5, 0, 4, 1];
        assert_eq!(percentile_bucket(&hist, 0.5), Some(1));
        assert_eq!(percentile_bucket(&hist, 0.9), Some(3));
        assert_eq!(percentile_bucket(&hist, 1.0), Some(4));
        assert_eq!(percentile_bucket(&[0, 0], 0.5), None);
    }

    #[test]
    fn days_and_bands() {
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        assert_eq!(day_of(-1), -1);
        assert_eq!(backlog_band(0), 0);
        assert_eq!(backlog_band(3), 1);
        assert_eq!(backlog_band(24), 3);
        assert_eq!(backlog_band(10_000), 6);
    }
}
