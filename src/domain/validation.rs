//! Validations computed by kycdesk for a case. Each is a named check with
//! pass / fail / unknown and a reason a reviewer can act on.

use super::process::{Document, Outcome, Validation};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Names of the validations, as keys of `validations` in the process JSON.
pub const NAMES: [&str; 6] = [
    "mrzCheckDigits",
    "documentNotExpired",
    "applicantOfAge",
    "facialMatchingScore",
    "facialLivenessScore",
    "imagesPresent",
];

/// Thresholds an operator can configure.
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub minimum_age: u32,
    pub facial_matching: f64,
    pub facial_liveness: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            minimum_age: 18,
            facial_matching: 0.70,
            facial_liveness: 0.70,
        }
    }
}

pub fn validate(
    doc: &Document,
    has_front: bool,
    has_selfie: bool,
    today: NaiveDate,
    t: &Thresholds,
) -> BTreeMap<String, Validation> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, result: Outcome, reason: String| {
        out.insert(k.to_string(), Validation { result, reason });
    };

    let (r, why) = match doc.mrz.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        None => (Outcome::Unknown, "no MRZ was captured".to_string()),
        Some(mrz) => match mrz_check_digits(mrz) {
            Ok(()) => (Outcome::Pass, "every MRZ check digit matches".to_string()),
            Err(e) => (Outcome::Fail, e),
        },
    };
    put("mrzCheckDigits", r, why);

    let (r, why) = match doc.date_of_expiry.as_deref().map(parse_date) {
        None => (Outcome::Unknown, "no expiry date".to_string()),
        Some(None) => (
            Outcome::Unknown,
            "the expiry date is not a date".to_string(),
        ),
        Some(Some(d)) if d < today => (Outcome::Fail, format!("the document expired on {d}")),
        Some(Some(d)) => (Outcome::Pass, format!("valid until {d}")),
    };
    put("documentNotExpired", r, why);

    let (r, why) = match doc.date_of_birth.as_deref().map(parse_date) {
        None => (Outcome::Unknown, "no date of birth".to_string()),
        Some(None) => (
            Outcome::Unknown,
            "the date of birth is not a date".to_string(),
        ),
        Some(Some(b)) => {
            let age = today.years_since(b).unwrap_or(0);
            if age >= t.minimum_age {
                (Outcome::Pass, format!("{age} years old"))
            } else {
                (
                    Outcome::Fail,
                    format!("{age} years old, under the minimum of {}", t.minimum_age),
                )
            }
        }
    };
    put("applicantOfAge", r, why);

    for (key, value, min) in [
        (
            "facialMatchingScore",
            &doc.facial_matching_score,
            t.facial_matching,
        ),
        (
            "facialLivenessScore",
            &doc.facial_liveness_score,
            t.facial_liveness,
        ),
    ] {
        let (r, why) = match value.as_deref().map(|v| v.trim().parse::<f64>()) {
            None => (Outcome::Unknown, "no score".to_string()),
            Some(Err(_)) => (Outcome::Unknown, "the score is not a number".to_string()),
            Some(Ok(s)) if s >= min => (Outcome::Pass, format!("{s:.2} ≥ {min:.2}")),
            Some(Ok(s)) => (
                Outcome::Fail,
                format!("{s:.2} below the threshold {min:.2}"),
            ),
        };
        put(key, r, why);
    }

    let (r, why) = match (has_front, has_selfie) {
        (true, true) => (Outcome::Pass, "document and selfie present".to_string()),
        (false, _) => (Outcome::Fail, "no document image".to_string()),
        (true, false) => (Outcome::Fail, "no selfie".to_string()),
    };
    put("imagesPresent", r, why);
    out
}

/// Comma-delimited list of failing validation names, stored so the queue can
/// filter on any of them with one `LIKE '%,name,%'`.
pub fn failing_key(v: &BTreeMap<String, Validation>) -> String {
    let failing: Vec<&str> = v
        .iter()
        .filter(|(_, v)| v.result == Outcome::Fail)
        .map(|(k, _)| k.as_str())
        .collect();
    if failing.is_empty() {
        String::new()
    } else {
        format!(",{},", failing.join(","))
    }
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()
}

/// ICAO 9303 check digit: weights 7, 3, 1 over digit / letter / filler values.
pub fn check_digit(field: &str) -> Option<u32> {
    let mut sum = 0u32;
    for (i, c) in field.chars().enumerate() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            '<' => 0,
            _ => return None,
        };
        sum += v * [7, 3, 1][i % 3];
    }
    Some(sum % 10)
}

fn expect_digit(
    line: &str,
    range: std::ops::Range<usize>,
    at: usize,
    what: &str,
) -> Result<(), String> {
    let field = line
        .get(range)
        .ok_or_else(|| format!("MRZ too short for the {what}"))?;
    let want = check_digit(field).ok_or_else(|| format!("invalid characters in the {what}"))?;
    let got = line
        .get(at..at + 1)
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or_else(|| format!("missing check digit for the {what}"))?;
    if want == got {
        Ok(())
    } else {
        Err(format!("the {what} check digit is {got}, expected {want}"))
    }
}

/// Checks the document number, birth and expiry digits of a TD1 (3×30) or
/// TD3 (2×44) MRZ. The full ICAO parser lands with hosted onboarding.
pub fn mrz_check_digits(mrz: &str) -> Result<(), String> {
    let lines: Vec<&str> = mrz
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [l1, l2, _l3] if l1.len() == 30 && l2.len() == 30 => {
            expect_digit(l1, 5..14, 14, "document number")?;
            expect_digit(l2, 0..6, 6, "date of birth")?;
            expect_digit(l2, 8..14, 14, "date of expiry")
        }
        [_l1, l2] if l2.len() == 44 => {
            expect_digit(l2, 0..9, 9, "document number")?;
            expect_digit(l2, 13..19, 19, "date of birth")?;
            expect_digit(l2, 21..27, 27, "date of expiry")
        }
        _ => Err("the MRZ is neither TD1 (3×30) nor TD3 (2×44)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ICAO Doc 9303 part 4 specimen (TD3).
    const TD3: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";

    #[test]
    fn icao_specimen_check_digits_pass() {
        assert_eq!(check_digit("L898902C3"), Some(6));
        assert_eq!(mrz_check_digits(TD3), Ok(()));
    }

    #[test]
    fn a_changed_digit_fails() {
        let bad = TD3.replace("7408122", "7408132");
        assert!(mrz_check_digits(&bad)
            .unwrap_err()
            .contains("date of birth"));
    }

    #[test]
    fn validations_cover_every_name() {
        let doc = Document {
            date_of_birth: Some("2010-01-01".into()),
            date_of_expiry: Some("2020-01-01".into()),
            facial_matching_score: Some("0.9".into()),
            ..Default::default()
        };
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let v = validate(&doc, true, false, today, &Thresholds::default());
        for n in NAMES {
            assert!(v.contains_key(n), "{n}");
        }
        assert_eq!(v["applicantOfAge"].result, Outcome::Fail);
        assert_eq!(v["documentNotExpired"].result, Outcome::Fail);
        assert_eq!(v["facialMatchingScore"].result, Outcome::Pass);
        assert_eq!(v["facialLivenessScore"].result, Outcome::Unknown);
        assert_eq!(v["imagesPresent"].result, Outcome::Fail);
        assert_eq!(
            failing_key(&v),
            ",applicantOfAge,documentNotExpired,imagesPresent,"
        );
    }
}
