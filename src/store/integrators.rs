//! Integrator (tenant) credentials and settings.

use super::Tx;
use crate::domain::confirmation::Confirmation;
use sqlx::AnyPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntegratorAuthRow {
    pub id: String,
    pub name: String,
    pub enabled: i64,
    pub secret_hash: Option<String>,
    pub submit_state: String,
    /// 1: mobile verifications accept the sandbox code 000000.
    pub sandbox: i64,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    id: &str,
    name: &str,
    api_key: &str,
    secret_hash: &str,
    webhook_url: Option<&str>,
    webhook_secret: &str,
    frame_ancestors: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO integrators (id, name, enabled, created_at, api_key, secret_hash, webhook_url, webhook_secret, frame_ancestors) \
         VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(name)
    .bind(now)
    .bind(api_key)
    .bind(secret_hash)
    .bind(webhook_url)
    .bind(webhook_secret)
    .bind(frame_ancestors)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn by_api_key(
    pool: &AnyPool,
    api_key: &str,
) -> Result<Option<IntegratorAuthRow>, sqlx::Error> {
    sqlx::query_as::<_, IntegratorAuthRow>(
        "SELECT id, name, enabled, secret_hash, submit_state, sandbox FROM integrators WHERE api_key = $1",
    )
    .bind(api_key)
    .fetch_optional(pool)
    .await
}

/// How long this instance trusts a cached integrator row when checking an
/// API token. A change made on this instance ends the cached row at once
/// (`Db::integrators_changed`); another app server sharing the database
/// sees a disabled integrator or a rotated secret within this bound.
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Every API request checks its token against an integrator row; reading
/// it from the database each time was 7 % (SQLite) to 16 % (PostgreSQL) of
/// getVerificationProcessData's CPU. At most this many are cached.
const AUTH_CACHE_MAX: usize = 10_000;

pub type AuthCache = super::fresh::FreshCache<IntegratorAuthRow>;

pub fn auth_cache() -> AuthCache {
    AuthCache::new(AUTH_CACHE_TTL, AUTH_CACHE_MAX)
}

impl super::Db {
    /// Ends every cached integrator row of this instance: called after any
    /// change to an integrator is committed.
    pub fn integrators_changed(&self) {
        self.auth_cache.changed();
    }
}

/// The integrator an API token names, from the cache when it is fresh (see
/// `AUTH_CACHE_TTL` and `fresh`).
pub async fn auth_by_id(
    db: &super::Db,
    id: &str,
) -> Result<Option<IntegratorAuthRow>, sqlx::Error> {
    db.auth_cache.read_through(id, by_id(db.read(), id)).await
}

pub async fn by_id(pool: &AnyPool, id: &str) -> Result<Option<IntegratorAuthRow>, sqlx::Error> {
    sqlx::query_as::<_, IntegratorAuthRow>(
        "SELECT id, name, enabled, secret_hash, submit_state, sandbox FROM integrators WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn set_enabled(
    pool: &super::Writer,
    id: &str,
    enabled: bool,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE integrators SET enabled = $1 WHERE id = $2")
            .bind(enabled as i64)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Returns the named instance secret, creating it with `fresh` the first
/// time; concurrent first starts agree on one value.
pub async fn instance_secret(
    pool: &super::Writer,
    name: &str,
    fresh: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO instance_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(fresh)
    .execute(pool)
    .await?;
    sqlx::query_scalar::<_, String>("SELECT value FROM instance_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}

/// An integrator as the admin page shows it (never the secret hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntegratorRow {
    pub id: String,
    pub name: String,
    pub enabled: i64,
    pub api_key: Option<String>,
    pub webhook_url: Option<String>,
    pub frame_ancestors: String,
    pub submit_state: String,
    pub created_at: i64,
    pub webhook_headers: String,
    /// 1: after submission, send the integrator's top window to redirectUrl.
    pub redirect_top: i64,
    /// 1: mobile verifications accept the sandbox code 000000.
    pub sandbox: i64,
    /// JSON array of the magic-link redirect URIs allowed.
    pub redirect_uris: String,
    /// Hours a case may wait for review before it is overdue (none: no target).
    pub sla_hours: Option<i64>,
    /// none | phone | email | both: what the hosted page confirms by code.
    pub confirm_contact: String,
    /// The calling code assumed for phones typed without one.
    pub phone_country: Option<String>,
}

impl IntegratorRow {
    fn decoded<T: serde::de::DeserializeOwned>(
        &self,
        column: &str,
        text: &str,
    ) -> anyhow::Result<T> {
        serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("integrator {} has a corrupt {column}: {e}", self.id))
    }

    /// The origins allowed to frame the hosted page.
    pub fn origins(&self) -> anyhow::Result<Vec<String>> {
        self.decoded("frame_ancestors", &self.frame_ancestors)
    }

    /// The magic-link redirect URIs allowed.
    pub fn redirect_uri_list(&self) -> anyhow::Result<Vec<String>> {
        self.decoded("redirect_uris", &self.redirect_uris)
    }

    /// The extra webhook headers, by name.
    pub fn webhook_header_map(&self) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        self.decoded("webhook_headers", &self.webhook_headers)
    }

    /// The stored confirmation setting; an unknown value is a corrupt row.
    pub fn confirmation(&self) -> anyhow::Result<Confirmation> {
        Confirmation::parse(&self.confirm_contact).map_err(|e| {
            anyhow::anyhow!("integrator {} has a corrupt confirm_contact: {e}", self.id)
        })
    }
}

const ROW_COLS: &str = "id, name, enabled, api_key, webhook_url, frame_ancestors, submit_state, created_at, webhook_headers, redirect_top, sandbox, redirect_uris, sla_hours, confirm_contact, phone_country";

pub async fn list(pool: &AnyPool) -> Result<Vec<IntegratorRow>, sqlx::Error> {
    sqlx::query_as::<_, IntegratorRow>(&format!("SELECT {ROW_COLS} FROM integrators ORDER BY name"))
        .fetch_all(pool)
        .await
}

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<IntegratorRow>, sqlx::Error> {
    sqlx::query_as::<_, IntegratorRow>(&format!("SELECT {ROW_COLS} FROM integrators WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The settings an admin changes, as stored (JSON already encoded).
pub struct StoredSettings<'a> {
    pub webhook_url: Option<&'a str>,
    pub frame_ancestors: &'a str,
    pub submit_state: &'a str,
    pub webhook_headers: &'a str,
    pub redirect_top: bool,
    pub sla_hours: Option<i64>,
    pub confirm_contact: Confirmation,
    pub phone_country: Option<&'a str>,
}

pub async fn update_settings(
    tx: &mut Tx,
    id: &str,
    s: &StoredSettings<'_>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE integrators SET webhook_url = $1, frame_ancestors = $2, submit_state = $3, \
         webhook_headers = $4, redirect_top = $5, sla_hours = $6, confirm_contact = $7, phone_country = $8 \
         WHERE id = $9",
    )
    .bind(s.webhook_url)
    .bind(s.frame_ancestors)
    .bind(s.submit_state)
    .bind(s.webhook_headers)
    .bind(s.redirect_top as i64)
    .bind(s.sla_hours)
    .bind(s.confirm_contact.as_str())
    .bind(s.phone_country)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Sets only the review target (the demo's; admins change it with the rest
/// of the settings).
pub async fn set_sla_hours(tx: &mut Tx, id: &str, hours: Option<i64>) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE integrators SET sla_hours = $1 WHERE id = $2")
            .bind(hours)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// New API credentials (the old secret stops working at once). Integrators
/// created before the API existed get an api_key here too.
pub async fn set_credentials(
    tx: &mut Tx,
    id: &str,
    api_key: &str,
    secret_hash: &str,
    webhook_secret: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE integrators SET api_key = COALESCE(api_key, $1), secret_hash = $2, \
         webhook_secret = COALESCE(webhook_secret, $3) WHERE id = $4",
    )
    .bind(api_key)
    .bind(secret_hash)
    .bind(webhook_secret)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub async fn set_enabled_in(tx: &mut Tx, id: &str, enabled: bool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE integrators SET enabled = $1 WHERE id = $2")
            .bind(enabled as i64)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

pub async fn api_key_of(pool: &super::Writer, id: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT api_key FROM integrators WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Sets (or clears) the key an integrator signs `POST /v1/user` payloads with.
pub async fn set_user_payload_key(
    tx: &mut Tx,
    id: &str,
    key: Option<&str>,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE integrators SET user_payload_key = $1 WHERE id = $2")
            .bind(key)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// The key an integrator signs `POST /v1/user` payloads with, if it set one.
pub async fn user_payload_key(pool: &AnyPool, id: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT user_payload_key FROM integrators WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// The mobile sandbox switch and the magic-link redirect allow-list (JSON);
/// how many rows changed.
pub async fn set_verification_settings(
    tx: &mut Tx,
    id: &str,
    sandbox: bool,
    redirect_uris_json: &str,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE integrators SET sandbox = $1, redirect_uris = $2 WHERE id = $3")
            .bind(i64::from(sandbox))
            .bind(redirect_uris_json)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}
