//! Issue 5: the Apto-style mobile API, the Verification (OTP) API, the
//! Apiture-style Identity API, and manual approvals on the desk, driven
//! with the references' request samples.

use crate::both_backends;
use crate::helpers::{adopt, code_in, integrator, smtp_server, token};
use crate::helpers::{spawn_with, Backend, TestApp, AGENT, SUPERVISOR};
use kycdesk::accounts::integrators::{self, Credentials};
use reqwest::Method;
use serde_json::{json, Value};

both_backends!(
    mobile_api_follows_the_reference,
    verification_api_follows_the_reference,
    rate_limit_and_sandbox,
    email_reaches_a_real_smtp_server,
    fraud_risk_rules_compute_every_category,
    quizzes_follow_their_state_machine,
    manual_approvals_on_the_desk
);

/// Every rate limit off: most tests call one endpoint several times.
async fn spawn_unlimited(b: Backend) -> Option<TestApp> {
    spawn_with(b, |s| s.otp.rate_window_ms = 0).await
}

/// A mobile-API call (`Api-Key`) with an optional user token.
async fn mobile(
    app: &TestApp,
    method: Method,
    path: &str,
    api_key: Option<&str>,
    user_token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    if let Some(k) = api_key {
        req = req.header("Api-Key", format!("Bearer {k}"));
    }
    if let Some(t) = user_token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// The `ddd-ddd` codes of every message sent to `to`.
async fn codes_to(app: &TestApp, to: &str) -> Vec<String> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM messages WHERE recipient = $1 ORDER BY created_at")
            .bind(to)
            .fetch_all(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    bodies.iter().filter_map(|b| code_in(b)).collect()
}

/// The code of the one message sent to `to` since `before` was read.
async fn new_code(app: &TestApp, to: &str, before: &[String]) -> String {
    let now = codes_to(app, to).await;
    assert_eq!(now.len(), before.len() + 1, "one new message to {to}");
    now.last().cloned().unwrap_or_default()
}

async fn exec(app: &TestApp, sql: &str, arg: &str) {
    sqlx::query(sql)
        .bind(arg)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The reference's phone sample, for a number of our choosing.
fn phone_start(number: &str) -> Value {
    json!({"datapoint_type": "phone", "datapoint": {"data_type": "phone", "country_code": "1", "phone": number}})
}

/// Verifies a phone and creates a user with it; returns (user_id, token).
async fn make_user(
    app: &TestApp,
    c: &Credentials,
    number: &str,
    birthdate: &str,
) -> (String, String) {
    let to = format!("+1{number}");
    let before = codes_to(app, &to).await;
    let (s, v, _) = mobile(
        app,
        Method::POST,
        "/v1/verifications/start",
        Some(&c.api_key),
        None,
        Some(phone_start(number)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let vid = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let code = new_code(app, &to, &before).await;
    let (s, v, _) = mobile(
        app,
        Method::POST,
        &format!("/v1/verifications/{vid}/finish"),
        Some(&c.api_key),
        None,
        Some(json!({"secret": code})),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("passed")), "{v}");
    let (s, u, _) = mobile(
        app,
        Method::POST,
        "/v1/user",
        Some(&c.api_key),
        None,
        Some(json!({"metadata": "test", "data_points": {"type": "list", "data": [
            {"data_type": "phone", "country_code": "1", "phone_number": number, "verification": {"verification_id": vid}},
            {"data_type": "birthdate", "date": birthdate},
            {"data_type": "name", "first_name": "Ada", "last_name": "Lovelace"}
        ]}})),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["type"], "user");
    (
        u["user_id"].as_str().unwrap_or_default().to_string(),
        u["user_token"].as_str().unwrap_or_default().to_string(),
    )
}

async fn contact_of_user(app: &TestApp, user_id: &str) -> String {
    sqlx::query_scalar("SELECT contact_id FROM mobile_users WHERE id = $1")
        .bind(user_id)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn finish(app: &TestApp, key: &str, vid: &str, secret: &str) -> (u16, Value) {
    let (s, v, _) = mobile(
        app,
        Method::POST,
        &format!("/v1/verifications/{vid}/finish"),
        Some(key),
        None,
        Some(json!({ "secret": secret })),
    )
    .await;
    (s, v)
}

async fn start(app: &TestApp, key: &str, number: &str) -> Value {
    let (s, v, _) = mobile(
        app,
        Method::POST,
        "/v1/verifications/start",
        Some(key),
        None,
        Some(phone_start(number)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// A code that is surely not `right`.
fn wrong(right: &str) -> String {
    if right == "111111" {
        "222222".into()
    } else {
        "111111".into()
    }
}

async fn mobile_api_follows_the_reference(b: Backend) {
    let Some(app) = spawn_unlimited(b).await else {
        return;
    };
    let c = integrator(&app, "Mobile Bank").await;
    let key = c.api_key.as_str();

    let (s, v, _) = mobile(&app, Method::GET, "/v1/config", Some(key), None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["project"]["sandbox"], false);
    assert_eq!(
        mobile(&app, Method::GET, "/v1/config", None, None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        mobile(&app, Method::GET, "/v1/config", Some("nope"), None, None)
            .await
            .0,
        401
    );

    // The reference's request sample, as written.
    let to = "+15551230000";
    let v = start(&app, key, "5551230000").await;
    assert_eq!(v["type"], "verification");
    assert_eq!(v["verification_type"], "phone");
    assert_eq!(v["status"], "pending");
    let vid = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(vid.starts_with("entity_"), "{vid}");
    assert!(
        v.get("secondary_credential").is_none(),
        "a new phone has no user yet"
    );
    let code = new_code(&app, to, &[]).await;
    assert_eq!(code.len(), 6);
    // Codes are stored hashed: the database never holds the code itself.
    let stored: Option<String> =
        sqlx::query_scalar("SELECT code_hash FROM verifications WHERE id = $1")
            .bind(&vid)
            .fetch_one(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(stored.is_some_and(|h| !h.contains(&code) && h.len() >= 32));

    // The sandbox code does nothing where the sandbox is off.
    if code != "000000" {
        let (s, v) = finish(&app, key, &vid, "000000").await;
        assert_eq!((s, v["status"].as_str()), (200, Some("pending")), "{v}");
    }
    assert_eq!(finish(&app, key, &vid, "12ab56").await.0, 400);
    // Users receive 111-222; either form is accepted.
    let dashed = format!("{}-{}", &code[..3], &code[3..]);
    let (s, v) = finish(&app, key, &vid, &dashed).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("passed")), "{v}");
    let (s, v, _) = mobile(
        &app,
        Method::GET,
        &format!("/v1/verifications/{vid}/status"),
        Some(key),
        None,
        None,
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("passed")));
    assert_eq!(
        mobile(
            &app,
            Method::GET,
            "/v1/verifications/entity_0000000000000000/status",
            Some(key),
            None,
            None
        )
        .await
        .0,
        404
    );

    // Create the user from the passed verification; the guide's data points.
    let body = json!({"metadata": "ref-42", "data_points": {"type": "list", "data": [
        {"data_type": "phone", "country_code": "1", "phone_number": "5551230000", "verification": {"verification_id": vid}},
        {"data_type": "birthdate", "date": "1990-05-17"},
        {"data_type": "name", "first_name": "Ada", "last_name": "Lovelace"},
        {"data_type": "address", "street_one": "1741 Tiburon Dr", "locality": "Austin", "region": "TX", "postal_code": "78701", "country": "US"},
        {"data_type": "id_document", "doc_type": "SSN", "value": "123-45-6789", "country": "US"}
    ]}});
    let (s, u, _) = mobile(
        &app,
        Method::POST,
        "/v1/user",
        Some(key),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    let user_id = u["user_id"].as_str().unwrap_or_default().to_string();
    let user_token = u["user_token"].as_str().unwrap_or_default().to_string();
    assert!(!user_id.is_empty() && !user_token.is_empty());
    assert!(
        !u.to_string().contains("123-45-6789"),
        "the tax id is masked"
    );
    // The verification opened one door: it cannot create a second user.
    let (s, _, _) = mobile(&app, Method::POST, "/v1/user", Some(key), None, Some(body)).await;
    assert!(s == 401 || s == 409, "reused verification: {s}");
    // Signed payloads are refused with a clear status, not misread.
    let r = reqwest::Client::new()
        .post(app.url("/v1/user"))
        .header("Api-Key", format!("Bearer {key}"))
        .header("Content-Type", "application/jwt")
        .body("eyJhbGciOiJIUzI1NiJ9.e30.x")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 415);

    let (s, g, _) = mobile(&app, Method::GET, "/v1/user", None, Some(&user_token), None).await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["user_id"], user_id.as_str());
    assert_eq!(
        mobile(
            &app,
            Method::GET,
            "/v1/user",
            None,
            Some("not-a-token"),
            None
        )
        .await
        .0,
        401
    );
    // The token lives the configured TTL (365 days by default).
    let exp: i64 = sqlx::query_scalar(
        "SELECT MAX(expires_at) - MAX(created_at) FROM user_tokens WHERE user_id = $1",
    )
    .bind(&user_id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exp, 365 * 86_400_000);

    // Update the user.
    let (s, up, _) = mobile(
        &app,
        Method::PUT,
        "/v1/user",
        None,
        Some(&user_token),
        Some(json!({"data_points": {"type": "list", "data": [
            {"data_type": "name", "first_name": "Augusta", "last_name": "King"}
        ]}})),
    )
    .await;
    assert_eq!(s, 200, "{up}");
    assert!(up.to_string().contains("Augusta"), "{up}");

    // Login: the phone again, now with the birthdate as secondary credential.
    let before = codes_to(&app, to).await;
    let v = start(&app, key, "5551230000").await;
    let p = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sec = v["secondary_credential"].clone();
    assert_eq!(sec["verification_type"], "birthdate", "{v}");
    let bid = sec["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let code = new_code(&app, to, &before).await;
    let (_, v) = finish(&app, key, &p, &code).await;
    assert_eq!(v["status"], "passed");
    let login = json!({"verifications": {"type": "list", "data": [{"verification_id": p}, {"verification_id": bid}]}});
    // Not before the birthdate passed.
    let (s, _, _) = mobile(
        &app,
        Method::POST,
        "/v1/user/login",
        Some(key),
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(s, 401);
    let (_, v) = finish(&app, key, &bid, "1990-01-01").await;
    assert_eq!(
        v["status"], "pending",
        "a wrong birthdate is a wrong attempt: {v}"
    );
    let (_, v) = finish(&app, key, &bid, "1990-05-17").await;
    assert_eq!(v["status"], "passed");
    let (s, l, _) = mobile(
        &app,
        Method::POST,
        "/v1/user/login",
        Some(key),
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["user_id"], user_id.as_str());
    let second_token = l["user_token"].as_str().unwrap_or_default().to_string();
    assert!(!second_token.is_empty() && second_token != user_token);
    // Each verification logs in once.
    let (s, _, _) = mobile(
        &app,
        Method::POST,
        "/v1/user/login",
        Some(key),
        None,
        Some(login),
    )
    .await;
    assert_eq!(s, 401);

    // Expiry: a code past its 15 minutes no longer passes.
    let before = codes_to(&app, to).await;
    let v = start(&app, key, "5551230000").await;
    let late = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let code = new_code(&app, to, &before).await;
    exec(
        &app,
        "UPDATE verifications SET expires_at = 0 WHERE id = $1",
        &late,
    )
    .await;
    let (_, v) = finish(&app, key, &late, &code).await;
    assert_eq!(v["status"], "expired", "{v}");

    // Brute force: five wrong attempts fail the verification for good.
    let before = codes_to(&app, to).await;
    let v = start(&app, key, "5551230000").await;
    let brute = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let code = new_code(&app, to, &before).await;
    for i in 1..=5 {
        let (_, v) = finish(&app, key, &brute, &wrong(&code)).await;
        let want = if i < 5 { "pending" } else { "failed" };
        assert_eq!(v["status"], want, "attempt {i}: {v}");
    }
    let (_, v) = finish(&app, key, &brute, &code).await;
    assert_eq!(v["status"], "failed", "the right code after the limit: {v}");

    // Restart: a new id and code; the old one stops working.
    let before = codes_to(&app, to).await;
    let v = start(&app, key, "5551230000").await;
    let old = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let old_code = new_code(&app, to, &before).await;
    let before = codes_to(&app, to).await;
    let (s, r, _) = mobile(
        &app,
        Method::POST,
        &format!("/v1/verifications/{old}/restart"),
        Some(key),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let fresh = r["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(fresh, old);
    let new = new_code(&app, to, &before).await;
    let (_, v) = finish(&app, key, &old, &old_code).await;
    assert_eq!(v["status"], "expired");
    let (_, v) = finish(&app, key, &fresh, &new).await;
    assert_eq!(v["status"], "passed");

    // Another integrator sees none of it.
    let other = integrator(&app, "Other Bank").await;
    let (s, _, _) = mobile(
        &app,
        Method::GET,
        &format!("/v1/verifications/{fresh}/status"),
        Some(&other.api_key),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = mobile(
        &app,
        Method::GET,
        "/v1/user",
        Some(&other.api_key),
        Some(&user_token),
        None,
    )
    .await;
    assert_eq!(s, 401, "a user token is bound to its integrator's key");

    // An expired token stops working.
    exec(
        &app,
        "UPDATE user_tokens SET expires_at = 0 WHERE user_id = $1",
        &user_id,
    )
    .await;
    assert_eq!(
        mobile(
            &app,
            Method::GET,
            "/v1/user",
            None,
            Some(&second_token),
            None
        )
        .await
        .0,
        401
    );
}

async fn post_user(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = mobile(app, Method::POST, path, None, Some(token), Some(body)).await;
    (s, v)
}

async fn primary_of(app: &TestApp, contact: &str, kind: &str) -> Vec<(String, i64)> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT value, is_primary FROM contact_points WHERE contact_id = $1 AND kind = $2 AND verified_at IS NOT NULL ORDER BY value",
    )
    .bind(contact)
    .bind(kind)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn verification_api_follows_the_reference(b: Backend) {
    let Some(app) = spawn_unlimited(b).await else {
        return;
    };
    let c = integrator(&app, "Verify Bank").await;
    let (uid, t) = make_user(&app, &c, "5550001111", "1980-01-02").await;
    let contact = contact_of_user(&app, &uid).await;

    // Email OTP, the reference's sample.
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/email/send",
        &t,
        json!({"email": "name@example.com", "email_content": {}}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"message": "Email sent successfully"})));
    let code = new_code(&app, "name@example.com", &[]).await;
    let validate = |passcode: String, update_primary: bool| json!({"email": "name@example.com", "passcode": passcode, "update_primary": update_primary});
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        validate(wrong(&code), false),
    )
    .await;
    assert_eq!((s, v), (200, json!({"result": false})));
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        validate("12".into(), false),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        validate(code.clone(), false),
    )
    .await;
    assert_eq!((s, v), (200, json!({"result": true})));
    // Reuse: the code worked once.
    let (s, _) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        validate(code, false),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        primary_of(&app, &contact, "email").await,
        vec![("name@example.com".to_string(), 1)],
        "the first verified e-mail becomes primary"
    );
    // Never sent: 404.
    let (s, _) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        json!({"email": "never@example.com", "passcode": "123456"}),
    )
    .await;
    assert_eq!(s, 404);

    // Expiry.
    let (s, _) = post_user(
        &app,
        "/v1/verification/otp/email/send",
        &t,
        json!({"email": "late@example.com"}),
    )
    .await;
    assert_eq!(s, 200);
    let code = new_code(&app, "late@example.com", &[]).await;
    exec(
        &app,
        "UPDATE verifications SET expires_at = 0 WHERE target = $1",
        "late@example.com",
    )
    .await;
    let (s, _) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        json!({"email": "late@example.com", "passcode": code}),
    )
    .await;
    assert_eq!(s, 409, "an expired code");

    // SMS OTP, the reference's sample shape; brute force stops at five.
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/sms/send",
        &t,
        json!({"custom_message": "{otp} is your {app} code", "sender_id": "kycdesk", "phone_number": "+15557654321"}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"message": "SMS sent"})));
    let body: String = sqlx::query_scalar("SELECT body FROM messages WHERE recipient = $1")
        .bind("+15557654321")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        body.ends_with("is your kycdesk code"),
        "custom message used: {body}"
    );
    let code: String = body
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 6, "{body}");
    let sms =
        |p: String| json!({"phone_number": "+15557654321", "passcode": p, "update_primary": false});
    for _ in 0..5 {
        let (s, v) = post_user(
            &app,
            "/v1/verification/otp/sms/validate",
            &t,
            sms(wrong(&code)),
        )
        .await;
        assert_eq!((s, v), (200, json!({"result": false})));
    }
    let (s, _) = post_user(&app, "/v1/verification/otp/sms/validate", &t, sms(code)).await;
    assert_eq!(s, 409, "the right code after five wrong ones");
    // A custom message without the placeholders is refused.
    let (s, _) = post_user(
        &app,
        "/v1/verification/otp/sms/send",
        &t,
        json!({"custom_message": "no code here", "phone_number": "+15557654321"}),
    )
    .await;
    assert_eq!(s, 400);

    // update_primary: a second e-mail is secondary unless asked.
    for (email, up) in [("second@example.com", false), ("third@example.com", true)] {
        let (s, _) = post_user(
            &app,
            "/v1/verification/otp/email/send",
            &t,
            json!({ "email": email }),
        )
        .await;
        assert_eq!(s, 200);
        let code = new_code(&app, email, &[]).await;
        let (s, v) = post_user(
            &app,
            "/v1/verification/otp/email/validate",
            &t,
            json!({"email": email, "passcode": code, "update_primary": up}),
        )
        .await;
        assert_eq!((s, v), (200, json!({"result": true})));
    }
    assert_eq!(
        primary_of(&app, &contact, "email").await,
        vec![
            ("name@example.com".to_string(), 0),
            ("second@example.com".to_string(), 0),
            ("third@example.com".to_string(), 1)
        ]
    );

    // 409: another user cannot verify an e-mail this one verified.
    let (_, t2) = make_user(&app, &c, "5550002222", "1975-06-07").await;
    let (s, _) = post_user(
        &app,
        "/v1/verification/otp/email/send",
        &t2,
        json!({"email": "name@example.com"}),
    )
    .await;
    assert_eq!(s, 409);

    // Magic links go only to allowed redirect URIs.
    let link_body = json!({"email": "link@example.com", "redirect_uri": "https://app.example.com/verify", "email_content": {}, "update_primary": false});
    let (s, _) = post_user(&app, "/v1/verification/links/email", &t, link_body.clone()).await;
    assert!(s == 400 || s == 403, "an unlisted redirect: {s}");
    assert!(codes_to(&app, "link@example.com").await.is_empty());
    // The allow-list is set on the desk (admins only); a bad URI changes nothing.
    app.seed(1).await;
    let admin = app.login(crate::helpers::ADMIN).await;
    let settings = format!("/desk/admin/integrators/{}/verification", c.integrator_id);
    let r = admin
        .post(&settings, &[("redirect_uris", "javascript:alert(1)")])
        .await;
    assert_eq!(r.status(), 400);
    let agent = app.login(AGENT).await;
    let r = agent
        .post(
            &settings,
            &[("redirect_uris", "https://app.example.com/verify")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = admin
        .post(
            &settings,
            &[("redirect_uris", "https://app.example.com/verify")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.integrator_field(&c.integrator_id, "redirect_uris")
            .await
            .as_deref(),
        Some("[\"https://app.example.com/verify\"]")
    );
    // The outbox page shows the SMS sent above.
    let outbox = admin.get("/desk/admin/messages").await;
    assert_eq!(outbox.status(), 200);
    assert!(outbox
        .text()
        .await
        .unwrap_or_default()
        .contains("+15557654321"));
    let (s, v) = post_user(&app, "/v1/verification/links/email", &t, link_body).await;
    assert_eq!((s, v), (200, json!({"message": "Verification email sent"})));
    let mail: String = sqlx::query_scalar("SELECT body FROM messages WHERE recipient = $1")
        .bind("link@example.com")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/v1/verification/links/email/"))
        .unwrap_or_else(|| panic!("no link in {mail}"))
        .to_string();
    let http = crate::helpers::client();
    let page = http
        .get(&link)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap_or_default()
        .contains("<form method=\"post\""));
    assert!(
        primary_of(&app, &contact, "email")
            .await
            .iter()
            .all(|(e, _)| e != "link@example.com"),
        "opening the link changes nothing"
    );
    let (path, query) = link.split_once('?').unwrap_or_default();
    let t_param = query.trim_start_matches("t=");
    let confirm = || http.post(path).form(&[("t", t_param)]).send();
    let r = confirm().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers().get("Location").and_then(|v| v.to_str().ok()),
        Some("https://app.example.com/verify?result=true")
    );
    assert!(primary_of(&app, &contact, "email")
        .await
        .iter()
        .any(|(e, _)| e == "link@example.com"));
    let r = confirm().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.headers().get("Location").and_then(|v| v.to_str().ok()),
        Some("https://app.example.com/verify?result=false"),
        "a link works once"
    );
    // Without a user token: 401.
    let (s, _, _) = mobile(
        &app,
        Method::POST,
        "/v1/verification/otp/email/send",
        None,
        None,
        Some(json!({"email": "x@example.com"})),
    )
    .await;
    assert_eq!(s, 401);
}

