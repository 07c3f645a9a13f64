//! Four-eyes: the review policy and proposals awaiting a second reviewer.

use super::Tx;
use crate::domain::four_eyes::Policy;
use sqlx::AnyPool;

#[derive(sqlx::FromRow)]
struct PolicyRow {
    rejections: i64,
    failing_accepts: i64,
    integrators: String,
    sample_percent: i64,
}

/// The policy; a row that no longer decodes is an error, never "off".
pub async fn policy(pool: &AnyPool) -> Result<Policy, sqlx::Error> {
    let r = sqlx::query_as::<_, PolicyRow>(
        "SELECT rejections, failing_accepts, integrators, sample_percent FROM review_policy WHERE id = 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(r) = r else {
        return Ok(Policy::default());
    };
    let integrators: Vec<String> = serde_json::from_str(&r.integrators)
        .map_err(|e| sqlx::Error::Decode(format!("review_policy.integrators: {e}").into()))?;
    let sample_percent = u8::try_from(r.sample_percent)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| {
            sqlx::Error::Decode(
                format!(
                    "review_policy.sample_percent {} is out of range",
                    r.sample_percent
                )
                .into(),
            )
        })?;
    Ok(Policy {
        rejections: r.rejections == 1,
        failing_accepts: r.failing_accepts == 1,
        integrators,
        sample_percent,
    })
}

pub async fn set_policy(tx: &mut Tx, p: &Policy, by: &str, at: i64) -> Result<(), sqlx::Error> {
    let integrators =
        serde_json::to_string(&p.integrators).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "UPDATE review_policy SET rejections = $1, failing_accepts = $2, integrators = $3, \
         sample_percent = $4, updated_by = $5, updated_at = $6 WHERE id = 1",
    )
    .bind(p.rejections as i64)
    .bind(p.failing_accepts as i64)
    .bind(integrators)
    .bind(i64::from(p.sample_percent))
    .bind(by)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Proposal {
    pub id: String,
    pub scan_id: String,
    pub decision: String,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub rule: String,
    pub proposed_by: String,
    pub proposed_at: i64,
    pub outcome: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub review_reason: Option<String>,
}

const COLS: &str = "id, scan_id, decision, reason, comment, rule, proposed_by, proposed_at, \
                    outcome, reviewed_by, reviewed_at, review_reason";

pub async fn insert(tx: &mut Tx, p: &Proposal) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO proposals ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL)"
    ))
    .bind(p.id.clone())
    .bind(p.scan_id.clone())
    .bind(p.decision.clone())
    .bind(p.reason.clone())
    .bind(p.comment.clone())
    .bind(p.rule.clone())
    .bind(p.proposed_by.clone())
    .bind(p.proposed_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn open(pool: &AnyPool, scan_id: &str) -> Result<Option<Proposal>, sqlx::Error> {
    sqlx::query_as::<_, Proposal>(&format!(
        "SELECT {COLS} FROM proposals WHERE scan_id = $1 AND outcome IS NULL"
    ))
    .bind(scan_id)
    .fetch_optional(pool)
    .await
}

pub(super) fn all_for_sql() -> String {
    format!("SELECT {COLS} FROM proposals WHERE scan_id = $1 ORDER BY proposed_at, id")
}

pub async fn all_for(pool: &AnyPool, scan_id: &str) -> Result<Vec<Proposal>, sqlx::Error> {
    sqlx::query_as::<_, Proposal>(&all_for_sql())
        .bind(scan_id)
        .fetch_all(pool)
        .await
}

/// Closes an open proposal for a reviewer other than its proposer; 0 when
/// someone else closed it first (or the reviewer is the proposer).
pub async fn close(
    tx: &mut Tx,
    id: &str,
    outcome: &str,
    reviewer: &str,
    reason: Option<&str>,
    at: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE proposals SET outcome = $1, reviewed_by = $2, reviewed_at = $3, review_reason = $4 \
         WHERE id = $5 AND outcome IS NULL AND proposed_by <> $2",
    )
    .bind(outcome)
    .bind(reviewer)
    .bind(at)
    .bind(reason)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// A line of the Second review queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    pub id: String,
    pub scan_id: String,
    pub decision: String,
    pub reason: Option<String>,
    pub rule: String,
    pub proposed_by: String,
    pub proposed_at: i64,
    pub document: String,
    pub integrator_name: String,
}

impl Waiting {
    pub fn document(&self) -> Result<crate::domain::Document, super::processes::CorruptRow> {
        super::processes::decode_document(&self.scan_id, &self.document)
    }
}

/// Open proposals, oldest first.
pub async fn waiting(pool: &AnyPool, limit: i64) -> Result<Vec<Waiting>, sqlx::Error> {
    sqlx::query_as::<_, Waiting>(
        "SELECT o.id, o.scan_id, o.decision, o.reason, o.rule, o.proposed_by, o.proposed_at, \
         p.document, i.name AS integrator_name FROM proposals o \
         JOIN processes p ON p.scan_id = o.scan_id JOIN integrators i ON i.id = p.integrator_id \
         WHERE o.outcome IS NULL ORDER BY o.proposed_at, o.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn waiting_count(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM proposals WHERE outcome IS NULL")
        .fetch_one(pool)
        .await
}

/// Bumps the process's version (so a stale tab's decision conflicts) and
/// releases its claim, keeping its state: integrators still see it pending.
pub async fn hold(tx: &mut Tx, scan_id: &str, version: i64, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET version = version + 1, claimed_by = NULL, claimed_at = NULL, \
         updated_at = $1 WHERE scan_id = $2 AND version = $3",
    )
    .bind(now)
    .bind(scan_id)
    .bind(version)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
