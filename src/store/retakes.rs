//! Retake requests and the evidence they replaced (see `review::retake`).

use super::processes::EvidenceRow;
use super::Tx;
use crate::domain::retake::{self, Step};
use sqlx::AnyPool;

/// A stored retake request, decoded once: a bad step is a corrupt row.
#[derive(Debug, Clone)]
pub struct Retake {
    pub id: String,
    pub scan_id: String,
    pub steps: Vec<Step>,
    pub reason: String,
    pub message: Option<String>,
    pub lang: String,
    pub from_state: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub resubmitted_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RetakeRow {
    id: String,
    scan_id: String,
    steps: String,
    reason: String,
    message: Option<String>,
    lang: String,
    from_state: String,
    requested_by: String,
    requested_at: i64,
    expires_at: i64,
    resubmitted_at: Option<i64>,
}

impl TryFrom<RetakeRow> for Retake {
    type Error = sqlx::Error;
    fn try_from(r: RetakeRow) -> Result<Self, Self::Error> {
        let steps = retake::parse_steps(&r.steps).map_err(|e| {
            sqlx::Error::Decode(format!("retake {} of {}: {e}", r.id, r.scan_id).into())
        })?;
        Ok(Retake {
            id: r.id,
            scan_id: r.scan_id,
            steps,
            reason: r.reason,
            message: r.message,
            lang: r.lang,
            from_state: r.from_state,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            expires_at: r.expires_at,
            resubmitted_at: r.resubmitted_at,
        })
    }
}

const COLS: &str = "id, scan_id, steps, reason, message, lang, from_state, requested_by, \
                    requested_at, expires_at, resubmitted_at";

pub async fn insert(tx: &mut Tx, r: &Retake) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO retakes ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)"
    ))
    .bind(r.id.clone())
    .bind(r.scan_id.clone())
    .bind(retake::join(&r.steps))
    .bind(r.reason.clone())
    .bind(r.message.clone())
    .bind(r.lang.clone())
    .bind(r.from_state.clone())
    .bind(r.requested_by.clone())
    .bind(r.requested_at)
    .bind(r.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The request the applicant has not answered yet, if any: read from a
/// pool, or inside a transaction (`&mut *tx`) that holds the process lock.
pub async fn open<'e, E>(ex: E, scan_id: &str) -> Result<Option<Retake>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_as::<_, RetakeRow>(&open_sql())
        .bind(scan_id)
        .fetch_optional(ex)
        .await?
        .map(Retake::try_from)
        .transpose()
}

pub(super) fn open_sql() -> String {
    format!(
        "SELECT {COLS} FROM retakes WHERE scan_id = $1 AND resubmitted_at IS NULL AND expired_at IS NULL"
    )
}

/// `open`'s answer from its rows (see `case_file`).
pub(super) fn decode_open(rows: &[sqlx::any::AnyRow]) -> Result<Option<Retake>, sqlx::Error> {
    use sqlx::FromRow;
    rows.first()
        .map(|r| RetakeRow::from_row(r).and_then(Retake::try_from))
        .transpose()
}

/// Open requests whose link expired before `now`, oldest first (at most
/// `limit`): the sweep returns their cases to the queue.
pub async fn expired_open(
    pool: &AnyPool,
    now: i64,
    limit: i64,
) -> Result<Vec<Retake>, sqlx::Error> {
    sqlx::query_as::<_, RetakeRow>(&format!(
        "SELECT {COLS} FROM retakes WHERE resubmitted_at IS NULL AND expired_at IS NULL AND expires_at < $1 \
         ORDER BY expires_at, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Retake::try_from)
    .collect()
}

/// Closes an expired request; 0 when it was resubmitted or closed already.
pub async fn close_expired(tx: &mut Tx, id: &str, at: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE retakes SET expired_at = $1 WHERE id = $2 AND resubmitted_at IS NULL AND expired_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Returns a case from `IN_PROGRESS` to the state its retake left, guarded
/// by state like every transition.
pub async fn return_case(
    tx: &mut Tx,
    scan_id: &str,
    to: crate::domain::State,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET state = $1, version = version + 1, updated_at = $2 \
         WHERE scan_id = $3 AND state = 'IN_PROGRESS'",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(scan_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Every request on a case, oldest first.
pub async fn all_for(pool: &AnyPool, scan_id: &str) -> Result<Vec<Retake>, sqlx::Error> {
    sqlx::query_as::<_, RetakeRow>(&format!(
        "SELECT {COLS} FROM retakes WHERE scan_id = $1 ORDER BY requested_at, id"
    ))
    .bind(scan_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Retake::try_from)
    .collect()
}

/// Closes the open request at resubmission; 0 when there was none.
pub async fn close(tx: &mut Tx, id: &str, at: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE retakes SET resubmitted_at = $1 WHERE id = $2 AND resubmitted_at IS NULL AND expired_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Keeps evidence a retake replaced, bytes and all.
pub async fn keep_replaced(
    tx: &mut Tx,
    retake_id: &str,
    e: &EvidenceRow,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO replaced_evidence (id, scan_id, retake_id, kind, evidence_type, sha256, size, \
         media_type, created_at, width, height, replaced_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(e.id.clone())
    .bind(e.scan_id.clone())
    .bind(retake_id)
    .bind(e.kind.clone())
    .bind(e.evidence_type.clone())
    .bind(e.sha256.clone())
    .bind(e.size)
    .bind(e.media_type.clone())
    .bind(e.created_at)
    .bind(e.width)
    .bind(e.height)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Evidence replaced by retakes, with when and by which request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Replaced {
    #[sqlx(flatten)]
    pub evidence: EvidenceRow,
    pub retake_id: String,
    pub replaced_at: i64,
}

pub(super) const REPLACED_FOR: &str =
    "SELECT id, scan_id, retake_id, kind, evidence_type, sha256, size, media_type, created_at, \
     width, height, replaced_at FROM replaced_evidence WHERE scan_id = $1 \
     ORDER BY replaced_at, kind, evidence_type";

pub async fn replaced_for(pool: &AnyPool, scan_id: &str) -> Result<Vec<Replaced>, sqlx::Error> {
    sqlx::query_as::<_, Replaced>(REPLACED_FOR)
        .bind(scan_id)
        .fetch_all(pool)
        .await
}

/// Remembers the language the applicant submitted in.
pub async fn set_applicant_lang(tx: &mut Tx, scan_id: &str, lang: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE processes SET applicant_lang = $1 WHERE scan_id = $2")
        .bind(lang)
        .bind(scan_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn applicant_lang(pool: &AnyPool, scan_id: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT applicant_lang FROM processes WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// Moves a case back to `IN_PROGRESS` for a retake and releases its claim,
/// guarded by version and state like every transition.
pub async fn reopen(
    tx: &mut Tx,
    scan_id: &str,
    version: i64,
    from: crate::domain::State,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET state = 'IN_PROGRESS', version = version + 1, claimed_by = NULL, \
         claimed_at = NULL, updated_at = $1 WHERE scan_id = $2 AND version = $3 AND state = $4",
    )
    .bind(now)
    .bind(scan_id)
    .bind(version)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
