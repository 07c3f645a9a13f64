//! Four eyes: the policy turns a first decision into a proposal (no state
//! change, no webhook), a different supervisor confirms or overturns it
//! (one webhook), the proposer is refused by the operation and by the
//! database, and of concurrent reviewers exactly one wins.

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, Desk, TestApp, ADMIN, AGENT, SUPERVISOR};
use std::sync::Arc;

both_backends!(four_eyes_round_trip_and_races);

async fn webhooks_for(app: &TestApp, scan_id: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT status FROM webhook_events WHERE scan_id = $1 ORDER BY created_at, id",
    )
    .bind(scan_id)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn propose_reject(app: &TestApp, desk: &Desk, scan_id: &str) {
    desk.claim(scan_id).await;
    let r = desk
        .post(
            &format!("/desk/cases/{scan_id}/decision"),
            &[("action", "reject"), ("reason", "Document expired")],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        app.process_field(scan_id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION"),
        "a proposal leaves the state as the integrator sees it"
    );
}

async fn four_eyes_round_trip_and_races(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    // Every demo integrator gets a webhook URL, so events are recorded.
    sqlx::query("UPDATE integrators SET webhook_url = 'http://127.0.0.1:9/hook'")
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = app.login(AGENT).await;
    let sup = app.login(SUPERVISOR).await;
    let admin = app.login(ADMIN).await;

    // The policy: admins set it; supervisors read it; agents neither.
    assert_eq!(agent.get("/desk/admin/policy").await.status(), 403);
    assert_eq!(sup.get("/desk/admin/policy").await.status(), 200);
    assert_eq!(
        sup.post("/desk/admin/policy", &[("rejections", "1")])
            .await
            .status(),
        403
    );
    let r = admin
        .post("/desk/admin/policy", &[("sample_percent", "101")])
        .await;
    assert_eq!(r.status(), 400);
    let r = admin
        .post("/desk/admin/policy", &[("rejections", "1")])
        .await;
    assert_eq!(r.status(), 200);

    let cases = app.cases_in("PENDING_VERIFICATION").await;
    assert!(cases.len() >= 5, "{cases:?}");
    let (a, bcase, c, d, e) = (&cases[0], &cases[1], &cases[2], &cases[3], &cases[4]);

    // An accept is not covered by this policy: final at once.
    agent.claim(e).await;
    let r = agent
        .post(
            &format!("/desk/cases/{e}/decision"),
            &[("action", "accept")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.process_field(e, "state").await.as_deref(),
        Some("VERIFIED")
    );

    // A: the agent's rejection waits; no webhook; nobody decides past it.
    propose_reject(&app, &agent, a).await;
    assert!(
        webhooks_for(&app, a).await.is_empty(),
        "no webhook for a proposal"
    );
    agent.claim(a).await;
    let r = agent
        .post(
            &format!("/desk/cases/{a}/decision"),
            &[("action", "accept")],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("waits for a second reviewer"));
    let queue = sup
        .get("/desk/second-review")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(queue.contains(a.as_str()), "{queue}");
    // Agents cannot review; the supervisor confirms: final, one webhook.
    let path_a = format!("/desk/cases/{a}/second-review");
    assert_eq!(
        agent
            .post(&path_a, &[("verdict", "confirm")])
            .await
            .status(),
        403
    );
    let r = sup.post(&path_a, &[("verdict", "confirm")]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        app.process_field(a, "state").await.as_deref(),
        Some("NOT_VERIFIED")
    );
    assert_eq!(
        app.process_field(a, "rejection_reason").await.as_deref(),
        Some("Document expired")
    );
    assert_eq!(
        webhooks_for(&app, a).await,
        vec!["NOT_VERIFIED".to_string()]
    );
    assert_eq!(
        app.process_field(a, "agent").await.as_deref(),
        Some(AGENT.0),
        "a confirmed proposal is its proposer's decision"
    );
    let page = sup
        .get(&format!("/desk/cases/{a}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains("proposed to reject"), "{page}");
    assert!(
        page.contains("confirmed the proposal of agent@kycdesk.demo"),
        "{page}"
    );
    assert!(
        page.contains(
            "Four eyes: agent@kycdesk.demo proposed reject; supervisor@kycdesk.demo confirmed it"
        ),
        "{page}"
    );

    // B: overturned (a reason is required) → accepted.
    propose_reject(&app, &agent, bcase).await;
    let path_b = format!("/desk/cases/{bcase}/second-review");
    let r = sup.post(&path_b, &[("verdict", "overturn")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.process_field(bcase, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    let r = sup
        .post(
            &path_b,
            &[
                ("verdict", "overturn"),
                ("reason", "The document is valid until 2031"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        app.process_field(bcase, "state").await.as_deref(),
        Some("VERIFIED")
    );
    assert_eq!(
        webhooks_for(&app, bcase).await,
        vec!["VERIFIED".to_string()]
    );
    assert_eq!(
        app.process_field(bcase, "agent").await.as_deref(),
        Some(SUPERVISOR.0),
        "an overturn is the checker's decision"
    );

    // C: the proposer cannot confirm their own proposal: refused by the
    // operation, and the database refuses it even when asked directly.
    propose_reject(&app, &sup, c).await;
    let r = sup
        .post(
            &format!("/desk/cases/{c}/second-review"),
            &[("verdict", "confirm")],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap_or_default().contains("you proposed"));
    let direct = sqlx::query(
        "UPDATE proposals SET outcome = 'confirmed', reviewed_by = proposed_by WHERE scan_id = $1",
    )
    .bind(c)
    .execute(app.state.db.write())
    .await;
    assert!(
        direct.is_err(),
        "the CHECK constraint refuses the same person"
    );
    assert_eq!(
        app.process_field(c, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    let r = admin
        .post(
            &format!("/desk/cases/{c}/second-review"),
            &[("verdict", "confirm")],
        )
        .await;
    assert_eq!(r.status(), 200);

    // D: ten second reviewers at once, confirming and overturning: one wins.
    propose_reject(&app, &agent, d).await;
    let sup = Arc::new(sup);
    let admin = Arc::new(admin);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let who = if i % 2 == 0 {
            sup.clone()
        } else {
            admin.clone()
        };
        let path = format!("/desk/cases/{d}/second-review");
        tasks.push(tokio::spawn(async move {
            let form: Vec<(&str, &str)> = if i % 3 == 0 {
                vec![("verdict", "overturn"), ("reason", "looks fine")]
            } else {
                vec![("verdict", "confirm")]
            };
            who.post(&path, &form).await.status().as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap_or(0));
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
    let hooks = webhooks_for(&app, d).await;
    assert_eq!(hooks.len(), 1, "one webhook: {hooks:?}");
    let state = app.process_field(d, "state").await.unwrap_or_default();
    assert_eq!(hooks[0], state);
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM proposals WHERE scan_id = $1 AND outcome IS NOT NULL",
            d
        )
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM decisions WHERE scan_id = $1", d)
            .await,
        1,
        "one decision recorded"
    );
    // Counters still equal the rows.
    for st in ["PENDING_VERIFICATION", "VERIFIED", "NOT_VERIFIED"] {
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
}
