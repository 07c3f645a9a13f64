//! Outgoing e-mails and SMS (`messages`): the record of every delivery and
//! the outbox of those no gateway took.

use super::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub integrator_id: Option<String>,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub error: Option<String>,
    pub created_at: i64,
}

/// Records a message as `sending`.
// Each argument is one column of the row; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn insert_sending(
    db: &Db,
    id: &str,
    integrator_id: &str,
    channel: &str,
    recipient: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (id, integrator_id, channel, recipient, subject, body, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'sending', $7)",
    )
    .bind(id)
    .bind(integrator_id)
    .bind(channel)
    .bind(recipient)
    .bind(subject)
    .bind(body)
    .bind(now)
    .execute(db.write())
    .await?;
    Ok(())
}

/// The delivery's outcome, and the text kept of it.
pub async fn set_outcome(
    db: &Db,
    id: &str,
    state: &str,
    error: Option<&str>,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE messages SET state = $1, error = $2, body = $3 WHERE id = $4")
        .bind(state)
        .bind(error)
        .bind(body)
        .bind(id)
        .execute(db.write())
        .await?;
    Ok(())
}

pub async fn recent(db: &Db, limit: i64) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as::<_, MessageRow>(
        "SELECT id, integrator_id, channel, recipient, subject, body, state, error, created_at \
         FROM messages ORDER BY created_at DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.read())
    .await
}
