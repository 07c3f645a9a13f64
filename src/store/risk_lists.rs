//! Operator-loaded risk lists (watchlists, restricted addresses, IP ranges,
//! e-mail domains) that fraud-risk reports are checked against.

use super::Db;

/// One entry to load: its match key, optional extra (a birthdate) and label.
pub type Entry = (String, Option<String>, String);

/// Replaces `list` with `entries`, in one transaction.
pub async fn replace(db: &Db, list: &str, entries: &[Entry], now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM risk_list_entries WHERE list = $1")
        .bind(list)
        .execute(&mut *tx)
        .await?;
    for (key, extra, label) in entries {
        sqlx::query(
            "INSERT INTO risk_list_entries (id, list, match_key, extra, label, loaded_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(list)
        .bind(key)
        .bind(extra.clone())
        .bind(label)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

pub async fn count(db: &Db, list: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM risk_list_entries WHERE list = $1")
        .bind(list)
        .fetch_one(db.read())
        .await
}

/// (extra, label) of the entries of `list` under `key`.
pub async fn entries(
    db: &Db,
    list: &str,
    key: &str,
) -> Result<Vec<(Option<String>, String)>, sqlx::Error> {
    sqlx::query_as::<_, (Option<String>, String)>(
        "SELECT extra, label FROM risk_list_entries WHERE list = $1 AND match_key = $2",
    )
    .bind(list)
    .bind(key)
    .fetch_all(db.read())
    .await
}

/// (key, label) of every entry of `list` (for lists matched by range).
pub async fn all(db: &Db, list: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT match_key, label FROM risk_list_entries WHERE list = $1")
        .bind(list)
        .fetch_all(db.read())
        .await
}
