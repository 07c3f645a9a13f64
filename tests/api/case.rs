use crate::both_backends;
use crate::helpers::{between, spawn_app, spawn_with, Backend, AGENT, SUPERVISOR};
use kycdesk::review::{self, Actor, CaseError, Decision, DecisionInput};

both_backends!(
    case_page_shows_fields_evidence_and_history,
    case_page_neighbours_follow_the_queue_and_history_outlives_views,
    recordings_seek_with_range_and_thumbnails_decode,
    edits_keep_the_original_value_and_revalidate,
    edited_values_are_checked_and_a_refusal_changes_nothing,
    decisions_are_final_and_conflicts_are_clear,
    two_racing_decisions_one_wins_nothing_half_written,
    claims_block_others_until_released_or_expired,
    concurrent_writes_never_fail,
    reads_by_key_answer_as_each_read_alone
);

async fn case_page_shows_fields_evidence_and_history(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("VERIFIED").await.remove(0);
    let html = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    let number = app
        .process_field(&id, "document_number")
        .await
        .unwrap_or_default();
    assert!(html.contains(&number), "document number shown");
    assert!(html.contains("data-validation=\"mrzCheckDigits\""));
    assert!(
        html.contains("<b>MRZ check digits</b> <small class=\"code\">mrzCheckDigits</small>"),
        "validations read as words, the code beside"
    );
    assert!(html.contains("This case is final"));
    // Evidence is captioned in words; the stored code is a data attribute.
    assert!(
        html.contains("data-evidence=\"front\"")
            && html.contains("<figcaption>Document front <span class=\"tools\">")
            && html.contains("alt=\"Selfie\" class=\"evidence-img\""),
        "evidence captions read as words"
    );
    assert!(
        !html.contains("<figcaption>front "),
        "no raw evidence codes"
    );
    // Accepting a case in review that fails a check asks first, naming it;
    // one that passes everything does not.
    let mut asked = 0;
    for (failing, id) in sqlx::query_as::<_, (String, String)>(
        "SELECT failing_validations, scan_id FROM processes WHERE state = 'PENDING_VERIFICATION' ORDER BY created_at",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    {
        let page = desk
            .get(&format!("/desk/cases/{id}"))
            .await
            .text()
            .await
            .unwrap_or_default();
        let first = failing.split(',').find(|f| !f.is_empty());
        match first {
            Some(f) => {
                let label = kycdesk::domain::validation::label(f);
                let question = crate::helpers::between(&page, "data-confirm=\"", "\"")
                    .unwrap_or_else(|| panic!("{id} fails {failing}: no confirmation"));
                assert!(
                    question.starts_with("This case fails: ") && question.contains(label),
                    "{id}: {question}"
                );
                asked += 1;
            }
            None => assert!(!page.contains("data-confirm="), "{id} passes every check"),
        }
    }
    assert!(asked > 0, "the demo has cases in review that fail a check");
    assert!(
        !html.contains("id=\"decision-form\""),
        "no decision form on a final case"
    );
    // The PDF is inline and downloadable, served as a PDF.
    let pdf =
        between(&html, "<iframe class=\"pdf\" src=\"", "\"").unwrap_or_else(|| panic!("no pdf"));
    let r = desk.get(pdf).await;
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    let bytes = r.bytes().await.unwrap_or_default();
    assert!(bytes.starts_with(b"%PDF-"));
    let doc: serde_json::Value =
        serde_json::from_str(&app.process_field(&id, "document").await.unwrap_or_default())
            .unwrap_or_default();
    match pdf_text(&bytes) {
        Some(text) => {
            assert!(
                text.contains(&number),
                "pdftotext finds the document number: {text}"
            );
            assert!(
                text.contains(doc["name"].as_str().unwrap_or("?")),
                "pdftotext finds the name: {text}"
            );
        }
        None if crate::helpers::require_all() => panic!("pdftotext is required (poppler-utils)"),
        None => eprintln!("SKIPPED pdftotext check: poppler-utils not installed"),
    }
    let views = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.view' AND scan_id = $1",
            &id,
        )
        .await;
    assert_eq!(views, 1);
    let downloads = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'evidence.download' AND scan_id = $1",
            &id,
        )
        .await;
    assert_eq!(downloads, 1);
    // An unknown case is a clear 404.
    let missing = desk
        .get("/desk/cases/00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(missing.status(), 404);
}

