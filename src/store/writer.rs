//! The connection every write goes through, and the transactions on it.
//!
//! Why not a pool of one on SQLite (as before 2026-12-07): sqlx pings a
//! connection each time it goes back to its pool, a round trip to the
//! connection's worker thread that the next writer waited out, and
//! `BEGIN` and `COMMIT` were each a round trip of their own. A decision
//! held the single writer for five round trips (BEGIN, the state change,
//! the batch of its rows, COMMIT, the ping), each ending in a wake-up of
//! the HTTP worker that runs it, behind that worker's other requests.
//! Here the one SQLite connection is held for good behind a mutex:
//! taking it is a lock, giving it back is an unlock, and a transaction's
//! `BEGIN` and `COMMIT` are plain statements that can travel with the
//! first and the last of its statements (see [`Tx::begin_with`] and
//! [`Tx::commit_with`]): a decision holds the writer for two round trips.
//!
//! PostgreSQL keeps its pool and sqlx's transactions: each statement is a
//! round trip to the server there anyway, and row locks, not one
//! connection, serialise its writers.
//!
//! A transaction dropped before it ends (a request cancelled when its
//! client went away) leaves the SQLite connection inside it; the next
//! holder rolls it back before its first statement (see `Single::lock`).

use super::batch::Batch;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Connection, Describe, Either, Error, Execute, Executor};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

/// Where writes go: PostgreSQL's pool, or SQLite's single connection.
#[derive(Clone, Debug)]
pub enum Writer {
    Pool(AnyPool),
    Single(Single),
}

/// SQLite's writer connection (None once closed) and how long a writer
/// waits for it before giving up, as the pool's acquire did.
#[derive(Clone)]
pub struct Single {
    held: Arc<Mutex<Option<Slot>>>,
    wait: Duration,
}

impl std::fmt::Debug for Single {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Single").field("wait", &self.wait).finish()
    }
}

pub struct Slot {
    conn: AnyConnection,
    /// A `BEGIN` was sent and no `COMMIT` or `ROLLBACK` has ended it yet.
    in_tx: bool,
}

type Guard = OwnedMappedMutexGuard<Option<Slot>, Slot>;

impl Single {
    pub fn new(conn: AnyConnection, wait: Duration) -> Single {
        Single {
            held: Arc::new(Mutex::new(Some(Slot { conn, in_tx: false }))),
            wait,
        }
    }

    /// Takes the connection, after rolling back a transaction an earlier
    /// holder left open.
    async fn lock(&self) -> Result<Guard, Error> {
        let guard: OwnedMutexGuard<Option<Slot>> =
            tokio::time::timeout(self.wait, self.held.clone().lock_owned())
                .await
                .map_err(|_| Error::PoolTimedOut)?;
        let mut held =
            OwnedMutexGuard::try_map(guard, Option::as_mut).map_err(|_| Error::PoolClosed)?;
        if held.in_tx {
            match (&mut held.conn).execute("ROLLBACK").await {
                Ok(_) => {}
                // The transaction had ended already (its COMMIT ran but its
                // holder was gone before it heard so, or SQLite rolled it
                // back itself after an I/O error).
                Err(e) if no_transaction(&e) => {}
                Err(e) => return Err(e),
            }
            held.in_tx = false;
        }
        Ok(held)
    }

    async fn close(&self) {
        let taken = self.held.lock().await.take();
        if let Some(h) = taken {
            if let Err(e) = h.conn.close().await {
                tracing::warn!(error = %e, "closing the SQLite writer connection");
            }
        }
    }
}

/// "cannot commit/rollback - no transaction is active".
fn no_transaction(e: &Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.message().contains("no transaction is active"))
}

impl Writer {
    /// Holds the writer connection until the returned handle is dropped
    /// (PostgreSQL: a pooled connection).
    pub async fn hold(&self) -> Result<Held, Error> {
        Ok(match self {
            Writer::Pool(p) => Held::Pool(p.acquire().await?),
            Writer::Single(s) => Held::Single(s.lock().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Writer::Pool(p) => p.close().await,
            Writer::Single(s) => s.close().await,
        }
    }
}

/// A held writer connection (see [`Writer::hold`]).
pub enum Held {
    Pool(sqlx::pool::PoolConnection<Any>),
    Single(Guard),
}

impl Deref for Held {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Held::Pool(c) => c,
            Held::Single(g) => &g.conn,
        }
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Held::Pool(c) => c,
            Held::Single(g) => &mut g.conn,
        }
    }
}

