//! Persistence. One SQL dialect (`$N` placeholders, BIGINT milliseconds,
//! TEXT ids) runs on both backends through `sqlx::Any`; each backend keeps its
//! own migrations. The backend is chosen from the URL scheme at start.

pub mod audit;
pub mod batch;
pub mod bench_samples;
pub mod case_file;
pub mod collection;
pub mod contacts;
pub mod fresh;
pub mod identity_checks;
pub mod inline;
pub mod integrators;
pub mod messages;
pub mod metrics;
pub mod mobile_users;
pub mod processes;
pub mod proposals;
pub mod qa;
pub mod rate_limits;
pub mod retakes;
pub mod risk_lists;
pub mod search_words;
pub mod users;
pub mod verifications;
pub mod webhooks;
pub mod writer;

pub use batch::{Batch, Stmt};
pub use writer::{Tx, Writer};

use anyhow::Context;
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Executor};
use std::path::Path;
use std::time::Duration;

/// How many rows each shared counter is split into on PostgreSQL: the
/// size of its connection pool, so each of one instance's concurrent
/// writers can lease a shard of its own (see [`CounterShards`]).
pub const COUNTER_SHARDS: i64 = 16;

/// The counter shards this instance's open transactions write to. A
/// transaction leases a free one, so two writers of one instance never
/// upsert the same counter row at once. Shards picked at random collided
/// for most decisions under 16 concurrent ones (each of them shares with
/// one of 15 others with probability 1 - (15/16)^15 = 62 %), and a
/// collision waited for the other's whole transaction, audit-lock wait
/// included: 4 ms per counter upsert on average at 1M cases, 10 % of a
/// decision's time in PostgreSQL. Instances sharing a database start at
/// different random shards; across them a collision only waits, as before.
#[derive(Debug)]
pub struct CounterShards {
    /// Bit `i` set: shard `(i + offset) % COUNTER_SHARDS` is leased.
    taken: std::sync::atomic::AtomicU32,
    offset: i64,
}

impl Default for CounterShards {
    fn default() -> Self {
        CounterShards {
            taken: std::sync::atomic::AtomicU32::new(0),
            offset: rand::Rng::gen_range(&mut rand::thread_rng(), 0..COUNTER_SHARDS),
        }
    }
}

impl CounterShards {
    /// A free shard, held until the lease is dropped; when every shard is
    /// leased (more writers than the pool has connections: not reached),
    /// one at random, unheld.
    pub fn lease(&self) -> ShardLease<'_> {
        use std::sync::atomic::Ordering;
        let all = (1u32 << COUNTER_SHARDS) - 1;
        let mut cur = self.taken.load(Ordering::Acquire);
        loop {
            let free = !cur & all;
            if free == 0 {
                return ShardLease {
                    shards: None,
                    bit: 0,
                    id: rand::Rng::gen_range(&mut rand::thread_rng(), 0..COUNTER_SHARDS),
                };
            }
            let bit = free.trailing_zeros();
            match self.taken.compare_exchange_weak(
                cur,
                cur | (1 << bit),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return ShardLease {
                        shards: Some(self),
                        bit,
                        id: (i64::from(bit) + self.offset) % COUNTER_SHARDS,
                    }
                }
                Err(now) => cur = now,
            }
        }
    }
}

/// A counter shard leased for one transaction (see [`CounterShards`]):
/// keep it until the transaction has committed or rolled back. Dropped
/// earlier, the shard may be shared, which only costs a wait.
#[derive(Debug)]
pub struct ShardLease<'a> {
    shards: Option<&'a CounterShards>,
    bit: u32,
    id: i64,
}

impl ShardLease<'_> {
    pub fn id(&self) -> i64 {
        self.id
    }
}