async fn rate_limit_and_sandbox(b: Backend) {
    // The default policy: one call per 30 s per client and endpoint.
    let Some(app) = spawn_with(b, |_| {}).await else {
        return;
    };
    assert_eq!(app.settings.otp.rate_window_ms, 30_000);
    let sand = integrator(&app, "Sandbox Bank").await;
    integrators::set_verification(
        &app.state.db,
        &sand.integrator_id,
        true,
        &[],
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let live = integrator(&app, "Live Bank").await;

    let v = start(&app, &sand.api_key, "5553334444").await;
    let vid = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (s, body, h) = mobile(
        &app,
        Method::POST,
        "/v1/verifications/start",
        Some(&sand.api_key),
        None,
        Some(phone_start("5553334444")),
    )
    .await;
    assert_eq!(s, 429, "{body}");
    let wait: i64 = h
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        codes_to(&app, "+15553334444").await.len(),
        1,
        "a refused call sends nothing"
    );

    // Sandbox: 000000 passes only where enabled.
    let (s, v) = finish(&app, &sand.api_key, &vid, "000000").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("passed")), "{v}");
    let lv = start(&app, &live.api_key, "5553335555").await;
    let lid = lv["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let real = codes_to(&app, "+15553335555").await;
    if real.first().map(String::as_str) != Some("000000") {
        let (_, v) = finish(&app, &live.api_key, &lid, "000000").await;
        assert_eq!(
            v["status"], "pending",
            "sandbox code where the sandbox is off: {v}"
        );
    }
    let (s, _) = finish(&app, &live.api_key, &lid, "000000").await;
    assert_eq!(s, 429, "finish is rate limited too");

    // Login is limited the same way.
    let login = json!({"verifications": {"type": "list", "data": [{"verification_id": "entity_0000000000000001"}, {"verification_id": "entity_0000000000000002"}]}});
    let (s, _, _) = mobile(
        &app,
        Method::POST,
        "/v1/user/login",
        Some(&sand.api_key),
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(s, 404, "unknown verifications");
    let (s, _, h) = mobile(
        &app,
        Method::POST,
        "/v1/user/login",
        Some(&sand.api_key),
        None,
        Some(login),
    )
    .await;
    assert_eq!(s, 429);
    assert!(h.get("Retry-After").is_some());
}

async fn email_reaches_a_real_smtp_server(b: Backend) {
    let (port, mut inbox) = smtp_server().await;
    let Some(app) = spawn_with(b, |s| {
        s.otp.rate_window_ms = 0;
        s.messaging.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.messaging.from = "kycdesk <no-reply@kycdesk.test>".into();
    })
    .await
    else {
        return;
    };
    let c = integrator(&app, "Mail Bank").await;
    let (_, t) = make_user(&app, &c, "5556667777", "1980-01-02").await;
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/email/send",
        &t,
        json!({"email": "name@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), inbox.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no mail reached the SMTP server"));
    assert!(mail.contains("RCPT TO:<name@example.com>"), "{mail}");
    assert!(
        mail.contains("From: kycdesk <no-reply@kycdesk.test>"),
        "{mail}"
    );
    let code = code_in(&mail).unwrap_or_else(|| panic!("no code in {mail}"));
    let state: String = sqlx::query_scalar("SELECT state FROM messages WHERE recipient = $1")
        .bind("name@example.com")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state, "sent");
    let kept: String = sqlx::query_scalar("SELECT body FROM messages WHERE recipient = $1")
        .bind("name@example.com")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        code_in(&kept).is_none() && !kept.contains(&code),
        "a delivered code is not kept in the database: {kept}"
    );
    let (s, v) = post_user(
        &app,
        "/v1/verification/otp/email/validate",
        &t,
        json!({"email": "name@example.com", "passcode": code}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"result": true})));
}

