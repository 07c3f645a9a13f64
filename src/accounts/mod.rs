//! Desk identities: users, password hashing (argon2id) and login with
//! lockout.

pub mod integrators;

use crate::audit::{self, Event};
use crate::domain::user::NewPassword;
use crate::domain::{now_ms, Email, Role};
use crate::store::users::{self as rows, UserRow};
use crate::store::{is_unique_violation, Db};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

/// OWASP's argon2id baseline: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A real hash to verify against when the account does not exist, so the
/// response time does not reveal which e-mails have accounts.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password for timing").unwrap_or_default())
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn verify_blocking(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user with the e-mail {0} already exists")]
    Duplicate(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Internal(e.into())
    }
}

pub async fn create_user(
    db: &Db,
    email: &str,
    role: Role,
    password: &str,
    actor: &str,
    client_addr: &str,
) -> Result<UserRow, IdentityError> {
    let email = Email::parse(email).map_err(IdentityError::Invalid)?;
    let password = NewPassword::parse(password).map_err(IdentityError::Invalid)?;
    let pw = password.expose().to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| anyhow::anyhow!(e))??;
    let user = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.as_str().to_string(),
        password_hash: hash,
        role: role.as_str().to_string(),
        active: 1,
        created_at: now_ms(),
    };
    let mut tx = db.begin().await?;
    if let Err(e) = rows::insert_user(&mut tx, &user).await {
        return Err(if is_unique_violation(&e) {
            IdentityError::Duplicate(user.email)
        } else {
            e.into()
        });
    }
    audit::record(
        db,
        &mut tx,
        Event {
            actor,
            action: "user.create",
            scan_id: None,
            client_addr,
            detail: serde_json::json!({"email": user.email, "role": user.role}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Disables or re-enables a user; disabling ends their sessions at once.
pub async fn set_active(
    db: &Db,
    user_id: &str,
    active: bool,
    actor: &str,
    client_addr: &str,
) -> Result<(), IdentityError> {
    let mut tx = db.begin().await?;
    if rows::set_active(&mut tx, user_id, active).await? == 0 {
        return Err(IdentityError::Invalid("no such user".into()));
    }
    if !active {
        rows::delete_user_sessions(&mut tx, user_id).await?;
    }
    audit::record(
        db,
        &mut tx,
        Event {
            actor,
            action: if active {
                "user.enable"
            } else {
                "user.disable"
            },
            scan_id: None,
            client_addr,
            detail: serde_json::json!({"user_id": user_id}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub window_ms: i64,
    pub lock_ms: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window_ms: 15 * 60_000,
            lock_ms: 15 * 60_000,
        }
    }
}

#[derive(Debug)]
pub enum LoginOutcome {
    Success(UserRow),
    /// Wrong e-mail or password: the two are never told apart.
    Invalid,
    Locked {
        minutes: i64,
    },
}

/// A failure counter keyed by anything (a normalised e-mail, an address):
/// `policy.max_failures` failures within the window lock the key. Every
/// attempt takes its slot atomically *before* the credentials are compared
/// (`reserve`), so concurrent attempts cannot all be evaluated against one
/// stale count.
pub struct Throttled<'a> {
    key: &'a str,
    policy: &'a LockoutPolicy,
    /// This attempt's place in the window (1 = the first).
    count: i64,
}

impl<'a> Throttled<'a> {
    /// Takes this attempt's slot; `Err(ms)` while the key is locked or its
    /// window has no slot left, with the time to wait.
    pub async fn reserve(
        db: &Db,
        key: &'a str,
        policy: &'a LockoutPolicy,
    ) -> Result<Result<Throttled<'a>, i64>, sqlx::Error> {
        let now = now_ms();
        let t = rows::reserve_attempt(db.write(), key, now, policy.window_ms).await?;
        if t.locked_until > now {
            return Ok(Err(t.locked_until - now));
        }
        if t.failures > policy.max_failures {
            // Earlier attempts of this burst are still being compared; the
            // last of them to fail sets the lock.
            return Ok(Err(policy.lock_ms));
        }
        Ok(Ok(Throttled {
            key,
            policy,
            count: t.failures,
        }))
    }

    /// The attempt failed: the slot stays taken; the last allowed failure
    /// locks the key.
    pub async fn fail(self, db: &Db) -> Result<(), sqlx::Error> {
        if self.count >= self.policy.max_failures {
            let now = now_ms();
            rows::lock_throttle(db.write(), self.key, now + self.policy.lock_ms, now).await?;
        }
        Ok(())
    }

    pub async fn succeed(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::clear_throttle(db.write(), self.key).await
    }

    /// Neither a success nor a failure: the slot is given back.
    pub async fn release(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::release_attempt(db.write(), self.key).await
    }
}

/// Checks credentials. Failures are counted per e-mail whether or not the
/// account exists, so a locked-out message reveals nothing either.
pub async fn login(
    db: &Db,
    policy: &LockoutPolicy,
    raw_email: &str,
    password: &str,
) -> Result<LoginOutcome, sqlx::Error> {
    let key = raw_email.trim().to_lowercase();
    let throttle = match Throttled::reserve(db, &key, policy).await? {
        Ok(t) => t,
        Err(left_ms) => {
            return Ok(LoginOutcome::Locked {
                minutes: (left_ms + 59_999) / 60_000,
            })
        }
    };
    let user = match Email::parse(raw_email) {
        Ok(e) => rows::user_by_email(db.read(), e.as_str()).await?,
        Err(_) => None,
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let ok = verify_blocking(hash, password.to_string()).await;
    match user {
        Some(u) if ok && u.active == 1 => {
            throttle.succeed(db).await?;
            Ok(LoginOutcome::Success(u))
        }
        _ => {
            throttle.fail(db).await?;
            Ok(LoginOutcome::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip_with_owasp_params() {
        let h = hash_password("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("not a hash", "x"));
    }
}
