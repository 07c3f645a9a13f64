//! PostgreSQL connections the server cut while they sat in the pool (a
//! restart, a firewall's idle timeout) are replaced before a request meets
//! them, although a connection in steady use is handed out without a ping.

use crate::helpers::{postgres_admin_url, spawn_app, Backend, AGENT};
use sqlx::Connection;

async fn burst(desk: &crate::helpers::Desk, n: usize) -> Vec<u16> {
    let gets = (0..n).map(|_| desk.get("/desk/queue"));
    futures_util::future::join_all(gets)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_while_idle_are_replaced_before_use() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    app.seed(5).await;
    let desk = app.login(AGENT).await;
    // Several requests at once leave several connections in the pool.
    assert_eq!(burst(&desk, 8).await, vec![200; 8], "before the cut");

    let db = url::Url::parse(&app.database_url).unwrap_or_else(|e| panic!("{e}"));
    let db = db.path().trim_start_matches('/').to_string();
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .fetch_all(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cut.iter().filter(|ok| **ok).count() >= 2,
        "the server's pooled connections were cut: {cut:?}"
    );

    // Idle past the bound: every cut connection is pinged, found dead and
    // replaced, so no request sees the cut.
    tokio::time::sleep(kycdesk::store::PING_AFTER_IDLE + std::time::Duration::from_millis(400))
        .await;
    assert_eq!(burst(&desk, 8).await, vec![200; 8], "right after the cut");
    for i in 0..10 {
        let r = desk.get("/desk/queue").await;
        assert_eq!(r.status(), 200, "request {i} after the cut");
    }
}

/// Each HTTP worker runs its own runtime, and a connection's socket belongs
/// to the runtime that opened it. A worker's handle (`Db::for_worker`)
/// opens its connections in a pool of its own, so they never reach the
/// shared pool, whose other users would otherwise wait on the worker's
/// runtime for every answer, and fail once that runtime is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_connections_stay_with_its_runtime() {
    let Some(url) = crate::helpers::fresh_postgres().await else {
        return;
    };
    let db = kycdesk::store::Db::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let one = "SELECT CAST(1 AS BIGINT)";
    // A worker as actix makes one: a thread with a runtime of its own,
    // which opens several connections at once and then stops.
    let shared = db.clone();
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let w = shared.for_worker();
            let answers = futures_util::future::join_all(
                (0..4).map(|_| sqlx::query_scalar::<_, i64>(one).fetch_one(w.read())),
            )
            .await;
            answers
                .into_iter()
                .map(|a| a.map_err(|e| e.to_string()))
                .collect::<Vec<_>>()
        })
    })
    .join()
    .unwrap_or_else(|_| panic!("the worker thread panicked"));
    assert_eq!(worker, vec![Ok(1); 4], "the worker's reads");

    // Its runtime is gone; the shared pool answers a burst as before.
    let answers = futures_util::future::join_all(
        (0..8).map(|_| sqlx::query_scalar::<_, i64>(one).fetch_one(db.read())),
    )
    .await;
    let answers: Vec<_> = answers
        .into_iter()
        .map(|a| a.map_err(|e| e.to_string()))
        .collect();
    assert_eq!(
        answers,
        vec![Ok(1); 8],
        "the shared pool after the worker stopped"
    );
    db.close().await;

    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
