//! One-time codes: random 6 digits, kept only as a keyed hash, single use,
//! expiring (15 minutes by default), a few attempts, rate-limited per client.

use super::VerifyError;
use crate::domain::now_ms;
use crate::store::Db;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// Limits of one-time codes, magic links and the mobile API.
#[derive(Debug, Clone)]
pub struct OtpPolicy {
    pub ttl_ms: i64,
    pub max_attempts: i64,
    /// One request per this window per client on the verification and
    /// login endpoints (0 switches the limit off).
    pub rate_window_ms: i64,
    /// Lifetime of mobile-API user tokens.
    pub user_token_ttl_ms: i64,
    /// Shown in SMS as `{app}`.
    pub app_name: String,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        OtpPolicy {
            ttl_ms: 15 * 60_000,
            max_attempts: 5,
            rate_window_ms: 30_000,
            user_token_ttl_ms: 365 * 24 * 3_600_000,
            app_name: "kycdesk".into(),
        }
    }
}

pub fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// `entity_` and 16 hex digits, as the mobile API names verifications.
pub fn new_verification_id() -> String {
    let b: [u8; 8] = rand::rngs::OsRng.gen();
    format!("entity_{}", hex::encode(b))
}

/// HMAC-SHA256 under the instance key: a database dump alone cannot be
/// searched for the 10^6 possible codes.
pub fn secret_hash(key: &[u8], verification_id: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(verification_id.as_bytes());
    mac.update(b":");
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Refuses a second request from the same client to the same endpoint
/// within the window. Shared by every app server (it lives in the database).
pub async fn rate_limit(db: &Db, key: &str, window_ms: i64) -> Result<(), VerifyError> {
    if window_ms <= 0 {
        return Ok(());
    }
    let now = now_ms();
    let n = sqlx::query("UPDATE rate_limits SET last_at = $1 WHERE key = $2 AND last_at <= $3")
        .bind(now)
        .bind(key)
        .bind(now - window_ms)
        .execute(db.write())
        .await?
        .rows_affected();
    if n == 1 {
        return Ok(());
    }
    let inserted = sqlx::query("INSERT INTO rate_limits (key, last_at) VALUES ($1, $2)")
        .bind(key)
        .bind(now)
        .execute(db.write())
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if crate::store::is_unique_violation(&e) => {
            let last: i64 = sqlx::query_scalar("SELECT last_at FROM rate_limits WHERE key = $1")
                .bind(key)
                .fetch_one(db.write())
                .await?;
            let left = (last + window_ms - now).max(1);
            Err(VerifyError::RateLimited {
                window_secs: (window_ms + 999) / 1000,
                retry_after_secs: (left + 999) / 1000,
            })
        }
        Err(e) => Err(e.into()),
    }
}

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

/// What to create. The secret is hashed before it is stored.
pub struct NewVerification<'a> {
    pub id: String,
    pub integrator_id: &'a str,
    pub contact_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub kind: &'a str,
    pub channel: &'a str,
    pub target: &'a str,
    pub secret: &'a str,
    pub update_primary: bool,
    pub redirect_uri: Option<&'a str>,
    pub secondary_id: Option<&'a str>,
    pub ttl_ms: i64,
}

pub async fn insert(db: &Db, key: &[u8], v: &NewVerification<'_>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(&format!(
        "INSERT INTO verifications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10, $11, $12, $13, NULL, NULL)"
    ))
    .bind(&v.id)
    .bind(v.integrator_id)
    .bind(v.contact_id)
    .bind(v.user_id)
    .bind(v.kind)
    .bind(v.channel)
    .bind(v.target)
    .bind(secret_hash(key, &v.id, v.secret))
    .bind(v.update_primary as i64)
    .bind(v.redirect_uri)
    .bind(v.secondary_id)
    .bind(now)
    .bind(now + v.ttl_ms)
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

/// A verification of this integrator; expired ones are marked so on read.
pub async fn get(
    db: &Db,
    integrator_id: &str,
    id: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, VerificationRow>(&format!(
        "SELECT {COLS} FROM verifications WHERE id = $1 AND integrator_id = $2"
    ))
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(db.write())
    .await?;
    match row {
        Some(r) => Ok(Some(expire_if_due(db, r).await?)),
        None => Ok(None),
    }
}