impl Drop for ShardLease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.shards {
            s.taken
                .fetch_and(!(1 << self.bit), std::sync::atomic::Ordering::AcqRel);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, String> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(format!(
                "unsupported database URL '{}': use sqlite://PATH or postgres://USER@HOST/DB",
                redact(url)
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Hides a password in a URL before it is printed.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The database handle. On SQLite all writes go through one writer
/// connection (`writer::Writer`), so concurrent desk users queue for the
/// writer instead of failing with "database is locked"; reads use their own
/// pool and never block (WAL).
#[derive(Clone, Debug)]
pub struct Db {
    pub backend: Backend,
    read: AnyPool,
    write: Writer,
    /// The integrator rows API tokens are checked against (see
    /// `integrators::auth_by_id`), shared by every clone of this handle.
    pub(crate) auth_cache: std::sync::Arc<integrators::AuthCache>,
    /// The desk sessions requests present (see `users::live_session`).
    pub(crate) session_cache: std::sync::Arc<users::SessionCache>,
    /// Audit events of their own (views, downloads, logins) waiting to be
    /// appended together (see `audit::record_now`).
    pub(crate) appends: std::sync::Arc<audit::Appends>,
    /// The counter shards leased by open transactions (PostgreSQL).
    shards: std::sync::Arc<CounterShards>,
    /// Turns for the desk's searches of several words (see
    /// [`Db::search_turn`]).
    searches: std::sync::Arc<tokio::sync::Semaphore>,
    /// SQLite: point reads on the request's own thread (see `inline`).
    inline: Option<std::sync::Arc<inline::Inline>>,
    /// PostgreSQL: where [`Db::for_worker`] opens each HTTP worker's pool.
    postgres: Option<PostgresUrl>,
}

/// A PostgreSQL URL, kept to open more pools; its password is never
/// printed (`Db` is `Debug`).
#[derive(Clone)]
struct PostgresUrl(std::sync::Arc<str>);

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", redact(&self.0))
    }
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).map_err(anyhow::Error::msg)?;
        match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                if let Some(parent) = Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).with_context(|| {
                            format!("cannot create the database directory {}", parent.display())
                        })?;
                    }
                }
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                let write = sqlite_writer(&url).await?;
                // WAL must be switched on by a writer before readers open.
                let read = sqlite_pool(&url, 4, true).await?;
                Ok(Db {
                    backend,
                    read,
                    write,
                    auth_cache: std::sync::Arc::new(integrators::auth_cache()),
                    session_cache: std::sync::Arc::new(users::session_cache()),
                    appends: Default::default(),
                    shards: Default::default(),
                    searches: std::sync::Arc::new(tokio::sync::Semaphore::new(search_turns())),
                    inline: Some(std::sync::Arc::new(inline::Inline::new(path))),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let pool = postgres_pool(url, POSTGRES_POOL).await?;
                Ok(Db {
                    backend,
                    read: pool.clone(),
                    write: Writer::Pool(pool),
                    auth_cache: std::sync::Arc::new(integrators::auth_cache()),
                    session_cache: std::sync::Arc::new(users::session_cache()),
                    appends: Default::default(),
                    shards: Default::default(),
                    searches: std::sync::Arc::new(tokio::sync::Semaphore::new(search_turns())),
                    inline: None,
                    postgres: Some(PostgresUrl(url.into())),
                })
            }
        }
    }

    /// SQLite: a connection of its own that checkpoints the WAL (see
    /// `Checkpointer`); None on PostgreSQL.
    pub async fn checkpointer(&self, url: &str) -> anyhow::Result<Option<Checkpointer>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // Checkpoints copy frames without the page cache.
                    conn.execute("PRAGMA cache_size = -256").await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("cannot open the SQLite database {url} to checkpoint it"))?;
        Ok(Some(Checkpointer { pool }))
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("migrations/sqlite")
                    .run(&mut *self.write.hold().await?)
                    .await
            }
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&mut *self.write.hold().await?)
                    .await
            }
        }
        .context("database migrations failed")?;
        if search_words::rebuild_pending(&self.write)
            .await
            .context("reading pending rebuilds")?
        {
            tracing::info!("building the search word index from existing cases");
            let n = search_words::rebuild(&self.write)
                .await
                .context("building the search word index")?;
            search_words::refresh_statistics(&self.write, self.backend)
                .await
                .context("statistics of the search word index")?;
            tracing::info!(cases = n, "search word index built");
        }
        if self.backend == Backend::Sqlite {
            drop_sample_statistics(&self.write)
                .await
                .context("clearing sqlite_stat4")?;
        }
        Ok(())
    }

    /// SQLite's reads on the calling thread; None on PostgreSQL.
    pub(crate) fn inline(&self) -> Option<&inline::Inline> {
        self.inline.as_deref()
    }

    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    /// The shard a transaction writes its counters to (see migration 0021),
    /// held until the lease is dropped: on PostgreSQL one no other open
    /// transaction of this instance holds (see [`CounterShards`]); always 0
    /// on SQLite, whose single writer has no row locks to queue on.
    pub fn counter_shard(&self) -> ShardLease<'_> {
        match self.backend {
            Backend::Sqlite => ShardLease {
                shards: None,
                bit: 0,
                id: 0,
            },
            Backend::Postgres => self.shards.lease(),
        }
    }

    /// Waits for a turn to run a desk search of several words, held until
    /// the turn is dropped. Such a search reads about fifty scattered case
    /// rows, and its statements cost PostgreSQL several times a queue
    /// page's. Sixteen at once on two cores fought each other for the CPU
    /// and the unlucky ones waited longest. Admitted a few at a time (the
    /// rest wait here, first come first served), they finish in a fairer
    /// order: at 1M cases on PostgreSQL p95 fell by 15-20 % and p99 by
    /// 20-30 %, for 5-9 % fewer searches a second at saturation (see README,
    /// "Word searches take turns"). A search waiting longer than ten
    /// seconds for its turn fails as a pool timeout would.
    pub async fn search_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, sqlx::Error> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.searches.acquire()).await {
            Ok(Ok(turn)) => Ok(turn),
            // The semaphore is never closed; a closed one is a bug, not a
            // reason to run unadmitted.
            Ok(Err(_)) => Err(sqlx::Error::PoolClosed),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    pub fn write(&self) -> &Writer {
        &self.write
    }

    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Tx::begin(&self.write).await
    }

    /// Serialises audit-log appends on PostgreSQL for the rest of the
    /// transaction (SQLite already has a single writer).
    pub async fn lock_audit(&self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(740113)").await?;
        }
        Ok(())
    }

    /// Locks a process row for the rest of the transaction, before any other
    /// row or lock is taken (the order every writer follows: process, its
    /// rows, state counters, audit, blobs). On SQLite the single writer
    /// connection already serialises.
    pub async fn lock_process(&self, tx: &mut Tx, scan_id: &str) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT scan_id FROM processes WHERE scan_id = $1 FOR UPDATE")
                .bind(scan_id)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Serialises, for the rest of the transaction, everything that adopts
    /// or deletes the blob `sha256` (see `evidence::BlobStore::place`). On
    /// SQLite every write transaction already runs on the one writer
    /// connection. Two-key advisory locks live apart from `lock_audit`'s
    /// one-key space; a 32-bit collision only serialises two blobs.
    pub async fn lock_blob(&self, tx: &mut Tx, sha256: &str) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            let key = sha256
                .get(..8)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .unwrap_or(0) as i32;
            sqlx::query("SELECT pg_advisory_xact_lock(740114, $1)")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// A handle for a background task on the main runtime (the webhook
    /// dispatcher). A PostgreSQL connection is a socket registered with the
    /// runtime that opened it, and each HTTP worker runs its own runtime:
    /// a connection an HTTP worker opened stops working when that worker
    /// stops ("A Tokio 1.x context was found, but it is being shutdown"),
    /// while the dispatcher still records its last deliveries. So on
    /// PostgreSQL the task gets its own small pool, opened here on the main
    /// runtime. SQLite connections run on their own threads, and the single
    /// writer must stay shared, so there the handle is this one.
    pub async fn for_background(&self, url: &str, max: u32) -> anyhow::Result<Db> {
        match self.backend {
            Backend::Sqlite => Ok(self.clone()),
            Backend::Postgres => {
                let pool = postgres_pool(url, max).await?;
                Ok(Db {
                    backend: self.backend,
                    read: pool.clone(),
                    write: Writer::Pool(pool),
                    auth_cache: self.auth_cache.clone(),
                    session_cache: self.session_cache.clone(),
                    // Its own group: a group is written with the pool of
                    // whoever takes the turn, and this pool outlives the
                    // main runtime's.
                    appends: Default::default(),
                    // Shared: this pool's writers and the main one's
                    // write the same counter rows.
                    shards: self.shards.clone(),
                    searches: self.searches.clone(),
                    inline: None,
                    postgres: self.postgres.clone(),
                })
            }
        }
    }

    /// The handle one HTTP worker serves with. Call it on that worker's
    /// thread (the app factory runs there). On SQLite it is this handle:
    /// its connections run on threads of their own.
    ///
    /// On PostgreSQL the worker gets a pool of its own. A connection's
    /// socket belongs to the runtime that opened it, and each actix worker
    /// runs its own. Through one shared pool a worker's queries ran on
    /// sockets another worker's runtime had opened, so every answer from
    /// PostgreSQL woke that other thread first, which then woke the worker
    /// (context switches and wake-ups were a fifth of `serve`'s CPU on
    /// getVerificationProcessData). Everything else (caches, audit group,
    /// counter shards, search turns) stays shared.
    ///
    /// The pool is as large as the shared one but opened lazily, so it
    /// holds only as many connections as it has statements in flight. Two
    /// pools of 8 on two workers served getVerificationProcessData at
    /// 14-16 % of the floor in two rounds of three, against 20-27 % with
    /// two of 16: the clients' connections need not split evenly between
    /// the workers.
    pub fn for_worker(&self) -> Db {
        let Some(url) = &self.postgres else {
            return self.clone();
        };
        match postgres_options(POSTGRES_POOL).connect_lazy(&url.0) {
            Ok(pool) => Db {
                read: pool.clone(),
                write: Writer::Pool(pool),
                ..self.clone()
            },
            // Not reached: the same URL opened the shared pool. Serving
            // from that pool is slower, never wrong.
            Err(e) => {
                tracing::warn!(error = %e, "a worker's own PostgreSQL pool could not be made; it uses the shared one");
                self.clone()
            }
        }
    }
}