/// An Identity API call (Bearer access token), HAL+JSON.
async fn hal(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/hal+json");
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/hal+json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    // apiDoc is the OpenAPI document itself (application/json).
    if s != 204 && !path.ends_with("/apiDoc") {
        let ct = r
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("application/hal+json"), "{path}: {ct}");
    }
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn load_samples(app: &TestApp) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/risk-lists");
    for list in [
        "watchlist",
        "alertlist",
        "high_risk_address",
        "non_approved_address",
        "restricted_ip",
        "restricted_email_domain",
    ] {
        let data = std::fs::read(dir.join(format!("{list}.csv"))).unwrap_or_else(|e| panic!("{e}"));
        let n = kycdesk::verification::lists::load(&app.state.db, list, &data)
            .await
            .unwrap_or_else(|e| panic!("{list}: {e}"));
        assert!(n >= 1, "{list}");
    }
}

fn clean_identity() -> Value {
    json!({
        "firstName": "Ada", "lastName": "Lovelace", "birthdate": "1985-02-03",
        "address1": "12 Boxwood Lane", "city": "Austin", "region": "TX", "postalCode": "78701",
        "taxId": "123-45-6789", "email": "ada@example.org", "phone": "+15125550100",
        "ipAddress": "192.0.2.10"
    })
}

