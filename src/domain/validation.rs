//! Validations computed by kycdesk for a case. Each is a named check with
//! pass / fail / unknown and a reason a reviewer can act on.

use super::mrz;
use super::process::{Document, Outcome, Validation};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Names of the validations, as keys of `validations` in the process JSON.
pub const NAMES: [&str; 8] = [
    "documentDataPresent",
    "mrzCheckDigits",
    "mrzMatchesDocument",
    "documentNotExpired",
    "applicantOfAge",
    "facialMatchingScore",
    "facialLivenessScore",
    "imagesPresent",
];

/// What a reviewer reads for a validation (its code stays the API's).
pub fn label(name: &str) -> &str {
    match name {
        "documentDataPresent" => "Document data present",
        "mrzCheckDigits" => "MRZ check digits",
        "mrzMatchesDocument" => "MRZ matches the printed data",
        "documentNotExpired" => "Document not expired",
        "applicantOfAge" => "Applicant of age",
        "facialMatchingScore" => "Face matches the document",
        "facialLivenessScore" => "Liveness",
        "imagesPresent" => "Images present and readable",
        other => other,
    }
}

/// `label` for a code that may not be one of ours: unknown codes read as
/// themselves would need the input's lifetime, so they read as "Other check".
pub fn static_label(name: &str) -> &'static str {
    NAMES
        .iter()
        .find(|n| **n == name)
        .map_or("Other check", |n| label(n))
}

/// Thresholds an operator can configure.
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub minimum_age: u32,
    pub facial_matching: f64,
    pub facial_liveness: f64,
    /// Document and selfie images need at least this many pixels on their
    /// shorter side to be reviewable.
    pub min_image_side: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            minimum_age: 18,
            facial_matching: 0.70,
            facial_liveness: 0.70,
            min_image_side: 240,
        }
    }
}

/// One image as validations see it: absent, present (size unknown), or
/// present with its pixel size (it was decoded when accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    #[default]
    Absent,
    Present,
    Sized(u32, u32),
}

/// The document front and the selfie, the images every case needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Images {
    pub front: Seen,
    pub selfie: Seen,
}

impl Images {
    pub fn present(front: bool, selfie: bool) -> Images {
        let s = |b: bool| if b { Seen::Present } else { Seen::Absent };
        Images {
            front: s(front),
            selfie: s(selfie),
        }
    }
}

