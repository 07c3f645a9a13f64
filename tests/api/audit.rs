use crate::both_backends;
use crate::helpers::{spawn_app, Backend, AGENT};
use kycdesk::audit::{verify, Verdict};

both_backends!(
    the_chain_verifies_and_tampering_is_named,
    a_burst_of_views_is_recorded_whole_in_one_unbroken_chain
);

/// Views are appended in groups (group commit): a burst of concurrent
/// views and decisions leaves every entry once, in one unbroken chain, and
/// each view is committed before its page answers.
async fn a_burst_of_views_is_recorded_whole_in_one_unbroken_chain(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let desk = app.login(AGENT).await;
    let ids = app.cases_in("PENDING_VERIFICATION").await;
    let before = match verify(&app.state.db).await {
        Ok(Verdict::Intact { entries }) => entries,
        other => panic!("{other:?}"),
    };
    let views = (0..64).map(|i| {
        let id = ids[i % ids.len()].clone();
        let desk = &desk;
        async move {
            let r = desk.get(&format!("/desk/cases/{id}")).await;
            assert_eq!(r.status(), 200);
            id
        }
    });
    let direct = (0..64).map(|i| {
        let db = app.state.db.clone();
        tokio::spawn(async move {
            kycdesk::audit::record_now(
                &db,
                kycdesk::audit::Event {
                    actor: "burst@kycdesk.test",
                    action: "case.view",
                    scan_id: None,
                    client_addr: "127.0.0.1",
                    detail: serde_json::json!({ "n": i }),
                },
            )
            .await
        })
    });
    let (viewed, written) = tokio::join!(
        futures_util::future::join_all(views),
        futures_util::future::join_all(direct)
    );
    for w in written {
        w.unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Each page's view is committed by the time the page answered.
    for id in &viewed {
        let n = app
            .scalar_i64(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'case.view' AND scan_id = $1",
                id,
            )
            .await;
        assert!(n >= 1, "the view of {id} is recorded");
    }
    let burst = app
        .scalar_i64(
            "SELECT COUNT(DISTINCT detail) FROM audit_log WHERE actor = $1",
            "burst@kycdesk.test",
        )
        .await;
    assert_eq!(burst, 64, "every direct event once");
    match verify(&app.state.db).await {
        Ok(Verdict::Intact { entries }) => {
            assert_eq!(entries, before + 128, "64 views and 64 direct events")
        }
        other => panic!("{other:?}"),
    }
}

async fn the_chain_verifies_and_tampering_is_named(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(10).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    desk.claim(&id).await;
    desk.get(&format!("/desk/cases/{id}")).await;
    let r = desk
        .post(
            &format!("/desk/cases/{id}/decision"),
            &[("action", "accept")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let entries = match verify(&app.state.db).await {
        Ok(Verdict::Intact { entries }) => entries,
        other => panic!("{other:?}"),
    };
    assert!(
        entries >= 6,
        "users, seed, login, claim, view, decision: {entries}"
    );
    for action in ["login", "case.claim", "case.view", "case.decide"] {
        let n = app
            .scalar_i64(
                "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND client_addr = '127.0.0.1'",
                action,
            )
            .await;
        assert!(n >= 1, "{action} audited with the client address");
    }
    // Rewrite history: the verifier names the entry.
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_log WHERE action = 'case.decide'")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_default();
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = $1")
        .bind(seq)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match verify(&app.state.db).await {
        Ok(Verdict::Broken { seq: at, .. }) => assert_eq!(at, seq),
        other => panic!("tampering not detected: {other:?}"),
    }
    // The CLI says the same, with a failing exit code.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kycdesk"))
        .args([
            "audit",
            "verify",
            "--database-url",
            &app.database_url,
            "--data-dir",
        ])
        .arg(&app.data_dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("BROKEN at entry {seq}")),
        "{stdout}"
    );
    // Deleting an entry is caught too.
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(seq - 1)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(verify(&app.state.db).await, Ok(Verdict::Broken { seq: s, .. }) if s == seq - 1)
    );
}
