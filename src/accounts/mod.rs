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

/// How many argon2 computations may run at once: one per core. Each holds
/// 19 MiB for its duration and is pure CPU, so more at once finish no
/// sooner but multiply the memory: 64 concurrent logins took the server's
/// RSS up by about 1.2 GB, which is also a cheap way to exhaust it. The
/// rest wait their turn on the async side (no thread is held).
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Runs one argon2 computation on the blocking pool once a permit is free.
async fn with_argon2<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = argon2_permits()
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("password hashing is shut down: {e}"))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn verify_blocking(hash: String, password: String) -> bool {
    with_argon2(move || verify_password(&hash, &password))
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

/// Creates a desk user. `must_change` makes the password temporary: one an
/// admin typed for someone else is changed at that person's first login.
pub async fn create_user(
    db: &Db,
    email: &str,
    role: Role,
    password: &str,
    must_change: bool,
    actor: &str,
    client_addr: &str,
) -> Result<UserRow, IdentityError> {
    let email = Email::parse(email).map_err(IdentityError::Invalid)?;
    let password = NewPassword::parse(password).map_err(IdentityError::Invalid)?;
    let hash = hash_blocking(password.expose().to_string()).await?;
    let user = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.as_str().to_string(),
        password_hash: hash,
        role: role.as_str().to_string(),
        active: 1,
        created_at: now_ms(),
        must_change_password: must_change as i64,
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
        detail: serde_json::json!({"email": user.email, "role": user.role, "must_change_password": must_change}),
    })
    .await?;
    Ok(user)
}

/// Loads the user an admin acts on, refusing their own account (another
/// admin changes an admin) and, when the change would take admin powers
/// away, the last active admin. Runs after `lock_audit`, which serialises
/// every audited change: two admins demoting each other at once cannot
/// leave the desk without one.
async fn target_user(
    db: &Db,
    work: &mut audit::Work<'_>,
    user_id: &str,
    actor_id: &str,
    removes_admin: bool,
) -> Result<UserRow, IdentityError> {
    if user_id == actor_id {
        return Err(IdentityError::Invalid(
            "you cannot change your own account here; ask another admin".into(),
        ));
    }
    db.lock_audit(&mut work.tx).await?;
    let user = rows::user_by_id_in(&mut work.tx, user_id)
        .await?
        .ok_or_else(|| IdentityError::Invalid("no such user".into()))?;
    if removes_admin
        && user.role == Role::Admin.as_str()
        && user.active == 1
        && rows::other_active_admins(&mut work.tx, user_id).await? == 0
    {
        return Err(IdentityError::Invalid(format!(
            "{} is the last active admin; make another user admin first",
            user.email
        )));
    }
    Ok(user)
}

/// Who an admin is, for the operations below.
pub struct AdminActor<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub client_addr: &'a str,
}

/// Disables or re-enables a user; disabling ends their sessions at once.
pub async fn set_active(
    db: &Db,
    user_id: &str,
    active: bool,
    by: &AdminActor<'_>,
) -> Result<(), IdentityError> {
    let mut work = audit::Work::begin(db).await?;
    let user = target_user(db, &mut work, user_id, by.id, !active).await?;
    rows::set_active(&mut work.tx, user_id, active).await?;
    if !active {
        rows::delete_user_sessions(&mut work.tx, user_id).await?;
    }
    work.commit(Event {
        actor: by.email,
        action: if active {
            "user.enable"
        } else {
            "user.disable"
        },
        scan_id: None,
        client_addr: by.client_addr,
        detail: serde_json::json!({"user_id": user_id, "email": user.email}),
    })
    .await?;
    db.sessions_changed();
    Ok(())
}

/// Changes a user's role. It applies from their next request on this
/// instance (sessions read the role with the user row; the change ends the
/// cached rows), within `SESSION_CACHE_TTL` on other app servers.
pub async fn set_role(
    db: &Db,
    user_id: &str,
    role: Role,
    by: &AdminActor<'_>,
) -> Result<(), IdentityError> {
    let mut work = audit::Work::begin(db).await?;
    let user = target_user(db, &mut work, user_id, by.id, role != Role::Admin).await?;
    if user.role == role.as_str() {
        return Err(IdentityError::Invalid(format!(
            "{} already has the {role} role",
            user.email
        )));
    }
    rows::set_role(&mut work.tx, user_id, role.as_str()).await?;
    work.commit(Event {
        actor: by.email,
        action: "user.role",
        scan_id: None,
        client_addr: by.client_addr,
        detail: serde_json::json!({"user_id": user_id, "email": user.email, "from": user.role, "to": role.as_str()}),
    })
    .await?;
    db.sessions_changed();
    Ok(())
}

