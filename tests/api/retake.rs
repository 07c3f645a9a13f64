//! Asking the applicant to retake evidence: the desk's request, the
//! reopened hosted page (only the steps asked for, in the applicant's
//! language, a new expiry), resubmission back to the queue, and both
//! versions kept in the case and its certified zip.

use crate::both_backends;
use crate::certify::{get_bytes, read_entry, verify_cli};
use crate::helpers::{call, integrator, spawn_app, token, Backend, TestApp, AGENT};
use crate::onboarding::{jpeg, put};
use serde_json::{json, Value};

both_backends!(
    retake_round_trip_reopens_only_the_steps_asked_and_keeps_both_versions,
    concurrent_retake_requests_open_exactly_one
);

async fn submit(app: &TestApp, id: &str, tok: &str, lang: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url(&format!("/onboarding/{id}/submit")))
        .header("X-Onboarding-Token", tok)
        .header("X-Onboarding-Lang", lang)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn page(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

async fn evidence_sha(app: &TestApp, id: &str, t: &str) -> String {
    sqlx::query_scalar::<_, String>(
        "SELECT sha256 FROM evidence WHERE scan_id = $1 AND evidence_type = $2",
    )
    .bind(id)
    .bind(t)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn retake_round_trip_reopens_only_the_steps_asked_and_keeps_both_versions(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let c = integrator(&app, "Retake Bank").await;
    let tok = token(&app, &c).await;
    let (s, created) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({"docType": "IDCard"})),
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let id = created["scanId"].as_str().unwrap_or_default().to_string();
    let otok = created["onboardingToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = created["url"].as_str().unwrap_or_default().to_string();
    for (slot, w) in [
        ("image/front", 800),
        ("image/back", 801),
        ("image/selfie", 640),
    ] {
        let (s, v) = put(&app, &id, slot, &otok, jpeg(w, 500)).await;
        assert_eq!(s, 201, "{slot}: {v}");
    }
    let (s, v) = submit(&app, &id, &otok, "es").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    let old_front = evidence_sha(&app, &id, "front").await;
    let old_selfie = evidence_sha(&app, &id, "selfie").await;
    let old_back = evidence_sha(&app, &id, "back").await;
    let old_pdf = evidence_sha(&app, &id, "report").await;

    // The desk: the request needs the claim, ticked steps and a reason.
    let desk = app.login(AGENT).await;
    let path = format!("/desk/cases/{id}/retake");
    let r = desk
        .post(&path, &[("step", "front"), ("reason", "glare")])
        .await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("claim the case"));
    desk.claim(&id).await;
    for (form, want) in [
        (vec![("reason", "glare")], "tick at least one"),
        (vec![("step", "front")], "choose why"),
        (
            vec![("step", "ear"), ("reason", "glare")],
            "ear&#39; is not a step",
        ),
        (
            vec![("step", "front"), ("reason", "other"), ("message", " ")],
            "write a message",
        ),
    ] {
        let r = desk.post(&path, &form).await;
        assert_eq!(r.status(), 400, "{form:?}");
        let body = r.text().await.unwrap_or_default();
        assert!(body.contains(want), "{form:?}: {body}");
        assert_eq!(
            app.process_field(&id, "state").await.as_deref(),
            Some("PENDING_VERIFICATION"),
            "a refused request changes nothing"
        );
    }
    let r = desk
        .post(
            &path,
            &[
                ("step", "selfie"),
                ("step", "front"),
                ("reason", "glare"),
                ("message", "Hold the card away from the window"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("IN_PROGRESS"),
        "the case left the review queue"
    );
    assert_eq!(app.process_field(&id, "claimed_by").await, None);
    assert!(!app.cases_in("PENDING_VERIFICATION").await.contains(&id));
    // Asked once: a second request finds the case gone from review.
    let r = desk
        .post(&path, &[("step", "back"), ("reason", "blurry")])
        .await;
    assert_eq!(r.status(), 409);

    // The integrator is told with the pre-review state and what was asked.
    let payload = sqlx::query_scalar::<_, String>(
        "SELECT payload FROM webhook_events WHERE scan_id = $1 AND status = 'IN_PROGRESS'",
    )
    .bind(&id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let hook: Value = serde_json::from_str(&payload).unwrap_or_default();
    assert_eq!(hook["verificationId"], id.as_str());
    assert_eq!(hook["retake"]["steps"], json!(["front", "selfie"]));
    assert_eq!(hook["retake"]["reason"], "glare");

    // The page reopens in Spanish (the language of the first submission),
    // for the front and the selfie only.
    let (s, html) = page(&url).await;
    assert_eq!(s, 200);
    assert!(html.contains("Necesitamos fotos nuevas"), "{html}");
    assert!(html.contains("Hold the card away from the window"));
    assert!(html.contains("los reflejos ocultan"));
    assert!(html.contains("id=\"step-front\"") && html.contains("id=\"step-selfie\""));
    assert!(!html.contains("id=\"step-back\"") && !html.contains("id=\"step-video\""));
    assert!(
        html.contains(r#"data-slot="image/front" data-done="""#),
        "the old front does not count as retaken"
    );
    let (s, en) = page(&format!("{url}&lang=en")).await;
    assert_eq!(s, 200);
    assert!(en.contains("We need new photos"));

    // Only what was asked for, and all of it before submitting.
    let (s, v) = put(&app, &id, "image/back", &otok, jpeg(820, 500)).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("not_asked")), "{v}");
    let (s, v) = submit(&app, &id, &otok, "es").await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["description"]
            .as_str()
            .unwrap_or_default()
            .contains("document front and selfie"),
        "{v}"
    );
    let (s, _) = put(&app, &id, "image/front", &otok, jpeg(900, 560)).await;
    assert_eq!(s, 201);
    // Retaken twice before submitting: only the pre-request front is kept.
    let (s, _) = put(&app, &id, "image/front", &otok, jpeg(910, 560)).await;
    assert_eq!(s, 201);
    let (s, v) = submit(&app, &id, &otok, "es").await;
    assert_eq!(s, 409, "the selfie is still missing: {v}");
    let (s, _) = put(&app, &id, "image/selfie", &otok, jpeg(660, 500)).await;
    assert_eq!(s, 201);
    let (s, v) = submit(&app, &id, &otok, "es").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION"),
        "back in the queue it left"
    );
    let (s, _) = submit(&app, &id, &otok, "es").await;
    assert_eq!(s, 409, "the link closes again");

    // Both versions kept: the old bytes stay referenced and on disk.
    let kept: Vec<(String, String)> = sqlx::query_as(
        "SELECT evidence_type, sha256 FROM replaced_evidence WHERE scan_id = $1 ORDER BY evidence_type",
    )
    .bind(&id)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        kept,
        vec![
            ("front".to_string(), old_front.clone()),
            ("report".to_string(), old_pdf.clone()),
            ("selfie".to_string(), old_selfie.clone()),
        ]
    );
    for sha in [&old_front, &old_selfie, &old_pdf] {
        let p = app.state.blobs.path_of(sha).unwrap_or_default();
        assert!(p.exists(), "the replaced blob {sha} is still stored");
    }
    let new_front = evidence_sha(&app, &id, "front").await;
    assert_ne!(new_front, old_front);
    assert_eq!(evidence_sha(&app, &id, "back").await, old_back);

    // The case page shows the old evidence and the request in words.
    let html = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(html.contains("Replaced by a retake"), "{html}");
    assert!(
        html.contains("asked the applicant to retake: document front, selfie"),
        "{html}"
    );
    assert!(html.contains("resubmitted the retaken evidence"));
    let old_id = sqlx::query_scalar::<_, String>(
        "SELECT id FROM replaced_evidence WHERE scan_id = $1 AND evidence_type = 'front'",
    )
    .bind(&id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let r = desk
        .get(&format!("/desk/cases/{id}/evidence/{old_id}"))
        .await;
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap_or_default();
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        old_front
    );

    // Decided, the certified zip carries both fronts and the request.
    desk.claim(&id).await;
    let r = desk
        .post(
            &format!("/desk/cases/{id}/decision"),
            &[("action", "accept")],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let (s, zip_bytes) = get_bytes(&app, &format!("/api/zip/{id}"), &tok, "application/json").await;
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("case.zip");
    std::fs::write(&file, &zip_bytes).unwrap_or_else(|e| panic!("{e}"));
    let sha = |b: Vec<u8>| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b));
    assert_eq!(
        sha(read_entry(&file, "evidence/image/front.jpg")),
        new_front
    );
    assert_eq!(
        sha(read_entry(&file, "evidence/replaced/image/front.jpg")),
        old_front
    );
    assert_eq!(
        sha(read_entry(&file, "evidence/replaced/pdf/report.pdf")),
        old_pdf
    );
    let retakes: Value =
        serde_json::from_slice(&read_entry(&file, "retakes.json")).unwrap_or_default();
    assert_eq!(retakes[0]["steps"], json!(["front", "selfie"]));
    assert_eq!(retakes[0]["requestedBy"], AGENT.0);
    assert_eq!(retakes[0]["language"], "es");
    assert_eq!(retakes[0]["replaced"].as_array().map(Vec::len), Some(3));
    let key = kycdesk::certify::signing::public_key_text(&app.state.signing_key.verifying_key());
    let (ok, out) = verify_cli(&file, Some(&key));
    assert!(
        ok && out.starts_with("OK:"),
        "the zip with replaced evidence verifies: {out}"
    );
}

