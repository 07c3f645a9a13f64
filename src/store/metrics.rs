//! The dashboard's rollups (see migration 0013). Writers call these inside
//! the transaction of the change they count; readers get the rows of a
//! date range and aggregate them (a few thousand rows at any size).

use super::{Bind, Binds, Db, Stmt, Tx};
use crate::domain::metrics::{day_of, hour_of, is_awaiting, ttd_bucket};
use crate::domain::State;
use sqlx::AnyPool;
use std::collections::{BTreeMap, HashMap};

/// A final decision as the rollups count it.
#[derive(Debug, Clone)]
pub struct Final {
    pub integrator_id: String,
    pub agent: String,
    pub state: State,
    pub reason: String,
    pub created_at: i64,
    pub decided_at: i64,
}

type DecisionKey = (i64, String, String, String, String);
type TtdKey = (i64, String, String, i64);

/// The integrator's review target in hours, if it set one.
pub async fn sla_hours<'c, E>(ex: E, integrator_id: &str) -> Result<Option<i64>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar::<_, Option<i64>>("SELECT sla_hours FROM integrators WHERE id = $1")
            .bind(integrator_id)
            .fetch_optional(ex)
            .await?
            .flatten(),
    )
}

/// Counts (`delta` = 1) or uncounts (-1, a deleted case) final decisions:
/// one upsert per distinct key, whatever the number of facts.
pub async fn add_finals(
    tx: &mut Tx,
    facts: &[Final],
    delta: i64,
    shard: i64,
) -> Result<(), sqlx::Error> {
    let mut slas: HashMap<String, Option<i64>> = HashMap::new();
    for f in facts {
        if !slas.contains_key(&f.integrator_id) {
            let sla = sla_hours(&mut **tx, &f.integrator_id).await?;
            slas.insert(f.integrator_id.clone(), sla);
        }
    }
    for s in finals_stmts(facts, delta, &slas, shard) {
        s.execute(tx).await?;
    }
    Ok(())
}

/// `add_finals` as statements for a `Batch`, with each integrator's SLA
/// (`sla_hours`) read by the caller; an integrator missing from `slas` has
/// none.
pub fn finals_stmts(
    facts: &[Final],
    delta: i64,
    slas: &HashMap<String, Option<i64>>,
    shard: i64,
) -> Vec<Stmt> {
    let mut decisions: BTreeMap<DecisionKey, (i64, i64)> = BTreeMap::new();
    let mut ttd: BTreeMap<TtdKey, i64> = BTreeMap::new();
    for f in facts {
        let took = f.decided_at - f.created_at;
        let breached = slas
            .get(&f.integrator_id)
            .copied()
            .flatten()
            .is_some_and(|h| h > 0 && took > h * crate::domain::metrics::HOUR_MS);
        let day = day_of(f.decided_at);
        let e = decisions
            .entry((
                day,
                f.integrator_id.clone(),
                f.agent.clone(),
                f.state.as_str().to_string(),
                f.reason.clone(),
            ))
            .or_default();
        e.0 += delta;
        e.1 += if breached { delta } else { 0 };
        *ttd.entry((
            day,
            f.integrator_id.clone(),
            f.agent.clone(),
            ttd_bucket(took),
        ))
        .or_default() += delta;
    }
    let mut out = Vec::with_capacity(decisions.len() + ttd.len());
    for ((day, integrator, agent, state, reason), (n, breaches)) in decisions {
        out.push(
            Stmt::new(
                "INSERT INTO decision_rollup (day, integrator_id, agent, state, reason, shard, n, breaches) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (day, integrator_id, agent, state, reason, shard) DO UPDATE SET \
                 n = decision_rollup.n + $7, breaches = decision_rollup.breaches + $8",
            )
            .int(day)
            .text(integrator)
            .text(agent)
            .text(state)
            .text(reason)
            .int(shard)
            .int(n)
            .int(breaches),
        );
    }
    for ((day, integrator, agent, bucket), n) in ttd {
        out.push(
            Stmt::new(
                "INSERT INTO ttd_rollup (day, integrator_id, agent, bucket, shard, n) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (day, integrator_id, agent, bucket, shard) DO UPDATE SET n = ttd_rollup.n + $6",
            )
            .int(day)
            .text(integrator)
            .text(agent)
            .int(bucket)
            .int(shard)
            .int(n),
        );
    }
    out
}

