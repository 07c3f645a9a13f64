//! Mobile-API (Apto-style) users and their bearer tokens (kept as SHA-256).

use super::{Db, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MobileUserRow {
    pub id: String,
    pub integrator_id: String,
    pub contact_id: String,
    pub metadata: Option<String>,
    pub created_at: i64,
}

/// The mobile user holding this verified phone or e-mail, if any.
pub async fn by_point(
    db: &Db,
    integrator_id: &str,
    kind: &str,
    value: &str,
) -> Result<Option<MobileUserRow>, sqlx::Error> {
    sqlx::query_as::<_, MobileUserRow>(
        "SELECT u.id, u.integrator_id, u.contact_id, u.metadata, u.created_at FROM mobile_users u \
         JOIN contact_points p ON p.contact_id = u.contact_id \
         WHERE u.integrator_id = $1 AND p.kind = $2 AND p.value = $3 AND p.verified_at IS NOT NULL LIMIT 1",
    )
    .bind(integrator_id)
    .bind(kind)
    .bind(value)
    .fetch_optional(db.read())
    .await
}

pub async fn get(db: &Db, id: &str) -> Result<Option<MobileUserRow>, sqlx::Error> {
    sqlx::query_as::<_, MobileUserRow>(
        "SELECT id, integrator_id, contact_id, metadata, created_at FROM mobile_users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.read())
    .await
}

pub async fn insert(tx: &mut Tx, u: &MobileUserRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mobile_users (id, integrator_id, contact_id, metadata, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&u.id)
    .bind(&u.integrator_id)
    .bind(&u.contact_id)
    .bind(u.metadata.clone())
    .bind(u.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_token(
    tx: &mut Tx,
    token_hash: &str,
    user_id: &str,
    created_at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(created_at)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The live user of a token hash at `now`, or None (unknown, expired or
/// revoked).
pub async fn by_token_hash(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> Result<Option<MobileUserRow>, sqlx::Error> {
    sqlx::query_as::<_, MobileUserRow>(
        "SELECT u.id, u.integrator_id, u.contact_id, u.metadata, u.created_at FROM user_tokens t \
         JOIN mobile_users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.read())
    .await
}

/// Ends every live token of the contact's mobile users; how many.
pub async fn revoke_contact_tokens(
    tx: &mut Tx,
    contact_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE user_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
         AND user_id IN (SELECT id FROM mobile_users WHERE contact_id = $2)",
    )
    .bind(now)
    .bind(contact_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}
