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