/// A temporary password: 16 characters without look-alikes (0/O, 1/l/I),
/// grouped by four so it can be read out; ~80 bits.
fn temporary_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = OsRng;
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

async fn hash_blocking(password: String) -> anyhow::Result<String> {
    with_argon2(move || hash_password(&password)).await?
}

/// Resets a user's password to a temporary one, returned once for the admin
/// to hand over (it is stored only as a hash). Every session of the user
/// ends, and the next login must choose a new password.
pub async fn reset_password(
    db: &Db,
    user_id: &str,
    by: &AdminActor<'_>,
) -> Result<(UserRow, String), IdentityError> {
    let temporary = temporary_password();
    let hash = hash_blocking(temporary.clone()).await?;
    let mut work = audit::Work::begin(db).await?;
    let user = target_user(db, &mut work, user_id, by.id, false).await?;
    rows::set_password(&mut work.tx, user_id, &hash, true).await?;
    rows::delete_user_sessions(&mut work.tx, user_id).await?;
    work.commit(Event {
        actor: by.email,
        action: "user.password_reset",
        scan_id: None,
        client_addr: by.client_addr,
        detail: serde_json::json!({"user_id": user_id, "email": user.email}),
    })
    .await?;
    db.sessions_changed();
    Ok((user, temporary))
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is wrong")]
    WrongCurrent,
    #[error("too many wrong attempts; try again in {0} minutes")]
    Locked(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PasswordChangeError {
    fn from(e: sqlx::Error) -> Self {
        PasswordChangeError::Internal(e.into())
    }
}

/// A user changes their own password, proving the current one (throttled
/// like the login). Their other sessions end; this one stays.
pub async fn change_password(
    db: &Db,
    policy: &rate_limit::Policy,
    user_id: &str,
    session_token_hash: &str,
    current: &str,
    new: &str,
    client_addr: &str,
) -> Result<(), PasswordChangeError> {
    let new = NewPassword::parse(new).map_err(PasswordChangeError::Invalid)?;
    if new.expose() == current {
        return Err(PasswordChangeError::Invalid(
            "the new password must differ from the current one".into(),
        ));
    }
    let user = rows::user_by_id(db.read(), user_id)
        .await?
        .ok_or_else(|| PasswordChangeError::Invalid("no such user".into()))?;
    let throttle_key = format!("password:{user_id}");
    let throttle = match rate_limit::Attempt::reserve(db, &throttle_key, policy).await? {
        Ok(t) => t,
        Err(limited) => return Err(PasswordChangeError::Locked(limited.retry_after_minutes())),
    };
    if !verify_blocking(user.password_hash.clone(), current.to_string()).await {
        throttle.fail(db).await?;
        return Err(PasswordChangeError::WrongCurrent);
    }
    throttle.succeed(db).await?;
    let hash = hash_blocking(new.expose().to_string()).await?;
    let mut work = audit::Work::begin(db).await?;
    // Compare-and-set on the hash just verified: a reset or change that
    // landed meanwhile wins, and this one is refused rather than undoing it.
    if rows::replace_password(&mut work.tx, user_id, &user.password_hash, &hash).await? == 0 {
        return Err(PasswordChangeError::Invalid(
            "the password was changed meanwhile; log in again".into(),
        ));
    }
    rows::delete_other_sessions(&mut work.tx, user_id, session_token_hash).await?;
    work.commit(Event {
        actor: &user.email,
        action: "user.password_change",
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"forced": user.must_change_password == 1}),
    })
    .await?;
    db.sessions_changed();
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

    /// Argon2 runs at most one computation per core however many logins
    /// arrive at once (each holds 19 MiB), and every waiting one finishes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn argon2_runs_at_most_one_per_core_and_every_caller_finishes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(with_argon2(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                }))
            })
            .collect();
        let mut done = Vec::new();
        for c in calls {
            done.push(
                c.await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string())),
            );
        }
        let done: Vec<usize> = done.into_iter().map(|r| r.unwrap_or(usize::MAX)).collect();
        assert_eq!(done, (0..24).collect::<Vec<_>>());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let most = most.load(Ordering::SeqCst);
        assert!(
            most >= 1 && most <= cores,
            "{most} at once on {cores} cores"
        );
    }

    #[test]
    fn argon2id_round_trip_with_owasp_params() {
        let h = hash_password("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("not a hash", "x"));
    }
}