/// j / k follow each queue's order (oldest first in review, newest first
/// once final), and a case viewed hundreds of times keeps its claims in
/// its history (views are audited, not listed).
async fn case_page_neighbours_follow_the_queue_and_history_outlives_views(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let desk = app.login(AGENT).await;
    let page = |id: String| {
        let desk = &desk;
        async move {
            desk.get(&format!("/desk/cases/{id}"))
                .await
                .text()
                .await
                .unwrap_or_default()
        }
    };
    // The case a link (`id="next-case"`) goes to: its href comes first.
    let link = |html: &str, id: &str| -> Option<String> {
        let at = html.find(&format!("id=\"{id}\""))?;
        let href = "href=\"/desk/cases/";
        let start = html[..at].rfind(href)? + href.len();
        html[start..].split('"').next().map(str::to_string)
    };
    let open = app.cases_in("PENDING_VERIFICATION").await;
    assert!(open.len() >= 3, "the seed has cases in review");
    let html = page(open[1].clone()).await;
    assert_eq!(link(&html, "next-case").as_deref(), Some(open[2].as_str()));
    assert_eq!(link(&html, "prev-case").as_deref(), Some(open[0].as_str()));
    let first = page(open[0].clone()).await;
    assert_eq!(
        link(&first, "prev-case"),
        None,
        "the oldest has no previous"
    );
    let done = app.cases_in("VERIFIED").await;
    assert!(done.len() >= 3, "the seed has verified cases");
    let html = page(done[1].clone()).await;
    assert_eq!(link(&html, "next-case").as_deref(), Some(done[0].as_str()));
    assert_eq!(link(&html, "prev-case").as_deref(), Some(done[2].as_str()));

    let id = open[1].clone();
    let r = desk.post(&format!("/desk/cases/{id}/claim"), &[]).await;
    assert!(r.status().is_success(), "claim: {}", r.status());
    for _ in 0..600 {
        kycdesk::audit::record_now(
            &app.state.db,
            kycdesk::audit::Event {
                actor: AGENT.0,
                action: "case.view",
                scan_id: Some(&id),
                client_addr: "127.0.0.1",
                detail: serde_json::json!({}),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let html = page(id.clone()).await;
    assert!(
        html.contains("claimed the case"),
        "the claim is still in the history after 600 views"
    );
}

async fn recordings_seek_with_range_and_thumbnails_decode(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let desk = app.login(AGENT).await;
    let id: String = sqlx::query_scalar(
        "SELECT scan_id FROM evidence WHERE kind = 'recording' ORDER BY scan_id LIMIT 1",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("the demo has a recording: {e}"));
    let html = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    let video = between(&html, "<video controls preload=\"metadata\" src=\"", "\"")
        .unwrap_or_else(|| panic!("no video"));
    let whole = desk.get(video).await;
    assert_eq!(whole.headers()["content-type"], "video/webm");
    let whole = whole.bytes().await.unwrap_or_default();
    assert!(whole.len() > 10_000);
    let part = desk
        .client
        .get(desk.url(video))
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap_or_default(), whole[100..200]);

    let thumb = between(&html, "<img src=\"", "\"").unwrap_or_else(|| panic!("no image"));
    let r = desk.get(thumb).await;
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(
        r.headers()["cache-control"],
        "no-store",
        "ID images must not stay in the browser cache after logout"
    );
    let img = image::load_from_memory(&r.bytes().await.unwrap_or_default())
        .unwrap_or_else(|e| panic!("thumbnail decodes: {e}"));
    assert!(img.width() <= 480 && img.width() >= 200, "{}", img.width());
    let cached = std::fs::read_dir(app.data_dir.join("thumbs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(cached, 1, "thumbnails are cached on disk");
}

async fn edits_keep_the_original_value_and_revalidate(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    let path = format!("/desk/cases/{id}/edit");
    // Without a claim nothing changes.
    let r = desk
        .post(&path, &[("pd_surname", "Nobody"), ("reason", "x")])
        .await;
    assert_eq!(r.status(), 409);
    desk.claim(&id).await;
    let doc0: serde_json::Value =
        serde_json::from_str(&app.process_field(&id, "document").await.unwrap_or_default())
            .unwrap_or_default();
    let original = doc0["surname"].as_str().unwrap_or_default().to_string();
    // A reason is required; nothing is written without it.
    let r = desk
        .post(&path, &[("pd_surname", "Ruiz Gil"), ("reason", "  ")])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM field_edits WHERE scan_id = $1", &id)
            .await,
        0
    );
    let r = desk
        .post(
            &path,
            &[
                ("pd_surname", "Ruiz Gil"),
                ("pd_dateOfExpiry", "2001-01-01"),
                ("reason", "OCR misread"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = desk
        .post(
            &path,
            &[("pd_surname", "Ruiz Gómez"), ("reason", "second look")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value =
        serde_json::from_str(&app.process_field(&id, "document").await.unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(doc["surname"], "Ruiz Gómez");
    let originals: Vec<(Option<String>, Option<String>, String)> = sqlx::query_as("SELECT original_value, new_value, reason FROM field_edits WHERE scan_id = $1 AND field = 'surname' ORDER BY at, id")
        .bind(&id)
        .fetch_all(app.state.db.read())
        .await
        .unwrap_or_default();
    assert_eq!(originals.len(), 2);
    assert!(
        originals
            .iter()
            .all(|(o, _, _)| o.as_deref() == Some(original.as_str())),
        "both edits keep the extracted value"
    );
    // Two edits can share a millisecond: find the second by its reason.
    let second = originals.iter().find(|(_, _, r)| r == "second look");
    assert_eq!(second.and_then(|s| s.1.as_deref()), Some("Ruiz Gómez"));
    let v: serde_json::Value = serde_json::from_str(
        &app.process_field(&id, "validations")
            .await
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(
        v["documentNotExpired"]["result"], "fail",
        "validations follow the edit"
    );
    let search = desk
        .get("/desk/queue?q=ruiz")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(search.contains(&id), "search keys follow the edit");
    let page = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains(&format!("(extracted: {original})")));
    // An unknown field is refused whole.
    let r = desk
        .post(&path, &[("pd_nationality", "XXX"), ("reason", "x")])
        .await;
    assert_eq!(r.status(), 400);
    // A stale version is refused.
    let r = desk
        .post(
            &path,
            &[("pd_name", "Ana"), ("reason", "x"), ("version", "1")],
        )
        .await;
    assert_eq!(r.status(), 409);
}

async fn decisions_are_final_and_conflicts_are_clear(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    let desk = app.login(AGENT).await;
    let review = app.cases_in("PENDING_VERIFICATION").await;
    let before_verified = app.cases_in("VERIFIED").await.len() as i64;
    let (a, r) = (&review[0], &review[1]);
    desk.claim(a).await;
    let ok = desk
        .post(
            &format!("/desk/cases/{a}/decision"),
            &[("action", "accept"), ("comment", "looks right")],
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        app.process_field(a, "state").await.as_deref(),
        Some("VERIFIED")
    );
    assert_eq!(
        app.process_field(a, "agent").await.as_deref(),
        Some(AGENT.0)
    );
    assert_eq!(
        app.process_field(a, "claimed_by").await,
        None,
        "a final case drops its claim"
    );
    let again = desk
        .post(
            &format!("/desk/cases/{a}/decision"),
            &[("action", "reject"), ("reason", "Document expired")],
        )
        .await;
    assert_eq!(again.status(), 409);
    assert!(again
        .text()
        .await
        .unwrap_or_default()
        .contains("already Verified (VERIFIED); final cases cannot be changed"));
    let counted = app
        .scalar_i64(
            "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state = $1",
            "VERIFIED",
        )
        .await;
    assert_eq!(counted, before_verified + 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM decisions WHERE scan_id = $1", a)
            .await,
        1
    );

    desk.claim(r).await;
    let no_reason = desk
        .post(
            &format!("/desk/cases/{r}/decision"),
            &[("action", "reject")],
        )
        .await;
    assert_eq!(no_reason.status(), 400);
    let bad_reason = desk
        .post(
            &format!("/desk/cases/{r}/decision"),
            &[("action", "reject"), ("reason", "I just don't like it")],
        )
        .await;
    assert_eq!(bad_reason.status(), 400);
    assert_eq!(
        app.process_field(r, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    let rej = desk
        .post(
            &format!("/desk/cases/{r}/decision"),
            &[
                ("action", "reject"),
                ("reason", "Document expired"),
                ("comment", "expired in 2019"),
            ],
        )
        .await;
    assert_eq!(rej.status(), 200);
    assert_eq!(
        app.process_field(r, "state").await.as_deref(),
        Some("NOT_VERIFIED")
    );
    assert_eq!(
        app.process_field(r, "rejection_reason").await.as_deref(),
        Some("Document expired")
    );
    let pend = desk
        .post(
            &format!("/desk/cases/{}/decision", review[2]),
            &[("action", "pending")],
        )
        .await;
    assert_eq!(
        pend.status(),
        409,
        "pending applies to PENDING_VALIDATION only"
    );

    let v = app.cases_in("PENDING_VALIDATION").await.remove(0);
    desk.claim(&v).await;
    let to_review = desk
        .post(
            &format!("/desk/cases/{v}/decision"),
            &[("action", "pending")],
        )
        .await;
    assert_eq!(to_review.status(), 200);
    assert_eq!(
        app.process_field(&v, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    let decided = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "case.decide",
        )
        .await;
    assert_eq!(decided, 3);
    let created = app.cases_in("CREATED").await.remove(0);
    desk.claim(&created).await;
    let early = desk
        .post(
            &format!("/desk/cases/{created}/decision"),
            &[("action", "accept")],
        )
        .await;
    assert_eq!(
        early.status(),
        409,
        "a case the applicant has not submitted cannot be decided"
    );
    let says = early.text().await.unwrap_or_default();
    assert!(
        says.contains("a case that is Created (CREATED) cannot be decided yet"),
        "the refusal names the state in words: {says}"
    );
}

async fn two_racing_decisions_one_wins_nothing_half_written(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    // Through HTTP: one reviewer's two tabs fire accept and reject at once.
    let desk = app.login(AGENT).await;
    desk.claim(&id).await;
    let accept_path = format!("/desk/cases/{id}/decision");
    let (x, y) = tokio::join!(
        desk.post(&accept_path, &[("action", "accept")]),
        desk.post(
            &accept_path,
            &[("action", "reject"), ("reason", "Document expired")]
        )
    );
    let mut codes = vec![x.status().as_u16(), y.status().as_u16()];
    codes.sort();
    assert_eq!(codes, vec![200, 409]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM decisions WHERE scan_id = $1", &id)
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.decide' AND scan_id = $1",
            &id
        )
        .await,
        1
    );

    // Through the shared operation (as the API will call it): eight at once.
    let id2 = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    let before: i64 = app
        .scalar_i64(
            "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state <> $1",
            "",
        )
        .await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let state = app.state.clone();
        let id2 = id2.clone();
        tasks.push(tokio::spawn(async move {
            let input = DecisionInput {
                decision: if i % 2 == 0 {
                    Decision::Accept
                } else {
                    Decision::Reject
                },
                expected_version: None,
                reason: Some("Document expired".into()),
                comment: None,
                changes: Default::default(),
                edit_reason: None,
            };
            let who = Actor {
                name: format!("racer{i}"),
                client_addr: "test".into(),
            };
            let case = review::load_for_decision(&state.db, &id2).await?;
            review::decide(
                &state.db,
                &state.settings,
                &state.blobs,
                case,
                &input,
                &who,
                review::Channel::Integrator,
            )
            .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(_) => wins += 1,
            Err(CaseError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM decisions WHERE scan_id = $1", &id2)
            .await,
        1
    );
    let after: i64 = app
        .scalar_i64(
            "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state <> $1",
            "",
        )
        .await;
    assert_eq!(before, after, "counters moved once, consistently");
    let total = app
        .scalar_i64("SELECT COUNT(*) FROM processes WHERE scan_id <> $1", "")
        .await;
    assert_eq!(after, total);
    assert!(matches!(
        kycdesk::audit::verify(&app.state.db).await,
        Ok(kycdesk::audit::Verdict::Intact { .. })
    ));
}

async fn claims_block_others_until_released_or_expired(b: Backend) {
    let Some(app) = spawn_with(b, |s| s.claim_idle = std::time::Duration::from_secs(5)).await
    else {
        return;
    };
    app.seed(20).await;
    let a = app.login(AGENT).await;
    kycdesk::accounts::create_user(
        &app.state.db,
        "second@kycdesk.demo",
        kycdesk::domain::Role::Agent,
        "second-agent-password",
        false,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let b2 = app
        .login(("second@kycdesk.demo", "second-agent-password"))
        .await;
    let sup = app.login(SUPERVISOR).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    a.claim(&id).await;
    let page = b2
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains(&format!("{} is working on this case", AGENT.0)));
    let queue = b2.get("/desk/queue").await.text().await.unwrap_or_default();
    assert!(
        queue.contains(AGENT.0),
        "the queue shows who holds the case"
    );
    let steal = b2.post(&format!("/desk/cases/{id}/claim"), &[]).await;
    assert_eq!(steal.status(), 409);
    let decide = b2
        .post(
            &format!("/desk/cases/{id}/decision"),
            &[("action", "accept")],
        )
        .await;
    assert_eq!(decide.status(), 409);
    let release_by_other_agent = b2.post(&format!("/desk/cases/{id}/release"), &[]).await;
    assert_eq!(release_by_other_agent.status(), 403);
    let mine = b2
        .get(&format!("/desk/queue?assignee={}", AGENT.0))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(mine.contains(&id));
    assert_eq!(
        sup.post(&format!("/desk/cases/{id}/release"), &[])
            .await
            .status(),
        200
    );
    b2.claim(&id).await;
    // Idle claims lapse.
    tokio::time::sleep(std::time::Duration::from_millis(5_300)).await;
    a.claim(&id).await;
    assert_eq!(
        app.process_field(&id, "claimed_by").await.as_deref(),
        Some(AGENT.0)
    );
}

async fn concurrent_writes_never_fail(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(10).await;
    let desk = app.login(AGENT).await;
    let ids = app.cases_in("PENDING_VERIFICATION").await;
    let mut futs = Vec::new();
    for i in 0..40 {
        let id = ids[i % ids.len()].clone();
        let d = &desk;
        futs.push(async move {
            let note = format!("note {i}");
            let r = d
                .post(
                    &format!("/desk/cases/{id}/notes"),
                    &[("body", note.as_str())],
                )
                .await;
            let v = d.get(&format!("/desk/cases/{id}")).await.status();
            (r.status().as_u16(), v.as_u16())
        });
    }
    let results = futures_util::future::join_all(futs).await;
    assert!(
        results.iter().all(|(a, b)| *a == 200 && *b == 200),
        "{results:?}"
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM notes WHERE author = $1", AGENT.0)
            .await,
        40
    );
}

/// The PDF's text as `pdftotext` (poppler) extracts it, if installed.
pub fn pdf_text(pdf: &[u8]) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(pdf).ok()?;
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "31/02/1990" is not a date of birth: a desk edit or an API decision with
/// an impossible date, an unknown country, a made-up sex code or a document
/// number with spaces is refused with the field's name, and nothing of it is
/// written (the document, its version and the edit history stay).
async fn edited_values_are_checked_and_a_refusal_changes_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(6).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    desk.claim(&id).await;
    let before = app.process_field(&id, "document").await;
    let version = app
        .scalar_i64("SELECT version FROM processes WHERE scan_id = $1", &id)
        .await;
    for (field, value, says) in [
        ("pd_dateOfBirth", "31/02/1990", "Date of birth"),
        ("pd_country", "Spain", "Country"),
        ("pd_gender", "male", "Gender"),
        ("pd_documentNumber", "AB 123", "Document number"),
    ] {
        let r = desk
            .post(
                &format!("/desk/cases/{id}/edit"),
                &[(field, value), ("edit_reason", "checking")],
            )
            .await;
        assert_eq!(r.status(), 400, "{field}={value}");
        let body = r.text().await.unwrap_or_default();
        assert!(body.contains(says), "{field}={value}: {body}");
        // The same value with a decision is refused too, and decides nothing.
        let r = desk
            .post(
                &format!("/desk/cases/{id}/decision"),
                &[
                    ("action", "accept"),
                    (field, value),
                    ("edit_reason", "checking"),
                ],
            )
            .await;
        assert_eq!(r.status(), 400, "decision with {field}={value}");
    }
    assert_eq!(app.process_field(&id, "document").await, before);
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    assert_eq!(
        app.scalar_i64("SELECT version FROM processes WHERE scan_id = $1", &id)
            .await,
        version
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM field_edits WHERE scan_id = $1", &id)
            .await,
        0
    );
    // A real date is taken.
    let r = desk
        .post(
            &format!("/desk/cases/{id}/edit"),
            &[("pd_dateOfBirth", "1990-02-28"), ("edit_reason", "misread")],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert!(app
        .process_field(&id, "document")
        .await
        .unwrap_or_default()
        .contains("1990-02-28"));
}

/// A page's reads by key, in one round trip, answer what each read answers
/// alone: on PostgreSQL prepared on a connection's first use, reused after,
/// prepared in part when another set shares some; a key that is not a
/// canonical UUID is never written into the SQL (read statement by
/// statement) and finds nothing without an error.
async fn reads_by_key_answer_as_each_read_alone(b: Backend) {
    use kycdesk::store::batch::fetch_by_key;
    use sqlx::Row;
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let id = app.cases_in("VERIFIED").await.remove(0);
    let backend = app.state.db.backend;
    // One connection, so every call below meets what the one before left.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&app.database_url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let state = "SELECT state FROM processes WHERE scan_id = $1";
    let kinds = "SELECT kind FROM evidence WHERE scan_id = $1 ORDER BY kind, evidence_type";
    let created = "SELECT CAST(created_at AS TEXT) FROM processes WHERE scan_id = $1";
    let texts = |rows: &[sqlx::any::AnyRow]| -> Vec<String> {
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    };
    let alone = |sql: &'static str, key: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .bind(key)
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let want = [
        texts(&alone(state, id.clone()).await),
        texts(&alone(kinds, id.clone()).await),
        texts(&alone(created, id.clone()).await),
    ];
    assert_eq!(want[0], vec!["VERIFIED".to_string()]);
    assert!(!want[1].is_empty(), "the seeded case has evidence");
    let together = |sqls: Vec<&'static str>, key: String| {
        let pool = pool.clone();
        async move {
            fetch_by_key(&pool, backend, &sqls, &key)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .iter()
                .map(|g| texts(g))
                .collect::<Vec<_>>()
        }
    };
    // First use, then again on the same connection.
    assert_eq!(together(vec![state, kinds], id.clone()).await, want[..2]);
    assert_eq!(together(vec![state, kinds], id.clone()).await, want[..2]);
    // One read already prepared, one not.
    assert_eq!(together(vec![kinds, created], id.clone()).await, want[1..]);
    if b == Backend::Postgres {
        let prepared: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_prepared_statements WHERE name LIKE 'kycdesk\\_read\\_%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(prepared, 3, "each read prepared once on the connection");
    }
    let hostile = format!("{id}') ; DELETE FROM processes; --");
    assert_eq!(
        together(vec![state, kinds], hostile).await,
        vec![Vec::<String>::new(), Vec::new()]
    );
    assert_eq!(together(vec![state], id.to_uppercase()).await.len(), 1);
    let left = app
        .scalar_i64("SELECT COUNT(*) FROM processes WHERE scan_id = $1", &id)
        .await;
    assert_eq!(left, 1);
}
