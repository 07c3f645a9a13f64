//! Fraud-risk reports, quizzes and manual approvals of contacts, and the
//! contact's combined verification status.

use super::fraud::{self, Category};
use super::quiz::{self, Question};
use super::{Pii, VerifyError};
use crate::domain::now_ms;
use crate::store::contacts as crow;
use crate::store::Db;

pub use crate::store::collection::{column, parse_filter, Filter, PageQuery};
use crate::store::identity_checks as store;
pub use crate::store::identity_checks::{ApprovalRow, FraudRow, QuizRow};

/// A stored JSON column that no longer decodes is an error (500 with a
/// request id), never an empty value.
fn decode<T: serde::de::DeserializeOwned>(
    table: &str,
    id: &str,
    column: &str,
    json: &str,
) -> Result<T, VerifyError> {
    serde_json::from_str(json).map_err(|e| {
        VerifyError::Internal(anyhow::anyhow!(
            "the stored {column} of {table} {id} does not decode: {e}"
        ))
    })
}

impl FraudRow {
    pub fn pii(&self) -> Result<Pii, VerifyError> {
        decode("fraud report", &self.id, "inputs", &self.inputs)
    }
    pub fn categories(&self) -> Result<Vec<Category>, VerifyError> {
        decode("fraud report", &self.id, "categories", &self.categories)
    }
}

impl QuizRow {
    pub fn pii(&self) -> Result<Pii, VerifyError> {
        decode("quiz", &self.id, "inputs", &self.inputs)
    }
    pub fn questions(&self) -> Result<Vec<Question>, VerifyError> {
        decode("quiz", &self.id, "questions", &self.questions)
    }
}

/// The contact a request names (`apiture:contact`), or a new one made from
/// the request's PII; and that PII merged over what the contact holds.
pub async fn resolve_contact(
    db: &Db,
    integrator_id: &str,
    contact_id: Option<&str>,
    pii: &Pii,
) -> Result<(String, Pii), VerifyError> {
    match contact_id {
        Some(id) => {
            let c = crow::get(db.read(), integrator_id, id)
                .await?
                .ok_or_else(|| {
                    VerifyError::Invalid(format!(
                        "the apiture:contact link names no contact: {}",
                        super::contact_uri(id)
                    ))
                })?;
            let mut tx = db.begin().await?;
            let merged = super::merge_into_contact(&mut tx, &c, pii).await?;
            tx.commit().await?;
            Ok((c.id, merged))
        }
        None => {
            if pii.first_name.is_none() || pii.last_name.is_none() {
                return Err(VerifyError::Invalid(
                    "give an apiture:contact link, or the identity's firstName and lastName (and what else is known)".into(),
                ));
            }
            let mut tx = db.begin().await?;
            let id = super::create_contact_in(&mut tx, integrator_id, pii).await?;
            tx.commit().await?;
            Ok((id, pii.clone()))
        }
    }
}

pub async fn create_fraud_report(
    db: &Db,
    minimum_age: u32,
    integrator_id: &str,
    contact_id: Option<&str>,
    pii: Pii,
) -> Result<FraudRow, VerifyError> {
    let (contact_id, pii) = resolve_contact(db, integrator_id, contact_id, &pii).await?;
    let facts = fraud::facts(db, &contact_id).await?;
    let outcome = fraud::assess(db, minimum_age, &pii, &facts).await?;
    let row = FraudRow {
        id: uuid::Uuid::new_v4().to_string(),
        integrator_id: integrator_id.into(),
        contact_id,
        inputs: serde_json::to_string(&pii).map_err(anyhow::Error::from)?,
        state: outcome.state.into(),
        categories: serde_json::to_string(&outcome.categories).map_err(anyhow::Error::from)?,
        created_at: now_ms(),
    };
    store::insert_fraud_report(db, &row, &pii.search_text()).await?;
    Ok(row)
}

pub async fn create_quiz(
    db: &Db,
    ttl_ms: i64,
    integrator_id: &str,
    contact_id: Option<&str>,
    pii: Pii,
) -> Result<QuizRow, VerifyError> {
    let (contact_id, pii) = resolve_contact(db, integrator_id, contact_id, &pii).await?;
    let k = quiz::knowledge(db, &contact_id, &pii).await?;
    // Not enough known about the contact: say so now, not after a round trip.
    let state = if quiz::generate(&k).is_some() {
        "pending"
    } else {
        "failedGetQuestions"
    };
    let now = now_ms();
    let row = QuizRow {
        id: uuid::Uuid::new_v4().to_string(),
        integrator_id: integrator_id.into(),
        contact_id,
        inputs: serde_json::to_string(&pii).map_err(anyhow::Error::from)?,
        state: state.into(),
        questions: "[]".into(),
        correct: None,
        created_at: now,
        expires_at: now + ttl_ms,
        finished_at: (state != "pending").then_some(now),
    };
    store::insert_quiz(db, &row, &pii.search_text()).await?;
    Ok(row)
}

/// A quiz; one past its expiry is marked `expired` on read (unless done).
pub async fn quiz(db: &Db, integrator_id: &str, id: &str) -> Result<Option<QuizRow>, sqlx::Error> {
    let q = store::quiz(db, integrator_id, id).await?;
    let Some(mut q) = q else { return Ok(None) };
    let now = now_ms();
    if matches!(q.state.as_str(), "pending" | "asked") && now >= q.expires_at {
        store::expire_quiz(db, &q.id, now).await?;
        q.state = "expired".into();
        q.finished_at = Some(now);
    }
    Ok(Some(q))
}

