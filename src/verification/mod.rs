//! Identity verification beyond the document: the contact (applicant) that
//! onboarding processes, one-time codes, mobile users, fraud-risk reports,
//! quizzes and manual approvals all attach to.

pub mod confirm;
pub mod fraud;
pub mod lists;
pub mod messaging;
pub mod otp;
pub mod profile;
pub mod quiz;
pub mod records;
pub mod users;

pub use crate::domain::contact::*;
use crate::domain::now_ms;
use crate::store::contacts::{self as rows, ContactRow};
use crate::store::{Db, Tx};

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

/// A process's stored document JSON. One that no longer decodes is an
/// error (500 with a request id), never an empty document.
pub fn stored_document(scan_id: &str, json: &str) -> Result<crate::domain::Document, VerifyError> {
    serde_json::from_str(json).map_err(|e| {
        VerifyError::Internal(anyhow::anyhow!(
            "the stored document of process {scan_id} does not decode: {e}"
        ))
    })
}

/// The contact of an onboarding process, created (from its document) on
/// first need: processes from before contacts existed have none.
pub async fn contact_for_process(db: &Db, scan_id: &str) -> Result<Option<String>, VerifyError> {
    if let Some(id) = rows::of_process(db.read(), scan_id).await? {
        return Ok(Some(id));
    }
    let Some((integrator_id, document)) =
        rows::process_integrator_and_document(db.read(), scan_id).await?
    else {
        return Ok(None);
    };
    let doc = stored_document(scan_id, &document)?;
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
    if let Some(id) = rows::of_process_in(&mut tx, scan_id).await? {
        return Ok(Some(id));
    }
    let id = create_contact_in(&mut tx, &integrator_id, &pii).await?;
    rows::link_process(&mut tx, scan_id, &id).await?;
    tx.commit().await?;
    Ok(Some(id))
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
