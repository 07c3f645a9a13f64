//! Identity verification beyond the document: the contact (applicant) that
//! onboarding processes, one-time codes, mobile users, fraud-risk reports,
//! quizzes and manual approvals all attach to.

pub mod fraud;
pub mod lists;
pub mod messaging;
pub mod otp;
pub mod profile;
pub mod quiz;
pub mod records;
pub mod users;

use crate::domain::now_ms;
use crate::store::contacts::{self as rows, ContactRow};
use crate::store::{Db, Tx};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("one request per {window_secs} s on this endpoint; retry in {retry_after_secs} s")]
    RateLimited {
        window_secs: i64,
        retry_after_secs: i64,
    },
    #[error("{0}")]
    Delivery(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for VerifyError {
    fn from(e: sqlx::Error) -> Self {
        VerifyError::Internal(e.into())
    }
}

/// Personally identifiable information, in the Apiture `identity` shape.
/// Every field is optional here; each operation says what it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pii {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

fn check_len(errors: &mut Vec<String>, name: &str, v: &Option<String>, min: usize, max: usize) {
    if let Some(s) = v {
        let n = s.chars().count();
        if n < min || n > max {
            errors.push(format!("{name} must be {min} to {max} characters"));
        }
    }
}

/// `YYYY-MM-DD`, a real date, not in the future.
pub fn parse_birthdate(s: &str) -> Option<chrono::NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (d <= chrono::Utc::now().date_naive() && chrono::Datelike::year(&d) >= 1000).then_some(d)
}

pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 256
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Digits of a phone number, with a leading + kept: what is compared.
pub fn normalize_phone(s: &str) -> String {
    let plus = s.trim_start().starts_with('+');
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if plus {
        format!("+{digits}")
    } else {
        digits
    }
}

impl Pii {
    /// Trims every field, turns blanks into absent, and checks the lengths
    /// and formats of the Apiture identity schema.
    pub fn validated(mut self) -> Result<Pii, VerifyError> {
        for f in [
            &mut self.tax_id,
            &mut self.first_name,
            &mut self.last_name,
            &mut self.address1,
            &mut self.address2,
            &mut self.city,
            &mut self.region,
            &mut self.postal_code,
            &mut self.phone,
            &mut self.birthdate,
            &mut self.email,
            &mut self.ip_address,
        ] {
            *f = f
                .take()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
        }
        let mut errors = vec![];
        check_len(&mut errors, "taxId", &self.tax_id, 1, 128);
        check_len(&mut errors, "firstName", &self.first_name, 1, 128);
        check_len(&mut errors, "lastName", &self.last_name, 1, 128);
        check_len(&mut errors, "address1", &self.address1, 1, 512);
        check_len(&mut errors, "address2", &self.address2, 1, 512);
        check_len(&mut errors, "city", &self.city, 1, 64);
        check_len(&mut errors, "region", &self.region, 1, 128);
        check_len(&mut errors, "postalCode", &self.postal_code, 1, 32);
        check_len(&mut errors, "phone", &self.phone, 1, 32);
        if let Some(b) = &self.birthdate {
            if parse_birthdate(b).is_none() {
                errors.push(format!(
                    "birthdate '{b}' must be a past date in yyyy-mm-dd format"
                ));
            }
        }
        if let Some(e) = &self.email {
            if !valid_email(e) {
                errors.push(format!("email '{e}' is not an e-mail address"));
            } else {
                self.email = Some(e.to_lowercase());
            }
        }
        if let Some(ip) = &self.ip_address {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                errors.push(format!("ipAddress '{ip}' must be an IPv4 address"));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(VerifyError::Invalid(errors.join("; ")))
        }
    }

