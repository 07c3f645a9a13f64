//! Webhooks: a real receiver checks Standard Webhooks signatures; events
//! survive a restart in the middle of retries and arrive exactly once per
//! `webhook-id`.

use crate::both_backends;
use crate::helpers::{adopt, call, owned_in, token};
use crate::helpers::{spawn_app, spawn_with, Backend, TestApp, ADMIN, AGENT};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use hmac::{Hmac, Mac};
use kycdesk::accounts::integrators::{self, Credentials};
use kycdesk::review::{self, Actor};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both_backends!(
    webhooks_are_signed_retried_and_survive_a_restart,
    private_webhook_targets_are_refused
);

#[derive(Debug, Clone)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    authorization: String,
    content_type: String,
    answered: u16,
}

#[derive(Default)]
struct Inbox {
    fail: AtomicBool,
    got: Mutex<Vec<Got>>,
}

impl Inbox {
    fn all(&self) -> Vec<Got> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

async fn hook(inbox: web::Data<Inbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let answered = if inbox.fail.load(Ordering::SeqCst) {
        503
    } else {
        204
    };
    if let Ok(mut g) = inbox.got.lock() {
        g.push(Got {
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
            body: String::from_utf8_lossy(&body).into_owned(),
            authorization: h("authorization"),
            content_type: h("content-type"),
            answered,
        });
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap_or_default())
        .finish()
}

/// A webhook receiver on a random loopback port.
async fn receiver() -> (String, Arc<Inbox>) {
    let inbox = Arc::new(Inbox::default());
    let data = web::Data::from(inbox.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(hook))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap_or_else(|e| panic!("{e}"));
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hook"), inbox)
}

/// Checks a delivery as a receiver would, with its own HMAC (not kycdesk's).
fn signature_ok(secret: &str, g: &Got) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(key) = b64.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{}.{}.{}", g.id, g.timestamp, g.body).as_bytes());
    let want = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    g.signature.split(' ').any(|s| s == want)
}

