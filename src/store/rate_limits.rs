//! The rows behind `security::rate_limit`: failure counters
//! (`login_throttle`, keyed by a normalised e-mail or `api-token:<addr>`)
//! and one-call-per-window stamps (`rate_limits`). Every check is one
//! atomic statement, so a concurrent burst cannot pass together.

use sqlx::AnyPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Throttle {
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: i64,
}

/// Takes one attempt slot for `key` in one atomic statement, before the
/// expensive comparison: a burst of concurrent attempts gets consecutive
/// counts, so at most the allowed number are ever evaluated. A locked key
/// keeps its count; a window that has run out starts again at 1. Returns the
/// counter after the increment.
pub async fn reserve_attempt(
    pool: &AnyPool,
    key: &str,
    now: i64,
    window_ms: i64,
) -> Result<Throttle, sqlx::Error> {
    sqlx::query_as::<_, Throttle>(
        "INSERT INTO login_throttle (email, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (email) DO UPDATE SET \
           failures = CASE WHEN login_throttle.locked_until > $2 THEN login_throttle.failures \
                           WHEN login_throttle.window_start <= $2 - $3 THEN 1 \
                           ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.locked_until <= $2 \
                                AND login_throttle.window_start <= $2 - $3 THEN $2 \
                           ELSE login_throttle.window_start END \
         RETURNING failures, window_start, locked_until",
    )
    .bind(key)
    .bind(now)
    .bind(window_ms)
    .fetch_one(pool)
    .await
}

/// Locks `key` until `until`; the count starts again when it ends.
pub async fn lock_throttle(
    pool: &AnyPool,
    key: &str,
    until: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_throttle SET locked_until = $2, failures = 0, window_start = $3 WHERE email = $1",
    )
    .bind(key)
    .bind(until)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives back an attempt slot that turned out to be neither a success nor a
/// failure (a disabled integrator's correct credentials).
pub async fn release_attempt(pool: &AnyPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1 WHERE email = $1 AND failures > 0",
    )
    .bind(key)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn clear_throttle(pool: &AnyPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttle WHERE email = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Takes the request window of `key` when it is free: `Ok(None)` when taken,
/// `Ok(Some(last_at))` when another request holds it. One conditional update
/// or one insert, so concurrent requests cannot both pass.
pub async fn take_rate_window(
    pool: &AnyPool,
    key: &str,
    now: i64,
    window_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let n = sqlx::query("UPDATE rate_limits SET last_at = $1 WHERE key = $2 AND last_at <= $3")
        .bind(now)
        .bind(key)
        .bind(now - window_ms)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 1 {
        return Ok(None);
    }
    let inserted = sqlx::query("INSERT INTO rate_limits (key, last_at) VALUES ($1, $2)")
        .bind(key)
        .bind(now)
        .execute(pool)
        .await;
    match inserted {
        Ok(_) => Ok(None),
        Err(e) if super::is_unique_violation(&e) => {
            let last: i64 = sqlx::query_scalar("SELECT last_at FROM rate_limits WHERE key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?;
            Ok(Some(last))
        }
        Err(e) => Err(e),
    }
}