fn with(base: &Value, changes: Value) -> Value {
    let mut v = base.clone();
    if let (Some(o), Some(c)) = (v.as_object_mut(), changes.as_object()) {
        for (k, x) in c {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

fn categories(report: &Value) -> Vec<String> {
    report["outputs"]["fraudRiskCategories"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn fraud_risk_rules_compute_every_category(b: Backend) {
    let Some(app) = spawn_unlimited(b).await else {
        return;
    };
    load_samples(&app).await;
    let c = integrator(&app, "Risk Bank").await;
    let tok = token(&app, &c).await;

    let (s, root) = hal(&app, Method::GET, "/identity", &tok, None).await;
    assert_eq!(s, 200);
    assert!(
        root["_links"]["apiture:fraudRiskReports"]["href"].is_string(),
        "{root}"
    );
    let (s, _) = hal(&app, Method::GET, "/identity/apiDoc", &tok, None).await;
    assert_eq!(s, 200);

    let report = |body: Value| {
        let app = &app;
        let tok = tok.clone();
        async move {
            let (s, r) = hal(
                app,
                Method::POST,
                "/identity/fraudRiskReports",
                &tok,
                Some(body),
            )
            .await;
            assert_eq!(s, 201, "{r}");
            r
        }
    };
    let base = clean_identity();
    let r = report(base.clone()).await;
    assert_eq!(r["outputs"]["state"], "passed", "{r}");
    assert!(categories(&r).is_empty(), "{r}");

    let today = chrono::Utc::now().date_naive();
    let ten = format!("{}-01-01", chrono::Datelike::year(&today) - 10);
    // (category, identity that triggers it, a near miss that does not)
    let cases = [
        (
            "addressIsPOBoxOrNonApproved",
            json!({"address1": "PO Box 123"}),
            json!({"address1": "12 Boxwood Lane"}),
        ),
        (
            "addressIsPOBoxOrNonApproved",
            json!({"address1": "500 Mail Drop St", "postalCode": "10001"}),
            json!({"address1": "501 Mail Drop St", "postalCode": "10001"}),
        ),
        (
            "addressIsHighRisk",
            json!({"address1": "1313 Mockingbird Ln", "postalCode": "90210"}),
            json!({"address1": "1313 Mockingbird Ln", "postalCode": "90211"}),
        ),
        (
            "identityOnGovernmentWatchlist",
            json!({"firstName": "PEREZ", "lastName": "JOSE", "birthdate": "1970-03-14"}),
            json!({"firstName": "PEREZ", "lastName": "JOSE", "birthdate": "1971-03-14"}),
        ),
        (
            "identityOnAlertList",
            json!({"firstName": "johnny", "lastName": "FRAUDSTER", "birthdate": "1988-07-01"}),
            json!({"firstName": "Johnny", "lastName": "Fraudsman", "birthdate": "1988-07-01"}),
        ),
        (
            "ipRestricted",
            json!({"ipAddress": "203.0.113.45"}),
            json!({"ipAddress": "203.0.114.45"}),
        ),
        (
            "emailRestricted",
            json!({"email": "someone@mx.mailinator.com"}),
            json!({"email": "someone@notmailinator.com"}),
        ),
        (
            "nonStandardTaxId",
            json!({"taxId": "912-70-1234"}),
            json!({"taxId": "512-70-1234"}),
        ),
        (
            "ageRestricted",
            json!({ "birthdate": ten }),
            json!({"birthdate": "2000-01-01"}),
        ),
    ];
    for (cat, hit, miss) in cases {
        let r = report(with(&base, hit.clone())).await;
        assert!(
            categories(&r).contains(&cat.to_string()),
            "{cat} for {hit}: {r}"
        );
        assert_eq!(r["outputs"]["state"], "passedWithRiskFactors", "{r}");
        let r = report(with(&base, miss.clone())).await;
        assert!(
            !categories(&r).contains(&cat.to_string()),
            "{cat} for {miss}: {r}"
        );
    }

    // PII mismatch against the contact's verified data (its document).
    app.seed(3).await;
    adopt(&app, &c).await;
    let scan: String = sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE integrator_id = $1 AND document LIKE '%dateOfBirth%' ORDER BY created_at LIMIT 1",
    )
    .bind(&c.integrator_id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let contact = kycdesk::verification::contact_for_process(&app.state.db, &scan)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default();
    let doc: Value = serde_json::from_str(
        &app.process_field(&scan, "document")
            .await
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let birth =
        kycdesk::verification::document_date(doc["dateOfBirth"].as_str().unwrap_or_default())
            .unwrap_or_default();
    let link = json!({"apiture:contact": {"href": format!("/contacts/contacts/{contact}")}});
    let same = with(
        &base,
        json!({"firstName": doc["name"], "lastName": doc["surname"], "birthdate": birth, "_links": link}),
    );
    let r = report(same.clone()).await;
    assert!(
        !categories(&r).contains(&"personalInfoDoesNotMatch".to_string()),
        "{r}"
    );
    assert_eq!(
        r["_links"]["apiture:contact"]["href"],
        format!("/contacts/contacts/{contact}")
    );
    let r = report(with(
        &same,
        json!({"firstName": "Zebulon", "lastName": "Quartz", "birthdate": "1950-12-31"}),
    ))
    .await;
    assert!(
        categories(&r).contains(&"personalInfoDoesNotMatch".to_string()),
        "{r}"
    );
    assert_eq!(
        r["outputs"]["state"], "failed",
        "name and birthdate both differ: {r}"
    );
    let failed_id = r["_id"].as_str().unwrap_or_default().to_string();
    // The case page lists both reports in the applicant's timeline.
    let desk = app.login(AGENT).await;
    let page = desk
        .get(&format!("/desk/cases/{scan}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    let timeline =
        crate::helpers::between(&page, "id=\"verifications\"", "</ol>").unwrap_or_default();
    assert_eq!(timeline.matches("fraudRiskReport").count(), 2, "{timeline}");
    assert!(timeline.contains("personalInfoDoesNotMatch"), "{timeline}");

    // Collections: paging links, sort, filter, q.
    let (s, page) = hal(
        &app,
        Method::GET,
        "/identity/fraudRiskReports?start=0&limit=2",
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(page["count"], 2, "{page}");
    assert!(
        page["_links"]["next"]["href"]
            .as_str()
            .is_some_and(|h| h.contains("start=2")),
        "{page}"
    );
    let (_, failed) = hal(
        &app,
        Method::GET,
        "/identity/fraudRiskReports?filter=eq(state,failed)",
        &tok,
        None,
    )
    .await;
    let items = failed["_embedded"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(items.len(), 1, "{failed}");
    assert_eq!(items[0]["_id"], failed_id.as_str());
    let (_, found) = hal(
        &app,
        Method::GET,
        "/identity/fraudRiskReports?q=Zebulon",
        &tok,
        None,
    )
    .await;
    assert_eq!(
        found["_embedded"]["items"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    let (s, bad) = hal(
        &app,
        Method::GET,
        "/identity/fraudRiskReports?limit=x",
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(bad["_error"]["statusCode"], 400, "{bad}");
    let (s, one) = hal(
        &app,
        Method::GET,
        &format!("/identity/fraudRiskReports/{failed_id}"),
        &tok,
        None,
    )
    .await;
    assert_eq!((s, one["_id"].as_str()), (200, Some(failed_id.as_str())));

    // Wrong tenant: 404 in the _error shape; bad input: 400.
    let other = integrator(&app, "Other Risk Bank").await;
    let otok = token(&app, &other).await;
    let (s, e) = hal(
        &app,
        Method::GET,
        &format!("/identity/fraudRiskReports/{failed_id}"),
        &otok,
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(e["_error"]["type"], "notFound", "{e}");
    let (s, e) = hal(
        &app,
        Method::POST,
        "/identity/fraudRiskReports",
        &tok,
        Some(json!({"birthdate": "03/14/1970"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["_error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let (s, _) = hal(
        &app,
        Method::GET,
        "/identity/fraudRiskReports",
        "bad-token",
        None,
    )
    .await;
    assert_eq!(s, 401);
}

async fn quiz_answers(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let raw: String = sqlx::query_scalar("SELECT questions FROM quizzes WHERE id = $1")
        .bind(id)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let qs: Vec<Value> = serde_json::from_str(&raw).unwrap_or_default();
    qs.iter()
        .map(|q| {
            (
                q["id"].as_str().unwrap_or_default().to_string(),
                q["answer"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn answers_body(a: &[(String, String)]) -> Value {
    json!({"answers": a.iter().map(|(q, x)| json!({"questionId": q, "answer": x})).collect::<Vec<_>>()})
}

async fn quizzes_follow_their_state_machine(b: Backend) {
    let Some(app) = spawn_unlimited(b).await else {
        return;
    };
    let c = integrator(&app, "Quiz Bank").await;
    let tok = token(&app, &c).await;
    let identity = json!({"firstName": "Grace", "lastName": "Hopper", "birthdate": "1976-12-09",
        "address1": "1741 Tiburon Dr", "city": "Austin", "region": "TX", "postalCode": "78701", "phone": "+15125550199"});
    let create = |body: Value| {
        let app = &app;
        let tok = tok.clone();
        async move {
            let (s, q) = hal(app, Method::POST, "/identity/quizzes", &tok, Some(body)).await;
            assert_eq!(s, 201, "{q}");
            (q["_id"].as_str().unwrap_or_default().to_string(), q)
        }
    };

    // pending → asked → passed, answered right.
    let (id, q) = create(identity.clone()).await;
    assert_eq!(q["outputs"]["state"], "pending", "{q}");
    assert!(q["_links"]["apiture:getQuestions"]["href"].is_string());
    let base = format!("/identity/quizzes/{id}");
    let (s, _) = hal(
        &app,
        Method::POST,
        &format!("{base}/answers"),
        &tok,
        Some(json!({"answers": []})),
    )
    .await;
    assert_eq!(s, 409, "answers before questions");
    let (s, qs) = hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
    assert_eq!(s, 201, "{qs}");
    let questions = qs["questions"].as_array().cloned().unwrap_or_default();
    assert!(questions.len() >= 3, "{qs}");
    for q in &questions {
        assert!(
            q.get("answer").is_none(),
            "answers never leave the server: {q}"
        );
        let choices = q["choices"].as_array().map(Vec::len).unwrap_or(0);
        assert!(choices >= 3, "decoys: {q}");
    }
    assert!(
        questions.iter().any(|q| q["choices"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("1976")))),
        "the birth year is asked: {qs}"
    );
    let (s, _) = hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
    assert_eq!(s, 409, "questions twice");
    let (_, got) = hal(&app, Method::GET, &base, &tok, None).await;
    assert_eq!(got["outputs"]["state"], "asked");
    let right = quiz_answers(&app, &id).await;
    assert_eq!(right.len(), questions.len());
    let (s, done) = hal(
        &app,
        Method::POST,
        &format!("{base}/answers"),
        &tok,
        Some(answers_body(&right)),
    )
    .await;
    assert_eq!(s, 201, "{done}");
    assert_eq!(done["outputs"]["state"], "passed", "{done}");
    let (s, _) = hal(
        &app,
        Method::POST,
        &format!("{base}/answers"),
        &tok,
        Some(answers_body(&right)),
    )
    .await;
    assert_eq!(s, 409, "answers after the end");

    // asked → failed, answered wrong.
    let (id, _) = create(identity.clone()).await;
    let base = format!("/identity/quizzes/{id}");
    let (s, _) = hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
    assert_eq!(s, 201);
    let wrong: Vec<(String, String)> = quiz_answers(&app, &id)
        .await
        .into_iter()
        .map(|(q, _)| (q, "none of these".to_string()))
        .collect();
    let (_, done) = hal(
        &app,
        Method::POST,
        &format!("{base}/answers"),
        &tok,
        Some(answers_body(&wrong)),
    )
    .await;
    assert_eq!(done["outputs"]["state"], "failed", "{done}");
    // An unknown questionId is a bad request, not a score.
    let (id, _) = create(identity.clone()).await;
    let base = format!("/identity/quizzes/{id}");
    hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
    let (s, _) = hal(
        &app,
        Method::POST,
        &format!("{base}/answers"),
        &tok,
        Some(json!({"answers": [{"questionId": "nope", "answer": "x"}]})),
    )
    .await;
    assert_eq!(s, 400);
    let (_, still) = hal(&app, Method::GET, &base, &tok, None).await;
    assert_eq!(
        still["outputs"]["state"], "asked",
        "a refused answer changes nothing"
    );

    // Expired after 15 minutes: pending and asked quizzes alike.
    for ask_first in [false, true] {
        let (id, _) = create(identity.clone()).await;
        let base = format!("/identity/quizzes/{id}");
        if ask_first {
            hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
        }
        exec(&app, "UPDATE quizzes SET expires_at = 0 WHERE id = $1", &id).await;
        let (_, q) = hal(&app, Method::GET, &base, &tok, None).await;
        assert_eq!(q["outputs"]["state"], "expired", "{q}");
        let (s, _) = hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
        assert_eq!(s, 409);
    }

    // Too little known: failedGetQuestions.
    let (id, _) = create(json!({"firstName": "No", "lastName": "Data"})).await;
    let base = format!("/identity/quizzes/{id}");
    let (s, e) = hal(&app, Method::POST, &format!("{base}/questions"), &tok, None).await;
    assert_eq!(s, 409, "{e}");
    let (_, q) = hal(&app, Method::GET, &base, &tok, None).await;
    assert_eq!(q["outputs"]["state"], "failedGetQuestions");

    // The list pages, filters by state; another tenant sees nothing.
    let (s, list) = hal(
        &app,
        Method::GET,
        "/identity/quizzes?filter=eq(state,passed)",
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        list["_embedded"]["items"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    let other = integrator(&app, "Other Quiz Bank").await;
    let otok = token(&app, &other).await;
    let (s, _) = hal(&app, Method::GET, &base, &otok, None).await;
    assert_eq!(s, 404);
}

async fn manual_approvals_on_the_desk(b: Backend) {
    let Some(app) = spawn_unlimited(b).await else {
        return;
    };
    app.seed(3).await;
    let c = integrator(&app, "Approval Bank").await;
    adopt(&app, &c).await;
    let tok = token(&app, &c).await;
    let scan: String = sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE integrator_id = $1 AND state <> 'NOT_VERIFIED' ORDER BY created_at LIMIT 1",
    )
    .bind(&c.integrator_id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/desk/cases/{scan}/approval");

    let agent = app.login(AGENT).await;
    let r = agent.post(&path, &[("reason", "looks fine")]).await;
    assert_eq!(r.status(), 403, "agents may not approve by default");
    let sup = app.login(SUPERVISOR).await;
    let no_csrf = sup
        .client
        .post(sup.url(&path))
        .header("HX-Request", "true")
        .form(&[("reason", "x")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(no_csrf.status(), 403);
    let r = sup.post(&path, &[("reason", "   ")]).await;
    assert_eq!(r.status(), 400, "a reason is required");
    let none: i64 = app
        .scalar_i64(
            "SELECT COUNT(*) FROM approvals WHERE integrator_id = $1",
            &c.integrator_id,
        )
        .await;
    assert_eq!(none, 0, "refused attempts change nothing");

    let r = sup
        .post(&path, &[("reason", "Identity confirmed by video call")])
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let page = sup
        .get(&format!("/desk/cases/{scan}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    let section =
        crate::helpers::between(&page, "id=\"verifications\"", "</ol>").unwrap_or_default();
    assert!(section.contains("adminApproval"), "{section}");
    assert!(
        section.contains("Identity confirmed by video call"),
        "{section}"
    );
    let audited = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'contact.approved' AND scan_id = $1",
            &scan,
        )
        .await;
    assert_eq!(audited, 1);

    // The API sees it in contactVerification.
    let contact = app
        .process_field(&scan, "contact_id")
        .await
        .unwrap_or_default();
    let uri = format!("/contacts/contacts/{contact}");
    let (s, cv) = hal(
        &app,
        Method::GET,
        &format!("/identity/contactVerification?contactUri={uri}"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200, "{cv}");
    let vs = cv["verifications"].as_array().cloned().unwrap_or_default();
    assert!(vs.iter().any(|v| v["type"] == "adminApproval"), "{cv}");
    let (s, only) = hal(
        &app,
        Method::GET,
        &format!("/identity/contactVerification?contactUri={uri}&type=quiz"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        only["verifications"].as_array().map(Vec::len),
        Some(0),
        "{only}"
    );
    // An integrator's approval over the API lands in the same place.
    let (s, a) = hal(
        &app,
        Method::POST,
        &format!("/identity/approvals?contactUri={uri}&type=adminApproval"),
        &tok,
        Some(json!({"reason": "bank branch check"})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    let (s, _) = hal(
        &app,
        Method::GET,
        &format!(
            "/identity/approvals/{}",
            a["_id"].as_str().unwrap_or_default()
        ),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200);

    // Revoking the applicant's mobile sessions from the case.
    let (uid, user_token) = make_user(&app, &c, "5558889999", "1980-01-02").await;
    let ucontact = contact_of_user(&app, &uid).await;
    sqlx::query("UPDATE processes SET contact_id = $1 WHERE scan_id = $2")
        .bind(&ucontact)
        .bind(&scan)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mobile(&app, Method::GET, "/v1/user", None, Some(&user_token), None)
            .await
            .0,
        200
    );
    assert_eq!(
        agent
            .post(&format!("/desk/cases/{scan}/revoke-tokens"), &[])
            .await
            .status(),
        403
    );
    let r = sup
        .post(&format!("/desk/cases/{scan}/revoke-tokens"), &[])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mobile(&app, Method::GET, "/v1/user", None, Some(&user_token), None)
            .await
            .0,
        401
    );

    // Agents may approve where the operator allows it.
    drop(app);
    let Some(app) = spawn_with(b, |s| s.agents_can_approve = true).await else {
        return;
    };
    app.seed(20).await;
    // A rejected case is never approved alongside its rejection.
    let rejected = app.cases_in("NOT_VERIFIED").await.remove(0);
    let agent = app.login(AGENT).await;
    let r = agent
        .post(
            &format!("/desk/cases/{rejected}/approval"),
            &[("reason", "agent check")],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("would contradict"));
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'contact.approved' AND scan_id = $1",
            &rejected
        )
        .await,
        0
    );
    let page = agent
        .get(&format!("/desk/cases/{rejected}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        !page.contains("id=\"approval-form\""),
        "no approval form on a rejection"
    );
    let scan: String = sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE state <> 'NOT_VERIFIED' ORDER BY created_at LIMIT 1",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let r = agent
        .post(
            &format!("/desk/cases/{scan}/approval"),
            &[("reason", "agent check")],
        )
        .await;
    assert_eq!(r.status(), 200);
}
