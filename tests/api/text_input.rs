//! Text that PostgreSQL cannot store, and values its binary protocol is
//! strict about, on every path that takes them: U+0000 is refused at the
//! edge with 400 and changes nothing (both backends alike); optional
//! scores bind as NULL and as numbers on the same pooled connections.

use crate::both_backends;
use crate::helpers::{adopt, call, integrator, owned_in, token};
use crate::helpers::{spawn_app, Backend, TestApp, AGENT};
use serde_json::{json, Value};

both_backends!(
    nul_characters_are_refused_at_the_edge_and_change_nothing,
    optional_scores_bind_after_null_on_every_path
);

async fn audit_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn nul_characters_are_refused_at_the_edge_and_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let c = integrator(&app, "Nul Bank").await;
    adopt(&app, &c).await;
    let tok = token(&app, &c).await;
    let pending = owned_in(&app, &c, "PENDING_VERIFICATION").await;
    let id = pending[0].clone();
    let (_, created) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({})),
    )
    .await;
    let fresh = created["scanId"].as_str().unwrap_or_default().to_string();
    let processes = app
        .scalar_i64("SELECT COUNT(*) FROM processes WHERE scan_id <> $1", "")
        .await;
    let audit = audit_count(&app).await;
    let doc_before = app.process_field(&id, "document").await;

    let api: Vec<(&str, String, Value)> = vec![
        (
            "/auth/token",
            "POST".into(),
            json!({"api_key": "kd_\u{0}", "api_secret": "x"}),
        ),
        (
            "/onboarding",
            "POST".into(),
            json!({"docSpecificType": "ID\u{0}card"}),
        ),
        (
            "/onboarding",
            "POST".into(),
            json!({"redirectUrl": "https://bank.example/\u{0}"}),
        ),
        (
            "/mobbscan-agent/accept",
            "POST".into(),
            json!({"verificationId": id, "personalData": {"surname": "Ruiz\u{0}"}}),
        ),
        (
            "/mobbscan-agent/reject",
            "POST".into(),
            json!({"verificationId": id, "rejectionComment": "bad\u{0}"}),
        ),
        (
            "capture",
            "POST".into(),
            json!({"document": {"name": "A\u{0}"}, "facialMatchingScore": 0.9}),
        ),
    ];
    let http = reqwest::Client::new();
    for (path, method, body) in api {
        let path = if path == "capture" {
            format!("/api/capture/{fresh}/document")
        } else {
            path.to_string()
        };
        let r = http
            .request(
                method.parse().unwrap_or(reqwest::Method::POST),
                app.url(&path),
            )
            .header("Authorization", format!("Bearer {tok}"))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap_or_default();
        assert!(
            v["description"]
                .as_str()
                .is_some_and(|d| d.contains("U+0000")),
            "{path}: {v}"
        );
    }
    // The Apiture family answers in its own error shape.
    let r = http
        .get(app.url("/identity/fraudRiskReports?q=a%00b"))
        .header("Authorization", format!("Bearer {tok}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap_or_default();
    assert!(
        v["_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("U+0000")),
        "{v}"
    );

    // The desk: login, search, notes, decisions.
    let raw = crate::helpers::client();
    let r = app.post_login(&raw, "agent@kycdesk.demo\u{0}", "x").await;
    assert_eq!(r.status(), 400);
    let desk = app.login(AGENT).await;
    let r = desk.get("/desk/queue?q=N%C3%BA%00ez").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap_or_default().contains("U+0000"));
    desk.claim(&id).await;
    let audit_after_claim = audit_count(&app).await;
    for (path, form) in [
        (
            format!("/desk/cases/{id}/notes"),
            vec![("body", "hello\u{0}")],
        ),
        (
            format!("/desk/cases/{id}/decision"),
            vec![
                ("decision", "reject"),
                ("reason", "Document expired"),
                ("comment", "x\u{0}"),
            ],
        ),
        (
            format!("/desk/cases/{id}/edit"),
            vec![("pd_surname", "Ruiz\u{0}"), ("reason", "typo")],
        ),
    ] {
        let r = desk.post(&path, &form).await;
        assert_eq!(r.status(), 400, "{path}");
    }

    // Nothing changed anywhere.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM processes WHERE scan_id <> $1", "")
            .await,
        processes
    );
    assert_eq!(app.process_field(&id, "document").await, doc_before);
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    assert!(audit <= audit_after_claim);
    assert_eq!(
        audit_count(&app).await,
        audit_after_claim,
        "a refused request wrote to the audit log"
    );
}