/// Eight presses of "Ask to retake" at once: one request opens, the others
/// are refused, and the queue counters stay equal to the rows.
async fn concurrent_retake_requests_open_exactly_one(b: Backend) {
    let Some(mut app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let id = app
        .cases_in("PENDING_VERIFICATION")
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no case in review"));
    let desk = std::sync::Arc::new(app.login(AGENT).await);
    desk.claim(&id).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let desk = desk.clone();
        let path = format!("/desk/cases/{id}/retake");
        tasks.push(tokio::spawn(async move {
            desk.post(&path, &[("step", "selfie"), ("reason", "face_not_visible")])
                .await
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap_or(0));
    }
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM retakes WHERE scan_id = $1", &id)
            .await,
        1
    );
    for st in ["IN_PROGRESS", "PENDING_VERIFICATION"] {
        let counted = app
            .scalar_i64(
                "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state = $1",
                st,
            )
            .await;
        let direct = app
            .scalar_i64("SELECT COUNT(*) FROM processes WHERE state = $1", st)
            .await;
        assert_eq!(counted, direct, "{st}");
    }
    // An expired request closes the link with a clear page.
    sqlx::query("UPDATE retakes SET expires_at = 1 WHERE scan_id = $1")
        .bind(&id)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let html = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(html.contains("the link expired"), "{html}");

    // The sweep (at start, then every minute) returns the case to the queue
    // it left: the request closed as expired, counters, webhook, history.
    sqlx::query(
        "UPDATE integrators SET webhook_url = 'http://127.0.0.1:9/hook' \
         WHERE id = (SELECT integrator_id FROM processes WHERE scan_id = $1)",
    )
    .bind(&id)
    .execute(app.state.db.write())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let events_before = app
        .scalar_i64(
            "SELECT COUNT(*) FROM webhook_events WHERE scan_id = $1",
            &id,
        )
        .await;
    app.restart().await;
    let mut back = false;
    for _ in 0..100 {
        if app.process_field(&id, "state").await.as_deref() == Some("PENDING_VERIFICATION") {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "the expired retake's case is back in review after the start sweep"
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM retakes WHERE scan_id = $1 AND expired_at IS NOT NULL AND resubmitted_at IS NULL",
            &id
        )
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM webhook_events WHERE scan_id = $1",
            &id
        )
        .await,
        events_before + 1,
        "the integrator hears the case is back in review"
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE scan_id = $1 AND action = 'case.retake_expired' AND actor = 'system'",
            &id
        )
        .await,
        1
    );
    for st in ["IN_PROGRESS", "PENDING_VERIFICATION"] {
        let counted = app
            .scalar_i64(
                "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state = $1",
                st,
            )
            .await;
        let direct = app
            .scalar_i64("SELECT COUNT(*) FROM processes WHERE state = $1", st)
            .await;
        assert_eq!(counted, direct, "{st} after the sweep");
    }
    // A second sweep finds nothing; the case can be sent back again.
    assert_eq!(
        kycdesk::review::retake::return_expired(&app.state.db, kycdesk::domain::now_ms())
            .await
            .ok(),
        Some(0)
    );
    let desk = app.login(AGENT).await;
    let html = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        html.contains("the applicant did not retake the evidence in time → back in Review"),
        "{html}"
    );
    desk.claim(&id).await;
    let r = desk
        .post(
            &format!("/desk/cases/{id}/retake"),
            &[("step", "selfie"), ("reason", "face_not_visible")],
        )
        .await;
    assert_eq!(r.status(), 200, "a new request after the expired one");
}
