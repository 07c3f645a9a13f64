//! Desk identities: users, password hashing (argon2id) and login with
//! lockout.

pub mod integrators;

use crate::audit::{self, Event};
use crate::domain::user::NewPassword;
use crate::domain::{now_ms, Email, Role};
use crate::security::rate_limit;
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
    let mut work = audit::Work::begin(db).await?;
    if let Err(e) = rows::insert_user(&mut work.tx, &user).await {
        return Err(if is_unique_violation(&e) {
            IdentityError::Duplicate(user.email)
        } else {
            e.into()
        });
    }
    work.commit(Event {
        actor,
        action: "user.create",
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"email": user.email, "role": user.role}),
    })
    .await?;
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
    let mut work = audit::Work::begin(db).await?;
    if rows::set_active(&mut work.tx, user_id, active).await? == 0 {
        return Err(IdentityError::Invalid("no such user".into()));
    }
    if !active {
        rows::delete_user_sessions(&mut work.tx, user_id).await?;
    }
    work.commit(Event {
        actor,
        action: if active {
            "user.enable"
        } else {
            "user.disable"
        },
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"user_id": user_id}),
    })
    .await?;
    Ok(())
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

/// Checks credentials. Failures are counted per e-mail whether or not the
/// account exists, so a locked-out message reveals nothing either.
pub async fn login(
    db: &Db,
    policy: &rate_limit::Policy,
    raw_email: &str,
    password: &str,
) -> Result<LoginOutcome, sqlx::Error> {
    let key = raw_email.trim().to_lowercase();
    let throttle = match rate_limit::Attempt::reserve(db, &key, policy).await? {
        Ok(t) => t,
        Err(limited) => {
            return Ok(LoginOutcome::Locked {
                minutes: limited.retry_after_minutes(),
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
