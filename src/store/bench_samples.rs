//! What `kycdesk bench` reads to load and sample its cases: counts, fresh
//! statistics, and case ids to request.

use super::{Backend, Db};

pub async fn count_processes(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM processes")
        .fetch_one(db.read())
        .await
}

/// Fresh statistics (and, on PostgreSQL, a visibility map so index-only
/// scans work), as a production database has after autovacuum. Every
/// table, not only the loaded ones: the bench's own decisions and page
/// views fill evidence, the rollups and the audit log, and on a server with
/// autovacuum off (as this project's machines are) evidence kept the
/// statistics of an empty table. getVerificationProcessData then read its
/// evidence by a sequential scan and fell from 6,700 to 2,000 req/s over
/// successive runs at 1M cases.
pub async fn analyze(db: &Db) -> Result<(), sqlx::Error> {
    let sql = match db.backend {
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Sqlite => "ANALYZE",
    };
    sqlx::query(sql).execute(db.write()).await?;
    if db.backend == Backend::Sqlite {
        super::drop_sample_statistics(db.write()).await?;
    }
    Ok(())
}

/// The keyset position (created_at, scan_id) `offset` cases deep into the
/// pending queue.
pub async fn pending_position(db: &Db, offset: i64) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT created_at, scan_id FROM processes WHERE state = 'PENDING_VERIFICATION' ORDER BY created_at, scan_id LIMIT 1 OFFSET $1",
    )
    .bind(offset)
    .fetch_optional(db.read())
    .await
}

pub async fn pending_ids(db: &Db, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE state = 'PENDING_VERIFICATION' ORDER BY scan_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// An integrator with a pending case.
pub async fn integrator_with_pending(db: &Db) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT integrator_id FROM processes WHERE state = 'PENDING_VERIFICATION' LIMIT 1",
    )
    .fetch_one(db.read())
    .await
}

pub async fn ids_of_integrator(
    db: &Db,
    integrator_id: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT scan_id FROM processes WHERE integrator_id = $1 LIMIT $2")
        .bind(integrator_id)
        .bind(limit)
        .fetch_all(db.read())
        .await
}

/// Cases of one integrator waiting for review, in a stable order.
pub async fn pending_of_integrator(
    db: &Db,
    integrator_id: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE integrator_id = $1 AND state = 'PENDING_VERIFICATION' \
         ORDER BY created_at, scan_id LIMIT $2",
    )
    .bind(integrator_id)
    .bind(limit)
    .fetch_all(db.read())
    .await
}