async fn expire_if_due(db: &Db, mut r: VerificationRow) -> Result<VerificationRow, sqlx::Error> {
    let now = now_ms();
    if r.status == "pending" && now >= r.expires_at {
        sqlx::query(
            "UPDATE verifications SET status = 'expired', finished_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(&r.id)
        .execute(db.write())
        .await?;
        r.status = "expired".into();
        r.finished_at = Some(now);
    }
    Ok(r)
}

/// The newest verification sent by `channel` to `target` for this user.
pub async fn latest_for(
    db: &Db,
    user_id: &str,
    channel: &str,
    kind: &str,
    target: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, VerificationRow>(&format!(
        "SELECT {COLS} FROM verifications WHERE user_id = $1 AND channel = $2 AND kind = $3 AND target = $4 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(user_id)
    .bind(channel)
    .bind(kind)
    .bind(target)
    .fetch_optional(db.write())
    .await?;
    match row {
        Some(r) => Ok(Some(expire_if_due(db, r).await?)),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Passed,
    /// Wrong secret; this many attempts remain (0: the verification failed).
    Wrong {
        left: i64,
    },
    /// Already finished (passed, failed or expired): nothing was tried.
    Finished(String),
}

/// Tries a secret. Each try takes an attempt slot *before* the comparison,
/// so parallel guesses cannot exceed the limit.
pub async fn check(
    db: &Db,
    key: &[u8],
    v: &VerificationRow,
    secret: &str,
    sandbox: bool,
    max_attempts: i64,
) -> Result<Check, VerifyError> {
    let v = expire_if_due(db, v.clone()).await?;
    if v.status != "pending" {
        return Ok(Check::Finished(v.status));
    }
    let now = now_ms();
    let took = sqlx::query(
        "UPDATE verifications SET attempts = attempts + 1 WHERE id = $1 AND status = 'pending' AND attempts < $2",
    )
    .bind(&v.id)
    .bind(max_attempts)
    .execute(db.write())
    .await?
    .rows_affected();
    if took == 0 {
        let status: String = sqlx::query_scalar("SELECT status FROM verifications WHERE id = $1")
            .bind(&v.id)
            .fetch_one(db.write())
            .await?;
        return Ok(Check::Finished(status));
    }
    let expected = v.code_hash.as_deref().unwrap_or("");
    // The sandbox code only ever passes where the integrator enabled it, and
    // never for birthdates.
    let sandbox_pass = sandbox && v.kind != "birthdate" && secret == "000000";
    let right = sandbox_pass
        || crate::security::constant_time_eq(expected, &secret_hash(key, &v.id, secret));
    if right {
        let n = sqlx::query(
            "UPDATE verifications SET status = 'passed', finished_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(&v.id)
        .execute(db.write())
        .await?
        .rows_affected();
        return Ok(if n == 1 {
            Check::Passed
        } else {
            Check::Finished("failed".into())
        });
    }
    let used = v.attempts + 1;
    if used >= max_attempts {
        sqlx::query(
            "UPDATE verifications SET status = 'failed', finished_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(&v.id)
        .execute(db.write())
        .await?;
    }
    Ok(Check::Wrong {
        left: (max_attempts - used).max(0),
    })
}

/// Marks a passed verification used; false when it already was (a code
/// opens one door once).
pub async fn consume(tx: &mut crate::store::Tx, id: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE verifications SET consumed_at = $1 WHERE id = $2 AND status = 'passed' AND consumed_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_random_digits() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert!(codes.len() > 190);
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        let id = new_verification_id();
        assert_eq!(id.len(), "entity_".len() + 16);
        assert_ne!(
            secret_hash(b"k", &id, "123456"),
            secret_hash(b"k", &id, "123457")
        );
        assert_ne!(
            secret_hash(b"k", &id, "123456"),
            secret_hash(b"j", &id, "123456")
        );
    }
}
