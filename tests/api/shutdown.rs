//! SIGTERM to a real `kycdesk serve` with webhook deliveries in flight:
//! every delivery the receiver answered is recorded (and never sent again),
//! the ones still waiting at the end of the grace hand their leases back,
//! and the process exits within the grace.

use crate::both_backends;
use crate::helpers::{fresh_postgres, Backend};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both_backends!(sigterm_records_every_answered_delivery_and_hands_back_the_rest);

fn kycdesk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kycdesk"))
}

#[derive(Default)]
struct Receiver {
    arrived: AtomicUsize,
    answered: Mutex<Vec<String>>,
}

/// The first four deliveries are answered 200 after 1.5 s; later ones hang
/// for a minute (past any grace).
async fn hook(r: web::Data<Receiver>, req: HttpRequest) -> HttpResponse {
    let n = r.arrived.fetch_add(1, Ordering::SeqCst);
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let wait = if n < 4 { 1_500 } else { 60_000 };
    tokio::time::sleep(Duration::from_millis(wait)).await;
    if let Ok(mut a) = r.answered.lock() {
        a.push(id);
    }
    HttpResponse::Ok().finish()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn sigterm_records_every_answered_delivery_and_hands_back_the_rest(b: Backend) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let url = match b {
        Backend::Postgres => match fresh_postgres().await {
            Some(u) => u,
            None => return,
        },
        Backend::Sqlite => kycdesk::config::default_database_url(&data),
    };
    let receiver = Arc::new(Receiver::default());
    let rdata = web::Data::from(receiver.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(rdata.clone())
            .route("/hook", web::post().to(hook))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap_or_else(|e| panic!("{e}"));
    let hook_url = format!("http://127.0.0.1:{}/hook", server.addrs()[0].port());
    tokio::spawn(server.run());

    // The README's boolean env form, on the CLI that checks webhook URLs.
    let out = kycdesk()
        .args(["integrator", "create", "--name", "Shutdown Bank"])
        .args([
            "--webhook-url",
            &hook_url,
            "--database-url",
            &url,
            "--data-dir",
        ])
        .arg(&data)
        .env("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let creds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let integrator = creds["integrator_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let db = kycdesk::store::Db::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = kycdesk::domain::now_ms();
    let mut ids = Vec::new();
    for i in 0..12 {
        let id = format!("msg_shutdown_{i:02}");
        sqlx::query(
            "INSERT INTO webhook_events (id, integrator_id, scan_id, status, payload, created_at, state, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, 'VERIFIED', '{}', $4, 'pending', 0, $4)",
        )
        .bind(&id)
        .bind(&integrator)
        .bind(format!("scan-{i}"))
        .bind(now)
        .execute(db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        ids.push(id);
    }

    let port = free_port();
    let mut child = kycdesk()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &url, "--data-dir"])
        .arg(&data)
        .args(["--shutdown-grace-secs", "3", "--webhook-concurrency", "8"])
        .env("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "yes")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Requests that use the database, so the pool holds connections opened
    // by the HTTP workers too (on PostgreSQL those die with the workers).
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logins = (0..12).map(|_| {
        http.post(format!("{base}/auth/token"))
            .json(&serde_json::json!({"api_key": "kd_nobody", "api_secret": "x"}))
            .send()
    });
    futures_util::future::join_all(logins).await;
    while receiver.arrived.load(Ordering::SeqCst) < 8 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "deliveries did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let term = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (status, err)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let took = term.elapsed();
    let (status, stderr) = status;
    assert!(
        status.map(|s| s.success()).unwrap_or(false),
        "serve exited badly: {stderr}"
    );
    assert!(
        took < Duration::from_secs(3 + 4),
        "shutdown took {took:?}, the grace is 3 s"
    );
    assert!(
        !stderr.contains("being shutdown") && !stderr.contains("database error"),
        "{stderr}"
    );

    let answered = receiver
        .answered
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    assert_eq!(answered.len(), 4, "the four quick deliveries were answered");
    let after = kycdesk::domain::now_ms();
    for id in &ids {
        let (state, attempts, next): (String, i64, i64) = sqlx::query_as(
            "SELECT state, attempts, next_attempt_at FROM webhook_events WHERE id = $1",
        )
        .bind(id)
        .fetch_one(db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let rows: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts WHERE event_id = $1")
                .bind(id)
                .fetch_one(db.read())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        if answered.contains(id) {
            assert_eq!(
                (state.as_str(), attempts, rows),
                ("delivered", 1, 1),
                "{id} was answered 200: its attempt is recorded ({stderr})"
            );
        } else {
            assert_eq!(
                (state.as_str(), attempts, rows),
                ("pending", 0, 0),
                "{id} was never answered"
            );
            assert!(
                next <= after,
                "{id}: the abandoned lease was handed back (due again at once)"
            );
        }
    }
    db.close().await;
}
