//! Issue 17: the hosted page confirms the applicant's phone and e-mail by
//! one-time code when the integrator asks for it — codes by SMS (outbox)
//! and by e-mail (a real SMTP server started here), wrong, expired and
//! exhausted codes, the resend window, the per-link and per-destination
//! caps, submission held until both are confirmed, and what the desk, the
//! process JSON and the contact show afterwards.

use crate::both_backends;
use crate::helpers::{call, code_in, smtp_server, token};
use crate::helpers::{spawn_with, Backend, TestApp, AGENT};
use crate::onboarding::{jpeg, put};
use kycdesk::accounts::integrators::{self, Credentials, IntegratorSettings};
use kycdesk::domain::confirmation::Confirmation;
use serde_json::{json, Value};

both_backends!(
    phone_and_email_are_confirmed_before_the_documents,
    codes_are_capped_per_link_and_per_destination
);

pub async fn confirming_integrator(
    app: &TestApp,
    name: &str,
    confirm: Confirmation,
    origins: &[String],
) -> Credentials {
    let c = integrators::create(&app.state.db, name, None, origins, true, "test", "test")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    integrators::update(
        &app.state.db,
        &c.integrator_id,
        &IntegratorSettings {
            webhook_url: None,
            frame_ancestors: origins.to_vec(),
            submit_state: "PENDING_VERIFICATION".into(),
            webhook_headers: vec![],
            redirect_top: false,
            sla_hours: None,
            confirm_contact: confirm,
            phone_country: Some("34".into()),
        },
        true,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    c
}

/// Opens an onboarding; returns (scanId, onboarding token, page URL).
pub async fn open(app: &TestApp, c: &Credentials, extra: Value) -> (String, String, String) {
    let tok = token(app, c).await;
    let (s, created) = call(
        app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({"docType": "IDCard", "verificationExtraData": extra})),
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let f = |k: &str| created[k].as_str().unwrap_or_default().to_string();
    (f("scanId"), f("onboardingToken"), f("url"))
}

/// A JSON POST of the page; returns (status, body, Retry-After).
pub async fn page_post(
    app: &TestApp,
    path: &str,
    tok: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let r = reqwest::Client::new()
        .post(app.url(path))
        .header("X-Onboarding-Token", tok)
        .header("X-Onboarding-Lang", "en")
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

/// Asks for a code on the page's contact step `kind`.
async fn ask_code(
    app: &TestApp,
    id: &str,
    tok: &str,
    kind: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    page_post(app, &format!("/onboarding/{id}/contact/{kind}"), tok, body).await
}

/// Every code sent to `to` (kept in the outbox: SMS, or undelivered mail).
pub async fn outbox_codes(app: &TestApp, to: &str) -> Vec<String> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM messages WHERE recipient = $1 ORDER BY created_at")
            .bind(to)
            .fetch_all(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    bodies.iter().filter_map(|b| code_in(b)).collect()
}

async fn count(app: &TestApp, sql: &str, arg: &str) -> i64 {
    app.scalar_i64(sql, arg).await
}

async fn exec(app: &TestApp, sql: &str, arg: &str) {
    sqlx::query(sql)
        .bind(arg)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ends the page's resend window for this link (as if 30 s passed).
pub async fn window_passes(app: &TestApp, scan_id: &str, kind: &str) {
    exec(
        app,
        "UPDATE rate_limits SET last_at = 0 WHERE key = $1",
        &format!("onboarding-resend:{scan_id}:{kind}"),
    )
    .await;
}

fn wrong(right: &str) -> String {
    right
        .chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                ((c as u8) + 1) as char
            }
        })
        .collect()
}

