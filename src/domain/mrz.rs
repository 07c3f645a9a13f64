//! Machine-readable zones (ICAO Doc 9303): TD1 (3 × 30), TD2 (2 × 36),
//! TD3 (2 × 44) and the visas MRV-A (2 × 44) and MRV-B (2 × 36). Every check
//! digit and the composite digit are verified, names split into primary and
//! secondary identifiers, dates given their century.
//!
//! The parser never panics: it works on bytes it has checked to be in the
//! MRZ alphabet (`A`–`Z`, `0`–`9`, `<`) and only slices at fixed positions
//! after checking the line lengths.

use chrono::{Datelike, NaiveDate};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Td1,
    Td2,
    Td3,
    MrvA,
    MrvB,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Td1 => "TD1",
            Format::Td2 => "TD2",
            Format::Td3 => "TD3",
            Format::MrvA => "MRV-A",
            Format::MrvB => "MRV-B",
        })
    }
}

/// One check digit: which field, what it says, what the field computes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub field: &'static str,
    pub expected: char,
    pub computed: u32,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrz {
    pub format: Format,
    pub document_code: String,
    pub issuing_state: String,
    pub document_number: String,
    /// Surname(s): the primary identifier.
    pub primary_identifier: String,
    /// Given name(s): the secondary identifier, components space-separated.
    pub secondary_identifier: String,
    pub nationality: String,
    pub date_of_birth: Option<NaiveDate>,
    /// `M`, `F` or `X` (unspecified, `<` in the zone).
    pub sex: char,
    pub date_of_expiry: Option<NaiveDate>,
    /// TD1 line 1 optional data (after a long document number's overflow),
    /// TD3's personal number, the visas' optional data.
    pub optional_data: String,
    /// TD1 line 2 optional data.
    pub optional_data_2: String,
    pub checks: Vec<Check>,
    /// Fields no check digit covers (or covers too weakly) that break ICAO
    /// 9303-3's syntax: a code outside the list, an impossible date, digits
    /// in a name. Each says which field and why.
    pub problems: Vec<String>,
    /// The name zone is full to its last position: the names may have been
    /// truncated (ICAO 9303-3 4.6), so a longer printed name can still agree.
    pub names_truncated: bool,
}

impl Mrz {
    /// Every check digit matches and every field is well-formed.
    pub fn all_checks_pass(&self) -> bool {
        self.checks.iter().all(|c| c.ok) && self.problems.is_empty()
    }

    pub fn failed_checks(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.field)
            .collect()
    }

    /// Why the MRZ fails, in words: wrong check digits, then syntax.
    pub fn failure_reason(&self) -> String {
        let mut parts = Vec::new();
        let failed = self.failed_checks();
        if !failed.is_empty() {
            parts.push(format!("check digit wrong for {}", failed.join(", ")));
        }
        parts.extend(self.problems.iter().cloned());
        parts.join("; ")
    }
}

/// Nationality and issuing-state codes ICAO 9303-3 allows: ISO 3166-1
/// alpha-3, plus its own codes (Germany's `D`, British subtypes, the United
/// Nations, the EU, stateless persons and refugees, organisations, the
/// `UTO` specimen state, and Kosovo as issuers write it).
const STATE_CODES: &str = "AFG ALA ALB DZA ASM AND AGO AIA ATA ATG ARG ARM ABW AUS AUT AZE BHS BHR BGD BRB BLR \
    BEL BLZ BEN BMU BTN BOL BES BIH BWA BVT BRA IOT BRN BGR BFA BDI CPV KHM CMR CAN CYM CAF TCD CHL CHN CXR \
    CCK COL COM COG COD COK CRI CIV HRV CUB CUW CYP CZE DNK DJI DMA DOM ECU EGY SLV GNQ ERI EST SWZ ETH FLK \
    FRO FJI FIN FRA GUF PYF ATF GAB GMB GEO DEU GHA GIB GRC GRL GRD GLP GUM GTM GGY GIN GNB GUY HTI HMD VAT \
    HND HKG HUN ISL IND IDN IRN IRQ IRL IMN ISR ITA JAM JPN JEY JOR KAZ KEN KIR PRK KOR KWT KGZ LAO LVA LBN \
    LSO LBR LBY LIE LTU LUX MAC MDG MWI MYS MDV MLI MLT MHL MTQ MRT MUS MYT MEX FSM MDA MCO MNG MNE MSR MAR \
    MOZ MMR NAM NRU NPL NLD NCL NZL NIC NER NGA NIU NFK MKD MNP NOR OMN PAK PLW PSE PAN PNG PRY PER PHL PCN \
    POL PRT PRI QAT REU ROU RUS RWA BLM SHN KNA LCA MAF SPM VCT WSM SMR STP SAU SEN SRB SYC SLE SGP SXM SVK \
    SVN SLB SOM ZAF SGS SSD ESP LKA SDN SUR SJM SWE CHE SYR TWN TJK TZA THA TLS TGO TKL TON TTO TUN TUR TKM \
    TCA TUV UGA UKR ARE GBR USA UMI URY UZB VUT VEN VNM VGB VIR WLF ESH YEM ZMB ZWE \
    D GBD GBN GBO GBP GBS UNO UNA UNK EUE XXA XXB XXC XXX XBA XIM XCC XCE XCO XDC XEC XES XMP XOM XPO XSC \
    UTO RKS XKX ANT";