pub fn validate(
    doc: &Document,
    images: &Images,
    today: NaiveDate,
    t: &Thresholds,
) -> BTreeMap<String, Validation> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, result: Outcome, reason: String| {
        out.insert(k.to_string(), Validation { result, reason });
    };

    let parsed = doc
        .mrz
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| mrz::parse(m, today));
    let (r, why) = match &parsed {
        None => (Outcome::Unknown, "no MRZ was captured".to_string()),
        Some(Err(e)) => (Outcome::Fail, format!("the MRZ cannot be read: {e}")),
        Some(Ok(m)) if m.all_checks_pass() => (
            Outcome::Pass,
            format!("{}: all {} check digits match", m.format, m.checks.len()),
        ),
        Some(Ok(m)) => (
            Outcome::Fail,
            format!("{}: {}", m.format, m.failure_reason()),
        ),
    };
    put("mrzCheckDigits", r, why);

    let (r, why) = match &parsed {
        Some(Ok(m)) => mrz_vs_printed(m, doc),
        _ => (
            Outcome::Unknown,
            "no readable MRZ to compare with".to_string(),
        ),
    };
    put("mrzMatchesDocument", r, why);

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

    let small = |what: &str, s: Seen| match s {
        Seen::Sized(w, h) if w.min(h) < t.min_image_side => Some(format!(
            "the {what} is {w}×{h} pixels, under {} on its shorter side",
            t.min_image_side
        )),
        _ => None,
    };
    let (r, why) = match (images.front, images.selfie) {
        (Seen::Absent, _) => (Outcome::Fail, "no document image".to_string()),
        (_, Seen::Absent) => (Outcome::Fail, "no selfie".to_string()),
        (f, s) => match small("document image", f).or_else(|| small("selfie", s)) {
            Some(why) => (Outcome::Fail, why),
            None => match (f, s) {
                (Seen::Sized(fw, fh), Seen::Sized(sw, sh)) => (
                    Outcome::Pass,
                    format!("document {fw}×{fh} and selfie {sw}×{sh}, both decoded"),
                ),
                _ => (Outcome::Pass, "document and selfie present".to_string()),
            },
        },
    };
    put("imagesPresent", r, why);

    // SPEC §4: without a reliable extraction the case reaches the desk with
    // a failing validation, and the agent keys the data in.
    let missing: Vec<&str> = [
        ("name", &doc.name),
        ("surname", &doc.surname),
        ("document number", &doc.document_number),
        ("date of birth", &doc.date_of_birth),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
    .map(|(k, _)| k)
    .collect();
    let (r, why) = match missing.len() {
        0 => (
            Outcome::Pass,
            "name, surname, document number and date of birth are present".to_string(),
        ),
        4 => (
            Outcome::Fail,
            "no document data was extracted: key in the name, surname, document number \
             and date of birth from the document image"
                .to_string(),
        ),
        _ => (
            Outcome::Fail,
            format!(
                "missing {}: key it in from the document image",
                missing.join(", ")
            ),
        ),
    };
    put("documentDataPresent", r, why);
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

/// Upper case, accents removed, anything else a space: how a printed
/// name or number is written in an MRZ (ICAO 9303 part 3 transliteration,
/// for the Latin letters).
pub fn mrz_form(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mapped = match c {
            'Ä' | 'ä' | 'Æ' | 'æ' => "AE",
            'Ö' | 'ö' | 'Ø' | 'ø' | 'Œ' | 'œ' => "OE",
            'Ü' | 'ü' => "UE",
            'ß' => "SS",
            'Þ' | 'þ' => "TH",
            'Ñ' | 'ñ' => "N",
            'Ç' | 'ç' => "C",
            'À'..='Å' | 'à'..='å' => "A",
            'È'..='Ë' | 'è'..='ë' => "E",
            'Ì'..='Ï' | 'ì'..='ï' => "I",
            'Ò'..='Õ' | 'ò'..='õ' => "O",
            'Ù'..='Û' | 'ù'..='û' => "U",
            'Ý' | 'ý' | 'ÿ' => "Y",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_uppercase());
                continue;
            }
            _ => " ",
        };
        out.push_str(mapped);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Germany writes ä as AE, Spain's ñ as N: a name matches when either
/// transliteration does. Whole names are compared; only an MRZ name the
/// zone truncated (`may_be_cut`) matches a longer printed name it begins.
fn names_agree(mrz: &str, printed: &str, may_be_cut: bool) -> bool {
    let alt = |s: &str| {
        mrz_form(
            &s.replace(['ä', 'Ä'], "a")
                .replace(['ö', 'Ö'], "o")
                .replace(['ü', 'Ü'], "u"),
        )
    };
    let m = mrz_form(mrz);
    [mrz_form(printed), alt(printed)]
        .iter()
        .any(|p| !m.is_empty() && (*p == m || (may_be_cut && p.starts_with(&m))))
}

/// The MRZ against the printed (or keyed-in) fields it repeats.
fn mrz_vs_printed(m: &mrz::Mrz, doc: &Document) -> (Outcome, String) {
    let mut differ = Vec::new();
    let mut compared = 0;
    let mut cmp = |what: &str, printed: Option<&str>, ok: &dyn Fn(&str) -> bool| {
        if let Some(p) = printed.map(str::trim).filter(|p| !p.is_empty()) {
            compared += 1;
            if !ok(p) {
                differ.push(what.to_string());
            }
        }
    };
    cmp("document number", doc.document_number.as_deref(), &|p| {
        mrz_form(p).replace(' ', "") == m.document_number
    });
    cmp("date of birth", doc.date_of_birth.as_deref(), &|p| {
        parse_date(p).is_some() && parse_date(p) == m.date_of_birth
    });
    cmp("date of expiry", doc.date_of_expiry.as_deref(), &|p| {
        parse_date(p).is_some() && parse_date(p) == m.date_of_expiry
    });
    // Only the identifier that reaches the end of a full name zone can have
    // been truncated: the secondary one, or the primary when it stands alone.
    let secondary_cut = m.names_truncated && !m.secondary_identifier.is_empty();
    let primary_cut = m.names_truncated && m.secondary_identifier.is_empty();
    cmp("surname", doc.surname.as_deref(), &|p| {
        names_agree(&m.primary_identifier, p, primary_cut)
    });
    cmp("name", doc.name.as_deref(), &|p| {
        names_agree(&m.secondary_identifier, p, secondary_cut)
    });
    cmp("gender", doc.gender.as_deref(), &|p| {
        let g = p.chars().next().map(|c| c.to_ascii_uppercase());
        m.sex == 'X' || g == Some(m.sex)
    });
    if compared == 0 {
        (
            Outcome::Unknown,
            "no printed fields to compare with".to_string(),
        )
    } else if differ.is_empty() {
        (
            Outcome::Pass,
            format!("{compared} printed fields agree with the MRZ"),
        )
    } else {
        (
            Outcome::Fail,
            format!("the MRZ disagrees on {}", differ.join(", ")),
        )
    }
}