/// The most connections one PostgreSQL pool opens (the shared one, and each
/// HTTP worker's).
const POSTGRES_POOL: u32 = 16;

/// How long a PostgreSQL statement waits for a pooled connection (or a
/// search for its turn) before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many desk searches of several words run at once: three per core of
/// this machine, at least four. The bundled deployment runs the database
/// beside the app, so these are the cores the searches share; a SQLite
/// instance has four readers, so there the readers bound it first.
fn search_turns() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 3)
        .unwrap_or(4)
        .max(4)
}

/// A pooled PostgreSQL connection used within this long is handed out
/// without a ping; one idle for longer is pinged first (see `postgres_pool`).
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

async fn postgres_pool(url: &str, max: u32) -> anyhow::Result<AnyPool> {
    postgres_options(max)
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))
}

fn postgres_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // sqlx pings every pooled connection before handing it out, by
        // default: a full round trip to the server before each statement
        // run on the pool, as many as the statements themselves. A
        // connection that answered within the last second is handed out
        // as it is; one idle for longer (the server may have restarted, or
        // a firewall dropped the socket) is pinged, and on failure closed
        // and replaced, so a request never meets a connection cut while
        // it sat in the pool.
        .test_before_acquire(false)
        // PostgreSQL plans a prepared statement afresh at every execution
        // until five custom plans cost more than its generic plan, and
        // kycdesk's desk reads (keyset walks, the search's UNION of index
        // ranges) kept re-planning: at 1M cases planning a two-word search
        // took 1.1 ms, longer than running it (0.9 ms). Every statement
        // here is written for one index path whatever its values, so the
        // generic plan is the plan; it is made once per connection.
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(&mut *conn, "SET plan_cache_mode = force_generic_plan")
                    .await?;
                Ok(())
            })
        })
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Empties `sqlite_stat4` (filled by a manual `ANALYZE`) and reloads the
/// statistics, keeping `sqlite_stat1`. With stat4 samples, SQLite
/// re-prepares a statement on every execution whose bound value meets a
/// sampled index (`sqlite3Reprepare` was 12 % of the API's CPU at 1M
/// cases), so the statement cache stops helping; the per-index averages of
/// stat1 plan kycdesk's queries the same way.
pub async fn drop_sample_statistics(pool: &Writer) -> Result<(), sqlx::Error> {
    let has: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat4'",
    )
    .fetch_optional(pool)
    .await?;
    if has.is_some() {
        sqlx::query("DELETE FROM sqlite_stat4")
            .execute(pool)
            .await?;
        sqlx::query("ANALYZE sqlite_schema").execute(pool).await?;
    }
    Ok(())
}

