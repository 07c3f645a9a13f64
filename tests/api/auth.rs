use crate::both_backends;
use crate::helpers::{spawn_app, spawn_with, Backend, ADMIN, AGENT};

both_backends!(
    login_sets_a_hardened_cookie_and_logout_kills_the_session,
    login_renews_the_session_id,
    lockout_after_repeated_failures_reveals_nothing,
    disabling_a_user_ends_their_session_at_once,
    a_session_ended_by_another_app_server_ends_within_the_cache_bound,
    idle_sessions_expire,
    a_burst_of_logins_waits_for_password_hashing_and_each_is_answered
);

async fn login_sets_a_hardened_cookie_and_logout_kills_the_session(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(4).await;
    let c = crate::helpers::client();
    let r = app.post_login(&c, AGENT.0, AGENT.1).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/desk/queue");
    let cookie = set_cookie(&r, "kycdesk_session=").unwrap_or_else(|| panic!("no session cookie"));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );

    let token = cookie.split(';').next().unwrap_or_default().to_string();
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = raw
        .get(app.url("/desk/queue"))
        .header("cookie", &token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.status(), 200);

    let html = ok.text().await.unwrap_or_default();
    let csrf = crate::helpers::between(&html, "name=\"csrf-token\" content=\"", "\"")
        .unwrap_or_default()
        .to_string();
    let out = raw
        .post(app.url("/desk/logout"))
        .header("cookie", &token)
        .header("X-CSRF-Token", csrf)
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status(), 200);
    assert_eq!(out.headers()["hx-redirect"], "/desk/login");
    // The same cookie, replayed after logout, is dead.
    let after = raw
        .get(app.url("/desk/queue"))
        .header("cookie", &token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.status(), 303);
    // The login says the session ended and returns to the queue afterwards.
    assert_eq!(
        after.headers()["location"],
        "/desk/login?next=%2Fdesk%2Fqueue&expired=1"
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action = $1", "logout")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action = $1", "login")
            .await,
        1
    );
}

async fn login_renews_the_session_id(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let c = crate::helpers::client();
    let first = app.post_login(&c, AGENT.0, AGENT.1).await;
    let t1 = cookie_value(&first, "kycdesk_session=");
    let second = app.post_login(&c, AGENT.0, AGENT.1).await;
    let t2 = cookie_value(&second, "kycdesk_session=");
    assert!(t1.len() > 20 && t2.len() > 20);
    assert_ne!(t1, t2, "a login must issue a new session id");
    let raw = crate::helpers::client();
    let old = raw
        .get(app.url("/desk/queue"))
        .header("cookie", &t1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        old.status(),
        303,
        "the session the browser had before logging in again is ended"
    );
    // Only the hash of the token is stored.
    let stored = app
        .scalar_i64(
            "SELECT COUNT(*) FROM sessions WHERE token_hash = $1",
            t2.trim_start_matches("kycdesk_session="),
        )
        .await;
    assert_eq!(stored, 0);
}

async fn lockout_after_repeated_failures_reveals_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let c = crate::helpers::client();
    for email in [AGENT.0, "nobody@kycdesk.demo"] {
        for _ in 0..4 {
            let r = app.post_login(&c, email, "wrong password!").await;
            assert_eq!(r.status(), 401);
            assert!(r
                .text()
                .await
                .unwrap_or_default()
                .contains("Wrong e-mail or password."));
        }
        let fifth = app.post_login(&c, email, "wrong password!").await;
        assert_eq!(fifth.status(), 401);
        // Locked now: even the right password is refused, with the same
        // answer for the real account and the unknown one.
        let locked = app.post_login(&c, email, AGENT.1).await;
        assert_eq!(locked.status(), 429, "{email}");
        let body = locked.text().await.unwrap_or_default();
        assert!(
            body.contains("Too many failed attempts. Try again in 15 minutes."),
            "{email}: {body}"
        );
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM sessions WHERE user_id <> $1", "")
            .await,
        0
    );
    // Another account is not affected.
    let ok = app.post_login(&c, ADMIN.0, ADMIN.1).await;
    assert_eq!(ok.status(), 303);
}

async fn disabling_a_user_ends_their_session_at_once(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let agent = app.login(AGENT).await;
    let admin = app.login(ADMIN).await;
    assert_eq!(agent.get("/desk/queue").await.status(), 200);
    let agent_id = sqlx::query_scalar::<_, String>("SELECT id FROM users WHERE email = $1")
        .bind(AGENT.0)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = admin
        .post(&format!("/desk/admin/users/{agent_id}/disable"), &[])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(agent.get("/desk/queue").await.status(), 303);
    let c = crate::helpers::client();
    assert_eq!(
        app.post_login(&c, AGENT.0, AGENT.1).await.status(),
        401,
        "a disabled user cannot log in"
    );
}

/// Sessions are cached for `SESSION_CACHE_TTL`: one ended in the database by
/// another app server sharing it (here, straight in SQL) stops working on
/// this instance within that bound.
async fn a_session_ended_by_another_app_server_ends_within_the_cache_bound(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(1).await;
    let agent = app.login(AGENT).await;
    assert_eq!(agent.get("/desk/queue").await.status(), 200);
    let ended =
        sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = $1)")
            .bind(AGENT.0)
            .execute(app.state.db.write())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .rows_affected();
    assert_eq!(ended, 1);
    tokio::time::sleep(
        kycdesk::store::users::SESSION_CACHE_TTL + std::time::Duration::from_millis(50),
    )
    .await;
    assert_eq!(agent.get("/desk/queue").await.status(), 303);
}

