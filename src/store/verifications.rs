//! One-time-code and magic-link verifications (`verifications`) and the
//! per-client request windows (`rate_limits`) that guard their endpoints.

use super::{Db, Tx};

pub const COLS: &str = "id, integrator_id, contact_id, user_id, kind, channel, target, code_hash, status, attempts, update_primary, redirect_uri, secondary_id, created_at, expires_at, finished_at, consumed_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VerificationRow {
    pub id: String,
    pub integrator_id: String,
    pub contact_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: String,
    pub channel: String,
    pub target: String,
    pub code_hash: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub update_primary: i64,
    pub redirect_uri: Option<String>,
    pub secondary_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished_at: Option<i64>,
    pub consumed_at: Option<i64>,
}

/// A pending verification as stored: the secret is already a keyed hash.
pub struct InsertVerification<'a> {
    pub id: &'a str,
    pub integrator_id: &'a str,
    pub contact_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub kind: &'a str,
    pub channel: &'a str,
    pub target: &'a str,
    pub code_hash: &'a str,
    pub update_primary: bool,
    pub redirect_uri: Option<&'a str>,
    pub secondary_id: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &Db, v: &InsertVerification<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO verifications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10, $11, $12, $13, NULL, NULL)"
    ))
    .bind(v.id)
    .bind(v.integrator_id)
    .bind(v.contact_id)
    .bind(v.user_id)
    .bind(v.kind)
    .bind(v.channel)
    .bind(v.target)
    .bind(v.code_hash)
    .bind(v.update_primary as i64)
    .bind(v.redirect_uri)
    .bind(v.secondary_id)
    .bind(v.created_at)
    .bind(v.expires_at)
    .execute(db.write())
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM verifications WHERE id = $1")
        .bind(id)
        .execute(db.write())
        .await?;
    Ok(())
}

/// A verification of this integrator, as stored (read from the writer, so a
/// check right after a send sees it).
pub async fn get(
    db: &Db,
    integrator_id: &str,
    id: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    sqlx::query_as::<_, VerificationRow>(&format!(
        "SELECT {COLS} FROM verifications WHERE id = $1 AND integrator_id = $2"
    ))
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(db.write())
    .await
}

/// A magic link of any integrator (the link carries only its id).
pub async fn get_link(db: &Db, id: &str) -> Result<Option<VerificationRow>, sqlx::Error> {
    sqlx::query_as::<_, VerificationRow>(&format!(
        "SELECT {COLS} FROM verifications WHERE id = $1 AND channel = 'link'"
    ))
    .bind(id)
    .fetch_optional(db.write())
    .await
}

/// The newest verification sent by `channel` to `target` for this user.
pub async fn latest_for(
    db: &Db,
    user_id: &str,
    channel: &str,
    kind: &str,
    target: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    sqlx::query_as::<_, VerificationRow>(&format!(
        "SELECT {COLS} FROM verifications WHERE user_id = $1 AND channel = $2 AND kind = $3 AND target = $4 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(user_id)
    .bind(channel)
    .bind(kind)
    .bind(target)
    .fetch_optional(db.write())
    .await
}

/// The newest verification of `kind` sent on `channel` for this contact
/// (the hosted page's codes: one contact per process).
pub async fn latest_of_contact(
    db: &Db,
    contact_id: &str,
    channel: &str,
    kind: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    sqlx::query_as::<_, VerificationRow>(&format!(
        "SELECT {COLS} FROM verifications WHERE contact_id = $1 AND channel = $2 AND kind = $3 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(contact_id)
    .bind(channel)
    .bind(kind)
    .fetch_optional(db.write())
    .await
}

/// pending → `status` (`expired`, `passed` or `failed`); false when it was no
/// longer pending.
pub async fn finish(db: &Db, id: &str, status: &str, at: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE verifications SET status = $1, finished_at = $2 WHERE id = $3 AND status = 'pending'",
    )
    .bind(status)
    .bind(at)
    .bind(id)
    .execute(db.write())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Takes one attempt slot; false when the verification is no longer pending
/// or its attempts are used up.
pub async fn take_attempt(db: &Db, id: &str, max_attempts: i64) -> Result<bool, sqlx::Error> {
    let took = sqlx::query(
        "UPDATE verifications SET attempts = attempts + 1 WHERE id = $1 AND status = 'pending' AND attempts < $2",
    )
    .bind(id)
    .bind(max_attempts)
    .execute(db.write())
    .await?
    .rows_affected();
    Ok(took == 1)
}

pub async fn status(db: &Db, id: &str) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM verifications WHERE id = $1")
        .bind(id)
        .fetch_one(db.write())
        .await
}

/// Marks a passed verification used; false when it already was (a code
/// opens one door once).
pub async fn consume(tx: &mut Tx, id: &str, at: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND status = 'passed' AND consumed_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Moves a verification to a (new or merged) contact and user.
pub async fn reassign(
    tx: &mut Tx,
    id: &str,
    contact_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE verifications SET contact_id = $1, user_id = $2 WHERE id = $3")
        .bind(contact_id)
        .bind(user_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A new code replaces any earlier pending one for the same address.
pub async fn expire_others(
    db: &Db,
    user_id: &str,
    kind: &str,
    target: &str,
    keep_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE verifications SET status = 'expired', finished_at = $1 \
         WHERE user_id = $2 AND channel = 'otp' AND kind = $3 AND target = $4 AND status = 'pending' AND id <> $5",
    )
    .bind(at)
    .bind(user_id)
    .bind(kind)
    .bind(target)
    .bind(keep_id)
    .execute(db.write())
    .await?;
    Ok(())
}