fn sqlite_path(url: &str) -> String {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.split('?').next().unwrap_or("").to_string()
}

async fn sqlite_pool(url: &str, max: u32, read_only: bool) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(SQLITE_WAIT)
        // sqlx pings a pooled connection before handing it out, by default:
        // on SQLite that is a round trip to the connection's worker thread
        // on every acquire (every request) to test a local file handle that
        // cannot have hung up; a failure surfaces on the first real
        // statement anyway.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| Box::pin(sqlite_setup(conn, read_only)))
        .connect(url)
        .await
        .with_context(|| format!("cannot open the SQLite database {url}"))
}

/// How long a statement waits for a connection (a reader from the pool,
/// or the writer) before it fails.
const SQLITE_WAIT: Duration = Duration::from_secs(30);

/// SQLite's one writer connection, held for good (see `writer`).
async fn sqlite_writer(url: &str) -> anyhow::Result<Writer> {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .with_context(|| format!("cannot open the SQLite database {url}"))?;
    sqlite_setup(&mut conn, false)
        .await
        .with_context(|| format!("cannot set up the SQLite database {url}"))?;
    Ok(Writer::Single(writer::Single::new(conn, SQLITE_WAIT)))
}

async fn sqlite_setup(conn: &mut sqlx::AnyConnection, read_only: bool) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // Private page caches are the server's memory: the writer keeps 8 MB,
    // each of the 4 readers 1 MB, and the OS page cache (shared,
    // reclaimable, not the process's RSS) serves the rest of a large
    // database through pread. Larger private caches (64 + 4 × 16 MB)
    // bought little at 1M cases and took serve's RSS to 208 MB; 16 + 4 × 4
    // MB still peaked at 76-77 MB, 8 + 4 × 2 MB at 61-64 MB, and 8 + 4 × 1
    // MB at 54-55 MB, at the same throughput (interleaved bench runs at
    // 1M; see README, "Smaller reader caches"). Readers at 512 KB lost a
    // quarter of the queue's pages/s. No mmap: touched mapped pages count
    // in RSS too.
    let kib = if read_only { READER_CACHE_KIB } else { 8192 };
    conn.execute(format!("PRAGMA cache_size = -{kib}").as_str())
        .await?;
    if read_only {
        conn.execute("PRAGMA query_only = ON").await?;
    } else {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        // The server copies the WAL into the database file from its own
        // connection (`Checkpointer`), off the writer's path: checkpointing
        // inside commits (every 1,000 pages, SQLite's default) took a
        // quarter of the decision rate. This bound (about 80 MB) only
        // catches a process that runs no checkpointer (CLI commands).
        conn.execute("PRAGMA wal_autocheckpoint = 20000").await?;
        // A WAL that grew under a burst is cut back to 64 MB when it
        // restarts, instead of keeping its largest size.
        conn.execute("PRAGMA journal_size_limit = 67108864").await?;
    }
    Ok(())
}