async fn idle_sessions_expire(b: Backend) {
    let Some(app) = spawn_with(b, |s| {
        s.session_idle = std::time::Duration::from_millis(1_500)
    })
    .await
    else {
        return;
    };
    app.seed(2).await;
    let agent = app.login(AGENT).await;
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    let page = format!("/desk/cases/{id}?tab=history");
    assert_eq!(agent.get(&page).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    let expired = agent.get(&page).await;
    assert_eq!(expired.status(), 303);
    let to = expired.headers()["location"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        to,
        format!("/desk/login?next=%2Fdesk%2Fcases%2F{id}%3Ftab%3Dhistory&expired=1")
    );
    // The login page says why, and logging in returns to the same page.
    let login = agent.get(&to).await.text().await.unwrap_or_default();
    assert!(login.contains("Your session has ended"), "{login}");
    let token = crate::helpers::between(&login, "name=\"csrf_token\" value=\"", "\"")
        .unwrap_or_else(|| panic!("no login token in {login}"))
        .to_string();
    let back = agent
        .client
        .post(app.url("/desk/login"))
        .form(&[
            ("email", AGENT.0),
            ("password", AGENT.1),
            ("csrf_token", &token),
            ("next", &page),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], page.as_str());
    assert_eq!(agent.get(&page).await.status(), 200);

    // Only a page of this desk is a place to return to.
    for foreign in [
        "//evil.example/desk/",
        "https://evil.example/",
        "/desk/logout",
    ] {
        let r = app
            .post_login_to(&crate::helpers::client(), AGENT.0, AGENT.1, Some(foreign))
            .await;
        assert_eq!(r.status(), 303, "{foreign}");
        assert_eq!(r.headers()["location"], "/desk/queue", "{foreign}");
    }
}

#[tokio::test]
async fn absolute_timeout_ends_even_an_active_session() {
    let Some(app) = spawn_with(Backend::Sqlite, |s| {
        s.session_absolute = std::time::Duration::from_millis(1_500)
    })
    .await
    else {
        return;
    };
    app.seed(2).await;
    let agent = app.login(AGENT).await;
    for _ in 0..3 {
        assert_eq!(agent.get("/desk/queue").await.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(agent.get("/desk/queue").await.status(), 303);
}

#[tokio::test]
async fn over_https_cookies_are_secure_and_host_prefixed() {
    let Some(app) = spawn_with(Backend::Sqlite, |s| {
        s.public_url = kycdesk::config::parse_public_url("https://desk.bank.example")
            .unwrap_or_else(|e| panic!("{e}"));
    })
    .await
    else {
        return;
    };
    app.seed(2).await;
    let c = crate::helpers::client();
    let page = c
        .get(app.url("/desk/login"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let login_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        login_cookie.starts_with("__Host-kycdesk_login=") && login_cookie.contains("Secure"),
        "{login_cookie}"
    );
    let html = page.text().await.unwrap_or_default();
    let token = crate::helpers::between(&html, "name=\"csrf_token\" value=\"", "\"")
        .unwrap_or_default()
        .to_string();
    let value = login_cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let r = c
        .post(app.url("/desk/login"))
        .header("cookie", value)
        .form(&[
            ("email", AGENT.0),
            ("password", AGENT.1),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 303);
    let session = set_cookie(&r, "__Host-kycdesk_session=")
        .unwrap_or_else(|| panic!("no __Host- session cookie"));
    assert!(
        session.contains("Secure") && session.contains("HttpOnly") && session.contains("Path=/"),
        "{session}"
    );
    assert!(
        !session.contains("Domain="),
        "__Host- cookies carry no Domain"
    );
}

/// The whole `Set-Cookie` line for the cookie whose line starts with `prefix`.
fn set_cookie(r: &reqwest::Response, prefix: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(prefix))
        .map(str::to_string)
}

/// `name=value` of that cookie, as a browser would send it back.
fn cookie_value(r: &reqwest::Response, prefix: &str) -> String {
    set_cookie(r, prefix)
        .and_then(|c| c.split(';').next().map(str::to_string))
        .unwrap_or_default()
}

/// Password hashing runs one computation per core (each holds 19 MiB): a
/// burst of logins waits its turn and each one gets its own answer, right
/// passwords in and wrong ones refused, none failing for the wait.
async fn a_burst_of_logins_waits_for_password_hashing_and_each_is_answered(b: Backend) {
    use futures_util::StreamExt;
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let app = &app;
    let statuses: Vec<(bool, u16)> = futures_util::stream::iter(0..20)
        .map(|i| async move {
            let c = crate::helpers::client();
            let right = i % 5 != 0;
            let (email, password) = if right {
                AGENT
            } else {
                ("nobody@kycdesk.demo", "wrong password!")
            };
            let r = app.post_login(&c, email, password).await;
            (right, r.status().as_u16())
        })
        .buffer_unordered(20)
        .collect()
        .await;
    assert_eq!(statuses.len(), 20);
    for (right, status) in &statuses {
        assert_eq!(*status, if *right { 303 } else { 401 }, "{statuses:?}");
    }
}