/// True for a code ICAO 9303-3 lists (`D` is written `D<<` in the zone).
pub fn is_state_code(code: &str) -> bool {
    !code.is_empty() && STATE_CODES.split_whitespace().any(|c| c == code)
}

/// Syntax checks of ICAO 9303-3 for the fields check digits do not protect.
struct Syntax(Vec<String>);

impl Syntax {
    fn document_code(&mut self, b: &[u8], format: Format) {
        let allowed: &[u8] = match format {
            Format::Td1 | Format::Td2 => b"ACI",
            Format::Td3 => b"P",
            Format::MrvA | Format::MrvB => b"V",
        };
        let second_ok = b[1] == b'<' || b[1].is_ascii_uppercase();
        if !allowed.contains(&b[0]) || !second_ok {
            self.0.push(format!(
                "documentCode '{}' is not a {format} document code (it starts with {})",
                String::from_utf8_lossy(b),
                allowed
                    .iter()
                    .map(|c| (*c as char).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    fn state(&mut self, field: &str, b: &[u8]) {
        let raw = String::from_utf8_lossy(b);
        // Codes are left-aligned: `D<<` is Germany, `<<D` is nothing.
        let code = raw.trim_end_matches('<');
        if code.contains('<') || !is_state_code(code) {
            self.0.push(format!(
                "{field} '{raw}' is not an ICAO 9303 state or organisation code"
            ));
        }
    }

    fn sex(&mut self, b: u8) {
        if !matches!(b, b'F' | b'M' | b'X' | b'<') {
            self.0
                .push(format!("sex '{}' must be F, M, X or <", b as char));
        }
    }

    fn date(&mut self, field: &str, b: &[u8]) {
        let raw = String::from_utf8_lossy(b);
        match yymmdd(b) {
            None => self.0.push(format!(
                "{field} '{raw}' is not a date: six digits YYMMDD expected"
            )),
            Some((_, m, _)) if !(1..=12).contains(&m) => self
                .0
                .push(format!("{field} '{raw}': month {m} does not exist")),
            Some((yy, m, d)) => {
                // Any century will do to ask whether the day exists; 2000
                // and 1900 differ only on 29 February of year 00.
                let exists = NaiveDate::from_ymd_opt(2000 + yy, m, d).is_some()
                    || NaiveDate::from_ymd_opt(1900 + yy, m, d).is_some();
                if !exists {
                    self.0.push(format!(
                        "{field} '{raw}': day {d} does not exist in month {m}"
                    ));
                }
            }
        }
    }

    /// `PRIMARY<<SECONDARY<PARTS<<<…`: letters and `<` only, the primary
    /// identifier first, one `<<` between the two, single `<` inside them.
    fn names(&mut self, b: &[u8]) {
        let raw = String::from_utf8_lossy(b);
        let used = raw.trim_end_matches('<');
        let why = if used.is_empty() {
            Some("is empty")
        } else if !used.bytes().all(|c| c.is_ascii_uppercase() || c == b'<') {
            Some("may hold only the letters A-Z and <")
        } else if used.starts_with('<') {
            Some("must start with the primary identifier")
        } else if used.matches("<<").count() > 1 || used.contains("<<<") {
            Some("must separate the primary and secondary identifiers by one << only")
        } else {
            None
        };
        if let Some(why) = why {
            self.0.push(format!("the name field '{used}' {why}"));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    #[error("the MRZ is empty")]
    Empty,
    #[error(
        "{0} line(s) of {1} characters is no MRZ format (TD1 is 3 × 30, TD2 2 × 36, TD3 2 × 44)"
    )]
    Shape(usize, String),
    #[error("line {line}, character {pos}: '{ch}' is not in the MRZ alphabet (A-Z, 0-9, <)")]
    Alphabet { line: usize, pos: usize, ch: char },
}

/// The value of an MRZ character for check digits: digits as themselves,
/// `A`–`Z` as 10–35, `<` as 0.
fn value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => (b - b'0') as u32,
        b'A'..=b'Z' => (b - b'A') as u32 + 10,
        _ => 0,
    }
}

/// ICAO 9303 check digit: weights 7, 3, 1 repeating, modulo 10.
pub fn check_digit(field: &[u8]) -> u32 {
    const W: [u32; 3] = [7, 3, 1];
    field
        .iter()
        .enumerate()
        .map(|(i, &b)| value(b) * W[i % 3])
        .sum::<u32>()
        % 10
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches('<')
        .replace('<', " ")
        .trim()
        .to_string()
}

fn code(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_matches('<').to_string()
}

/// `SURNAME<<GIVEN<NAMES` → ("SURNAME", "GIVEN NAMES"); `<` inside a
/// part separates its components.
fn names(b: &[u8]) -> (String, String) {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_end_matches('<');
    let (primary, secondary) = s.split_once("<<").unwrap_or((s, ""));
    let clean = |p: &str| {
        p.split('<')
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    (clean(primary), clean(secondary))
}

fn yymmdd(b: &[u8]) -> Option<(i32, u32, u32)> {
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| (b[i] - b'0') as u32 * 10 + (b[i + 1] - b'0') as u32;
    Some((n(0) as i32, n(2), n(4)))
}

/// A birth date is never in the future: the latest century that keeps it
/// at or before today.
fn birth_date(b: &[u8], today: NaiveDate) -> Option<NaiveDate> {
    let (yy, m, d) = yymmdd(b)?;
    let century = today.year() - today.year() % 100;
    let date = NaiveDate::from_ymd_opt(century + yy, m, d)?;
    if date > today {
        NaiveDate::from_ymd_opt(century - 100 + yy, m, d)
    } else {
        Some(date)
    }
}

/// Documents are valid for at most a few decades: an expiry more than 50
/// years ahead belongs to the previous century.
fn expiry_date(b: &[u8], today: NaiveDate) -> Option<NaiveDate> {
    let (yy, m, d) = yymmdd(b)?;
    let century = today.year() - today.year() % 100;
    let date = NaiveDate::from_ymd_opt(century + yy, m, d)?;
    if date.year() > today.year() + 50 {
        NaiveDate::from_ymd_opt(century - 100 + yy, m, d)
    } else if date.year() < today.year() - 50 {
        NaiveDate::from_ymd_opt(century + 100 + yy, m, d)
    } else {
        Some(date)
    }
}

fn sex(b: u8) -> char {
    match b {
        b'M' => 'M',
        b'F' => 'F',
        _ => 'X',
    }
}

struct Checker(Vec<Check>);

impl Checker {
    /// A mandatory field's check digit is always a digit.
    fn check(&mut self, field: &'static str, data: &[u8], digit: u8) {
        self.push(field, data, digit, false);
    }

    /// An optional field left empty may carry `<` as its check digit
    /// (ICAO 9303-4 4.2.2.2: TD3's personal number).
    fn check_optional(&mut self, field: &'static str, data: &[u8], digit: u8) {
        self.push(field, data, digit, true);
    }

    fn push(&mut self, field: &'static str, data: &[u8], digit: u8, optional: bool) {
        let computed = check_digit(data);
        let filler_ok = optional && digit == b'<' && data.iter().all(|&b| b == b'<');
        let ok = filler_ok || (digit.is_ascii_digit() && (digit - b'0') as u32 == computed);
        self.0.push(Check {
            field,
            expected: digit as char,
            computed,
            ok,
        });
    }
}

/// Splits input into MRZ lines: blank lines dropped, spaces removed (OCR
/// output often has them), lower case raised. A single line of 90, 72 or 88
/// characters is cut into its lines.
fn lines(input: &str) -> Result<Vec<Vec<u8>>, MrzError> {
    let mut out: Vec<Vec<u8>> = input
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_uppercase)
                .collect::<String>()
        })
        .filter(|l| !l.is_empty())
        .map(String::into_bytes)
        .collect();
    if out.is_empty() {
        return Err(MrzError::Empty);
    }
    if out.len() == 1 {
        let width = match out[0].len() {
            90 => 30,
            72 => 36,
            88 => 44,
            _ => 0,
        };
        if width > 0 {
            let one = out.remove(0);
            out = one.chunks(width).map(<[u8]>::to_vec).collect();
        }
    }
    for (i, l) in out.iter().enumerate() {
        if let Some(pos) = l
            .iter()
            .position(|&b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'<'))
        {
            // Report the character as the user typed it (UTF-8 aware).
            let ch = String::from_utf8_lossy(&l[pos..])
                .chars()
                .next()
                .unwrap_or('?');
            return Err(MrzError::Alphabet {
                line: i + 1,
                pos: pos + 1,
                ch,
            });
        }
    }
    Ok(out)
}

