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