/// Statements run on the writer outside a transaction, as on a pool. On
/// SQLite the connection is held for the statement and its rows are read
/// whole before it is given back (writes return few rows).
impl<'w> Executor<'w> for &'_ Writer {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        'w: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Writer::Pool(p) => p.fetch_many(query),
            Writer::Single(s) => {
                let s = s.clone();
                futures_util::stream::once(async move {
                    let items = match s.lock().await {
                        Ok(mut held) => held.conn.fetch_many(query).collect::<Vec<_>>().await,
                        Err(e) => vec![Err(e)],
                    };
                    futures_util::stream::iter(items)
                })
                .flatten()
                .boxed()
            }
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'w: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Writer::Pool(p) => p.fetch_optional(query),
            Writer::Single(s) => {
                let s = s.clone();
                Box::pin(async move { s.lock().await?.conn.fetch_optional(query).await })
            }
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, Error>>
    where
        'w: 'e,
    {
        match self {
            Writer::Pool(p) => p.prepare_with(sql, parameters),
            Writer::Single(s) => {
                let s = s.clone();
                Box::pin(async move { s.lock().await?.conn.prepare_with(sql, parameters).await })
            }
        }
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'w: 'e,
    {
        match self {
            Writer::Pool(p) => p.describe(sql),
            Writer::Single(s) => {
                let s = s.clone();
                Box::pin(async move { s.lock().await?.conn.describe(sql).await })
            }
        }
    }
}

/// What a statement given to [`Tx::begin_with`] starts with.
pub const BEGIN_LINE: &str = "BEGIN;\n";

/// A transaction on the writer. Dereferences to its connection, so
/// statements run in it as `.execute(&mut **tx)`. Dropped without
/// `commit`, it is rolled back (on SQLite by the writer's next holder).
pub struct Tx(Inner);

enum Inner {
    Pool(sqlx::Transaction<'static, Any>),
    Single(Guard),
}

impl Tx {
    pub async fn begin(w: &Writer) -> Result<Tx, Error> {
        match w {
            Writer::Pool(p) => Ok(Tx(Inner::Pool(p.begin().await?))),
            Writer::Single(s) => {
                let mut held = s.lock().await?;
                // Marked first: a BEGIN cancelled midway is rolled back by
                // the next holder (and a ROLLBACK of nothing is harmless).
                held.in_tx = true;
                (&mut held.conn).execute("BEGIN").await?;
                Ok(Tx(Inner::Single(held)))
            }
        }
    }

    /// Begins a transaction with `sql`, which starts with `BEGIN;` and a
    /// line break, then a statement whose rows are returned; `bind` binds
    /// its values. On SQLite `BEGIN` travels with that statement, one
    /// round trip instead of two; PostgreSQL, one statement at a time,
    /// begins first.
    pub async fn begin_with<'q, F>(
        w: &Writer,
        sql: &'q str,
        bind: F,
    ) -> Result<(Tx, Vec<AnyRow>), Error>
    where
        F: FnOnce(
            sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    {
        let Some(statement) = sql.strip_prefix(BEGIN_LINE) else {
            return Err(Error::Protocol(format!(
                "begin_with needs a statement after '{BEGIN_LINE}'"
            )));
        };
        match w {
            Writer::Pool(_) => {
                let mut tx = Tx::begin(w).await?;
                let rows = bind(sqlx::query(statement)).fetch_all(&mut *tx).await?;
                Ok((tx, rows))
            }
            Writer::Single(s) => {
                let mut held = s.lock().await?;
                held.in_tx = true;
                let rows = bind(sqlx::query(sql)).fetch_all(&mut held.conn).await?;
                Ok((Tx(Inner::Single(held)), rows))
            }
        }
    }

    pub async fn commit(self) -> Result<(), Error> {
        match self.0 {
            Inner::Pool(t) => t.commit().await,
            Inner::Single(mut held) => {
                (&mut held.conn).execute("COMMIT").await?;
                held.in_tx = false;
                Ok(())
            }
        }
    }

    pub async fn rollback(self) -> Result<(), Error> {
        match self.0 {
            Inner::Pool(t) => t.rollback().await,
            Inner::Single(mut held) => {
                match (&mut held.conn).execute("ROLLBACK").await {
                    Ok(_) => {}
                    Err(e) if no_transaction(&e) => {}
                    Err(e) => return Err(e),
                }
                held.in_tx = false;
                Ok(())
            }
        }
    }

    /// Runs `batch`, then commits: on SQLite `COMMIT` travels with the
    /// batch, one round trip for both. A failing statement stops the rest
    /// (the COMMIT too), and the transaction is rolled back.
    pub async fn commit_with(mut self, batch: Batch) -> Result<(), Error> {
        if matches!(self.0, Inner::Pool(_)) {
            batch.execute(&mut self, super::Backend::Postgres).await?;
            return self.commit().await;
        }
        batch.execute_then(&mut self, "COMMIT").await?;
        if let Inner::Single(held) = &mut self.0 {
            held.in_tx = false;
        }
        Ok(())
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            Inner::Pool(t) => t,
            Inner::Single(g) => &g.conn,
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            Inner::Pool(t) => t,
            Inner::Single(g) => &mut g.conn,
        }
    }
}