pub fn parse(input: &str, today: NaiveDate) -> Result<Mrz, MrzError> {
    let l = lines(input)?;
    let shape = || {
        MrzError::Shape(
            l.len(),
            l.iter()
                .map(|x| x.len().to_string())
                .collect::<Vec<_>>()
                .join("/"),
        )
    };
    match (l.len(), l[0].len()) {
        (3, 30) if l[1].len() == 30 && l[2].len() == 30 => Ok(td1(&l[0], &l[1], &l[2], today)),
        (2, 36) if l[1].len() == 36 => Ok(two_line(&l[0], &l[1], 36, today)),
        (2, 44) if l[1].len() == 44 => Ok(two_line(&l[0], &l[1], 44, today)),
        _ => Err(shape()),
    }
}

fn td1(l1: &[u8], l2: &[u8], l3: &[u8], today: NaiveDate) -> Mrz {
    let mut c = Checker(Vec::new());
    // A number longer than 9 characters: '<' in the check digit position,
    // the rest in the optional data, then its check digit, then '<'.
    let (number, optional) = if l1[14] == b'<' && l1[15] != b'<' {
        let rest = &l1[15..30];
        let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
        if end >= 1 {
            let mut full = l1[5..14].to_vec();
            full.extend_from_slice(&rest[..end - 1]);
            c.check("documentNumber", &full, rest[end - 1]);
            (full, &rest[end.min(rest.len())..])
        } else {
            c.check("documentNumber", &l1[5..14], l1[14]);
            (l1[5..14].to_vec(), rest)
        }
    } else {
        c.check("documentNumber", &l1[5..14], l1[14]);
        (l1[5..14].to_vec(), &l1[15..30])
    };
    c.check("dateOfBirth", &l2[0..6], l2[6]);
    c.check("dateOfExpiry", &l2[8..14], l2[14]);
    let mut composite = l1[5..30].to_vec();
    composite.extend_from_slice(&l2[0..7]);
    composite.extend_from_slice(&l2[8..15]);
    composite.extend_from_slice(&l2[18..29]);
    c.check("composite", &composite, l2[29]);
    let (primary, secondary) = names(l3);
    let mut syntax = Syntax(Vec::new());
    syntax.document_code(&l1[0..2], Format::Td1);
    syntax.state("issuingState", &l1[2..5]);
    syntax.date("dateOfBirth", &l2[0..6]);
    syntax.sex(l2[7]);
    syntax.date("dateOfExpiry", &l2[8..14]);
    syntax.state("nationality", &l2[15..18]);
    syntax.names(l3);
    Mrz {
        problems: syntax.0,
        names_truncated: l3[29] != b'<',
        format: Format::Td1,
        document_code: code(&l1[0..2]),
        issuing_state: code(&l1[2..5]),
        document_number: code(&number),
        primary_identifier: primary,
        secondary_identifier: secondary,
        nationality: code(&l2[15..18]),
        date_of_birth: birth_date(&l2[0..6], today),
        sex: sex(l2[7]),
        date_of_expiry: expiry_date(&l2[8..14], today),
        optional_data: text(optional),
        optional_data_2: text(&l2[18..29]),
        checks: c.0,
    }
}