/// The page cache of each SQLite reader connection, KiB (see
/// `sqlite_setup`); the request-thread readers of `inline` keep the same.
pub(crate) const READER_CACHE_KIB: i64 = 1024;

/// Binds an optional `f64` so PostgreSQL sees `float8` whether it is NULL or
/// not. sqlx 0.8's Any driver sends a NULL `f64` as `float4` (its NULL
/// conversion swaps the Real and Double kinds), and a statement first
/// prepared with that NULL then refuses every real value ("incorrect binary
/// data format in bind parameter"). A NULL `f32` travels as `float8`. Every
/// optional float goes through here; optional integers, booleans and text
/// keep their types.
pub fn bind_opt_f64<'q>(
    q: Query<'q, Any, AnyArguments<'q>>,
    v: Option<f64>,
) -> Query<'q, Any, AnyArguments<'q>> {
    match v {
        Some(f) => q.bind(f),
        None => q.bind(None::<f32>),
    }
}

/// A value bound to a dynamically built statement.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
    Real(f64),
}

/// Collects bind values and hands out their `$N` placeholders.
#[derive(Default)]
pub struct Binds(Vec<Bind>);

impl Binds {
    pub fn push(&mut self, b: Bind) -> String {
        self.0.push(b);
        format!("${}", self.0.len())
    }