    /// Fields given here win; the rest come from `base`.
    pub fn over(&self, base: &Pii) -> Pii {
        fn pick(a: &Option<String>, b: &Option<String>) -> Option<String> {
            a.clone().or_else(|| b.clone())
        }
        Pii {
            tax_id: pick(&self.tax_id, &base.tax_id),
            first_name: pick(&self.first_name, &base.first_name),
            last_name: pick(&self.last_name, &base.last_name),
            address1: pick(&self.address1, &base.address1),
            address2: pick(&self.address2, &base.address2),
            city: pick(&self.city, &base.city),
            region: pick(&self.region, &base.region),
            postal_code: pick(&self.postal_code, &base.postal_code),
            phone: pick(&self.phone, &base.phone),
            birthdate: pick(&self.birthdate, &base.birthdate),
            email: pick(&self.email, &base.email),
            ip_address: pick(&self.ip_address, &base.ip_address),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Pii::default()
    }

    /// Lower-case words for the `q` search of collections.
    pub fn search_text(&self) -> String {
        let s = [
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.phone,
            &self.city,
        ]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join(" ");
        fold(&s)
    }
}

/// Lower case, accents removed (é → e, ñ → n, ü → u), punctuation a space,
/// words single-spaced: how names and addresses are compared.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let m = match c {
            'À'..='Å' | 'à'..='å' => 'a',
            'Ç' | 'ç' => 'c',
            'È'..='Ë' | 'è'..='ë' => 'e',
            'Ì'..='Ï' | 'ì'..='ï' => 'i',
            'Ñ' | 'ñ' => 'n',
            'Ò'..='Ö' | 'ò'..='ö' | 'Ø' | 'ø' => 'o',
            'Ù'..='Ü' | 'ù'..='ü' => 'u',
            'Ý' | 'ý' | 'ÿ' => 'y',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            'Æ' | 'æ' => {
                out.push_str("ae");
                continue;
            }
            c if c.is_alphanumeric() => {
                for l in c.to_lowercase() {
                    out.push(l);
                }
                continue;
            }
            _ => ' ',
        };
        out.push(m);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A name as a set of words in a fixed order, so "PEREZ JOSE" and
/// "José Pérez" give the same key.
pub fn name_key(s: &str) -> String {
    let f = fold(s);
    let mut words: Vec<&str> = f.split(' ').filter(|w| !w.is_empty()).collect();
    words.sort_unstable();
    words.dedup();
    words.join(" ")
}

/// The keys a name can match under: plain folding, and the German/Nordic
/// transliteration (ü → ue) that passports print.
pub fn name_keys(s: &str) -> Vec<String> {
    let a = name_key(s);
    let b = name_key(&crate::domain::validation::mrz_form(s));
    if a == b {
        vec![a]
    } else {
        vec![a, b]
    }
}

pub fn new_contact_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The URI the Apiture API names a contact by.
pub fn contact_uri(id: &str) -> String {
    format!("/contacts/contacts/{id}")
}

/// The id in a contact URI (absolute or relative), if it is well formed.
pub fn parse_contact_uri(uri: &str) -> Option<String> {
    let path = if uri.starts_with('/') {
        uri.to_string()
    } else {
        url::Url::parse(uri).ok()?.path().to_string()
    };
    let id = path.strip_prefix("/contacts/contacts/")?;
    uuid::Uuid::parse_str(id).ok().map(|u| u.to_string())
}

pub async fn create_contact_in(
    tx: &mut Tx,
    integrator_id: &str,
    pii: &Pii,
) -> Result<String, sqlx::Error> {
    let id = new_contact_id();
    let now = now_ms();
    rows::insert(tx, &id, integrator_id, pii, now).await?;
    if let Some(e) = &pii.email {
        rows::upsert_point(tx, &id, "email", e, None, now).await?;
    }
    if let Some(p) = &pii.phone {
        rows::upsert_point(tx, &id, "phone", &normalize_phone(p), None, now).await?;
    }
    if let Some(a) = address_line(pii) {
        rows::upsert_point(tx, &id, "address", &a, None, now).await?;
    }
    Ok(id)
}

/// Street, city, region and postal code as one line (a past address kept).
pub fn address_line(p: &Pii) -> Option<String> {
    let a = p.address1.as_deref()?;
    let rest: Vec<&str> = [&p.city, &p.region, &p.postal_code]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect();
    Some(if rest.is_empty() {
        a.to_string()
    } else {
        format!("{a}, {}", rest.join(" "))
    })
}