/// TD2, TD3 and the visas share line 2's first 28 characters.
fn two_line(l1: &[u8], l2: &[u8], width: usize, today: NaiveDate) -> Mrz {
    let visa = l1[0] == b'V';
    let format = match (width, visa) {
        (44, false) => Format::Td3,
        (44, true) => Format::MrvA,
        (_, false) => Format::Td2,
        (_, true) => Format::MrvB,
    };
    let mut c = Checker(Vec::new());
    // TD2 long document numbers overflow into the optional data like TD1.
    let (number, optional): (Vec<u8>, &[u8]) =
        if format == Format::Td2 && l2[9] == b'<' && l2[28] != b'<' {
            let rest = &l2[28..35];
            let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
            let mut full = l2[0..9].to_vec();
            if end >= 1 {
                full.extend_from_slice(&rest[..end - 1]);
                c.check("documentNumber", &full, rest[end - 1]);
            } else {
                c.check("documentNumber", &full, l2[9]);
            }
            (full, &rest[end.min(rest.len())..])
        } else {
            c.check("documentNumber", &l2[0..9], l2[9]);
            let opt_end = match format {
                Format::Td3 => 42,
                Format::Td2 => 35,
                _ => width,
            };
            (l2[0..9].to_vec(), &l2[28..opt_end])
        };
    c.check("dateOfBirth", &l2[13..19], l2[19]);
    c.check("dateOfExpiry", &l2[21..27], l2[27]);
    match format {
        Format::Td3 => {
            c.check_optional("personalNumber", &l2[28..42], l2[42]);
            let mut composite = l2[0..10].to_vec();
            composite.extend_from_slice(&l2[13..20]);
            composite.extend_from_slice(&l2[21..43]);
            c.check("composite", &composite, l2[43]);
        }
        Format::Td2 => {
            let mut composite = l2[0..10].to_vec();
            composite.extend_from_slice(&l2[13..20]);
            composite.extend_from_slice(&l2[21..35]);
            c.check("composite", &composite, l2[35]);
        }
        // Visas have no composite check digit.
        Format::MrvA | Format::MrvB | Format::Td1 => {}
    }
    let (primary, secondary) = names(&l1[5..]);
    let mut syntax = Syntax(Vec::new());
    syntax.document_code(&l1[0..2], format);
    syntax.state("issuingState", &l1[2..5]);
    syntax.date("dateOfBirth", &l2[13..19]);
    syntax.sex(l2[20]);
    syntax.date("dateOfExpiry", &l2[21..27]);
    syntax.state("nationality", &l2[10..13]);
    syntax.names(&l1[5..]);
    Mrz {
        problems: syntax.0,
        names_truncated: l1[width - 1] != b'<',
        format,
        document_code: code(&l1[0..2]),
        issuing_state: code(&l1[2..5]),
        document_number: code(&number),
        primary_identifier: primary,
        secondary_identifier: secondary,
        nationality: code(&l2[10..13]),
        date_of_birth: birth_date(&l2[13..19], today),
        sex: sex(l2[20]),
        date_of_expiry: expiry_date(&l2[21..27], today),
        optional_data: text(optional),
        optional_data_2: String::new(),
        checks: c.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default()
    }

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    fn ok(s: &str) -> Mrz {
        parse(s, today()).unwrap_or_else(|e| panic!("{e}"))
    }

    // Specimens from ICAO Doc 9303 (Parts 4-7).
    const TD1: &str = "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<";
    const TD2: &str = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6";
    const TD3: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";
    const MRV_A: &str = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL8988901C4XXX4009078F96121096ZE184226B<<<<<<";
    const MRV_B: &str =
        "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nL8988901C4XXX4009078F9612109<<<<<<<<";

    #[test]
    fn td1_specimen() {
        let m = ok(TD1);
        assert_eq!(m.format, Format::Td1);
        assert_eq!(m.document_code, "I");
        assert_eq!(m.issuing_state, "UTO");
        assert_eq!(m.document_number, "D23145890");
        assert_eq!(m.primary_identifier, "ERIKSSON");
        assert_eq!(m.secondary_identifier, "ANNA MARIA");
        assert_eq!(m.nationality, "UTO");
        assert_eq!(m.date_of_birth, d(1974, 8, 12));
        assert_eq!(m.sex, 'F');
        assert_eq!(m.date_of_expiry, d(2012, 4, 15));
        assert!(m.all_checks_pass(), "{:?}", m.checks);
        assert_eq!(m.checks.len(), 4);
    }

    #[test]
    fn td2_specimen() {
        let m = ok(TD2);
        assert_eq!(m.format, Format::Td2);
        assert_eq!(m.document_number, "D23145890");
        assert_eq!(m.primary_identifier, "ERIKSSON");
        assert_eq!(m.secondary_identifier, "ANNA MARIA");
        assert_eq!(m.date_of_birth, d(1974, 8, 12));
        assert_eq!(m.date_of_expiry, d(2012, 4, 15));
        assert!(m.all_checks_pass(), "{:?}", m.checks);
    }

    #[test]
    fn td3_specimen() {
        let m = ok(TD3);
        assert_eq!(m.format, Format::Td3);
        assert_eq!(m.document_code, "P");
        assert_eq!(m.document_number, "L898902C3");
        assert_eq!(m.optional_data, "ZE184226B");
        assert_eq!(m.nationality, "UTO");
        assert_eq!(m.sex, 'F');
        assert!(m.all_checks_pass(), "{:?}", m.checks);
        assert_eq!(m.checks.len(), 5);
    }

    #[test]
    fn visa_specimens() {
        let a = ok(MRV_A);
        assert_eq!(a.format, Format::MrvA);
        assert_eq!(a.document_number, "L8988901C");
        assert_eq!(a.nationality, "XXX");
        assert_eq!(a.date_of_birth, d(1940, 9, 7));
        assert_eq!(a.date_of_expiry, d(1996, 12, 10));
        assert!(a.all_checks_pass(), "{:?}", a.checks);
        assert_eq!(a.checks.len(), 3, "visas have no composite digit");
        let b = ok(MRV_B);
        assert_eq!(b.format, Format::MrvB);
        assert!(b.all_checks_pass(), "{:?}", b.checks);
    }

    #[test]
    fn a_changed_digit_fails_its_check_and_the_composite() {
        let bad = TD3.replace("7408122", "7408132");
        let m = ok(&bad);
        assert_eq!(m.failed_checks(), vec!["dateOfBirth", "composite"]);
        let bad = TD1.replace("D231458907", "D231458917");
        assert!(ok(&bad).failed_checks().contains(&"documentNumber"));
        let bad = TD2.replace("1204159<", "1204158<");
        assert!(ok(&bad).failed_checks().contains(&"dateOfExpiry"));
    }

    #[test]
    fn long_td1_document_numbers_overflow_into_optional_data() {
        // Number D23145890734 (12 characters): '<' in the check position,
        // "734" + its check digit in the optional data.
        let number = b"D23145890734";
        let cd = check_digit(number);
        let l1 = format!("I<UTOD23145890<734{cd}<<<<<<<<<<<");
        let l2_body = "7408122F1204159UTO<<<<<<<<<<<";
        let mut composite = l1.as_bytes()[5..30].to_vec();
        composite.extend_from_slice(&l2_body.as_bytes()[0..7]);
        composite.extend_from_slice(&l2_body.as_bytes()[8..15]);
        composite.extend_from_slice(&l2_body.as_bytes()[18..29]);
        let l2 = format!("{l2_body}{}", check_digit(&composite));
        let m = ok(&format!("{l1}\n{l2}\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"));
        assert_eq!(m.document_number, "D23145890734");
        assert!(m.all_checks_pass(), "{:?}", m.checks);
    }

    #[test]
    fn input_is_normalised_and_bad_shapes_are_errors() {
        let spaced = TD3.replace('\n', "\r\n  ").to_lowercase();
        assert!(ok(&spaced).all_checks_pass());
        assert_eq!(ok(&TD3.replace('\n', "")).format, Format::Td3);
        assert_eq!(parse("", today()), Err(MrzError::Empty));
        assert!(matches!(parse("P<UTO", today()), Err(MrzError::Shape(..))));
        assert!(matches!(
            parse(&TD3.replace("ERIKSSON", "ERIKSSØN"), today()),
            Err(MrzError::Alphabet { line: 1, .. })
        ));
    }

    #[test]
    fn centuries_follow_the_date_kind() {
        let t = today();
        assert_eq!(
            birth_date(b"261231", t),
            d(1926, 12, 31),
            "not in the future"
        );
        assert_eq!(birth_date(b"051231", t), d(2005, 12, 31));
        assert_eq!(expiry_date(b"351231", t), d(2035, 12, 31));
        assert_eq!(expiry_date(b"991231", t), d(1999, 12, 31));
        assert_eq!(birth_date(b"990231", t), None, "no 31 February");
    }

    #[test]
    fn empty_personal_number_may_use_filler_as_check_digit() {
        let l2 = "L898902C36UTO7408122F1204159<<<<<<<<<<<<<<<";
        let body = &l2.as_bytes()[..43];
        let mut composite = body[0..10].to_vec();
        composite.extend_from_slice(&body[13..20]);
        composite.extend_from_slice(&body[21..43]);
        let l2 = format!("{}{}", &l2[..43], check_digit(&composite));
        let m = ok(&format!(
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n{l2}"
        ));
        assert!(m.all_checks_pass(), "{:?}", m.checks);
    }
}

