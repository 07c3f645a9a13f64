//! Check-then-act races, run as concurrent bursts against a real server:
//! evidence bytes shared between processes, the login and token throttles,
//! and claim conflicts.

use crate::both_backends;
use crate::helpers::{client, spawn_app, Backend, TestApp, AGENT, SUPERVISOR};
use crate::helpers::{integrator, token};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;

both_backends!(
    acknowledged_uploads_keep_their_bytes_while_the_same_bytes_are_deleted_elsewhere,
    a_burst_of_wrong_passwords_locks_the_account_before_the_right_one,
    the_token_throttle_lets_exactly_its_limit_through,
    a_burst_of_correct_credentials_is_never_throttled,
    a_lost_claim_race_names_the_winner,
    a_burst_of_uploads_stops_exactly_at_the_ceiling,
    racing_decisions_leave_no_orphan_report_pdfs,
    a_burst_of_decisions_writes_each_decisions_rows_once
);

/// A small JPEG whose bytes depend on `n` (two different `n` never share a
/// blob).
fn jpeg(n: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(256, 256, |x, y| {
        image::Rgb([
            (n % 251) as u8,
            (n / 251 % 251) as u8,
            ((x + y) % 2) as u8 * 40,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

async fn send(
    http: &reqwest::Client,
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    tok: &str,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut req = http
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {tok}"))
        .header("Accept", "application/json");
    req = match body {
        Some(b) => req.header("Content-Type", "image/jpeg").body(b),
        None => req.json(&json!({})),
    };
    let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Process A holds image X; at the same moment A drops X (a retake, or the
/// API deleting A) and B receives X. Content addressing stores X once, so
/// A's clean-up and B's adoption race for one file. Every upload of B that
/// was acknowledged must still have its bytes afterwards.
async fn acknowledged_uploads_keep_their_bytes_while_the_same_bytes_are_deleted_elsewhere(
    b: Backend,
) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Race Bank").await;
    let tok = token(&app, &c).await;
    let http = reqwest::Client::new();
    let app = Arc::new(app);
    const PAIRS: u32 = 400;
    let results: Vec<(String, String, u16)> = futures_util::stream::iter(0..PAIRS)
        .map(|i| {
            let (app, http, tok) = (app.clone(), http.clone(), tok.clone());
            async move {
                let new_process = || async {
                    let (s, v) = send(
                        &http,
                        &app,
                        reqwest::Method::POST,
                        "/onboarding",
                        &tok,
                        None,
                    )
                    .await;
                    assert_eq!(s, 200, "{v}");
                    v["scanId"].as_str().unwrap_or_default().to_string()
                };
                let (a, bb) = (new_process().await, new_process().await);
                let x = jpeg(2 * i);
                let (s, v) = send(
                    &http,
                    &app,
                    reqwest::Method::POST,
                    &format!("/api/capture/{a}/image/front"),
                    &tok,
                    Some(x.clone()),
                )
                .await;
                assert_eq!(s, 201, "{v}");
                let sha = v["sha256"].as_str().unwrap_or_default().to_string();
                let drop_x = async {
                    if i % 2 == 0 {
                        send(
                            &http,
                            &app,
                            reqwest::Method::POST,
                            &format!("/api/capture/{a}/image/front"),
                            &tok,
                            Some(jpeg(2 * i + 1)),
                        )
                        .await
                    } else {
                        send(
                            &http,
                            &app,
                            reqwest::Method::DELETE,
                            &format!("/mobbscan-agent/api/verification/{a}"),
                            &tok,
                            None,
                        )
                        .await
                    }
                };
                let b_front = format!("/api/capture/{bb}/image/front");
                let adopt_x = send(&http, &app, reqwest::Method::POST, &b_front, &tok, Some(x));
                let (dropped, adopted) = tokio::join!(drop_x, adopt_x);
                assert!(matches!(dropped.0, 200 | 201), "{dropped:?}");
                (bb, sha, adopted.0)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    // CI once saw a 408 here. actix answers 408 when a connection's first
    // request does not arrive within 5 s of the accept: the request was never
    // read, so nothing about the bytes is known. The likeliest source is a
    // connection hyper opened during the burst and pooled unused. The reads
    // go through a pool of their own, and a 408 is asked again once.
    let http = reqwest::Client::new();
    let mut acknowledged = 0;
    let mut lost = Vec::new();
    for (bb, sha, status) in &results {
        if *status != 201 {
            continue;
        }
        acknowledged += 1;
        let file = app
            .data_dir
            .join("blobs")
            .join(&sha[..2])
            .join(sha.as_str());
        let get = || {
            http.get(app.url(&format!("/mobbscan-agent/{bb}/image/front")))
                .header("Authorization", format!("Bearer {tok}"))
                .header("Accept", "image/jpeg")
                .send()
        };
        let mut r = get().await.unwrap_or_else(|e| panic!("{e}"));
        if r.status() == 408 {
            r = get().await.unwrap_or_else(|e| panic!("{e}"));
        }
        if !file.exists() || r.status() != 200 {
            lost.push((bb.clone(), file.exists(), r.status().as_u16()));
        }
    }
    assert_eq!(
        acknowledged, PAIRS as usize,
        "every upload of B is acknowledged"
    );
    assert!(
        lost.is_empty(),
        "{} of {acknowledged} acknowledged uploads lost their bytes (case, file on disk, GET status): {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// 30 wrong passwords at once: only as many as the policy allows are ever
/// compared, the rest are refused, and the right password afterwards finds
/// the account locked.
async fn a_burst_of_wrong_passwords_locks_the_account_before_the_right_one(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(1).await;
    let app = Arc::new(app);
    let statuses: Vec<u16> = futures_util::stream::iter(0..30)
        .map(|_| {
            let app = app.clone();
            async move {
                let c = client();
                app.post_login(&c, AGENT.0, "wrong-password")
                    .await
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(30)
        .collect()
        .await;
    let compared = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let max = app.settings.lockout.max_failures as usize;
    assert_eq!(compared + refused, 30, "{statuses:?}");
    assert!(
        compared <= max,
        "{compared} wrong passwords were compared (limit {max})"
    );
    let right = app.post_login(&client(), AGENT.0, AGENT.1).await;
    assert_eq!(
        right.status(),
        429,
        "the right password after a burst is refused"
    );
}

/// 40 bad credentials from one address at once: exactly 10 are checked.
async fn the_token_throttle_lets_exactly_its_limit_through(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Throttle Bank").await;
    let http = reqwest::Client::new();
    let app = Arc::new(app);
    let statuses: Vec<u16> = futures_util::stream::iter(0..40)
        .map(|_| {
            let (app, http, key) = (app.clone(), http.clone(), c.api_key.clone());
            async move {
                http.post(app.url("/auth/token"))
                    .json(&json!({"api_key": key, "api_secret": "wrong"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(40)
        .collect()
        .await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (10, 30), "{statuses:?}");
    let r = http
        .post(app.url("/auth/token"))
        .json(&json!({"api_key": c.api_key, "api_secret": c.api_secret}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 429, "the address stays refused");
}

/// 64 correct token requests from one address at once all get a token
/// (attempts in flight are not failures); after 9 failures the slots left
/// are shared by 8 concurrent correct requests, all served, and those
/// successes do not wipe the address's failures: the 10th wrong secret
/// locks it.
async fn a_burst_of_correct_credentials_is_never_throttled(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Busy Bank").await;
    let http = reqwest::Client::new();
    let burst = |n: usize, secret: String| {
        let (http, url, key) = (http.clone(), app.url("/auth/token"), c.api_key.clone());
        async move {
            futures_util::stream::iter(0..n)
                .map(|_| {
                    let (http, url, key, secret) =
                        (http.clone(), url.clone(), key.clone(), secret.clone());
                    async move {
                        http.post(url)
                            .json(&json!({"api_key": key, "api_secret": secret}))
                            .send()
                            .await
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0)
                    }
                })
                .buffer_unordered(n)
                .collect::<Vec<u16>>()
                .await
        }
    };
    let statuses = burst(64, c.api_secret.clone()).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for i in 0..9 {
        let s = burst(1, format!("wrong-{i}")).await;
        assert_eq!(s, vec![401], "failure {i}");
    }
    let statuses = burst(8, c.api_secret.clone()).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(burst(1, "wrong-last".into()).await, vec![401]);
    assert_eq!(
        burst(1, c.api_secret.clone()).await,
        vec![429],
        "the tenth failure locks the address"
    );
}

/// Two reviewers press Claim on the same cases at once: one wins each, and
/// the other's conflict names the winner.
async fn a_lost_claim_race_names_the_winner(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    let agent = Arc::new(app.login(AGENT).await);
    let supervisor = Arc::new(app.login(SUPERVISOR).await);
    let ids = app.cases_in("PENDING_VERIFICATION").await;
    assert!(ids.len() >= 10, "{}", ids.len());
    let ids: Vec<String> = ids.into_iter().take(20).collect();
    let mut lost = 0;
    for id in &ids {
        let path = format!("/desk/cases/{id}/claim");
        let (a, s) = tokio::join!(agent.post(&path, &[]), supervisor.post(&path, &[]));
        let (sa, ss) = (a.status().as_u16(), s.status().as_u16());
        let (ta, ts) = (
            a.text().await.unwrap_or_default(),
            s.text().await.unwrap_or_default(),
        );
        let holder = app
            .process_field(id, "claimed_by")
            .await
            .unwrap_or_default();
        match (sa, ss) {
            (200, 409) => {
                lost += 1;
                assert_eq!(holder, AGENT.0);
                assert!(ts.contains(AGENT.0), "the conflict names nobody: {ts}");
            }
            (409, 200) => {
                lost += 1;
                assert_eq!(holder, SUPERVISOR.0);
                assert!(ta.contains(SUPERVISOR.0), "the conflict names nobody: {ta}");
            }
            other => panic!("exactly one claim wins: {other:?}"),
        }
    }
    assert_eq!(lost, ids.len());
}

/// 60 uploads to one process at once: exactly the ceiling (40) are taken,
/// the rest refused; the count is checked in the transaction that adds.
async fn a_burst_of_uploads_stops_exactly_at_the_ceiling(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Burst Bank").await;
    let tok = token(&app, &c).await;
    let http = reqwest::Client::new();
    let (s, v) = send(
        &http,
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["scanId"].as_str().unwrap_or_default().to_string();
    let app = Arc::new(app);
    let path = format!("/api/capture/{id}/image/front");
    let statuses: Vec<u16> = futures_util::stream::iter(0..60u32)
        .map(|i| {
            let (app, http, tok, path) = (app.clone(), http.clone(), tok.clone(), path.clone());
            async move {
                send(
                    &http,
                    &app,
                    reqwest::Method::POST,
                    &path,
                    &tok,
                    Some(jpeg(10_000 + i)),
                )
                .await
                .0
            }
        })
        .buffer_unordered(60)
        .collect()
        .await;
    let taken = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((taken, refused), (40, 20), "{statuses:?}");
}

/// The status of one MobbScan accept (0 when no answer came).
async fn accept_status(http: &reqwest::Client, app: &TestApp, tok: &str, body: Value) -> u16 {
    http.post(app.url("/mobbscan-agent/accept"))
        .header("Authorization", format!("Bearer {tok}"))
        .json(&body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Two API accepts with personalData race on each case: one wins, and the
/// loser's report PDF (rendered before its transaction) leaves no file:
/// every blob on disk is referenced by an evidence row.
async fn racing_decisions_leave_no_orphan_report_pdfs(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(60).await;
    let c = integrator(&app, "Pdf Bank").await;
    crate::helpers::adopt(&app, &c).await;
    let tok = token(&app, &c).await;
    let ids = crate::helpers::owned_in(&app, &c, "PENDING_VERIFICATION").await;
    assert!(ids.len() >= 4, "{}", ids.len());
    let http = reqwest::Client::new();
    let accept = |id: String, city: &'static str| {
        let (http, tok, app) = (http.clone(), tok.clone(), &app);
        async move {
            accept_status(
                &http,
                app,
                &tok,
                json!({"verificationId": id, "personalData": {"surname": city}}),
            )
            .await
        }
    };
    // Four at once per case, all cases at once: several load the case
    // before the first commits, render their PDF, then lose.
    let cities = ["Alpha", "Beta", "Gamma", "Delta"];
    let outcomes: Vec<(String, Vec<u16>)> = futures_util::future::join_all(ids.iter().map(|id| {
        let accept = &accept;
        async move {
            let all =
                futures_util::future::join_all(cities.iter().map(|c| accept(id.clone(), c))).await;
            (id.clone(), all)
        }
    }))
    .await;
    for (id, mut all) in outcomes {
        all.sort_unstable();
        assert_eq!(all, [200, 409, 409, 409], "{id}");
    }
    let referenced: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT sha256 FROM evidence")
            .fetch_all(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .collect();
    let mut orphans = Vec::new();
    for dir in std::fs::read_dir(app.data_dir.join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if dir.file_name() == "tmp" {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                orphans.push(name);
            }
        }
    }
    assert!(
        orphans.is_empty(),
        "{} unreferenced blobs: {orphans:?}",
        orphans.len()
    );
    let tmp = std::fs::read_dir(app.data_dir.join("blobs").join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "staged files left behind");
}

/// Decisions on different cases at once (each one's rows go to the database
/// as one batch on SQLite): every case gets exactly one decision row, one
/// report, one webhook event and one audit entry; the counters and rollups
/// still equal direct counts; the audit chain is intact.
async fn a_burst_of_decisions_writes_each_decisions_rows_once(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(80).await;
    let c = integrator(&app, "Burst Bank").await;
    crate::helpers::adopt(&app, &c).await;
    let tok = token(&app, &c).await;
    let ids = crate::helpers::owned_in(&app, &c, "PENDING_VERIFICATION").await;
    assert!(ids.len() >= 8, "{}", ids.len());
    let http = reqwest::Client::new();
    // The counter shards are folded meanwhile, as if every day were past
    // (on PostgreSQL; a no-op on SQLite): a decision racing the fold must
    // still be counted exactly once.
    let later = kycdesk::domain::now_ms() + 3 * kycdesk::domain::metrics::DAY_MS;
    let burst_done = std::sync::atomic::AtomicBool::new(false);
    let (statuses, folds) = futures_util::future::join(
        async {
            let s = futures_util::future::join_all(
                ids.iter()
                    .map(|id| accept_status(&http, &app, &tok, json!({"verificationId": id}))),
            )
            .await;
            burst_done.store(true, std::sync::atomic::Ordering::SeqCst);
            s
        },
        async {
            let mut folds = 0;
            while !burst_done.load(std::sync::atomic::Ordering::SeqCst) {
                kycdesk::store::metrics::fold_shards(&app.state.db, later)
                    .await
                    .unwrap_or_else(|e| panic!("fold during the burst: {e}"));
                folds += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            folds
        },
    )
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(folds > 0);
    kycdesk::store::metrics::fold_shards(&app.state.db, later)
        .await
        .unwrap_or_else(|e| panic!("fold after the burst: {e}"));
    let pool = app.state.db.read();
    for id in &ids {
        let one = |sql: &'static str| {
            let id = id.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(id)
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        };
        assert_eq!(
            one("SELECT COUNT(*) FROM decisions WHERE scan_id = $1 AND to_state = 'VERIFIED'")
                .await,
            1,
            "{id}"
        );
        assert_eq!(
            one(
                "SELECT COUNT(*) FROM evidence e JOIN processes p ON p.scan_id = e.scan_id \
                 WHERE e.scan_id = $1 AND e.kind = 'pdf' AND e.evidence_type = 'report' \
                 AND e.sha256 = p.pdf_checksum AND p.state = 'VERIFIED'"
            )
            .await,
            1,
            "{id}: one report, the one the process names"
        );
        assert_eq!(
            one("SELECT COUNT(*) FROM webhook_events WHERE scan_id = $1 AND status = 'VERIFIED'")
                .await,
            1,
            "{id}"
        );
        assert_eq!(
            one("SELECT COUNT(*) FROM audit_log WHERE scan_id = $1 AND action = 'case.decide'")
                .await,
            1,
            "{id}"
        );
    }
    let counted: std::collections::BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT state, CAST(SUM(n) AS BIGINT) FROM state_counts GROUP BY state HAVING SUM(n) <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .into_iter()
    .collect();
    let direct: std::collections::BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM processes GROUP BY state")
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .collect();
    assert_eq!(counted, direct);
    let sum = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(
        sum("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM open_by_hour WHERE state = 'PENDING_VERIFICATION'")
            .await,
        sum("SELECT COUNT(*) FROM processes WHERE state = 'PENDING_VERIFICATION'").await,
    );
    assert_eq!(
        sum("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM decision_rollup WHERE state = 'VERIFIED'").await,
        sum("SELECT COUNT(*) FROM processes WHERE state = 'VERIFIED'").await,
    );
    assert_eq!(
        sum("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM ttd_rollup").await,
        sum("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM decision_rollup").await,
        "every final decision has its time to decision"
    );
    // On PostgreSQL the burst spread its counter updates over shards (the
    // row locks concurrent decisions would otherwise queue on); SQLite's
    // single writer keeps one row per state.
    let shards =
        sum("SELECT COUNT(DISTINCT shard) FROM state_counts WHERE state = 'VERIFIED'").await;
    match b {
        Backend::Postgres => assert!(shards > 1, "{} decisions used {shards} shard(s)", ids.len()),
        Backend::Sqlite => assert_eq!(shards, 1),
    }
    // Folded, the rollups are one row per key again.
    for t in ["decision_rollup", "ttd_rollup", "open_by_hour"] {
        let sql = format!("SELECT COUNT(*) FROM {t} WHERE shard <> 0");
        let left: i64 = sqlx::query_scalar(&sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(left, 0, "{t}");
    }
    assert!(matches!(
        kycdesk::audit::verify(&app.state.db).await,
        Ok(kycdesk::audit::Verdict::Intact { .. })
    ));
}
