//! Fraud-risk rules. Each of the nine Apiture categories is computed from
//! the PII, the operator's lists and the contact's verified data:
//!
//! - `addressIsPOBoxOrNonApproved`: a PO box / mail-drop pattern, or an
//!   address on the `non_approved_address` list;
//! - `addressIsHighRisk`: on the `high_risk_address` list;
//! - `identityOnGovernmentWatchlist` / `identityOnAlertList`: name (any
//!   order, accents, case) and birthdate on the `watchlist` / `alertlist`;
//! - `ageRestricted`: younger than the minimum age (`--minimum-age`);
//! - `nonStandardTaxId`: an ITIN, or a number no SSN can have;
//! - `ipRestricted` / `emailRestricted`: `restricted_ip` ranges,
//!   `restricted_email_domain` domains;
//! - `personalInfoDoesNotMatch`: name, birthdate, e-mail or phone differ from
//!   what the contact has verified (document of an onboarding, verified
//!   e-mails and phones).
//!
//! State: `failed` when both name and birthdate contradict the contact's
//! verified identity (it is not this person), `passedWithRiskFactors` when
//! any category is raised, `passed` otherwise.

use super::{lists, name_key, Pii};
use crate::store::contacts as crow;
use crate::store::Db;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Category {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
}

fn cat(kind: &str, description: &str) -> Category {
    Category {
        kind: kind.into(),
        description: description.into(),
    }
}

/// PO boxes and mail drops, in English and Spanish forms.
pub fn is_po_box(line: &str) -> bool {
    let f = format!(" {} ", super::fold(line));
    const PATTERNS: [&str; 16] = [
        " po box ",
        " p o box ",
        " pobox ",
        " po b ",
        " pob ",
        " post office box ",
        " postal box ",
        " box ",
        " apartado de correos ",
        " apartado postal ",
        " apdo ",
        " pmb ",
        " general delivery ",
        " caller box ",
        " lock box ",
        " lockbox ",
    ];
    PATTERNS.iter().any(|p| f.contains(p))
}

/// ITINs (9XX-[50-65,70-88,90-92,94-99]-XXXX) and impossible SSNs.
pub fn non_standard_tax_id(tax_id: &str) -> bool {
    let d: Vec<u32> = tax_id.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    let itin = d[0] == 9 && matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99);
    itin || area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0
}

pub fn age_on(birthdate: &str, today: chrono::NaiveDate) -> Option<i32> {
    let b = chrono::NaiveDate::parse_from_str(birthdate, "%Y-%m-%d").ok()?;
    let mut age = today.years_since(b)? as i32;
    if age < 0 {
        age = 0;
    }
    Some(age)
}

/// What the contact has proven: names and birthdates from onboarding
/// documents, verified e-mails and phones.
#[derive(Debug, Default)]
pub struct Facts {
    pub names: Vec<String>,
    pub birthdates: Vec<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
}

pub async fn facts(db: &Db, contact_id: &str) -> Result<Facts, super::VerifyError> {
    let mut f = Facts::default();
    for (scan_id, _, doc) in crow::documents(db.read(), contact_id).await? {
        let d = super::stored_document(&scan_id, &doc)?;
        let name = format!(
            "{} {}",
            d.name.as_deref().unwrap_or(""),
            d.surname.as_deref().unwrap_or("")
        );
        if !name.trim().is_empty() {
            f.names.push(name_key(&name));
        }
        if let Some(b) = d.date_of_birth.as_deref().and_then(super::document_date) {
            f.birthdates.push(b);
        }
    }
    for p in crow::points(db.read(), contact_id).await? {
        if p.verified_at.is_some() {
            match p.kind.as_str() {
                "email" => f.emails.push(p.value.to_lowercase()),
                "phone" => f.phones.push(p.value.clone()),
                _ => {}
            }
        }
    }
    Ok(f)
}

fn last_digits(s: &str, n: usize) -> String {
    let d: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    d[d.len().saturating_sub(n)..].iter().collect()
}

/// Names agree when the words of one are all among the other's (a document
/// may carry two surnames where a form has one).
fn names_agree(a: &str, b: &str) -> bool {
    let wa: Vec<&str> = a.split(' ').collect();
    let wb: Vec<&str> = b.split(' ').collect();
    wa.iter().all(|w| wb.contains(w)) || wb.iter().all(|w| wa.contains(w))
}

pub struct Outcome {
    pub state: &'static str,
    pub categories: Vec<Category>,
}