#[cfg(test)]
mod syntax_tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default()
    }

    /// Recomputes every check digit of a TD3, so only syntax can fail it.
    fn td3(l1: &str, l2_body: &str) -> String {
        let b = l2_body.as_bytes();
        let mut l2 = b[..44].to_vec();
        l2[9] = b'0' + check_digit(&b[0..9]) as u8;
        l2[19] = b'0' + check_digit(&b[13..19]) as u8;
        l2[27] = b'0' + check_digit(&b[21..27]) as u8;
        l2[42] = b'0' + check_digit(&b[28..42]) as u8;
        let mut composite = l2[0..10].to_vec();
        composite.extend_from_slice(&l2[13..20]);
        composite.extend_from_slice(&l2[21..43]);
        l2[43] = b'0' + check_digit(&composite) as u8;
        format!("{l1}\n{}", String::from_utf8_lossy(&l2))
    }

    const L1: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
    const L2: &str = "L898902C36UTO7408122F1204159ZE184226B<<<<<10";

    fn problems(s: &str) -> Vec<String> {
        parse(s, today())
            .map(|m| m.problems)
            .unwrap_or_else(|e| vec![e.to_string()])
    }

    #[test]
    fn the_specimen_with_recomputed_digits_is_clean() {
        let m = parse(&td3(L1, L2), today()).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.all_checks_pass(), "{:?} {:?}", m.checks, m.problems);
    }

    #[test]
    fn filler_is_no_check_digit_for_mandatory_fields() {
        // Document number "<<<<<<<<<" with '<' as its digit: only an
        // optional field may do that.
        let l2 = format!("<<<<<<<<<<{}", &L2[10..]);
        let m = parse(&format!("{L1}\n{l2}"), today()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            m.failed_checks().contains(&"documentNumber"),
            "{:?}",
            m.checks
        );
        assert!(!m.all_checks_pass());
    }

    #[test]
    fn all_filler_zones_fail() {
        for s in [
            format!("{}\n{}\n{}", "<".repeat(30), "<".repeat(30), "<".repeat(30)),
            format!("{}\n{}", "<".repeat(36), "<".repeat(36)),
            format!("{}\n{}", "<".repeat(44), "<".repeat(44)),
        ] {
            let m = parse(&s, today()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!m.all_checks_pass(), "{s}");
            assert!(!m.problems.is_empty(), "{s}");
        }
    }

    #[test]
    fn impossible_and_non_digit_dates_fail_with_the_reason() {
        let month13 = td3(L1, &L2.replace("740812", "741312"));
        let p = problems(&month13);
        assert!(p.iter().any(|x| x.contains("month 13")), "{p:?}");
        let feb30 = td3(L1, &L2.replace("740812", "740230"));
        assert!(problems(&feb30).iter().any(|x| x.contains("day 30")));
        // A letter in the date whose check digit still matches ('A' = 10
        // weighs like "10", but the field is no date).
        let letter = td3(L1, &L2.replace("740812", "74A812"));
        let m = parse(&letter, today()).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.failed_checks().is_empty(), "{:?}", m.checks);
        assert!(!m.all_checks_pass());
        assert!(
            m.failure_reason().contains("dateOfBirth"),
            "{}",
            m.failure_reason()
        );
    }

    #[test]
    fn codes_sex_and_names_follow_icao_9303_3() {
        assert!(problems(&td3(L1, &L2.replace("UTO7", "QQQ7")))
            .iter()
            .any(|x| x.starts_with("nationality")));
        assert!(problems(&td3(&L1.replace("P<UTO", "P<ZZZ"), L2))
            .iter()
            .any(|x| x.starts_with("issuingState")));
        // Germany is the one-letter code D, written D<<.
        assert!(problems(&td3(
            &L1.replace("P<UTO", "P<D<<"),
            &L2.replace("UTO7", "D<<7")
        ))
        .is_empty());
        assert!(problems(&td3(L1, &L2.replace("2F1", "2Q1")))
            .iter()
            .any(|x| x.starts_with("sex")));
        assert!(problems(&td3(&L1.replace("P<", "X<"), L2))
            .iter()
            .any(|x| x.starts_with("documentCode")));
        assert!(problems(&td3(&L1.replace("ERIKSSON", "ERIKSS0N"), L2))
            .iter()
            .any(|x| x.contains("A-Z")));
        assert!(
            problems(&td3(&L1.replace("ANNA<MARIA<", "ANNA<<MARIA"), L2))
                .iter()
                .any(|x| x.contains("<<"))
        );
    }
}

