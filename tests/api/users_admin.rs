//! Users admin: role changes, password resets that force a change at the
//! next login, and the guard that keeps at least one active admin.

use crate::both_backends;
use crate::helpers::{between, client, spawn_app, Backend, Desk, TestApp, ADMIN, AGENT};

both_backends!(
    a_created_user_must_choose_a_password_before_the_desk_opens,
    a_reset_ends_sessions_and_hands_over_a_temporary_password,
    role_changes_apply_at_once_and_are_audited,
    two_admins_demoting_each_other_at_once_leave_one_admin
);

async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<_, String>("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn login_at(app: &TestApp, email: &str, password: &str, page: &str) -> Desk {
    app.login_at(email, password, page).await
}

async fn create(admin: &Desk, email: &str, role: &str) {
    let r = admin
        .post(
            "/desk/admin/users",
            &[
                ("email", email),
                ("role", role),
                ("password", "initial password 1"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

async fn a_created_user_must_choose_a_password_before_the_desk_opens(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let admin = app.login(ADMIN).await;
    create(&admin, "new.agent@kycdesk.demo", "agent").await;
    let new = login_at(
        &app,
        "new.agent@kycdesk.demo",
        "initial password 1",
        "/desk/password",
    )
    .await;
    // Every other page leads to the password page, for a browser and htmx.
    let queue = new.get("/desk/queue").await;
    assert_eq!(queue.status(), 303);
    assert_eq!(
        queue
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/desk/password")
    );
    let htmx = new.post("/desk/cases/x/claim", &[]).await;
    assert_eq!(
        htmx.headers()
            .get("HX-Redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/desk/password")
    );
    let page = new
        .get("/desk/password")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains("id=\"password-forced\""), "{page}");
    // Refusals change nothing and say what to do.
    for (form, status, says) in [
        (
            [
                ("current", "wrong password 12"),
                ("new", "my own password 2"),
                ("confirm", "my own password 2"),
            ],
            400,
            "current password is wrong",
        ),
        (
            [
                ("current", "initial password 1"),
                ("new", "my own password 2"),
                ("confirm", "my own password 3"),
            ],
            400,
            "two new passwords differ",
        ),
        (
            [
                ("current", "initial password 1"),
                ("new", "short"),
                ("confirm", "short"),
            ],
            400,
            "at least 12 characters",
        ),
        (
            [
                ("current", "initial password 1"),
                ("new", "initial password 1"),
                ("confirm", "initial password 1"),
            ],
            400,
            "must differ",
        ),
    ] {
        let r = new.post("/desk/password", &form).await;
        assert_eq!(r.status(), status);
        let body = r.text().await.unwrap_or_default();
        assert!(body.contains(says), "{says}: {body}");
        assert_eq!(
            app.scalar_i64(
                "SELECT must_change_password FROM users WHERE email = $1",
                "new.agent@kycdesk.demo"
            )
            .await,
            1
        );
    }
    let ok = new
        .post(
            "/desk/password",
            &[
                ("current", "initial password 1"),
                ("new", "my own password 2"),
                ("confirm", "my own password 2"),
            ],
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()
            .get("HX-Redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/desk/queue")
    );
    assert_eq!(new.get("/desk/queue").await.status(), 200, "the desk opens");
    assert_eq!(
        app.scalar_i64(
            "SELECT must_change_password FROM users WHERE email = $1",
            "new.agent@kycdesk.demo"
        )
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'user.password_change' AND actor = $1",
            "new.agent@kycdesk.demo"
        )
        .await,
        1
    );
    // The old password no longer works; the new one does, straight to the desk.
    let c = client();
    assert_eq!(
        app.post_login(&c, "new.agent@kycdesk.demo", "initial password 1")
            .await
            .status(),
        401
    );
    let again = login_at(
        &app,
        "new.agent@kycdesk.demo",
        "my own password 2",
        "/desk/queue",
    )
    .await;
    assert_eq!(again.get("/desk/queue").await.status(), 200);
}

async fn a_reset_ends_sessions_and_hands_over_a_temporary_password(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let admin = app.login(ADMIN).await;
    let agent = app.login(AGENT).await;
    let agent_id = user_id(&app, AGENT.0).await;
    let r = admin
        .post(&format!("/desk/admin/users/{agent_id}/reset-password"), &[])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let html = r.text().await.unwrap_or_default();
    let temporary = between(&html, "id=\"temporary-password\">", "<")
        .unwrap_or_else(|| panic!("no temporary password in {html}"))
        .to_string();
    assert_eq!(temporary.len(), 19, "{temporary}");
    // The agent's session ended; the old password is gone.
    let after = agent.get("/desk/queue").await;
    assert_eq!(after.status(), 303);
    assert!(after
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("/desk/login"));
    assert_eq!(
        app.post_login(&client(), AGENT.0, AGENT.1).await.status(),
        401
    );
    // The temporary password is never stored or audited in clear.
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%' || $1 || '%'",
            &temporary
        )
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM users WHERE password_hash LIKE '%' || $1 || '%'",
            &temporary
        )
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'user.password_reset' AND actor = $1",
            ADMIN.0
        )
        .await,
        1
    );
    let fresh = login_at(&app, AGENT.0, &temporary, "/desk/password").await;
    assert_eq!(fresh.get("/desk/queue").await.status(), 303);
    let changed = fresh
        .post(
            "/desk/password",
            &[
                ("current", &temporary),
                ("new", "agent new password"),
                ("confirm", "agent new password"),
            ],
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(fresh.get("/desk/queue").await.status(), 200);
    // An admin cannot reset their own password here (another admin does).
    let admin_id = user_id(&app, ADMIN.0).await;
    let own = admin
        .post(&format!("/desk/admin/users/{admin_id}/reset-password"), &[])
        .await;
    assert_eq!(own.status(), 400);
    assert!(own
        .text()
        .await
        .unwrap_or_default()
        .contains("another admin"));
    // Agents and supervisors cannot reset anyone.
    let sup = app.login(crate::helpers::SUPERVISOR).await;
    assert_eq!(
        sup.post(&format!("/desk/admin/users/{admin_id}/reset-password"), &[])
            .await
            .status(),
        403
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'user.password_reset'",
            ""
        )
        .await,
        1,
        "refused resets record nothing"
    );
}

