//! MRZ lines for generated demo documents (ICAO 9303 TD1 and TD3), with
//! correct check digits.

use crate::domain::process::fold;
use crate::domain::validation::check_digit;
use chrono::NaiveDate;

fn digit(s: &str) -> char {
    char::from_digit(check_digit(s).unwrap_or(0), 10).unwrap_or('0')
}

fn mrz_name(surnames: &[&str], given: &str, width: usize) -> String {
    let clean = |s: &str| -> String {
        fold(s)
            .to_uppercase()
            .chars()
            .map(|c| if c.is_ascii_uppercase() { c } else { '<' })
            .collect()
    };
    let sur: Vec<String> = surnames.iter().map(|s| clean(s)).collect();
    let mut out = format!("{}<<{}", sur.join("<"), clean(given));
    out.truncate(width);
    format!("{out:<<width$}")
}

fn pad(s: &str, width: usize) -> String {
    format!("{s:<<width$}")
}

fn yymmdd(d: NaiveDate) -> String {
    d.format("%y%m%d").to_string()
}

/// What a document's MRZ says about its holder.
pub struct Holder<'a> {
    pub issuer: &'a str,
    pub number: &'a str,
    pub birth: NaiveDate,
    /// `F`, `M` or `<`.
    pub sex: &'a str,
    pub expiry: NaiveDate,
    pub nationality: &'a str,
    pub surnames: &'a [&'a str],
    pub given: &'a str,
}

/// The three 30-character lines of an identity card.
pub fn td1(h: &Holder) -> String {
    let num = pad(h.number, 9);
    let l1 = format!("I<{}{num}{}{}", h.issuer, digit(&num), pad("", 15));
    let (b, e) = (yymmdd(h.birth), yymmdd(h.expiry));
    let head = format!(
        "{b}{}{}{e}{}{}{}",
        digit(&b),
        h.sex,
        digit(&e),
        h.nationality,
        pad("", 11)
    );
    let composite = format!(
        "{}{}{}{}",
        &l1[5..30],
        &head[0..7],
        &head[8..15],
        &head[18..29]
    );
    let l2 = format!("{head}{}", digit(&composite));
    format!("{l1}\n{l2}\n{}", mrz_name(h.surnames, h.given, 30))
}

/// The two 44-character lines of a passport.
pub fn td3(h: &Holder) -> String {
    let l1 = format!("P<{}{}", h.issuer, mrz_name(h.surnames, h.given, 39));
    let num = pad(h.number, 9);
    let (b, e) = (yymmdd(h.birth), yymmdd(h.expiry));
    let personal = pad("", 14);
    let head = format!(
        "{num}{}{}{b}{}{}{e}{}{personal}{}",
        digit(&num),
        h.nationality,
        digit(&b),
        h.sex,
        digit(&e),
        digit(&personal)
    );
    let composite = format!("{}{}{}", &head[0..10], &head[13..20], &head[21..43]);
    format!("{l1}\n{head}{}", digit(&composite))
}

/// Changes the birth-date check digit so the MRZ fails validation.
pub fn corrupt_birth_digit(mrz: &str) -> String {
    let lines: Vec<&str> = mrz.lines().collect();
    let (line, at) = if lines.len() == 3 { (1, 6) } else { (1, 19) };
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i != line {
                return l.to_string();
            }
            l.chars()
                .enumerate()
                .map(|(j, c)| {
                    if j == at {
                        char::from_digit((c.to_digit(10).unwrap_or(0) + 1) % 10, 10).unwrap_or('0')
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::mrz_check_digits;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn generated_mrz_passes_and_corruption_fails() {
        let a = td1(&Holder {
            issuer: "ESP",
            number: "BAA000589",
            birth: d(1990, 5, 17),
            sex: "F",
            expiry: d(2031, 1, 2),
            nationality: "ESP",
            surnames: &["Pérez", "Núñez"],
            given: "María José",
        });
        let b = td3(&Holder {
            issuer: "FRA",
            number: "X1234567Z",
            birth: d(1980, 1, 1),
            sex: "M",
            expiry: d(2030, 6, 30),
            nationality: "FRA",
            surnames: &["Dubois"],
            given: "Théo",
        });
        for m in [&a, &b] {
            assert!(
                m.lines().all(|l| l.len() == if m == &a { 30 } else { 44 }),
                "{m}"
            );
            assert_eq!(mrz_check_digits(m), Ok(()), "{m}");
            assert!(mrz_check_digits(&corrupt_birth_digit(m)).is_err());
        }
        assert!(a.ends_with("PEREZ<NUNEZ<<MARIA<JOSE<<<<<<<"), "{a}");
    }
}