/// Updates a contact's PII, keeping what it replaced as past data.
pub async fn merge_into_contact(
    tx: &mut Tx,
    contact: &ContactRow,
    new: &Pii,
) -> Result<Pii, sqlx::Error> {
    let merged = new.over(&contact.pii());
    if merged != contact.pii() {
        let now = now_ms();
        rows::update(tx, &contact.id, &merged, now).await?;
        if let Some(e) = &new.email {
            rows::upsert_point(tx, &contact.id, "email", e, None, now).await?;
        }
        if let Some(p) = &new.phone {
            rows::upsert_point(tx, &contact.id, "phone", &normalize_phone(p), None, now).await?;
        }
        if let Some(a) = address_line(&merged) {
            rows::upsert_point(tx, &contact.id, "address", &a, None, now).await?;
        }
    }
    Ok(merged)
}

/// The contact of an onboarding process, created (from its document) on
/// first need: processes from before contacts existed have none.
pub async fn contact_for_process(db: &Db, scan_id: &str) -> Result<Option<String>, VerifyError> {
    if let Some(id) = rows::of_process(db.read(), scan_id).await? {
        return Ok(Some(id));
    }
    let row = sqlx::query_as::<_, (String, String)>(
        "SELECT integrator_id, document FROM processes WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_optional(db.read())
    .await?;
    let Some((integrator_id, document)) = row else {
        return Ok(None);
    };
    let doc: crate::domain::Document = serde_json::from_str(&document).unwrap_or_default();
    let pii = Pii {
        first_name: doc.name.clone(),
        last_name: doc.surname.clone(),
        birthdate: doc.date_of_birth.as_deref().and_then(document_date),
        address1: doc.address.clone(),
        city: doc.city.clone(),
        region: doc.region.clone(),
        postal_code: doc.post_code.clone(),
        ..Pii::default()
    };
    let mut tx = db.begin().await?;
    // Two requests may race: the one that links first wins.
    if let Some(id) = sqlx::query_scalar::<_, Option<String>>(
        "SELECT contact_id FROM processes WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_optional(&mut *tx)
    .await?
    .flatten()
    {
        return Ok(Some(id));
    }
    let id = create_contact_in(&mut tx, &integrator_id, &pii).await?;
    rows::link_process(&mut tx, scan_id, &id).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Document dates come as `YYYY-MM-DD` or `DD/MM/YYYY`.
pub fn document_date(s: &str) -> Option<String> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.format("%Y-%m-%d").to_string());
    }
    chrono::NaiveDate::parse_from_str(s, "%d/%m/%Y")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whatever_the_accents_case_and_order() {
        assert_eq!(name_key("José Pérez"), name_key("PEREZ JOSE"));
        assert_eq!(name_key("  maría-josé  NÚÑEZ "), "jose maria nunez");
        assert_ne!(name_key("José Pérez"), name_key("José Peres"));
        assert!(name_keys("Jürgen Müller").contains(&name_key("MUELLER JUERGEN")));
    }

    #[test]
    fn contact_uris_parse_relative_and_absolute() {
        let id = "6da5ccc7-727a-4256-bdd4-74023ae349c3";
        assert_eq!(parse_contact_uri(&contact_uri(id)).as_deref(), Some(id));
        assert_eq!(
            parse_contact_uri(&format!("https://x.example/contacts/contacts/{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(parse_contact_uri("/contacts/contacts/nope"), None);
        assert_eq!(
            parse_contact_uri("/other/6da5ccc7-727a-4256-bdd4-74023ae349c3"),
            None
        );
    }

    #[test]
    fn pii_is_checked_as_the_schema_says() {
        let ok = Pii {
            birthdate: Some("1940-10-15".into()),
            email: Some("Api@Apiture.com".into()),
            ip_address: Some("127.0.0.1".into()),
            first_name: Some("  ".into()),
            ..Pii::default()
        }
        .validated()
        .unwrap_or_default();
        assert_eq!(ok.email.as_deref(), Some("api@apiture.com"));
        assert_eq!(ok.first_name, None);
        for bad in [
            Pii {
                birthdate: Some("1940-13-15".into()),
                ..Pii::default()
            },
            Pii {
                birthdate: Some("15/10/1940".into()),
                ..Pii::default()
            },
            Pii {
                email: Some("nobody".into()),
                ..Pii::default()
            },
            Pii {
                ip_address: Some("::1".into()),
                ..Pii::default()
            },
            Pii {
                postal_code: Some("x".repeat(33)),
                ..Pii::default()
            },
        ] {
            assert!(bad.validated().is_err());
        }
    }
}
