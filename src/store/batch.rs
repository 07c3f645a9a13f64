//! Writes sent to the database in one round trip where the backend allows.
//!
//! Why: on SQLite every statement is a hop to the connection's worker
//! thread and back (about 60 µs each, measured with one client), and the
//! single writer connection is held for the whole transaction. A decision
//! wrote 16 statements, so the writer was busy ~1.2 ms per decision and
//! decisions queued behind it (at 16 connections ~22 ms of a request's
//! ~25 ms was the wait for the writer). A `Batch` joins its statements into
//! one multi-statement query on SQLite: sqlx binds `$N` by number across
//! all the statements of a query, so each statement's placeholders are
//! renumbered past those of the statements before it. PostgreSQL prepares
//! one statement at a time, so there the statements run in order, as
//! before (and keep the lock order the transaction depends on).
//!
//! A statement's SQL must not hold `$` other than its placeholders (no
//! dollar-quoted or `'$…'` literals): the renumbering reads them as text.

use super::{Backend, Tx};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;
use std::borrow::Cow;

/// A value bound to a batched statement. Nullable values are typed, so a
/// NULL binds the same way on both backends.
#[derive(Debug, Clone)]
enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

/// One statement and its values, `$1..$n` in order.
#[derive(Debug, Clone)]
pub struct Stmt {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Stmt {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Stmt {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    pub fn int(mut self, v: i64) -> Stmt {
        self.args.push(Arg::Int(Some(v)));
        self
    }

    pub fn opt_int(mut self, v: Option<i64>) -> Stmt {
        self.args.push(Arg::Int(v));
        self
    }

    pub fn text(mut self, v: impl Into<String>) -> Stmt {
        self.args.push(Arg::Text(Some(v.into())));
        self
    }

    pub fn opt_text(mut self, v: Option<impl Into<String>>) -> Stmt {
        self.args.push(Arg::Text(v.map(Into::into)));
        self
    }

    fn bind_to<'q>(
        args: &[Arg],
        mut q: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        for a in args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }

    /// Runs this one statement; returns the rows it changed.
    pub async fn execute(&self, tx: &mut Tx) -> Result<u64, sqlx::Error> {
        Ok(Self::bind_to(&self.args, sqlx::query(&self.sql))
            .execute(&mut **tx)
            .await?
            .rows_affected())
    }
}

/// Statements that run together, in order, inside the caller's transaction.
#[derive(Debug, Default)]
pub struct Batch {
    stmts: Vec<Stmt>,
}

impl Batch {
    pub fn push(&mut self, s: Stmt) {
        self.stmts.push(s);
    }

    pub fn extend(&mut self, s: impl IntoIterator<Item = Stmt>) {
        self.stmts.extend(s);
    }

