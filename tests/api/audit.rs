use crate::both_backends;
use crate::helpers::{spawn_app, Backend, AGENT};
use kycdesk::audit::{verify, Verdict};

both_backends!(
    the_chain_verifies_and_tampering_is_named,
    a_burst_of_views_is_recorded_whole_in_one_unbroken_chain,
    an_entry_built_on_a_stale_head_fails_instead_of_forking_the_chain
);

/// A decision on SQLite builds its entry on the chain's head as its own
/// UPDATE read it (`audit::Work::head_read`). A head gone stale must make
/// the transaction fail, never append a second entry after the same one.
async fn an_entry_built_on_a_stale_head_fails_instead_of_forking_the_chain(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(3).await;
    let db = &app.state.db;
    let entries = match verify(db).await {
        Ok(Verdict::Intact { entries }) => entries,
        other => panic!("{other:?}"),
    };
    assert!(entries >= 2, "the seed wrote entries: {entries}");
    let (seq, hash): (i64, String) =
        sqlx::query_as("SELECT seq, prev_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let event = || kycdesk::audit::Event {
        actor: "stale@kycdesk.test",
        action: "case.view",
        scan_id: None,
        client_addr: "127.0.0.1",
        detail: serde_json::json!({}),
    };
    // The entry before the last as the "head": its successor exists.
    let mut work = kycdesk::audit::Work::begin(db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    work.head_read(Some((seq - 1, hash)));
    let stale = work.commit(event()).await;
    let after = match verify(db).await {
        Ok(Verdict::Intact { entries }) => entries,
        other => panic!("{other:?}"),
    };
    match b {
        // SQLite trusts the head it is given, and the primary key refuses it.
        Backend::Sqlite => {
            assert!(stale.is_err(), "an entry on a stale head was written");
            assert_eq!(after, entries, "nothing was appended");
        }
        // PostgreSQL always reads the head under the audit lock.
        Backend::Postgres => {
            stale.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(after, entries + 1);
        }
    }
    // The true head still works.
    let mut work = kycdesk::audit::Work::begin(db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    work.head_read(head);
    work.commit(event()).await.unwrap_or_else(|e| panic!("{e}"));
    match verify(db).await {
        Ok(Verdict::Intact { entries: n }) => assert_eq!(n, after + 1),
        other => panic!("{other:?}"),
    }
}

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
    // Decisions race the views: on SQLite each builds its entry on the head
    // its own UPDATE read, while the views' groups append around it.
    let to_decide: Vec<String> = ids.iter().take(6).cloned().collect();
    for id in &to_decide {
        desk.claim(id).await;
    }
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
    let decisions = to_decide.iter().map(|id| {
        let desk = &desk;
        async move {
            let r = desk
                .post(
                    &format!("/desk/cases/{id}/decision"),
                    &[("action", "accept")],
                )
                .await;
            assert_eq!(r.status(), 200, "decision on {id}");
        }
    });
    let (viewed, written, _) = tokio::join!(
        futures_util::future::join_all(views),
        futures_util::future::join_all(direct),
        futures_util::future::join_all(decisions)
    );
    for id in &to_decide {
        assert_eq!(
            app.scalar_i64(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'case.decide' AND scan_id = $1",
                id
            )
            .await,
            1,
            "one decision entry for {id}"
        );
        assert_eq!(
            app.process_field(id, "state").await.as_deref(),
            Some("VERIFIED")
        );
    }
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
            assert_eq!(
                entries,
                before + 134,
                "64 views, 64 direct events and 6 decisions"
            )
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