/// Counts cases entering (1) or leaving (-1) an awaiting state, by the hour
/// they were created. Other states are not counted here.
pub async fn add_open(
    tx: &mut Tx,
    counts: &BTreeMap<(State, i64), i64>,
    shard: i64,
) -> Result<(), sqlx::Error> {
    for ((state, hour), n) in counts {
        if let Some(s) = open_hour_stmt(shard, *state, *hour, *n) {
            s.execute(tx).await?;
        }
    }
    Ok(())
}

/// One case entering or leaving `state`, for a `Batch`; `None` when the
/// state is not counted here.
pub fn open_stmt(shard: i64, state: State, created_at: i64, delta: i64) -> Option<Stmt> {
    open_hour_stmt(shard, state, hour_of(created_at), delta)
}

fn open_hour_stmt(shard: i64, state: State, hour: i64, n: i64) -> Option<Stmt> {
    (is_awaiting(state) && n != 0).then(|| {
        Stmt::new(
            "INSERT INTO open_by_hour (state, hour, shard, n) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (state, hour, shard) DO UPDATE SET n = open_by_hour.n + $4",
        )
        .text(state.as_str())
        .int(hour)
        .int(shard)
        .int(n)
    })
}

/// The decisions of one (integrator, agent, state, reason) over a range
/// of days.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionAgg {
    pub integrator_id: String,
    pub agent: String,
    pub state: String,
    pub reason: String,
    pub n: i64,
    pub breaches: i64,
}

/// On SQLite, ranges longer than this many days are summed by reading the
/// group-order index whole (one pass, nothing sorted: 70-90 ms for a year
/// at 1M cases where the day range and a sort took 0.6-1.3 s); shorter
/// ones read their days and sort the few rows. `day + 0` is what keeps
/// the planner off the day key, without statistics too. PostgreSQL reads
/// the plain column: it hashes the groups whichever way it reads them,
/// and `day + 0` only blinded its estimate (0.5 % of the rows), so it
/// sorted a year's 100,000 time-to-decision rows on disk instead (work_mem
/// is 4 MB): 290-380 ms for that statement at 1M cases, 55-58 ms hashed.
const LONG_RANGE_DAYS: i64 = 60;

fn day_column(backend: super::Backend, from: i64, to: i64) -> &'static str {
    if backend == super::Backend::Sqlite && to - from > LONG_RANGE_DAYS {
        "day + 0"
    } else {
        "day"
    }
}