#[cfg(test)]
mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default()
    }

    /// Lines of the right shapes made of MRZ characters (and a few others),
    /// so the parser's inner paths are reached, not only its shape checks.
    fn shaped() -> impl Strategy<Value = String> {
        let line = |n: usize| {
            proptest::string::string_regex(&format!("[A-Z0-9<]{{{n}}}"))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        prop_oneof![
            (line(30), line(30), line(30)).prop_map(|(a, b, c)| format!("{a}\n{b}\n{c}")),
            (line(36), line(36)).prop_map(|(a, b)| format!("{a}\n{b}")),
            (line(44), line(44)).prop_map(|(a, b)| format!("{a}\n{b}")),
            (line(44), line(44)).prop_map(|(a, b)| format!("V{}\n{b}", &a[1..])),
            line(90),
            line(88),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let _ = parse(&s, today());
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&String::from_utf8_lossy(&b), today());
        }

        #[test]
        fn mrz_shaped_input_parses_without_panicking(s in shaped()) {
            let m = parse(&s, today());
            prop_assert!(m.is_ok(), "{:?}", m);
        }
    }
}

/// Fills the document fields an MRZ repeats, where the capture left them
/// empty (the printed fields, when present, win: the two are compared by
/// the `mrzMatchesDocument` validation).
pub fn fill_document(doc: &mut super::Document, m: &Mrz) {
    fn fill(slot: &mut Option<String>, v: String) {
        if slot.as_deref().is_none_or(|s| s.trim().is_empty()) && !v.is_empty() {
            *slot = Some(v);
        }
    }
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    fill(&mut doc.document_number, m.document_number.clone());
    fill(&mut doc.surname, m.primary_identifier.clone());
    fill(&mut doc.name, m.secondary_identifier.clone());
    fill(&mut doc.date_of_birth, date(m.date_of_birth));
    fill(&mut doc.date_of_expiry, date(m.date_of_expiry));
    fill(&mut doc.nationality, m.nationality.clone());
    fill(&mut doc.issuing_state, m.issuing_state.clone());
    if m.sex != 'X' {
        fill(&mut doc.gender, m.sex.to_string());
    }
    if m.format == Format::Td3 {
        fill(&mut doc.personal_number, m.optional_data.clone());
    }
    let kind = match (m.format, m.document_code.chars().next()) {
        (Format::MrvA | Format::MrvB, _) => "Visa",
        (_, Some('P')) => "Passport",
        (_, Some('I' | 'A' | 'C')) => "IDCard",
        _ => "",
    };
    fill(&mut doc.document_type, kind.to_string());
}