    pub fn apply<'q>(
        &self,
        mut q: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        for b in &self.0 {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
                Bind::Real(f) => q.bind(*f),
            };
        }
        q
    }
}

impl Binds {
    /// The same binds for a `query_as`.
    pub fn apply_as<'q, T>(
        &self,
        mut q: sqlx::query::QueryAs<'q, Any, T, AnyArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, Any, T, AnyArguments<'q>> {
        for b in &self.0 {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
                Bind::Real(f) => q.bind(*f),
            };
        }
        q
    }
}

/// True when the error is a unique or primary-key violation (SQLite gives no
/// constraint name, so the kind is what both backends share).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation))
}

/// Copies committed WAL frames into the SQLite database file, in the
/// background. PASSIVE: it never waits for the writer or readers, and the
/// writer never waits for it; frames still in use are copied next time.
#[derive(Debug)]
pub struct Checkpointer {
    pool: AnyPool,
}

/// What one checkpoint saw: frames in the WAL, and how many of them are
/// now in the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    pub busy: bool,
    pub wal_frames: i64,
    pub copied: i64,
}

impl Checkpointer {
    pub async fn run(&self) -> Result<Checkpointed, sqlx::Error> {
        let (busy, wal_frames, copied) =
            sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.pool)
                .await?;
        Ok(Checkpointed {
            busy: busy != 0,
            wal_frames,
            copied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{search_turns, CounterShards, Db, COUNTER_SHARDS};
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn searches_take_turns_and_a_dropped_turn_admits_the_next() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let n = search_turns();
        assert!(n >= 4, "{n} turns");
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(db.search_turn().await.unwrap_or_else(|e| panic!("{e}")));
        }
        // Every turn is out: the next search waits (the background handle
        // shares the same turns).
        let background = db
            .for_background(&url, 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(background.searches.available_permits(), 0);
        let short = std::time::Duration::from_millis(50);
        assert!(
            tokio::time::timeout(short, db.search_turn()).await.is_err(),
            "a search got a turn while every turn was out"
        );
        held.pop();
        let admitted = tokio::time::timeout(std::time::Duration::from_secs(10), db.search_turn())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(admitted.is_ok(), "{admitted:?}");
        drop(admitted);
        drop(held);
        db.close().await;
    }

    #[test]
    fn leases_are_distinct_until_every_shard_is_taken_and_free_again_on_drop() {
        let shards = CounterShards::default();
        let held: Vec<_> = (0..COUNTER_SHARDS).map(|_| shards.lease()).collect();
        let mut ids: Vec<i64> = held.iter().map(|l| l.id()).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..COUNTER_SHARDS).collect::<Vec<_>>());
        // All taken: a shard at random, not held.
        let extra = shards.lease();
        assert!((0..COUNTER_SHARDS).contains(&extra.id()));
        assert!(extra.shards.is_none());
        let freed = held[5].id();
        drop(held);
        drop(extra);
        let again: Vec<_> = (0..COUNTER_SHARDS).map(|_| shards.lease()).collect();
        assert!(again.iter().any(|l| l.id() == freed));
        assert!(again.iter().all(|l| l.shards.is_some()));
    }

    /// Writers leasing at once never hold the same shard together (the
    /// lease is one compare-and-swap, not a look followed by a take).
    #[test]
    fn concurrent_leases_never_share_a_shard() {
        let shards = CounterShards::default();
        let in_use: Vec<AtomicBool> = (0..COUNTER_SHARDS)
            .map(|_| AtomicBool::new(false))
            .collect();
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        let lease = shards.lease();
                        let slot = &in_use[usize::try_from(lease.id()).unwrap()];
                        assert!(
                            !slot.swap(true, Ordering::AcqRel),
                            "shard {} leased twice at once",
                            lease.id()
                        );
                        std::hint::spin_loop();
                        slot.store(false, Ordering::Release);
                    }
                });
            }
        });
    }
}