/// The check digits of any ICAO 9303 MRZ, as one verdict.
pub fn mrz_check_digits(text: &str) -> Result<(), String> {
    let today = chrono::Utc::now().date_naive();
    let m = mrz::parse(text, today).map_err(|e| e.to_string())?;
    if m.all_checks_pass() {
        Ok(())
    } else {
        Err(m.failure_reason())
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
        assert!(mrz_check_digits(&bad).unwrap_err().contains("dateOfBirth"));
    }

    #[test]
    fn a_case_without_extracted_data_fails_document_data_present() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let images = Images::present(true, true);
        let t = Thresholds::default();
        let v = validate(&Document::default(), &images, today, &t);
        assert_eq!(v["documentDataPresent"].result, Outcome::Fail);
        assert!(v["documentDataPresent"].reason.contains("no document data"));
        assert_eq!(failing_key(&v), ",documentDataPresent,");
        let partial = Document {
            name: Some("Ana".into()),
            surname: Some("Ruiz".into()),
            ..Default::default()
        };
        let v = validate(&partial, &images, today, &t);
        assert_eq!(v["documentDataPresent"].result, Outcome::Fail);
        assert!(
            v["documentDataPresent"]
                .reason
                .contains("document number, date of birth"),
            "{}",
            v["documentDataPresent"].reason
        );
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
        let v = validate(
            &doc,
            &Images::present(true, false),
            today,
            &Thresholds::default(),
        );
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
            ",applicantOfAge,documentDataPresent,documentNotExpired,imagesPresent,"
        );
    }

    #[test]
    fn mrz_is_compared_with_the_printed_fields() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 1).unwrap_or_default();
        let mut doc = Document {
            mrz: Some(TD3.into()),
            document_number: Some("L898902C3".into()),
            date_of_birth: Some("1974-08-12".into()),
            date_of_expiry: Some("15/04/2012".into()),
            surname: Some("Eriksson".into()),
            name: Some("Anna María".into()),
            gender: Some("F".into()),
            ..Default::default()
        };
        let v = validate(
            &doc,
            &Images::present(true, true),
            today,
            &Thresholds::default(),
        );
        assert_eq!(
            v["mrzCheckDigits"].result,
            Outcome::Pass,
            "{:?}",
            v["mrzCheckDigits"]
        );
        assert_eq!(
            v["mrzMatchesDocument"].result,
            Outcome::Pass,
            "{:?}",
            v["mrzMatchesDocument"]
        );
        doc.date_of_birth = Some("1974-08-13".into());
        doc.surname = Some("Eriksen".into());
        let v = validate(
            &doc,
            &Images::present(true, true),
            today,
            &Thresholds::default(),
        );
        assert_eq!(v["mrzMatchesDocument"].result, Outcome::Fail);
        assert!(
            v["mrzMatchesDocument"]
                .reason
                .contains("date of birth, surname"),
            "{:?}",
            v["mrzMatchesDocument"]
        );
        let tiny = Images {
            front: Seen::Sized(800, 500),
            selfie: Seen::Sized(100, 120),
        };
        let v = validate(&doc, &tiny, today, &Thresholds::default());
        assert_eq!(v["imagesPresent"].result, Outcome::Fail);
        assert!(v["imagesPresent"].reason.contains("selfie is 100×120"));
        assert!(names_agree("MUELLER", "Müller", false));
        assert!(names_agree("MULLER", "Müller", false));
        assert!(names_agree("PEREZ GARCIA", "Pérez-García", false));
        assert!(!names_agree("PEREZ", "Lopez", false));
        // Whole names: one letter more is another name, unless the zone
        // truncated the MRZ's.
        assert!(!names_agree("GARCIA MUELLER", "García Müllerx", false));
        assert!(names_agree("GARCIA MUELLER", "García Müllerx", true));
    }
}