async fn role_changes_apply_at_once_and_are_audited(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let admin = app.login(ADMIN).await;
    let agent = app.login(AGENT).await;
    let agent_id = user_id(&app, AGENT.0).await;
    assert_eq!(agent.get("/desk/qa").await.status(), 403);
    let r = admin
        .post(
            &format!("/desk/admin/users/{agent_id}/role"),
            &[("role", "supervisor")],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // The live session has the new role on its next request.
    assert_eq!(agent.get("/desk/qa").await.status(), 200);
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'user.role' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        detail.contains("\"from\":\"agent\"") && detail.contains("\"to\":\"supervisor\""),
        "{detail}"
    );
    // Refusals say why and change nothing.
    for (role, says) in [("supervisor", "already has"), ("root", "unknown role")] {
        let r = admin
            .post(
                &format!("/desk/admin/users/{agent_id}/role"),
                &[("role", role)],
            )
            .await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap_or_default().contains(says), "{says}");
    }
    let admin_id = user_id(&app, ADMIN.0).await;
    let own = admin
        .post(
            &format!("/desk/admin/users/{admin_id}/role"),
            &[("role", "agent")],
        )
        .await;
    assert_eq!(own.status(), 400);
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM users WHERE id = $1 AND role = 'admin'",
            &admin_id
        )
        .await,
        1
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "user.role"
        )
        .await,
        1
    );
    // The page shows roles in words with the admin's controls.
    let page = admin
        .get("/desk/admin/users")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains(">Supervisor</td>"), "{page}");
    assert!(page.contains(&format!("id=\"reset-password-{agent_id}\"")));
    assert!(!page.contains(&format!("id=\"reset-password-{admin_id}\"")));
}

async fn two_admins_demoting_each_other_at_once_leave_one_admin(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    // `current` is the one admin left at the start of each round.
    let mut current = app.login(ADMIN).await;
    for round in 0..3 {
        let (x, y) = (
            format!("x{round}@kycdesk.demo"),
            format!("y{round}@kycdesk.demo"),
        );
        create(&current, &x, "admin").await;
        create(&current, &y, "admin").await;
        let mut desks = Vec::new();
        for email in [&x, &y] {
            let d = login_at(&app, email, "initial password 1", "/desk/password").await;
            let r = d
                .post(
                    "/desk/password",
                    &[
                        ("current", "initial password 1"),
                        ("new", "admin own password"),
                        ("confirm", "admin own password"),
                    ],
                )
                .await;
            assert_eq!(r.status(), 200);
            desks.push(d);
        }
        // x demotes the admin that made them: only x and y are admins now.
        let current_id: String = sqlx::query_scalar(
            "SELECT id FROM users WHERE role = 'admin' AND email <> $1 AND email <> $2",
        )
        .bind(&x)
        .bind(&y)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let r = desks[0]
            .post(
                &format!("/desk/admin/users/{current_id}/role"),
                &[("role", "supervisor")],
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let (xid, yid) = (user_id(&app, &x).await, user_id(&app, &y).await);
        let (to_y, to_x) = (
            format!("/desk/admin/users/{yid}/role"),
            format!("/desk/admin/users/{xid}/role"),
        );
        let (rx, ry) = tokio::join!(
            desks[0].post(&to_y, &[("role", "agent")]),
            desks[1].post(&to_x, &[("role", "agent")]),
        );
        let codes = [rx.status().as_u16(), ry.status().as_u16()];
        assert!(
            codes.iter().filter(|c| **c == 200).count() == 1
                && codes.iter().all(|c| [200, 400, 403].contains(c)),
            "round {round}: exactly one demotion wins: {codes:?}"
        );
        assert_eq!(
            app.scalar_i64(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND active = 1 AND email LIKE $1",
                "%@kycdesk.demo"
            )
            .await,
            1,
            "round {round}: exactly one admin remains"
        );
        let winner = if codes[0] == 200 { 0 } else { 1 };
        current = desks.swap_remove(winner);
    }
}
