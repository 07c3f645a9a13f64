//! One-time codes: random 6 digits, kept only as a keyed hash, single use,
//! expiring (15 minutes by default), a few attempts, rate-limited per client.

use super::VerifyError;
use crate::domain::now_ms;
use crate::store::verifications as store;
pub use crate::store::verifications::VerificationRow;
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
/// within the window (see `security::rate_limit`).
pub async fn rate_limit(db: &Db, key: &str, window_ms: i64) -> Result<(), VerifyError> {
    crate::security::rate_limit::one_per_window(db, key, window_ms)
        .await?
        .map_err(|limited| VerifyError::RateLimited {
            window_secs: (window_ms + 999) / 1000,
            retry_after_secs: limited.retry_after_secs(),
        })
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

impl<'a> NewVerification<'a> {
    /// A verification with a fresh id, for no user or contact yet, with no
    /// redirect and no secondary credential; the setters below add them.
    pub fn new(
        integrator_id: &'a str,
        kind: &'a str,
        channel: &'a str,
        target: &'a str,
        secret: &'a str,
        ttl_ms: i64,
    ) -> Self {
        NewVerification {
            id: new_verification_id(),
            integrator_id,
            contact_id: None,
            user_id: None,
            kind,
            channel,
            target,
            secret,
            update_primary: false,
            redirect_uri: None,
            secondary_id: None,
            ttl_ms,
        }
    }

    /// Links it to the applicant's contact and (when there is one) user.
    pub fn of(mut self, contact_id: Option<&'a str>, user_id: Option<&'a str>) -> Self {
        self.contact_id = contact_id;
        self.user_id = user_id;
        self
    }

    /// The verification a passed one is presented with (a login's birthdate).
    pub fn with_secondary(mut self, secondary_id: Option<&'a str>) -> Self {
        self.secondary_id = secondary_id;
        self
    }
}

pub async fn insert(db: &Db, key: &[u8], v: &NewVerification<'_>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let code_hash = secret_hash(key, &v.id, v.secret);
    store::insert(
        db,
        &store::InsertVerification {
            id: &v.id,
            integrator_id: v.integrator_id,
            contact_id: v.contact_id,
            user_id: v.user_id,
            kind: v.kind,
            channel: v.channel,
            target: v.target,
            code_hash: &code_hash,
            update_primary: v.update_primary,
            redirect_uri: v.redirect_uri,
            secondary_id: v.secondary_id,
            created_at: now,
            expires_at: now + v.ttl_ms,
        },
    )
    .await
}

/// A verification of this integrator; expired ones are marked so on read.
pub async fn get(
    db: &Db,
    integrator_id: &str,
    id: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    match store::get(db, integrator_id, id).await? {
        Some(r) => Ok(Some(expire_if_due(db, r).await?)),
        None => Ok(None),
    }
}

async fn expire_if_due(db: &Db, mut r: VerificationRow) -> Result<VerificationRow, sqlx::Error> {
    let now = now_ms();
    if r.status == "pending" && now >= r.expires_at {
        store::finish(db, &r.id, "expired", now).await?;
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
    match store::latest_for(db, user_id, channel, kind, target).await? {
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
    if !store::take_attempt(db, &v.id, max_attempts).await? {
        return Ok(Check::Finished(store::status(db, &v.id).await?));
    }
    let expected = v.code_hash.as_deref().unwrap_or("");
    // The sandbox code only ever passes where the integrator enabled it, and
    // never for birthdates.
    let sandbox_pass = sandbox && v.kind != "birthdate" && secret == "000000";
    let right = sandbox_pass
        || crate::security::constant_time_eq(expected, &secret_hash(key, &v.id, secret));
    if right {
        return Ok(if store::finish(db, &v.id, "passed", now).await? {
            Check::Passed
        } else {
            Check::Finished("failed".into())
        });
    }
    let used = v.attempts + 1;
    if used >= max_attempts {
        store::finish(db, &v.id, "failed", now).await?;
    }
    Ok(Check::Wrong {
        left: (max_attempts - used).max(0),
    })
}

/// Marks a passed verification used; false when it already was (a code
/// opens one door once).
pub async fn consume(tx: &mut crate::store::Tx, id: &str) -> Result<bool, sqlx::Error> {
    store::consume(tx, id, now_ms()).await
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
