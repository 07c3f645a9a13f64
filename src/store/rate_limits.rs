//! The rows behind `security::rate_limit`: failure counters
//! (`login_throttle`, keyed by a normalised e-mail or `api-token:<addr>`)
//! and one-call-per-window stamps (`rate_limits`). Every check is one
//! atomic statement, so a concurrent burst cannot pass together.

/// What a reservation found when it could not take a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Locked until this instant (ms).
    Locked(i64),
    /// Every slot is held by attempts still being evaluated.
    Full,
}

/// The window has run out when it started at or before `now - window`.
const EXPIRED: &str = "window_start <= $2 - $3";

/// Takes one in-flight slot for `key` in one atomic statement, before the
/// expensive comparison. A slot is free while the key is unlocked and its
/// failures plus the attempts still being evaluated stay under `max`, so a
/// concurrent burst can never have more than `max` wrong attempts compared;
/// correct ones give their slot back at once. A window that has run out
/// starts again (failures and in-flight attempts from 0: a slot leaked by a
/// crash is lost for one window at most).
pub async fn reserve_attempt(
    pool: &super::Writer,
    key: &str,
    now: i64,
    window_ms: i64,
    max: i64,
) -> Result<Result<(), Refusal>, sqlx::Error> {
    let taken = sqlx::query(&format!(
        "UPDATE login_throttle SET \
           failures = CASE WHEN {EXPIRED} THEN 0 ELSE failures END, \
           inflight = CASE WHEN {EXPIRED} THEN 1 ELSE inflight + 1 END, \
           window_start = CASE WHEN {EXPIRED} THEN $2 ELSE window_start END \
         WHERE email = $1 AND locked_until <= $2 \
           AND ({EXPIRED} OR failures + inflight < $4)"
    ))
    .bind(key)
    .bind(now)
    .bind(window_ms)
    .bind(max)
    .execute(pool)
    .await?
    .rows_affected();
    if taken == 1 {
        return Ok(Ok(()));
    }
    let inserted = sqlx::query(
        "INSERT INTO login_throttle (email, failures, window_start, locked_until, inflight) \
         VALUES ($1, 0, $2, 0, 1) ON CONFLICT (email) DO NOTHING",
    )
    .bind(key)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Ok(()));
    }
    let locked_until: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE email = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    Ok(Err(match locked_until {
        Some(until) if until > now => Refusal::Locked(until),
        // Full, or the row was cleared a moment ago: the caller tries again.
        _ => Refusal::Full,
    }))
}

/// The in-flight count going down by one, never below 0 (a window restart
/// may have zeroed it under a running attempt).
const GIVE_BACK: &str = "inflight = CASE WHEN inflight > 0 THEN inflight - 1 ELSE 0 END";

/// An attempt failed: its slot becomes a failure, in one statement; the
/// failure that reaches `max` locks the key until `now + lock_ms` and the
/// count starts again when the lock ends.
pub async fn record_failure(
    pool: &super::Writer,
    key: &str,
    now: i64,
    max: i64,
    lock_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE login_throttle SET {GIVE_BACK}, \
           failures = CASE WHEN failures + 1 >= $3 THEN 0 ELSE failures + 1 END, \
           locked_until = CASE WHEN failures + 1 >= $3 THEN $2 + $4 ELSE locked_until END, \
           window_start = CASE WHEN failures + 1 >= $3 THEN $2 ELSE window_start END \
         WHERE email = $1"
    ))
    .bind(key)
    .bind(now)
    .bind(max)
    .bind(lock_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives back an attempt's slot; `forget_failures` also clears the
/// failures counted so far (a desk user who proved their password).
pub async fn release_attempt(
    pool: &super::Writer,
    key: &str,
    forget_failures: bool,
) -> Result<(), sqlx::Error> {
    let sql = if forget_failures {
        format!("UPDATE login_throttle SET {GIVE_BACK}, failures = 0 WHERE email = $1")
    } else {
        format!("UPDATE login_throttle SET {GIVE_BACK} WHERE email = $1")
    };
    sqlx::query(&sql).bind(key).execute(pool).await?;
    Ok(())
}

/// Takes the request window of `key` when it is free: `Ok(None)` when taken,
/// `Ok(Some(last_at))` when another request holds it. One conditional update
/// or one insert, so concurrent requests cannot both pass.
pub async fn take_rate_window(
    pool: &super::Writer,
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