pub async fn assess(
    db: &Db,
    minimum_age: u32,
    pii: &Pii,
    facts: &Facts,
) -> Result<Outcome, sqlx::Error> {
    let mut c = vec![];
    let full_name = format!(
        "{} {}",
        pii.first_name.as_deref().unwrap_or(""),
        pii.last_name.as_deref().unwrap_or("")
    );
    let has_name = !full_name.trim().is_empty();

    // personalInfoDoesNotMatch
    let name_mismatch = has_name
        && !facts.names.is_empty()
        && !facts
            .names
            .iter()
            .any(|n| names_agree(n, &name_key(&full_name)));
    let birth_mismatch = pii
        .birthdate
        .as_ref()
        .is_some_and(|b| !facts.birthdates.is_empty() && !facts.birthdates.contains(b));
    let email_mismatch = pii
        .email
        .as_ref()
        .is_some_and(|e| !facts.emails.is_empty() && !facts.emails.contains(&e.to_lowercase()));
    let phone_mismatch = pii.phone.as_ref().is_some_and(|p| {
        !facts.phones.is_empty()
            && !facts
                .phones
                .iter()
                .any(|f| last_digits(f, 9) == last_digits(p, 9))
    });
    if name_mismatch || birth_mismatch || email_mismatch || phone_mismatch {
        c.push(cat(
            "personalInfoDoesNotMatch",
            "The retrieved identity does not match the provided PII.",
        ));
    }

    // addressIsHighRisk
    if let Some(a) = &pii.address1 {
        if let Some(l) =
            lists::address_hit(db, "high_risk_address", a, pii.postal_code.as_deref()).await?
        {
            c.push(cat(
                "addressIsHighRisk",
                &format!("The provided address is considered high-risk: {l}"),
            ));
        }
    }

    // addressIsPOBoxOrNonApproved
    let po = [&pii.address1, &pii.address2]
        .iter()
        .any(|a| a.as_deref().is_some_and(is_po_box));
    let non_approved = match &pii.address1 {
        Some(a) => {
            lists::address_hit(db, "non_approved_address", a, pii.postal_code.as_deref()).await?
        }
        None => None,
    };
    if po || non_approved.is_some() {
        c.push(cat(
            "addressIsPOBoxOrNonApproved",
            "The provided address is a PO Box or other non-approved address",
        ));
    }

    // identityOnGovernmentWatchlist / identityOnAlertList
    if has_name {
        if let Some(l) =
            lists::person_hit(db, "watchlist", &full_name, pii.birthdate.as_deref()).await?
        {
            c.push(cat(
                "identityOnGovernmentWatchlist",
                &format!(
                    "The provided identity is located on one or more government watchlists: {l}"
                ),
            ));
        }
        if let Some(l) =
            lists::person_hit(db, "alertlist", &full_name, pii.birthdate.as_deref()).await?
        {
            c.push(cat(
                "identityOnAlertList",
                &format!("The provided identity is located on one or more alert lists: {l}"),
            ));
        }
    }

    // ipRestricted
    if let Some(ip) = &pii.ip_address {
        if lists::ip_hit(db, ip).await?.is_some() {
            c.push(cat("ipRestricted", "The provided IP address is restricted"));
        }
    }

    // emailRestricted
    if let Some(e) = &pii.email {
        if lists::email_domain_hit(db, e).await?.is_some() {
            c.push(cat(
                "emailRestricted",
                "The provided email address is restricted",
            ));
        }
    }

    // nonStandardTaxId
    if pii.tax_id.as_deref().is_some_and(non_standard_tax_id) {
        c.push(cat(
            "nonStandardTaxId",
            "The provided taxId is non-standard. Example: The provided SSN is an ITIN (Individual Taxpayer  Identification Number)",
        ));
    }

    // ageRestricted
    if let Some(age) = pii
        .birthdate
        .as_deref()
        .and_then(|b| age_on(b, chrono::Utc::now().date_naive()))
    {
        if age < minimum_age as i32 {
            c.push(cat(
                "ageRestricted",
                &format!("The provided identity does not meet the required age of {minimum_age}."),
            ));
        }
    }

    let state = if name_mismatch && birth_mismatch {
        "failed"
    } else if c.is_empty() {
        "passed"
    } else {
        "passedWithRiskFactors"
    };
    Ok(Outcome {
        state,
        categories: c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn po_boxes_are_recognised_and_streets_are_not() {
        for a in [
            "PO Box 123",
            "P.O. Box 9",
            "Post Office Box 12",
            "Apartado de Correos 45",
            "PMB 311, 500 Main St",
        ] {
            assert!(is_po_box(a), "{a}");
        }
        for a in ["1741 Tiburon Dr", "12 Boxwood Lane", "Calle Mayor 5"] {
            assert!(!is_po_box(a), "{a}");
        }
    }

    #[test]
    fn itins_and_impossible_ssns_are_non_standard() {
        assert!(non_standard_tax_id("912-70-1234"));
        assert!(non_standard_tax_id("666-12-3456"));
        assert!(non_standard_tax_id("123-00-4567"));
        assert!(!non_standard_tax_id("555-55-5555"));
        assert!(!non_standard_tax_id("123-45-6789"));
    }
}
