//! The writer connection and its transactions (`store::writer`): on SQLite
//! one connection held behind a lock, whose `BEGIN` and `COMMIT` travel
//! with the first and last statements. What must hold on both backends: a
//! transaction dropped midway (a cancelled request) leaves nothing and
//! does not stop the next writer; a failing statement in the committing
//! batch commits nothing; a burst of writers, some committing and some
//! giving up, keeps exactly what was committed.

use crate::both_backends;
use crate::helpers::{fresh_postgres, Backend};
use kycdesk::store::{Batch, Db, Stmt, Tx};
use sqlx::Executor;

both_backends!(
    a_dropped_transaction_leaves_nothing_and_the_next_writer_proceeds,
    a_failing_statement_in_the_commit_batch_commits_nothing,
    a_burst_of_committing_and_abandoned_writers_keeps_exactly_the_committed,
);

/// A migrated database of the backend, and the directory that holds it.
async fn open(b: Backend) -> Option<(Db, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = match b {
        Backend::Postgres => fresh_postgres().await?,
        Backend::Sqlite => kycdesk::config::default_database_url(&dir.path().join("data")),
    };
    let db = Db::connect(&url).await.unwrap_or_else(|e| panic!("{e:#}"));
    db.migrate().await.unwrap_or_else(|e| panic!("{e:#}"));
    Some((db, dir))
}

fn insert(name: &str) -> Stmt {
    Stmt::new("INSERT INTO instance_secrets (name, value) VALUES ($1, $2)")
        .text(name)
        .text("v")
}

/// A transaction begun on the writer, holding one inserted name.
async fn begun_with(db: &Db, name: &str) -> Tx {
    let mut tx = db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    insert(name)
        .execute(&mut tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tx
}

/// A batch of inserts of these names.
fn batch_of(names: &[&str]) -> Batch {
    let mut batch = Batch::default();
    for n in names {
        batch.push(insert(n));
    }
    batch
}

/// The names stored, as a reader sees them.
async fn names(db: &Db, prefix: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT name FROM instance_secrets WHERE name LIKE $1 ORDER BY name",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn a_dropped_transaction_leaves_nothing_and_the_next_writer_proceeds(b: Backend) {
    let Some((db, _dir)) = open(b).await else {
        return;
    };
    // Begun with its first statement (the decision's way), then dropped.
    let (mut tx, rows) = Tx::begin_with(
        db.write(),
        "BEGIN;\nINSERT INTO instance_secrets (name, value) VALUES ($1, 'v') RETURNING name",
        |q| q.bind("drop-a"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 1, "the first statement's RETURNING row");
    insert("drop-b")
        .execute(&mut tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(tx);
    // The next writer: a statement outside any transaction, then a
    // transaction of its own.
    db.write()
        .execute(sqlx::query(
            "INSERT INTO instance_secrets (name, value) VALUES ('drop-c', 'v')",
        ))
        .await
        .unwrap_or_else(|e| panic!("the writer after a dropped transaction: {e}"));
    let tx = begun_with(&db, "drop-d").await;
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&db, "drop-").await, ["drop-c", "drop-d"]);
    // A transaction ended by its own rollback leaves nothing either.
    let tx = begun_with(&db, "drop-e").await;
    tx.rollback().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&db, "drop-").await, ["drop-c", "drop-d"]);
    db.close().await;
}

async fn a_failing_statement_in_the_commit_batch_commits_nothing(b: Backend) {
    let Some((db, _dir)) = open(b).await else {
        return;
    };
    let tx = begun_with(&db, "fail-a").await;
    // The same primary key twice: the second insert fails, and the
    // COMMIT after it must not run.
    let err = tx
        .commit_with(batch_of(&["fail-b", "fail-c", "fail-c", "fail-d"]))
        .await;
    assert!(err.is_err(), "a duplicate key in the batch must fail it");
    assert_eq!(names(&db, "fail-").await, Vec::<String>::new());
    // The writer is usable, and a good batch commits everything.
    let tx = begun_with(&db, "fail-a").await;
    tx.commit_with(batch_of(&["fail-b", "fail-c"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&db, "fail-").await, ["fail-a", "fail-b", "fail-c"]);
    db.close().await;
}

async fn a_burst_of_committing_and_abandoned_writers_keeps_exactly_the_committed(b: Backend) {
    let Some((db, _dir)) = open(b).await else {
        return;
    };
    // Some writers are cancelled while they hold the writer or wait for
    // it (on SQLite one holds it, the others queue behind it).
    let mut cancelled = Vec::new();
    for i in 0..20 {
        let db = db.clone();
        let t = tokio::spawn(async move {
            let tx = begun_with(&db, &format!("cancelled-{i:02}")).await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
        });
        cancelled.push(t);
    }
    let mut tasks = Vec::new();
    for i in 0..60 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("burst-{i:02}");
            let tx = begun_with(&db, &name).await;
            tokio::task::yield_now().await;
            match i % 3 {
                0 => {
                    let mut batch = Batch::default();
                    batch.push(insert(&format!("{name}-batch")));
                    tx.commit_with(batch)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
                1 => tx.commit().await.unwrap_or_else(|e| panic!("{e}")),
                // Given up: dropped inside its transaction.
                _ => drop(tx),
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for t in &cancelled {
        t.abort();
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    for t in cancelled {
        assert!(t.await.is_err_and(|e| e.is_cancelled()));
    }
    let mut expected = Vec::new();
    for i in 0..60 {
        match i % 3 {
            0 => {
                expected.push(format!("burst-{i:02}"));
                expected.push(format!("burst-{i:02}-batch"));
            }
            1 => expected.push(format!("burst-{i:02}")),
            _ => {}
        }
    }
    expected.sort();
    assert_eq!(names(&db, "burst-").await, expected);
    // Whatever the cancelled tasks held is rolled back before the next write.
    let tx = begun_with(&db, "after").await;
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&db, "cancelled-").await, Vec::<String>::new());
    assert_eq!(names(&db, "after").await, ["after"]);
    db.close().await;
}
