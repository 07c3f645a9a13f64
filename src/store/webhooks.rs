//! The webhook outbox and its delivery attempts.

use super::{Stmt, Tx};
use sqlx::AnyPool;

/// Writes one event for the process's integrator, inside the caller's
/// transaction. Integrators without a webhook URL get no row: there is
/// nowhere to deliver it.
pub async fn enqueue(
    tx: &mut Tx,
    integrator_id: &str,
    scan_id: &str,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    enqueue_with(
        tx,
        integrator_id,
        scan_id,
        status,
        serde_json::Map::new(),
        now,
    )
    .await
}

/// As `enqueue`, with more fields beside `verificationId` and `status`.
pub async fn enqueue_with(
    tx: &mut Tx,
    integrator_id: &str,
    scan_id: &str,
    status: &str,
    extra: serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<(), sqlx::Error> {
    enqueue_stmt(integrator_id, scan_id, status, extra, now)
        .execute(tx)
        .await
        .map(drop)
}

/// `enqueue_with` as a statement for a `Batch`.
pub fn enqueue_stmt(
    integrator_id: &str,
    scan_id: &str,
    status: &str,
    extra: serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Stmt {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let mut body = serde_json::Map::new();
    body.insert("verificationId".into(), scan_id.into());
    body.insert("status".into(), status.into());
    body.extend(extra);
    let payload = serde_json::Value::Object(body).to_string();
    Stmt::new(
        "INSERT INTO webhook_events (id, integrator_id, scan_id, status, payload, created_at, state, attempts, next_attempt_at) \
         SELECT $1, id, $2, $3, $4, $5, 'pending', 0, $5 FROM integrators \
         WHERE id = $6 AND webhook_url IS NOT NULL AND webhook_url <> ''",
    )
    .text(id)
    .text(scan_id)
    .text(status)
    .text(payload)
    .int(now)
    .text(integrator_id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub integrator_id: String,
    pub scan_id: String,
    pub status: String,
    pub payload: String,
    pub created_at: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}

const EVENT_COLS: &str = "id, integrator_id, scan_id, status, payload, created_at, state, attempts, next_attempt_at, delivered_at, last_error";

/// An event due for delivery, with where and how to sign it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRow {
    pub id: String,
    pub payload: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    /// JSON object of extra headers the integrator asked for.
    pub webhook_headers: String,
}

pub async fn due(pool: &AnyPool, now: i64, limit: i64) -> Result<Vec<DueRow>, sqlx::Error> {
    sqlx::query_as::<_, DueRow>(
        "SELECT e.id, e.payload, e.created_at, e.attempts, e.next_attempt_at, i.webhook_url, i.webhook_secret, i.webhook_headers \
         FROM webhook_events e JOIN integrators i ON i.id = e.integrator_id \
         WHERE e.state = 'pending' AND e.next_attempt_at <= $1 \
         ORDER BY e.next_attempt_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Takes a lease on a due event: only the dispatcher whose update matched
/// delivers it now. If that process dies mid-delivery the lease runs out and
/// the event is delivered again (with the same `webhook-id`).
pub async fn lease(
    pool: &super::Writer,
    id: &str,
    seen_next_attempt_at: i64,
    until: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE webhook_events SET next_attempt_at = $1 \
         WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3",
    )
    .bind(until)
    .bind(id)
    .bind(seen_next_attempt_at)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Hands back a lease this dispatcher took but will not use (it is shutting
/// down): the event is due again at once, for this or another server.
pub async fn release_lease(
    pool: &super::Writer,
    id: &str,
    leased_until: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_events SET next_attempt_at = $1 \
         WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3",
    )
    .bind(now)
    .bind(id)
    .bind(leased_until)
    .execute(pool)
    .await?;
    Ok(())
}

pub struct Attempt<'a> {
    pub event_id: &'a str,
    pub at: i64,
    pub url: &'a str,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
}

/// What happens to the event after an attempt.
pub enum Outcome {
    Delivered,
    RetryAt(i64),
    GiveUp,
}

/// Records an attempt and its outcome in one transaction.
pub async fn finish_attempt(
    tx: &mut Tx,
    a: &Attempt<'_>,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_attempts (id, event_id, at, url, status_code, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(a.event_id)
    .bind(a.at)
    .bind(a.url)
    .bind(a.status_code)
    .bind(a.error)
    .bind(a.duration_ms)
    .execute(&mut **tx)
    .await?;
    let (state, next, delivered): (&str, i64, Option<i64>) = match outcome {
        Outcome::Delivered => ("delivered", a.at, Some(a.at)),
        Outcome::RetryAt(t) => ("pending", *t, None),
        Outcome::GiveUp => ("failed", a.at, None),
    };
    sqlx::query(
        "UPDATE webhook_events SET state = $1, next_attempt_at = $2, delivered_at = $3, \
         attempts = attempts + 1, last_error = $4 WHERE id = $5",
    )
    .bind(state)
    .bind(next)
    .bind(delivered)
    .bind(a.error)
    .bind(a.event_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sends an event again now, whatever its state; the `webhook-id` stays.
/// Queues an event again now (inside the transaction that audits it).
pub async fn redeliver(tx: &mut super::Tx, id: &str, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE webhook_events SET state = 'pending', next_attempt_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {EVENT_COLS} FROM webhook_events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The newest events (optionally of one state), newest first.
pub async fn recent(
    pool: &AnyPool,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    match state {
        Some(s) => {
            sqlx::query_as::<_, EventRow>(&format!(
                "SELECT {EVENT_COLS} FROM webhook_events WHERE state = $1 ORDER BY created_at DESC LIMIT $2"
            ))
            .bind(s)
            .bind(limit)
            .fetch_all(pool)
            .await
        }
        None => {
            sqlx::query_as::<_, EventRow>(&format!(
                "SELECT {EVENT_COLS} FROM webhook_events ORDER BY created_at DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await
        }
    }
}

pub async fn for_process(pool: &AnyPool, scan_id: &str) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as::<_, EventRow>(&format!(
        "SELECT {EVENT_COLS} FROM webhook_events WHERE scan_id = $1 ORDER BY created_at"
    ))
    .bind(scan_id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub event_id: String,
    pub at: i64,
    pub url: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

pub async fn attempts_for(pool: &AnyPool, event_id: &str) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as::<_, AttemptRow>(
        "SELECT event_id, at, url, status_code, error, duration_ms FROM webhook_attempts \
         WHERE event_id = $1 ORDER BY at",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}
