use crate::both_backends;
use crate::helpers::{between, spawn_app, Backend, ADMIN, AGENT, SUPERVISOR};

both_backends!(
    roles_are_enforced_on_the_server,
    role_matrix_of_the_supervisor_routes,
    state_changes_without_csrf_are_refused_and_change_nothing,
    every_response_carries_security_headers,
    assets_are_embedded_and_cached_by_hash,
    get_never_changes_state
);

async fn roles_are_enforced_on_the_server(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(4).await;
    let agent = app.login(AGENT).await;
    let sup = app.login(SUPERVISOR).await;
    let admin = app.login(ADMIN).await;
    assert_eq!(agent.get("/desk/audit").await.status(), 403);
    assert_eq!(agent.get("/desk/admin/users").await.status(), 403);
    assert_eq!(agent.post("/desk/audit/verify", &[]).await.status(), 403);
    let create = agent
        .post(
            "/desk/admin/users",
            &[
                ("email", "x@y.zz"),
                ("role", "admin"),
                ("password", "a long enough pass"),
            ],
        )
        .await;
    assert_eq!(create.status(), 403);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE email = $1", "x@y.zz")
            .await,
        0
    );
    assert_eq!(sup.get("/desk/audit").await.status(), 200);
    // Supervisors read the users, integrators, outbox and webhook log;
    // only admins see (and may use) the controls that change them.
    for page in [
        "/desk/admin/users",
        "/desk/admin/integrators",
        "/desk/admin/messages",
        "/desk/admin/webhooks",
    ] {
        assert_eq!(agent.get(page).await.status(), 403, "agent on {page}");
        let r = sup.get(page).await;
        assert_eq!(r.status(), 200, "supervisor on {page}");
        let html = r.text().await.unwrap_or_default();
        for control in [
            "hx-post=\"/desk/admin/",
            "Redeliver</button>",
            "Rotate secret",
        ] {
            assert!(
                !html.contains(control),
                "supervisor sees {control} on {page}"
            );
        }
        let r = admin.get(page).await;
        assert_eq!(r.status(), 200, "admin on {page}");
    }
    let users_page = admin
        .get("/desk/admin/users")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        users_page.contains("hx-post=\"/desk/admin/users\""),
        "admins keep the form"
    );
    let integrator_id: String =
        sqlx::query_scalar("SELECT id FROM integrators ORDER BY name LIMIT 1")
            .fetch_one(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    for path in [
        format!("/desk/admin/integrators/{integrator_id}/disable"),
        format!("/desk/admin/integrators/{integrator_id}/rotate"),
        "/desk/admin/users".to_string(),
    ] {
        assert_eq!(
            sup.post(
                &path,
                &[
                    ("email", "s@y.zz"),
                    ("role", "admin"),
                    ("password", "a long enough pass")
                ]
            )
            .await
            .status(),
            403,
            "supervisor POST {path}"
        );
    }
    assert_eq!(
        app.integrator_field(&integrator_id, "CAST(enabled AS TEXT)")
            .await
            .as_deref(),
        Some("1"),
        "a refused disable changes nothing"
    );
    let made = admin
        .post(
            "/desk/admin/users",
            &[
                ("email", "new@kycdesk.demo"),
                ("role", "agent"),
                ("password", "a long enough pass"),
            ],
        )
        .await;
    assert_eq!(made.status(), 200);
    let dup = admin
        .post(
            "/desk/admin/users",
            &[
                ("email", "NEW@kycdesk.demo"),
                ("role", "agent"),
                ("password", "a long enough pass"),
            ],
        )
        .await;
    assert_eq!(dup.status(), 409);
    let weak = admin
        .post(
            "/desk/admin/users",
            &[
                ("email", "weak@kycdesk.demo"),
                ("role", "agent"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status(), 400);
    // Not logged in: every desk page sends you to the login.
    let anon = crate::helpers::client();
    for p in ["/desk/queue", "/desk/audit", "/desk/cases/x"] {
        let r = anon
            .get(app.url(p))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 303, "{p}");
    }
    let hx = anon
        .get(app.url("/desk/queue"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hx.status(), 401);
    assert_eq!(hx.headers()["hx-redirect"], "/desk/login");
}

async fn state_changes_without_csrf_are_refused_and_change_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(10).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    for token in [None, Some("0".repeat(64))] {
        let mut req = desk
            .client
            .post(desk.url(&format!("/desk/cases/{id}/claim")))
            .header("HX-Request", "true");
        if let Some(t) = &token {
            req = req.header("X-CSRF-Token", t);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 403, "token {token:?}");
        assert_eq!(app.process_field(&id, "claimed_by").await, None);
    }
    let logout = desk
        .client
        .post(desk.url("/desk/logout"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(logout.status(), 403, "logout needs the token too");
    assert_eq!(
        desk.get("/desk/queue").await.status(),
        200,
        "the session survived a forged logout"
    );
    // The login form has its own double-submit token.
    let c = crate::helpers::client();
    let r = c
        .post(app.url("/desk/login"))
        .form(&[
            ("email", AGENT.0),
            ("password", AGENT.1),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 403);
}

async fn every_response_carries_security_headers(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(4).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    for path in [
        "/desk/login".to_string(),
        "/desk/queue".into(),
        format!("/desk/cases/{id}"),
        "/desk/cases/nope".into(),
        "/static/app.css".into(),
    ] {
        let r = desk.get(&path).await;
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    // Every response has a request id; an error page shows it.
    let missing = desk.get("/desk/cases/nope").await;
    let rid = missing.headers()["x-request-id"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(rid.len(), 36, "{rid}");
    assert!(missing
        .text()
        .await
        .unwrap_or_default()
        .contains(&format!("request {rid}")));
    let page = desk.get(&format!("/desk/cases/{id}")).await;
    assert_eq!(
        page.headers()["cache-control"],
        "no-store",
        "case data is never cached"
    );
    let html = page.text().await.unwrap_or_default();
    assert!(
        !html.contains("<script>") && !html.contains(" onclick="),
        "no inline script"
    );
}

async fn assets_are_embedded_and_cached_by_hash(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let desk = app.login(AGENT).await;
    let html = desk
        .get("/desk/queue")
        .await
        .text()
        .await
        .unwrap_or_default();
    let htmx = between(&html, "<script src=\"", "\"").unwrap_or_else(|| panic!("no script"));
    assert!(htmx.starts_with("/static/htmx.min.js?v="), "{htmx}");
    let r = desk.get(htmx).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/javascript"));
    let etag = r.headers()["etag"].to_str().unwrap_or_default().to_string();
    let body = r.text().await.unwrap_or_default();
    assert!(body.contains("htmx"), "the real htmx is served");
    let again = desk
        .client
        .get(desk.url(htmx))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status(), 304);
    assert_eq!(desk.get("/static/nope.js").await.status(), 404);
}

async fn get_never_changes_state(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(10).await;
    let desk = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    for p in ["claim", "decision", "edit", "notes", "release"] {
        let r = desk.get(&format!("/desk/cases/{id}/{p}")).await;
        assert!(
            r.status() == 404 || r.status() == 405,
            "GET {p}: {}",
            r.status()
        );
    }
    assert_eq!(desk.get("/desk/logout").await.status().as_u16() / 100, 4);
    assert_eq!(app.process_field(&id, "claimed_by").await, None);
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
}

/// Agent / supervisor / admin × every supervisor and admin route: the
/// status each role gets. Refused POSTs change nothing (checked by count).
async fn role_matrix_of_the_supervisor_routes(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(4).await;
    let agent = app.login(AGENT).await;
    let sup = app.login(SUPERVISOR).await;
    let admin = app.login(ADMIN).await;
    let agent_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(AGENT.0)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // (route, agent, supervisor, admin)
    let gets = [
        ("/desk/dashboard", 403, 200, 200),
        ("/desk/second-review", 403, 200, 200),
        ("/desk/qa", 403, 200, 200),
        ("/desk/audit", 403, 200, 200),
        ("/desk/audit.csv", 403, 200, 200),
        ("/desk/queue.csv", 403, 200, 200),
        ("/desk/admin/policy", 403, 200, 200),
        ("/desk/admin/users", 403, 200, 200),
        ("/desk/password", 200, 200, 200),
    ];
    for (route, a, s, ad) in gets {
        let got = [
            agent.get(route).await.status().as_u16(),
            sup.get(route).await.status().as_u16(),
            admin.get(route).await.status().as_u16(),
        ];
        assert_eq!(got, [a, s, ad], "GET {route}");
    }
    let changes = || async {
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('user.role', 'user.password_reset', 'policy.four_eyes', 'case.assign', 'case.release', $1)",
            "case.note",
        )
        .await
    };
    let before = changes().await;
    let role = format!("/desk/admin/users/{agent_id}/role");
    let reset = format!("/desk/admin/users/{agent_id}/reset-password");
    // (route, form, agent, supervisor): refused or invalid, never applied.
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let posts: [(&str, Form, u16, u16); 4] = [
        ("/desk/queue/bulk", vec![("action", "release")], 403, 400),
        (role.as_str(), vec![("role", "admin")], 403, 403),
        (reset.as_str(), vec![], 403, 403),
        (
            "/desk/admin/policy",
            vec![("sample_percent", "50")],
            403,
            403,
        ),
    ];
    for (route, form, a, s) in &posts {
        let got = [
            agent.post(route, form).await.status().as_u16(),
            sup.post(route, form).await.status().as_u16(),
        ];
        assert_eq!(got, [*a, *s], "POST {route}");
    }
    assert_eq!(changes().await, before, "refused POSTs change nothing");
    // The admin may: an invalid role change says why, a valid one applies.
    assert_eq!(admin.post(&role, &[("role", "agent")]).await.status(), 400);
    assert_eq!(
        admin.post(&role, &[("role", "supervisor")]).await.status(),
        200
    );
    assert_eq!(changes().await, before + 1);
}