async fn phone_and_email_are_confirmed_before_the_documents(b: Backend) {
    let (port, mut inbox) = smtp_server().await;
    let Some(app) = spawn_with(b, |s| {
        s.messaging.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.messaging.from = "kycdesk <no-reply@kycdesk.test>".into();
    })
    .await
    else {
        return;
    };
    app.seed(2).await;
    let c = confirming_integrator(&app, "Confirm Bank", Confirmation::Both, &[]).await;
    let (id, otok, url) = open(&app, &c, json!({"email": "Ana@Example.com"})).await;
    let base = format!("/onboarding/{id}");

    // The page starts with the two contact steps, the e-mail pre-filled
    // from verificationExtraData and the integrator's calling code.
    let html = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    let phone_at = html.find("id=\"step-phone\"").unwrap_or(usize::MAX);
    let email_at = html.find("id=\"step-email\"").unwrap_or(usize::MAX);
    let front_at = html.find("id=\"step-front\"").unwrap_or(0);
    assert!(phone_at < email_at && email_at < front_at, "order of steps");
    assert!(
        html.contains("Step 1 of 7"),
        "two contact steps + 4 + review"
    );
    assert!(
        html.contains("value=\"Ana@Example.com\""),
        "e-mail pre-filled"
    );
    assert!(
        html.contains("value=\"+34\""),
        "the integrator's calling code"
    );

    // Documents and submission wait for the contact steps; nothing changes.
    let (s, v) = put(&app, &id, "image/front", &otok, jpeg(900, 600)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("contact_required")),
        "{v}"
    );
    let (s, v, _) = page_post(&app, &format!("{base}/submit"), &otok, json!({})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("contact_required")),
        "{v}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM evidence WHERE scan_id = $1",
            &id
        )
        .await,
        0
    );

    // A typed value that is no phone is refused next to the field; nothing sent.
    let (s, v, _) = ask_code(&app, &id, &otok, "phone", json!({"value": "12"})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_phone")), "{v}");
    let (s, v, _) = page_post(
        &app,
        &format!("{base}/contact/phone"),
        &otok,
        json!({"value": "600\u{0}112233"}),
    )
    .await;
    assert_eq!(s, 400, "NUL refused at the edge: {v}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM messages WHERE integrator_id = $1",
            &c.integrator_id
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM verifications WHERE channel = $1",
            "onboarding"
        )
        .await,
        0
    );

    // The phone: a national number gets the integrator's +34.
    let phone = "+34600112233";
    let (s, v, _) = ask_code(
        &app,
        &id,
        &otok,
        "phone",
        json!({"value": "600 11 22 33", "countryCode": ""}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["to"], "+34••••••233");
    assert_eq!(
        (v["resendIn"].as_i64(), v["expiresIn"].as_i64()),
        (Some(30), Some(900))
    );
    let codes = outbox_codes(&app, phone).await;
    assert_eq!(codes.len(), 1, "one SMS in the outbox");

    // Asking again at once: refused with the countdown, nothing sent.
    let (s, v, retry) = ask_code(&app, &id, &otok, "phone", json!({"value": "600112233"})).await;
    assert_eq!((s, v["code"].as_str()), (429, Some("resend_wait")), "{v}");
    let left = v["retryAfter"].as_i64().unwrap_or(0);
    assert!((1..=30).contains(&left), "{v}");
    assert_eq!(retry, Some(left.to_string()));
    assert_eq!(outbox_codes(&app, phone).await.len(), 1);

    // A wrong code takes one of five attempts.
    let code_path = format!("{base}/contact/phone/code");
    let (s, v, _) = page_post(&app, &code_path, &otok, json!({"code": wrong(&codes[0])})).await;
    assert_eq!(
        (s, v["code"].as_str(), v["attemptsLeft"].as_i64()),
        (422, Some("wrong_code"), Some(4)),
        "{v}"
    );

    // An expired code is refused even when right.
    exec(
        &app,
        "UPDATE verifications SET expires_at = 0 WHERE target = $1",
        phone,
    )
    .await;
    let (s, v, _) = page_post(&app, &code_path, &otok, json!({"code": codes[0]})).await;
    assert_eq!((s, v["code"].as_str()), (410, Some("code_expired")), "{v}");

    // A new code (after the window), typed as the SMS shows it (123-456).
    window_passes(&app, &id, "phone").await;
    let (s, v, _) = ask_code(
        &app,
        &id,
        &otok,
        "phone",
        json!({"value": "+34 600 11 22 33"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let codes = outbox_codes(&app, phone).await;
    assert_eq!(codes.len(), 2);
    let dashed = format!("{}-{}", &codes[1][..3], &codes[1][3..]);
    let (s, v, _) = page_post(&app, &code_path, &otok, json!({"code": dashed})).await;
    assert_eq!(
        (s, &v),
        (200, &json!({"confirmed": true, "to": "+34••••••233"}))
    );
    // Confirmed once: neither a new code nor the same one again.
    let (s, v, _) = ask_code(&app, &id, &otok, "phone", json!({"value": "600112233"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("already_confirmed")),
        "{v}"
    );

    // Still held: the e-mail is missing.
    let (s, v, _) = page_post(&app, &format!("{base}/submit"), &otok, json!({})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("contact_required")),
        "{v}"
    );

    // The e-mail goes through SMTP; the kept copy holds no code.
    let (s, v, _) = ask_code(
        &app,
        &id,
        &otok,
        "email",
        json!({"value": " Ana@Example.com "}),
    )
    .await;
    assert_eq!(
        (s, v["to"].as_str()),
        (200, Some("a•••@example.com")),
        "{v}"
    );
    let mail = crate::helpers::next_mail(&mut inbox).await;
    assert!(mail.contains("RCPT TO:<ana@example.com>"), "{mail}");
    let first = code_in(&mail).unwrap_or_else(|| panic!("no code in {mail}"));
    assert!(
        outbox_codes(&app, "ana@example.com").await.is_empty(),
        "delivered codes are not kept"
    );
    // Five wrong tries exhaust the code; then even the right one fails.
    let email_code = format!("{base}/contact/email/code");
    for left in (0..5).rev() {
        let (s, v, _) = page_post(&app, &email_code, &otok, json!({"code": wrong(&first)})).await;
        if left > 0 {
            assert_eq!((s, v["attemptsLeft"].as_i64()), (422, Some(left)), "{v}");
        } else {
            assert_eq!(
                (s, v["code"].as_str()),
                (422, Some("code_exhausted")),
                "{v}"
            );
        }
    }
    let (s, v, _) = page_post(&app, &email_code, &otok, json!({"code": first})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("code_exhausted")),
        "{v}"
    );

    // A fresh code, and the Spanish message for it.
    window_passes(&app, &id, "email").await;
    let r = reqwest::Client::new()
        .post(app.url(&format!("{base}/contact/email")))
        .header("X-Onboarding-Token", &otok)
        .header("X-Onboarding-Lang", "es")
        .json(&json!({"value": "ana@example.com"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200);
    let mail = crate::helpers::next_mail(&mut inbox).await;
    assert!(
        mail.contains("Tu c") && mail.contains("Caduca en 15 minutos"),
        "{mail}"
    );
    let second = code_in(&mail).unwrap_or_else(|| panic!("no code in {mail}"));
    let (s, v, _) = page_post(&app, &email_code, &otok, json!({"code": second})).await;
    assert_eq!((s, v["confirmed"].as_bool()), (200, Some(true)), "{v}");

    // Now the documents, and the submission.
    for slot in ["image/front", "image/back", "image/selfie"] {
        let (s, v) = put(&app, &id, slot, &otok, jpeg(900, 600)).await;
        assert_eq!(s, 201, "{slot}: {v}");
    }
    let (s, v, _) = page_post(&app, &format!("{base}/submit"), &otok, json!({})).await;
    assert_eq!(s, 200, "{v}");

    // Both values are verified points of the applicant's contact…
    let verified: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.kind, p.value FROM contact_points p JOIN processes r ON r.contact_id = p.contact_id \
         WHERE r.scan_id = $1 AND p.verified_at IS NOT NULL ORDER BY p.kind",
    )
    .bind(&id)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        verified,
        vec![
            ("email".to_string(), "ana@example.com".to_string()),
            ("phone".to_string(), phone.to_string())
        ]
    );
    // …in the process JSON the integrator reads…
    let tok = token(&app, &c).await;
    let (s, pj) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{id}"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200, "{pj}");
    let confirmed = pj["confirmedContacts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pairs: Vec<(String, String)> = confirmed
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("email".to_string(), "ana@example.com".to_string()),
            ("phone".to_string(), phone.to_string())
        ],
        "{pj}"
    );
    assert!(confirmed
        .iter()
        .all(|c| c["confirmedAt"].as_str().is_some_and(|t| t.ends_with('Z'))));

    // …in the certified zip's process.json once the integrator decides…
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/accept",
        &tok,
        Some(json!({"verificationId": id, "type": "MANUAL"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, zip_bytes) =
        crate::certify::get_bytes(&app, &format!("/api/zip/{id}"), &tok, "application/json").await;
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("case.zip");
    std::fs::write(&file, &zip_bytes).unwrap_or_else(|e| panic!("{e}"));
    let in_zip: Value = serde_json::from_slice(&crate::certify::read_entry(&file, "process.json"))
        .unwrap_or_default();
    assert_eq!(
        in_zip["confirmedContacts"], pj["confirmedContacts"],
        "{in_zip}"
    );

    // …and on the desk's case page: the timeline in words and the history.
    let desk = app.login(AGENT).await;
    let page = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        page.contains("Mobile number code (hosted page)"),
        "timeline names the phone code"
    );
    assert!(page.contains("E-mail code (hosted page)"));
    assert!(page.contains(phone) && page.contains("ana@example.com"));
    assert!(page.contains("confirmed their mobile number by code (+34••••••233)"));
    assert!(page.contains("confirmed their e-mail address by code (a•••@example.com)"));
    // The audit log keeps only the masked values, never a code.
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'onboarding.contact_confirm' AND scan_id = $1",
    )
    .bind(&id)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(details.len(), 2);
    assert!(details
        .iter()
        .all(|d| !d.contains(phone) && !d.contains(&second) && !d.contains("ana@")));
}

async fn codes_are_capped_per_link_and_per_destination(b: Backend) {
    let Some(app) = spawn_with(b, |_| {}).await else {
        return;
    };
    app.seed(1).await;
    let c = confirming_integrator(&app, "Cap Bank", Confirmation::Phone, &[]).await;
    let none = confirming_integrator(&app, "Plain Bank", Confirmation::None, &[]).await;
    let target = "+34611000111";
    let send = |id: String, tok: String| {
        let app = &app;
        async move {
            window_passes(app, &id, "phone").await;
            page_post(
                app,
                &format!("/onboarding/{id}/contact/phone"),
                &tok,
                json!({"value": target}),
            )
            .await
        }
    };

    // An integrator that asks for nothing has no contact step.
    let (pid, ptok, _) = open(&app, &none, json!({})).await;
    let (s, v, _) = send(pid.clone(), ptok.clone()).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_asked")), "{v}");
    let (s, v) = put(&app, &pid, "image/front", &ptok, jpeg(900, 600)).await;
    assert_eq!(s, 201, "documents open at once without confirmation: {v}");

    // Five codes per link and day; the sixth is refused and sends nothing.
    let (a, atok, _) = open(&app, &c, json!({})).await;
    for i in 0..5 {
        let (s, v, _) = send(a.clone(), atok.clone()).await;
        assert_eq!(s, 200, "code {i}: {v}");
    }
    let (s, v, retry) = send(a.clone(), atok.clone()).await;
    assert_eq!((s, v["code"].as_str()), (429, Some("send_limit")), "{v}");
    assert!(retry.is_some());
    assert_eq!(outbox_codes(&app, target).await.len(), 5);

    // Ten per number and day across links: a leaked link cannot spam it.
    let mut sent = 5;
    let mut refused = None;
    for k in 0..4 {
        let (id, tok, _) = open(&app, &c, json!({})).await;
        for _ in 0..3 {
            let (s, v, _) = send(id.clone(), tok.clone()).await;
            if s == 200 {
                sent += 1;
            } else {
                assert_eq!((s, v["code"].as_str()), (429, Some("send_limit")), "{v}");
                refused.get_or_insert(k);
            }
        }
    }
    assert_eq!(sent, 10, "ten codes reached the number, no more");
    assert_eq!(outbox_codes(&app, target).await.len(), 10);
    assert!(refused.is_some());
    // Another number from a fresh link still works.
    let (id, tok, _) = open(&app, &c, json!({})).await;
    let (s, v, _) = page_post(
        &app,
        &format!("/onboarding/{id}/contact/phone"),
        &tok,
        json!({"value": "611 000 222"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // A burst of sends on one link: the window lets exactly one through.
    let (id, tok, _) = open(&app, &c, json!({})).await;
    let burst = (0..8).map(|k| {
        let (app, id, tok) = (&app, id.clone(), tok.clone());
        async move {
            page_post(
                app,
                &format!("/onboarding/{id}/contact/phone"),
                &tok,
                json!({"value": format!("+3462200{k:04}")}),
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(burst).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );

    // Phone and e-mail confirmed at the same moment: neither is lost.
    let both = confirming_integrator(&app, "Both Bank", Confirmation::Both, &[]).await;
    let (id, tok, _) = open(&app, &both, json!({})).await;
    let mut codes = vec![];
    for (kind, value, to) in [
        ("phone", "633 000 111", "+34633000111"),
        ("email", "race@example.com", "race@example.com"),
    ] {
        let (s, v, _) = page_post(
            &app,
            &format!("/onboarding/{id}/contact/{kind}"),
            &tok,
            json!({"value": value}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        codes.push((kind, outbox_codes(&app, to).await.pop().unwrap_or_default()));
    }
    let confirms = codes.iter().map(|(kind, code)| {
        let (app, id, tok) = (&app, id.clone(), tok.clone());
        async move {
            page_post(
                app,
                &format!("/onboarding/{id}/contact/{kind}/code"),
                &tok,
                json!({"code": code}),
            )
            .await
            .0
        }
    });
    assert_eq!(
        futures_util::future::join_all(confirms).await,
        vec![200, 200]
    );
    let stored = app
        .process_field(&id, "confirmed_contacts")
        .await
        .unwrap_or_default();
    let stored: Vec<Value> = serde_json::from_str(&stored).unwrap_or_default();
    assert_eq!(stored.len(), 2, "{stored:?}");

    // The admin sets it on the desk; a bad calling code changes nothing.
    let admin = app.login(crate::helpers::ADMIN).await;
    let path = format!("/desk/admin/integrators/{}", none.integrator_id);
    let form = |cc: &'static str| {
        vec![
            ("submit_state", "PENDING_VERIFICATION"),
            ("confirm_contact", "email"),
            ("phone_country", cc),
        ]
    };
    let r = admin.post(&path, &form("0034")).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("calling code of 1 to 3 digits"), "{text}");
    assert_eq!(
        app.integrator_field(&none.integrator_id, "confirm_contact")
            .await
            .as_deref(),
        Some("none")
    );
    let r = admin.post(&path, &form("+44")).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        app.integrator_field(&none.integrator_id, "confirm_contact")
            .await
            .as_deref(),
        Some("email")
    );
    assert_eq!(
        app.integrator_field(&none.integrator_id, "phone_country")
            .await
            .as_deref(),
        Some("44")
    );
    let page = admin
        .get("/desk/admin/integrators")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        page.contains("<option value=\"email\" selected>E-mail by code</option>"),
        "the form shows the setting"
    );
}