/// Decisions of the days `from..to` (to excluded), summed per integrator,
/// agent, state and reason: tens of rows, not one per day.
/// A key whose shards cancel out (a decision counted in one shard, its
/// case's deletion in another) is left out, as a zeroed row is.
pub async fn decisions(
    pool: &AnyPool,
    backend: super::Backend,
    from: i64,
    to: i64,
) -> Result<Vec<DecisionAgg>, sqlx::Error> {
    let day = day_column(backend, from, to);
    sqlx::query_as::<_, DecisionAgg>(&format!(
        "SELECT integrator_id, agent, state, reason, CAST(SUM(n) AS BIGINT) AS n, \
         CAST(SUM(breaches) AS BIGINT) AS breaches FROM decision_rollup \
         WHERE {day} >= $1 AND {day} < $2 AND n <> 0 GROUP BY integrator_id, agent, state, reason \
         HAVING SUM(n) <> 0"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// Decisions per day of the days `from..to`: (day, decisions in any other
/// final state, decisions in `rejected`). Grouped by the day alone, which
/// the primary key's order gives, so SQLite sorts nothing: grouped by day
/// and state it sorted every row of the range in a temporary B-tree (a
/// 1 MB sorter buffer for a year at 1M cases) and took 11 ms against 8 ms
/// in the `sqlite3` shell; the year's dashboard serves a fifth more pages.
pub async fn decisions_per_day(
    pool: &AnyPool,
    from: i64,
    to: i64,
    rejected: &str,
) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT day, CAST(SUM(CASE WHEN state = $3 THEN 0 ELSE n END) AS BIGINT), \
         CAST(SUM(CASE WHEN state = $3 THEN n ELSE 0 END) AS BIGINT) FROM decision_rollup \
         WHERE day >= $1 AND day < $2 GROUP BY day",
    )
    .bind(from)
    .bind(to)
    .bind(rejected)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TtdAgg {
    pub integrator_id: String,
    pub agent: String,
    pub bucket: i64,
    pub n: i64,
}

pub async fn ttd(
    pool: &AnyPool,
    backend: super::Backend,
    from: i64,
    to: i64,
) -> Result<Vec<TtdAgg>, sqlx::Error> {
    let day = day_column(backend, from, to);
    sqlx::query_as::<_, TtdAgg>(&format!(
        "SELECT integrator_id, agent, bucket, CAST(SUM(n) AS BIGINT) AS n FROM ttd_rollup \
         WHERE {day} >= $1 AND {day} < $2 GROUP BY integrator_id, agent, bucket"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// Folds the counter shards (migration 0021) that writers have moved on
/// from back into shard 0, so the rollups the dashboard reads stay one row
/// per key: decisions and times to decision of days before `now`'s day,
/// and awaiting cases created more than a day before `now`. Returns the
/// keys whose shard 0 received a fold. Each table is one statement: the shard rows are
/// deleted and their sums added to shard 0 atomically, so a writer racing
/// the fold either updated a row before it was taken (and its change is
/// in the sum) or finds it gone and inserts a new one. SQLite writes only
/// shard 0: nothing to fold.
#[tracing::instrument(skip(db))]
pub async fn fold_shards(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    if db.backend == super::Backend::Sqlite {
        return Ok(0);
    }
    let day = day_of(now);
    let hour = hour_of(now) - 24;
    let mut folded = 0;
    for (sql, before) in [
        (
            "WITH moved AS (DELETE FROM decision_rollup WHERE shard <> 0 AND day < $1 \
               RETURNING day, integrator_id, agent, state, reason, n, breaches) \
             INSERT INTO decision_rollup (day, integrator_id, agent, state, reason, shard, n, breaches) \
             SELECT day, integrator_id, agent, state, reason, 0, CAST(SUM(n) AS BIGINT), \
               CAST(SUM(breaches) AS BIGINT) FROM moved GROUP BY day, integrator_id, agent, state, reason \
             ON CONFLICT (day, integrator_id, agent, state, reason, shard) DO UPDATE SET \
               n = decision_rollup.n + EXCLUDED.n, breaches = decision_rollup.breaches + EXCLUDED.breaches",
            day,
        ),
        (
            "WITH moved AS (DELETE FROM ttd_rollup WHERE shard <> 0 AND day < $1 \
               RETURNING day, integrator_id, agent, bucket, n) \
             INSERT INTO ttd_rollup (day, integrator_id, agent, bucket, shard, n) \
             SELECT day, integrator_id, agent, bucket, 0, CAST(SUM(n) AS BIGINT) \
               FROM moved GROUP BY day, integrator_id, agent, bucket \
             ON CONFLICT (day, integrator_id, agent, bucket, shard) DO UPDATE SET \
               n = ttd_rollup.n + EXCLUDED.n",
            day,
        ),
        (
            "WITH moved AS (DELETE FROM open_by_hour WHERE shard <> 0 AND hour < $1 \
               RETURNING state, hour, n) \
             INSERT INTO open_by_hour (state, hour, shard, n) \
             SELECT state, hour, 0, CAST(SUM(n) AS BIGINT) FROM moved GROUP BY state, hour \
             ON CONFLICT (state, hour, shard) DO UPDATE SET n = open_by_hour.n + EXCLUDED.n",
            hour,
        ),
    ] {
        folded += sqlx::query(sql)
            .bind(before)
            .execute(db.write())
            .await?
            .rows_affected();
    }
    Ok(folded)
}

/// Awaiting cases (both awaiting states together) counted per age band,
/// summed by the database: `cuts` are `(band, hour)` pairs, oldest band
/// first, and an hour of creation at or before a cut's `hour` counts in
/// its band; a newer one in band 0. Returns `(band, n)` for the bands that
/// have cases (`domain::metrics::backlog_cuts`). One row per band, not one
/// per hour: a year of hours is 8,760 rows, and converting them in the
/// driver was most of the dashboard's time (30-day page at 1M cases on
/// SQLite: 86 req/s reading the hours, 155 reading the bands).
pub async fn open_by_band(
    pool: &AnyPool,
    cuts: &[(usize, i64)],
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let mut case = String::from("CASE");
    for (i, (band, _)) in cuts.iter().enumerate() {
        case.push_str(&format!(" WHEN hour <= ${} THEN {band}", i + 1));
    }
    case.push_str(" ELSE 0 END");
    let sql = format!(
        "SELECT CAST(band AS BIGINT), CAST(SUM(n) AS BIGINT) FROM \
         (SELECT {case} AS band, n FROM open_by_hour) banded \
         GROUP BY band HAVING SUM(n) <> 0"
    );
    let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
    for (_, hour) in cuts {
        q = q.bind(*hour);
    }
    q.fetch_all(pool).await
}

#[derive(sqlx::FromRow)]
struct ScanRow {
    scan_id: String,
    integrator_id: String,
    state: String,
    agent: Option<String>,
    rejection_reason: Option<String>,
    created_at: i64,
    verification_time: Option<i64>,
}

impl Final {
    /// The fact of a stored final process; a final case without a decision
    /// time counts on its creation day.
    pub fn of(
        integrator_id: &str,
        state: State,
        agent: Option<&str>,
        reason: Option<&str>,
        created_at: i64,
        verification_time: Option<i64>,
    ) -> Final {
        Final {
            integrator_id: integrator_id.to_string(),
            agent: agent.unwrap_or_default().to_string(),
            state,
            reason: if state == State::NotVerified {
                reason.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            created_at,
            decided_at: verification_time.unwrap_or(created_at),
        }
    }
}

/// Builds the rollups from the stored processes once, at the first start
/// after the migration that created them (later changes keep them). One
/// transaction: a crash midway leaves them unbuilt, to be built again.
pub async fn build_once(db: &Db) -> anyhow::Result<bool> {
    let mut tx = db.begin().await?;
    // Two servers starting together on one PostgreSQL: the second waits,
    // then finds the rollups built.
    db.lock_audit(&mut tx).await?;
    let built: Option<i64> = sqlx::query_scalar("SELECT built_at FROM rollup_meta WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?;
    if built.is_some() {
        return Ok(false);
    }
    for t in ["decision_rollup", "ttd_rollup", "open_by_hour"] {
        sqlx::query(&format!("DELETE FROM {t}"))
            .execute(&mut *tx)
            .await?;
    }
    let mut after = String::new();
    loop {
        let mut b = Binds::default();
        let sql = format!(
            "SELECT scan_id, integrator_id, state, agent, rejection_reason, created_at, verification_time \
             FROM processes WHERE scan_id > {} ORDER BY scan_id LIMIT 5000",
            b.push(Bind::Text(after.clone()))
        );
        let batch: Vec<ScanRow> = b
            .apply_as(sqlx::query_as::<_, ScanRow>(&sql))
            .fetch_all(&mut *tx)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.scan_id.clone();
        let mut finals = Vec::new();
        let mut open: BTreeMap<(State, i64), i64> = BTreeMap::new();
        for r in &batch {
            let state: State = r
                .state
                .parse()
                .map_err(|e| anyhow::anyhow!("process {}: {e}", r.scan_id))?;
            if state.is_final() {
                finals.push(Final::of(
                    &r.integrator_id,
                    state,
                    r.agent.as_deref(),
                    r.rejection_reason.as_deref(),
                    r.created_at,
                    r.verification_time,
                ));
            } else {
                *open.entry((state, hour_of(r.created_at))).or_default() += 1;
            }
        }
        add_finals(&mut tx, &finals, 1, 0).await?;
        add_open(&mut tx, &open, 0).await?;
    }
    sqlx::query("INSERT INTO rollup_meta (id, built_at) VALUES (1, $1)")
        .bind(crate::domain::now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
