//! The two migration sets are twins: migrated, SQLite and PostgreSQL hold
//! the same tables, the same columns (with comparable types and the same
//! nullability) and the same named indexes.

use crate::helpers::{fresh_postgres, require_all};
use std::collections::BTreeSet;

/// (table, column, type family, nullable)
type Column = (String, String, &'static str, bool);

fn family(sql_type: &str) -> &'static str {
    let t = sql_type.to_ascii_lowercase();
    if t.contains("int") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("real") || t.contains("floa") || t.contains("doub") {
        "float"
    } else if t.contains("bool") {
        "boolean"
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes"
    } else {
        "other"
    }
}

async fn sqlite_schema(url: &str) -> (BTreeSet<Column>, BTreeSet<String>) {
    let db = kycdesk::store::Db::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    db.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cols = BTreeSet::new();
    for t in &tables {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info('{t}')"
        ))
        .fetch_all(db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        for (name, ty, notnull, pk) in rows {
            cols.insert((t.clone(), name, family(&ty), notnull == 0 && pk == 0));
        }
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    db.close().await;
    (cols, indexes.into_iter().collect())
}

async fn postgres_schema(url: &str) -> (BTreeSet<Column>, BTreeSet<String>) {
    let db = kycdesk::store::Db::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    db.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let cols = rows
        .into_iter()
        .map(|(t, c, ty, n)| (t, c, family(&ty), n == "YES"))
        .collect();
    // Primary keys and UNIQUE constraints get generated names on each side.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = 'public' \
         AND i.tablename NOT LIKE '_sqlx%' AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
         WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))",
    )
    .fetch_all(db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    db.close().await;
    (cols, indexes.into_iter().collect())
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_schema() {
    let Some(pg) = fresh_postgres().await else {
        assert!(!require_all());
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lite = kycdesk::config::default_database_url(dir.path());
    let (lite_cols, lite_idx) = sqlite_schema(&lite).await;
    let (pg_cols, pg_idx) = postgres_schema(&pg).await;
    assert!(lite_cols.len() > 50, "{}", lite_cols.len());
    let only_lite: Vec<_> = lite_cols.difference(&pg_cols).collect();
    let only_pg: Vec<_> = pg_cols.difference(&lite_cols).collect();
    assert!(
        only_lite.is_empty() && only_pg.is_empty(),
        "columns differ:\n only SQLite: {only_lite:#?}\n only PostgreSQL: {only_pg:#?}"
    );
    let only_lite: Vec<_> = lite_idx.difference(&pg_idx).collect();
    let only_pg: Vec<_> = pg_idx.difference(&lite_idx).collect();
    assert!(
        only_lite.is_empty() && only_pg.is_empty(),
        "indexes differ: only SQLite {only_lite:?}, only PostgreSQL {only_pg:?}"
    );
}

/// Every column holding a case's scanId compares with `processes.scan_id`
/// under one collation. Otherwise a join or correlated subquery between the
/// two has no common collation and PostgreSQL cannot use the other table's
/// index on it: getVerificationProcessData read the whole evidence table
/// for every request (migration 0020).
#[tokio::test]
async fn case_references_share_the_case_ids_collation_so_joins_use_indexes() {
    use sqlx::Connection;
    let Some(pg) = fresh_postgres().await else {
        assert!(!require_all());
        return;
    };
    let db = kycdesk::store::Db::connect(&pg)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    db.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    db.close().await;
    let mut conn = sqlx::PgConnection::connect(&pg)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cols: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT table_name::text, collation_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name = 'scan_id' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(cols.len() >= 10, "{cols:?}");
    let case = cols
        .iter()
        .find(|(t, _)| t == "processes")
        .map(|(_, c)| c.clone())
        .unwrap_or_else(|| panic!("no processes.scan_id in {cols:?}"));
    let odd: Vec<_> = cols.iter().filter(|(_, c)| *c != case).collect();
    assert!(
        odd.is_empty(),
        "scan_id collations differ from processes' {case:?}: {odd:?}"
    );
    // The effect: with sequential scans priced out, the evidence of a case
    // looked up through the case row is read by its index.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT p.scan_id, (SELECT count(*) FROM evidence e WHERE e.scan_id = p.scan_id) \
         FROM processes p WHERE p.scan_id = 'x'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let plan = plan.join("\n");
    assert!(!plan.contains("Seq Scan on evidence"), "{plan}");
    assert!(plan.contains("on evidence"), "{plan}");
}

/// Most cases have no contact, and SQLite's statistics count all NULLs as
/// one value: with a full index on `processes.contact_id`, ANALYZE made a
/// contact look like it had every case, and the planner read the whole
/// table for a contact's timeline (the case page). The partial index
/// (SQLite migration 0020) keeps the lookup on the index after ANALYZE.
#[tokio::test]
async fn a_contacts_cases_are_found_by_index_after_analyze() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    app.seed(20).await;
    let w = app.state.db.write();
    // Enough cases without a contact for the statistics to matter.
    let integrator: String = sqlx::query_scalar("SELECT id FROM integrators LIMIT 1")
        .fetch_one(w)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cases: Vec<_> = (0..2_000)
        .map(|i| {
            kycdesk::store::processes::NewProcess::created(
                uuid::Uuid::new_v4().to_string(),
                integrator.clone(),
                i,
            )
        })
        .collect();
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    for chunk in cases.chunks(100) {
        kycdesk::store::processes::insert_many(&mut tx, chunk, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("ANALYZE")
        .execute(w)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    use sqlx::Row;
    // EXPLAIN QUERY PLAN answers (id, parent, notused, detail).
    let plan: Vec<String> =
        sqlx::query("EXPLAIN QUERY PLAN SELECT scan_id FROM processes WHERE contact_id = $1")
            .bind("c")
            .fetch_all(w)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|r| r.try_get::<String, _>(3).unwrap_or_else(|e| panic!("{e}")))
            .collect();
    let plan = plan.join(" | ");
    assert!(
        plan.contains("USING INDEX processes_contact"),
        "a contact's cases are read by index: {plan}"
    );
}
