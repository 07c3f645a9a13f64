//! Rows of the audit log. Only inserts and reads: there is no update or
//! delete statement for this table anywhere in kycdesk.

use super::{Bind, Binds, Stmt, Tx};
use crate::domain::audit::AuditFilter;
use sqlx::AnyPool;

/// One audit-log entry as stored (its hash chain is checked by `audit`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub scan_id: Option<String>,
    pub client_addr: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    pub fn at_display(&self) -> String {
        crate::domain::fmt_ms(self.at)
    }
    pub fn scan_id_or_empty(&self) -> &str {
        self.scan_id.as_deref().unwrap_or("")
    }
}

const COLS: &str = "seq, at, actor, action, scan_id, client_addr, detail, prev_hash, hash";

/// An event waiting to be appended together with others in one
/// transaction (`audit::record_now`), and the request waiting for it.
pub struct Pending {
    pub actor: String,
    pub action: String,
    pub scan_id: Option<String>,
    pub client_addr: String,
    pub detail: String,
    /// Told once the transaction holding the entry committed or failed.
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The events waiting to be appended, and the turn to write them: whoever
/// holds `turn` writes everything queued so far (group commit).
#[derive(Default)]
pub struct Appends {
    pub queue: std::sync::Mutex<Vec<Pending>>,
    pub turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Appends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Appends")
    }
}

/// The chain's last entry, (seq, hash); None while the chain is empty.
pub type Head = Option<(i64, String)>;

pub async fn last(tx: &mut Tx) -> Result<Head, sqlx::Error> {
    sqlx::query_as::<_, (i64, String)>("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await
}

/// The head as two columns another statement can return (e.g. a
/// `RETURNING` clause), read back by [`head_of`].
pub(super) const HEAD_COLUMNS: &str =
    "(SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1) AS head_seq, \
     (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS head_hash";

pub(super) fn head_of(row: &sqlx::any::AnyRow) -> Result<Head, sqlx::Error> {
    use sqlx::Row;
    let seq: Option<i64> = row.try_get("head_seq")?;
    let hash: Option<String> = row.try_get("head_hash")?;
    match (seq, hash) {
        (Some(seq), Some(hash)) => Ok(Some((seq, hash))),
        (None, None) => Ok(None),
        _ => Err(sqlx::Error::Decode(
            "the audit chain's head was read half (a seq without its hash)".into(),
        )),
    }
}

pub async fn insert(tx: &mut Tx, e: &Entry) -> Result<(), sqlx::Error> {
    insert_stmt(e).execute(tx).await.map(drop)
}

/// `insert` as a statement for a `Batch`.
pub fn insert_stmt(e: &Entry) -> Stmt {
    insert_rows(std::slice::from_ref(e))
}

/// Entries per multi-row INSERT: at 9 values each a statement stays far
/// below both backends' limits on bound values, and a connection caches
/// at most this many distinct INSERTs.
const ROWS_PER_INSERT: usize = 32;

/// `insert` for several entries, as few statements as possible: one
/// statement with a row per entry, per `ROWS_PER_INSERT` entries. Why: on
/// PostgreSQL a group of audit entries was one round trip per entry, all
/// while holding the audit lock that every writer waits for.
pub fn insert_many_stmts(entries: &[Entry]) -> Vec<Stmt> {
    entries.chunks(ROWS_PER_INSERT).map(insert_rows).collect()
}

/// One INSERT of `entries`, a row each, values bound in `COLS` order.
fn insert_rows(entries: &[Entry]) -> Stmt {
    let rows: Vec<String> = (0..entries.len())
        .map(|i| {
            let values: Vec<String> = (1..=9).map(|k| format!("${}", i * 9 + k)).collect();
            format!("({})", values.join(", "))
        })
        .collect();
    let insert = Stmt::new(format!(
        "INSERT INTO audit_log ({COLS}) VALUES {}",
        rows.join(", ")
    ));
    entries.iter().fold(insert, |s, e| {
        s.int(e.seq)
            .int(e.at)
            .text(e.actor.clone())
            .text(e.action.clone())
            .opt_text(e.scan_id.clone())
            .text(e.client_addr.clone())
            .text(e.detail.clone())
            .text(e.prev_hash.clone())
            .text(e.hash.clone())
    })
}

pub async fn batch_after(
    pool: &AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(&format!(
        "SELECT {COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A case's history as the desk shows it, newest first (at most 500):
/// page views, downloads and the edit markers (edits are read from
/// field_edits) stay out here, so a case viewed hundreds of times keeps
/// its claims and decisions on the page. The audit log page has them all.
pub(super) fn for_case_sql() -> String {
    format!(
        "SELECT {COLS} FROM audit_log WHERE scan_id = $1 \
         AND action NOT IN ('case.view', 'evidence.download', 'case.zip.download', 'case.edit') \
         ORDER BY seq DESC LIMIT 500"
    )
}

pub async fn for_case(pool: &AnyPool, scan_id: &str) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(&for_case_sql())
        .bind(scan_id)
        .fetch_all(pool)
        .await
}

/// Newest first, keyset-paged by `seq`.
pub async fn recent(
    pool: &AnyPool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(&format!(
        "SELECT {COLS} FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every entry about one case, oldest first (for its certified zip).
pub async fn all_for_case(pool: &AnyPool, scan_id: &str) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(&format!(
        "SELECT {COLS} FROM audit_log WHERE scan_id = $1 ORDER BY seq"
    ))
    .bind(scan_id)
    .fetch_all(pool)
    .await
}

/// Entries matching the explorer's filters, newest first, keyset-paged by
/// `seq` (`before` excluded). Exact matches on actor, action and case use
/// their `(…, seq)` indexes, which already run in `seq` order.
pub async fn search(
    pool: &AnyPool,
    f: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut b = Binds::default();
    let mut sql = format!(
        "SELECT {COLS} FROM audit_log WHERE seq < {}",
        b.push(Bind::Int(before.unwrap_or(i64::MAX)))
    );
    if let Some(actor) = &f.actor {
        sql.push_str(&format!(
            " AND actor = {}",
            b.push(Bind::Text(actor.clone()))
        ));
    }
    if let Some(action) = &f.action {
        let list: Vec<String> = action
            .codes
            .iter()
            .map(|c| b.push(Bind::Text(c.to_string())))
            .collect();
        sql.push_str(&format!(" AND action IN ({})", list.join(", ")));
    }
    if let Some(scan_id) = &f.scan_id {
        sql.push_str(&format!(
            " AND scan_id = {}",
            b.push(Bind::Text(scan_id.clone()))
        ));
    }
    if let Some(from) = f.from_ms {
        sql.push_str(&format!(" AND at >= {}", b.push(Bind::Int(from))));
    }
    if let Some(to) = f.to_ms {
        sql.push_str(&format!(" AND at < {}", b.push(Bind::Int(to))));
    }
    sql.push_str(&format!(
        " ORDER BY seq DESC LIMIT {}",
        b.push(Bind::Int(limit))
    ));
    b.apply_as(sqlx::query_as::<_, Entry>(&sql))
        .fetch_all(pool)
        .await
}