/// On PostgreSQL a statement first prepared with a NULL score must still
/// take a number on the same connection: run each path with no scores, then
/// with scores, several times so pooled connections are reused.
async fn optional_scores_bind_after_null_on_every_path(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(90).await;
    let c = integrator(&app, "Score Bank").await;
    adopt(&app, &c).await;
    let tok = token(&app, &c).await;

    // Capture: a document without scores, then with scores.
    for round in 0..3 {
        for scores in [None, Some((0.91, 0.88))] {
            let (_, created) = call(
                &app,
                reqwest::Method::POST,
                "/onboarding",
                &tok,
                Some(json!({})),
            )
            .await;
            let id = created["scanId"].as_str().unwrap_or_default().to_string();
            let mut body = json!({"document": {"name": "Ana", "surname": format!("Ruiz{round}")}});
            if let Some((m, l)) = scores {
                body["facialMatchingScore"] = json!(m);
                body["facialLivenessScore"] = json!(l);
            }
            let (s, v) = call(
                &app,
                reqwest::Method::POST,
                &format!("/api/capture/{id}/document"),
                &tok,
                Some(body),
            )
            .await;
            assert_eq!(s, 200, "capture with {scores:?}: {v}");
        }
    }

    // Cases without scores (as a capture engine may leave them) and with.
    let pending = owned_in(&app, &c, "PENDING_VERIFICATION").await;
    assert!(pending.len() >= 8, "{}", pending.len());
    let (no_scores, with_scores) = pending.split_at(pending.len() / 2);
    for id in no_scores {
        let doc = app.process_field(id, "document").await.unwrap_or_default();
        let mut doc: Value = serde_json::from_str(&doc).unwrap_or_default();
        doc["facialMatchingScore"] = Value::Null;
        doc["facialLivenessScore"] = Value::Null;
        sqlx::query(
            "UPDATE processes SET document = $1, facial_matching_score = NULL, facial_liveness_score = NULL WHERE scan_id = $2",
        )
        .bind(doc.to_string())
        .bind(id)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    // Desk edits: NULL scores first, then numbers.
    let desk = app.login(AGENT).await;
    for id in no_scores.iter().take(2).chain(with_scores.iter().take(2)) {
        desk.claim(id).await;
        let r = desk
            .post(
                &format!("/desk/cases/{id}/edit"),
                &[("pd_city", "Sampletown"), ("reason", "keyed in")],
            )
            .await;
        assert_eq!(r.status(), 200, "desk edit of {id}");
        desk.post(&format!("/desk/cases/{id}/release"), &[]).await;
    }

    // API accepts with personalData: NULL scores first, then numbers.
    for id in no_scores
        .iter()
        .skip(2)
        .take(2)
        .chain(with_scores.iter().skip(2).take(2))
    {
        let (s, v) = call(
            &app,
            reqwest::Method::POST,
            "/mobbscan-agent/accept",
            &tok,
            Some(json!({"verificationId": id, "personalData": {"city": "Sampletown"}})),
        )
        .await;
        assert_eq!(s, 200, "accept of {id}: {v}");
        assert_eq!(
            app.process_field(id, "state").await.as_deref(),
            Some("VERIFIED")
        );
    }
}