    /// Runs every statement: one round trip on SQLite, one per statement
    /// on PostgreSQL. An error leaves the transaction to be rolled back by
    /// its owner (dropping it does).
    pub async fn execute(self, tx: &mut Tx, backend: Backend) -> Result<(), sqlx::Error> {
        match (backend, self.stmts.len()) {
            (_, 0) => Ok(()),
            (Backend::Postgres, _) | (_, 1) => {
                for s in &self.stmts {
                    s.execute(tx).await?;
                }
                Ok(())
            }
            (Backend::Sqlite, _) => {
                let (sql, args) = self.joined();
                Stmt::bind_to(&args, sqlx::query(&sql))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    }

    /// SQLite: runs every statement, then `tail` (a statement without
    /// values, such as `COMMIT`), all in one round trip.
    pub(super) async fn execute_then(self, tx: &mut Tx, tail: &str) -> Result<(), sqlx::Error> {
        let (mut sql, args) = self.joined();
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(tail);
        Stmt::bind_to(&args, sqlx::query(&sql))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The statements as one text with placeholders numbered through, and
    /// their values in that order.
    fn joined(self) -> (String, Vec<Arg>) {
        let mut sql = String::new();
        let mut args = Vec::new();
        for s in self.stmts {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            renumber(&s.sql, args.len(), &mut sql);
            args.extend(s.args);
        }
        (sql, args)
    }
}

/// Runs reads that each name their one value `$1` and returns every
/// statement's rows, in order, in one round trip: one multi-statement
/// query on SQLite (one hop to a reader's worker thread instead of one per
/// statement; `$N` is absolute there, so `$1` binds once for all). On
/// PostgreSQL, which takes one statement at a time in the extended
/// protocol, each read is prepared once per connection (`PREPARE`, under a
/// name made from its text) and one simple query `EXECUTE`s them all with
/// the key written in; a key that is not a canonical UUID (so not safe to
/// write in) is read statement by statement. No statement may end in `;`.
///
/// Tried and measured on PostgreSQL (2026-12-05, 1M cases, 16
/// connections, two interleaved runs): the reads sent as one simple query
/// of plain SELECTs served 545-572 case pages/s against 760-768 for the
/// prepared statements one by one, because PostgreSQL plans every
/// statement of a simple query afresh. Prepared statements keep their
/// generic plans (see `postgres_pool`), so `EXECUTE` plans nothing.
pub async fn fetch_by_key(
    pool: &sqlx::AnyPool,
    backend: Backend,
    sqls: &[&str],
    key: &str,
) -> Result<Vec<Vec<sqlx::any::AnyRow>>, sqlx::Error> {
    let groups = match backend {
        Backend::Sqlite => {
            let sql = sqls.join(";\n");
            let mut conn = pool.acquire().await?;
            results(&mut conn, sqlx::query(&sql).bind(key)).await?
        }
        Backend::Postgres if is_canonical_uuid(key) => {
            let mut conn = pool.acquire().await?;
            let names: Vec<String> = sqls.iter().map(|s| prepared_name(s)).collect();
            let exec: Vec<String> = names
                .iter()
                .map(|n| format!("EXECUTE {n}('{key}')"))
                .collect();
            let exec = exec.join(";\n");
            match results(&mut conn, exec.as_str()).await {
                Err(e) if is_missing_prepared(&e) => {
                    prepare(&mut conn, sqls, &names).await?;
                    results(&mut conn, exec.as_str()).await?
                }
                other => other?,
            }
        }
        Backend::Postgres => {
            let mut conn = pool.acquire().await?;
            let mut groups = Vec::with_capacity(sqls.len());
            for sql in sqls {
                groups.push(sqlx::query(sql).bind(key).fetch_all(&mut *conn).await?);
            }
            groups
        }
    };
    if groups.len() != sqls.len() {
        return Err(sqlx::Error::Protocol(format!(
            "{} reads answered {} results",
            sqls.len(),
            groups.len()
        )));
    }
    Ok(groups)
}

/// The rows of each statement of a multi-statement query, in order (each
/// statement's rows end with its result).
async fn results<'q, E>(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    query: E,
) -> Result<Vec<Vec<sqlx::any::AnyRow>>, sqlx::Error>
where
    E: 'q + sqlx::Execute<'q, sqlx::Any>,
{
    use futures_util::TryStreamExt;
    use sqlx::Executor;
    let mut groups = Vec::new();
    let mut rows = Vec::new();
    let mut stream = (&mut **conn).fetch_many(query);
    while let Some(item) = stream.try_next().await? {
        match item {
            sqlx::Either::Left(_) => groups.push(std::mem::take(&mut rows)),
            sqlx::Either::Right(row) => rows.push(row),
        }
    }
    Ok(groups)
}

/// A scanId as kycdesk writes them (lower-case hyphenated UUID): only hex
/// digits and dashes, nothing that could end a string literal. Other
/// spellings of a UUID are not the stored key and are read as given.
fn is_canonical_uuid(key: &str) -> bool {
    uuid::Uuid::parse_str(key).is_ok_and(|u| u.hyphenated().to_string() == key)
}

/// The name a read is prepared under: from its text, so a changed read
/// (a new build on a pooled connection's server) gets a new name.
fn prepared_name(sql: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(sql.as_bytes());
    format!("kycdesk_read_{}", hex::encode(&digest[..8]))
}

/// PostgreSQL's "prepared statement does not exist": this connection has
/// not prepared the reads yet.
fn is_missing_prepared(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "26000")
}

/// Prepares the reads this connection lacks (another page's reads may
/// already be there).
async fn prepare(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    sqls: &[&str],
    names: &[String],
) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    let have: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'kycdesk\\_read\\_%'",
    )
    .fetch_all(&mut **conn)
    .await?;
    for (sql, name) in sqls.iter().zip(names) {
        if !have.contains(name) {
            (&mut **conn)
                .execute(format!("PREPARE {name} (text) AS {sql}").as_str())
                .await?;
        }
    }
    Ok(())
}

/// Appends `sql` to `out` with every `$N` written as `$(N + offset)`.
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_past_the_statements_before() {
        let mut b = Batch::default();
        b.push(
            Stmt::new("UPDATE t SET a = $1 WHERE id = $2")
                .int(1)
                .text("x"),
        );
        b.push(
            Stmt::new(
                "INSERT INTO u (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = u.b + $2",
            )
            .text("y")
            .int(2),
        );
        b.push(Stmt::new("DELETE FROM v WHERE w = $1").opt_text(None::<String>));
        let (sql, args) = b.joined();
        assert_eq!(
            sql,
            "UPDATE t SET a = $1 WHERE id = $2;\n\
             INSERT INTO u (a, b) VALUES ($3, $4) ON CONFLICT (a) DO UPDATE SET b = u.b + $4;\n\
             DELETE FROM v WHERE w = $5"
        );
        assert_eq!(args.len(), 5);
    }

    #[test]
    fn a_dollar_without_digits_is_kept() {
        let mut out = String::new();
        renumber("SELECT $ || $10", 3, &mut out);
        assert_eq!(out, "SELECT $ || $13");
    }
}