async fn credentialed(app: &TestApp, url: &str) -> Credentials {
    let c = integrators::create(
        &app.state.db,
        "Hook Bank",
        Some(url),
        &[],
        true,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The reference lets integrators ask for headers of their own.
    integrators::update(
        &app.state.db,
        &c.integrator_id,
        &integrators::IntegratorSettings {
            webhook_url: Some(url.to_string()),
            frame_ancestors: vec![],
            submit_state: "PENDING_VERIFICATION".into(),
            webhook_headers: vec![("Authorization".into(), "Bearer hook-token-123".into())],
            redirect_top: false,
            sla_hours: None,
            confirm_contact: Default::default(),
            phone_country: None,
        },
        true,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    adopt(app, &c).await;
    c
}

async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn webhooks_are_signed_retried_and_survive_a_restart(b: Backend) {
    let Some(mut app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let (url, inbox) = receiver().await;
    let c = credentialed(&app, &url).await;
    inbox.fail.store(true, Ordering::SeqCst);
    let tok = token(&app, &c).await;

    let review = owned_in(&app, &c, "PENDING_VERIFICATION").await;
    let validation = owned_in(&app, &c, "PENDING_VALIDATION").await;
    assert!(review.len() >= 2 && !validation.is_empty());
    let post = reqwest::Method::POST;
    let (s, _) = call(
        &app,
        post.clone(),
        "/mobbscan-agent/accept",
        &tok,
        Some(json!({"verificationId": review[0], "type": "MANUAL", "personalData": {}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&app, post.clone(), "/mobbscan-agent/reject", &tok,
        Some(json!({"verificationId": review[1], "type": "MANUAL", "rejectionComment": "Document expired"}))).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        post.clone(),
        "/mobbscan-agent/pending",
        &tok,
        Some(json!({"verificationId": validation[0], "personalData": {}})),
    )
    .await;
    assert_eq!(s, 200);
    // A new onboarding: a recording arrives (VIDEO_AVAILABLE), then the
    // applicant submits (the integrator's submit state).
    let (s, created) = call(
        &app,
        post.clone(),
        "/onboarding",
        &tok,
        Some(json!({"docType": "Passport"})),
    )
    .await;
    assert_eq!(s, 200);
    let fresh = created["scanId"].as_str().unwrap_or_default().to_string();
    let who = Actor {
        name: "applicant".into(),
        client_addr: "test".into(),
    };
    let st = &app.state;
    let webm = kycdesk::assets::DemoAssets::get("recording.webm")
        .map(|f| f.data.to_vec())
        .unwrap_or_default();
    let stored = kycdesk::evidence::upload::store_bytes(
        webm,
        kycdesk::evidence::intake::Kind::Recording,
        &st.settings.evidence,
        &st.blobs,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    review::attach_evidence(&st.db, &st.blobs, &fresh, "video", stored, &who)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let submitted = review::submit(&st.db, &st.settings, &st.blobs, &fresh, &who, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(submitted.as_str(), "PENDING_VERIFICATION");
    // The submission issued the report PDF.
    let (s, data) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{fresh}"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(data["status"], "PENDING_VERIFICATION");
    assert_eq!(data["pdfChecksum"].as_str().map(str::len), Some(64));

    let expected: BTreeSet<(String, String)> = [
        (review[0].clone(), "VERIFIED"),
        (review[1].clone(), "NOT_VERIFIED"),
        (validation[0].clone(), "PENDING_VERIFICATION"),
        (fresh.clone(), "VIDEO_AVAILABLE"),
        (fresh.clone(), "PENDING_VERIFICATION"),
    ]
    .into_iter()
    .map(|(a, b)| (a, b.to_string()))
    .collect();
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM webhook_events").await,
        5,
        "one outbox row per event, written with the change"
    );
    // The receiver is down: every event is retried at least twice.
    wait_until("two failed attempts per event", 30, || async {
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_events WHERE attempts >= 2 AND state = 'pending'",
        )
        .await
            == 5
    })
    .await;
    assert!(inbox.all().iter().all(|g| g.answered == 503));

    // Restart in the middle of the retries; the receiver recovers.
    app.restart().await;
    inbox.fail.store(false, Ordering::SeqCst);
    wait_until("every event delivered after the restart", 30, || async {
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_events WHERE state = 'delivered'",
        )
        .await
            == 5
    })
    .await;

    let got = inbox.all();
    let secret = integrator_secret(&c);
    for g in &got {
        assert!(signature_ok(&secret, g), "bad signature on {g:?}");
        assert_eq!(g.authorization, "Bearer hook-token-123");
        assert_eq!(g.content_type, "application/json");
        let ts: i64 = g.timestamp.parse().unwrap_or_default();
        assert!(
            (chrono::Utc::now().timestamp() - ts).abs() < 300,
            "stale timestamp {ts}"
        );
    }
    let mut ids_by_event: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut event_by_id: BTreeMap<String, (String, String)> = BTreeMap::new();
    for g in got.iter().filter(|g| g.answered == 204) {
        let v: Value = serde_json::from_str(&g.body).unwrap_or_default();
        assert_eq!(
            v.as_object().map(|o| o.len()),
            Some(2),
            "body is {{verificationId, status}}: {}",
            g.body
        );
        let key = (
            v["verificationId"].as_str().unwrap_or_default().to_string(),
            v["status"].as_str().unwrap_or_default().to_string(),
        );
        if let Some(prev) = event_by_id.insert(g.id.clone(), key.clone()) {
            assert_eq!(prev, key, "one webhook-id, one event");
        }
        ids_by_event.entry(key).or_default().insert(g.id.clone());
    }
    assert_eq!(
        ids_by_event.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every event delivered, nothing else"
    );
    for (k, ids) in &ids_by_event {
        assert_eq!(ids.len(), 1, "{k:?} delivered under several ids: {ids:?}");
    }

    // The desk shows every attempt to admins, and redelivers with the same id.
    let agent = app.login(AGENT).await;
    assert_eq!(agent.get("/desk/admin/webhooks").await.status(), 403);
    let admin = app.login(ADMIN).await;
    let page = admin
        .get("/desk/admin/webhooks")
        .await
        .text()
        .await
        .unwrap_or_default();
    let (event_id, _) = event_by_id
        .iter()
        .next()
        .unwrap_or_else(|| panic!("no event"));
    assert!(page.contains(event_id.as_str()), "the log lists {event_id}");
    assert!(page.contains("HTTP 503"), "failed attempts are shown");
    let before = got
        .iter()
        .filter(|g| &g.id == event_id && g.answered == 204)
        .count();
    let r = admin
        .post(&format!("/desk/admin/webhooks/{event_id}/redeliver"), &[])
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    wait_until("the redelivery", 20, || async {
        inbox
            .all()
            .iter()
            .filter(|g| &g.id == event_id && g.answered == 204)
            .count()
            > before
    })
    .await;
}

/// The secret the test integrator signs with, from the database.
fn integrator_secret(c: &Credentials) -> String {
    c.webhook_secret.clone()
}

async fn private_webhook_targets_are_refused(b: Backend) {
    let Some(app) = spawn_with(b, |s| s.webhooks.allow_private = false).await else {
        return;
    };
    app.seed(30).await;
    let (url, inbox) = receiver().await;
    // Refused when configured...
    let refused = integrators::create(
        &app.state.db,
        "Sneaky",
        Some(&url),
        &[],
        false,
        "test",
        "test",
    )
    .await;
    let msg = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("private"), "{msg}");
    let refused = integrators::create(
        &app.state.db,
        "Sneaky",
        Some("http://localhost:1/x"),
        &[],
        false,
        "test",
        "test",
    )
    .await;
    assert!(refused.is_err());
    // ...and at delivery, for a URL that got in while it was allowed.
    let c = credentialed(&app, &url).await;
    let tok = token(&app, &c).await;
    let review = owned_in(&app, &c, "PENDING_VERIFICATION").await;
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/accept",
        &tok,
        Some(json!({"verificationId": review[0], "personalData": {}})),
    )
    .await;
    assert_eq!(s, 200);
    wait_until("a refused attempt", 20, || async {
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_attempts WHERE error LIKE '%private%'",
        )
        .await
            >= 1
    })
    .await;
    assert!(
        inbox.all().is_empty(),
        "nothing reached the private address"
    );
}