/// pending → asked, with fresh questions. 409 in any other state.
pub async fn ask(db: &Db, q: &QuizRow) -> Result<Vec<Question>, VerifyError> {
    if q.state != "pending" {
        return Err(VerifyError::Conflict(format!(
            "questions may only be generated while the quiz is pending; it is {}",
            q.state
        )));
    }
    let k = quiz::knowledge(db, &q.contact_id, &q.pii()?).await?;
    let Some(questions) = quiz::generate(&k) else {
        store::quiz_without_questions(db, &q.id, now_ms()).await?;
        return Err(VerifyError::Conflict(
            "not enough is known about this contact to ask questions (state failedGetQuestions)"
                .into(),
        ));
    };
    let asked = store::ask_quiz(
        db,
        &q.id,
        &serde_json::to_string(&questions).map_err(anyhow::Error::from)?,
    )
    .await?;
    if !asked {
        return Err(VerifyError::Conflict(
            "the quiz changed state meanwhile".into(),
        ));
    }
    Ok(questions)
}

/// asked → passed | failed (or expired when late). 409 in any other state.
pub async fn answer(db: &Db, q: &QuizRow, answers: &[(String, String)]) -> Result<(), VerifyError> {
    if q.state == "expired" {
        return Ok(());
    }
    if q.state != "asked" {
        return Err(VerifyError::Conflict(format!(
            "answers may only be submitted while the quiz is asked; it is {}",
            q.state
        )));
    }
    let questions = q.questions()?;
    let right = quiz::score(&questions, answers).map_err(VerifyError::Invalid)?;
    let state = if quiz::passes(right, questions.len()) {
        "passed"
    } else {
        "failed"
    };
    // Through `scoring`, so two concurrent submissions cannot both score.
    let scoring = store::start_scoring(db, &q.id).await?;
    if !scoring {
        return Err(VerifyError::Conflict(
            "the answers were already submitted".into(),
        ));
    }
    store::finish_quiz(db, &q.id, state, right as i64, now_ms()).await?;
    Ok(())
}

pub async fn create_approval(
    db: &Db,
    contact: &crow::ContactRow,
    reason: &str,
    actor: &str,
    client_addr: &str,
) -> Result<ApprovalRow, VerifyError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(VerifyError::Invalid(
            "a manual approval needs a reason".into(),
        ));
    }
    if reason.chars().count() > 2000 {
        return Err(VerifyError::Invalid(
            "the reason is limited to 2000 characters".into(),
        ));
    }
    let row = ApprovalRow {
        id: uuid::Uuid::new_v4().to_string(),
        integrator_id: contact.integrator_id.clone(),
        contact_id: contact.id.clone(),
        reason: reason.into(),
        actor: actor.into(),
        created_at: now_ms(),
    };
    let mut work = crate::audit::Work::begin(db).await?;
    store::insert_approval(&mut work.tx, &row).await?;
    let scan_id = store::newest_process_of_contact(&mut work.tx, &contact.id).await?;
    work.commit(crate::audit::Event {
            actor,
            action: "contact.approved",
            scan_id: scan_id.as_deref(),
            client_addr,
            detail: serde_json::json!({"contactId": contact.id, "approvalId": row.id, "reason": row.reason}),
        })
    .await?;
    Ok(row)
}

/// One finished identity verification of a contact (`contactVerification`).
#[derive(Debug, Clone)]
pub struct Verified {
    pub kind: &'static str,
    pub id: String,
    pub state: String,
    pub at: i64,
}

pub async fn contact_verifications(
    db: &Db,
    contact_id: &str,
    kind: Option<&str>,
) -> Result<Vec<Verified>, sqlx::Error> {
    let mut out = vec![];
    if kind.is_none_or(|k| k == "fraudRiskReport") {
        let rows = store::fraud_states(db, contact_id).await?;
        out.extend(rows.into_iter().map(|(id, state, at)| Verified {
            kind: "fraudRiskReport",
            id,
            state,
            at,
        }));
    }
    if kind.is_none_or(|k| k == "quiz") {
        let rows = store::scored_quizzes(db, contact_id).await?;
        out.extend(rows.into_iter().map(|(id, state, at)| Verified {
            kind: "quiz",
            id,
            state,
            at: at.unwrap_or(0),
        }));
    }
    if kind.is_none_or(|k| k == "adminApproval") {
        let rows = store::approvals_of(db, contact_id).await?;
        out.extend(rows.into_iter().map(|(id, at)| Verified {
            kind: "adminApproval",
            id,
            state: "passed".into(),
            at,
        }));
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    Ok(out)
}

fn page_error(e: crate::store::collection::PageError) -> VerifyError {
    match e {
        crate::store::collection::PageError::BadFilter(m) => VerifyError::Unprocessable(m),
        crate::store::collection::PageError::Db(e) => e.into(),
    }
}

pub async fn fraud_reports(
    db: &Db,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<FraudRow>, bool), VerifyError> {
    store::fraud_reports(db, integrator_id, p)
        .await
        .map_err(page_error)
}

pub async fn quizzes(
    db: &Db,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<QuizRow>, bool), VerifyError> {
    store::quizzes(db, integrator_id, p)
        .await
        .map_err(page_error)
}
