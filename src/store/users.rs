//! Desk users and their sessions.

use super::{Db, Tx};
use sqlx::AnyPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub active: i64,
    pub created_at: i64,
    /// 1 after an admin reset the password (or created the user): the next
    /// login must choose a new one before any other desk page opens.
    pub must_change_password: i64,
}

impl UserRow {
    /// The role in words; a stored code that is no role shows as itself.
    pub fn role_label(&self) -> &str {
        self.role
            .parse::<crate::domain::Role>()
            .map(|r| r.label())
            .unwrap_or(&self.role)
    }
}

const USER_COLS: &str = "id, email, password_hash, role, active, created_at, must_change_password";

pub async fn insert_user(tx: &mut Tx, u: &UserRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, active, created_at, must_change_password) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(u.id.clone())
    .bind(u.email.clone())
    .bind(u.password_hash.clone())
    .bind(u.role.clone())
    .bind(u.active)
    .bind(u.created_at)
    .bind(u.must_change_password)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn user_by_email(pool: &AnyPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(pool)
        .await
}

pub async fn user_by_id(pool: &AnyPool, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn list_users(pool: &AnyPool) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLS} FROM users ORDER BY email"))
        .fetch_all(pool)
        .await
}

pub async fn count_users(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
}

pub async fn set_active(tx: &mut Tx, id: &str, active: bool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
        .bind(active as i64)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Changes a user's role; 0 rows when there is no such user.
pub async fn set_role(tx: &mut Tx, id: &str, role: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Stores a new password hash and whether it must be changed at the next
/// login; 0 rows when there is no such user.
pub async fn set_password(
    tx: &mut Tx,
    id: &str,
    hash: &str,
    must_change: bool,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = $2 WHERE id = $3")
            .bind(hash)
            .bind(must_change as i64)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// Replaces the hash only if it is still `old_hash`, clearing the
/// must-change flag; 0 rows when it changed meanwhile.
pub async fn replace_password(
    tx: &mut Tx,
    id: &str,
    old_hash: &str,
    new_hash: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = 0 WHERE id = $2 AND password_hash = $3",
    )
    .bind(new_hash)
    .bind(id)
    .bind(old_hash)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Active admins other than `except`: the last one may not be demoted or
/// disabled. Read inside the caller's serialised transaction.
pub async fn other_active_admins(tx: &mut Tx, except: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND active = 1 AND id <> $1",
    )
    .bind(except)
    .fetch_one(&mut **tx)
    .await
}

pub async fn user_by_id_in(tx: &mut Tx, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Ends every session of a user but one (the one changing its password).
pub async fn delete_other_sessions(
    tx: &mut Tx,
    user_id: &str,
    keep_token_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep_token_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub email: String,
    pub role: String,
    pub must_change_password: i64,
}

pub async fn insert_session(
    tx: &mut Tx,
    token_hash: &str,
    user_id: &str,
    csrf: &str,
    now: i64,
    client_addr: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, client_addr) VALUES ($1, $2, $3, $4, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(csrf)
    .bind(now)
    .bind(client_addr)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How long this instance trusts a cached session row (every desk request
/// presents one). A logout, disable, role change or password change made on
/// this instance ends it at once (`Db::sessions_changed`); another app
/// server sharing the database sees it within this bound.
pub const SESSION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

const SESSION_CACHE_MAX: usize = 10_000;

pub type SessionCache = super::fresh::FreshCache<SessionRow>;

pub fn session_cache() -> SessionCache {
    SessionCache::new(SESSION_CACHE_TTL, SESSION_CACHE_MAX)
}

impl super::Db {
    /// Ends every cached session of this instance: called after a change to
    /// a session or to a user's account is committed.
    pub fn sessions_changed(&self) {
        self.session_cache.changed();
    }
}

/// The session with its user, only while the user is active: disabling a
/// user ends every session of theirs on the next request. From the cache
/// when fresh (`SESSION_CACHE_TTL`).
pub async fn live_session(db: &Db, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    let read = sqlx::query_as::<_, SessionRow>(
        "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, u.email, u.role, u.must_change_password \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND u.active = 1",
    )
    .bind(token_hash)
    .fetch_optional(db.read());
    db.session_cache.read_through(token_hash, read).await
}

pub async fn touch_session(db: &Db, token_hash: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(token_hash)
        .execute(db.write())
        .await?;
    // Otherwise every request within the cache's TTL would touch again.
    db.session_cache
        .update(token_hash, |r| r.last_seen_at = r.last_seen_at.max(now));
    Ok(())
}

pub async fn delete_session(db: &Db, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db.write())
        .await?;
    db.sessions_changed();
    Ok(())
}

pub async fn delete_user_sessions(tx: &mut Tx, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
