//! The hosted onboarding page over HTTP: token access, framing headers,
//! uploads, submission, and the clear pages for finished, expired and
//! unknown links.

use crate::both_backends;
use crate::helpers::{call, token};
use crate::helpers::{spawn_app, Backend, TestApp};
use kycdesk::accounts::integrators::{self, Credentials, IntegratorSettings};
use serde_json::{json, Value};

both_backends!(hosted_page_works_by_token_and_frames_only_for_allowed_origins);

pub async fn framed_integrator(app: &TestApp, origins: &[String], top: bool) -> Credentials {
    let c = integrators::create(
        &app.state.db,
        "Frame Bank",
        None,
        origins,
        true,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    integrators::update(
        &app.state.db,
        &c.integrator_id,
        &IntegratorSettings {
            webhook_url: None,
            frame_ancestors: origins.to_vec(),
            submit_state: "PENDING_VALIDATION".into(),
            webhook_headers: vec![],
            redirect_top: top,
            sla_hours: None,
            confirm_contact: Default::default(),
            phone_country: None,
        },
        true,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    c
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

pub async fn put(app: &TestApp, id: &str, slot: &str, tok: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url(&format!("/onboarding/{id}/evidence/{slot}")))
        .header("X-Onboarding-Token", tok)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn hosted_page_works_by_token_and_frames_only_for_allowed_origins(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(3).await;
    let c = framed_integrator(
        &app,
        &[
            "https://bank.example".into(),
            "https://app.bank.example:8443".into(),
        ],
        false,
    )
    .await;
    let tok = token(&app, &c).await;
    let (s, created) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({
            "docType": "IDCard", "redirectUrl": "https://bank.example/kyc/done?x=1"
        })),
    )
    .await;
    assert_eq!(s, 200);
    let id = created["scanId"].as_str().unwrap_or_default().to_string();
    let otok = created["onboardingToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = created["url"].as_str().unwrap_or_default().to_string();

    let http = reqwest::Client::new();
    let r = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("frame-ancestors https://bank.example https://app.bank.example:8443"),
        "{csp}"
    );
    assert!(
        r.headers().get("x-frame-options").is_none(),
        "no X-Frame-Options on the hosted page"
    );
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no cookies: the token is the session"
    );
    let html = r.text().await.unwrap_or_default();
    assert!(html.contains("Front of your document") && html.contains("Back of your document"));
    assert!(
        !html.is_empty() && !html.contains("<script>"),
        "no inline script"
    );
    let es = http
        .get(format!("{url}&lang=es"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(es
        .text()
        .await
        .unwrap_or_default()
        .contains("Anverso del documento"));
    let es = http
        .get(&url)
        .header("Accept-Language", "es-ES,es;q=0.9")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(es.text().await.unwrap_or_default().contains("lang=\"es\""));

    // A disabled integrator's links stop working; enabled again, they work.
    kycdesk::store::integrators::set_enabled(app.state.db.write(), &c.integrator_id, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 404);
    kycdesk::store::integrators::set_enabled(app.state.db.write(), &c.integrator_id, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        http.get(&url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        200
    );

    // The desk still refuses framing.
    let desk = http
        .get(app.url("/desk/login"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        desk.headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("DENY")
    );

    // Wrong or missing token: a clear page, nothing about the process.
    for bad in [
        format!("/onboarding/{id}?token=nope"),
        format!("/onboarding/{id}"),
        "/onboarding/not-a-uuid?token=x".into(),
    ] {
        let r = http
            .get(app.url(&bad))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 404, "{bad}");
        let page = r.text().await.unwrap_or_default();
        assert!(page.contains("This link cannot be used"), "{page}");
        assert!(!page.contains(&id));
    }

    // Uploads need the token header; bad files get a code the page translates.
    let (s, _) = put(&app, &id, "image/front", "wrong", jpeg(800, 500)).await;
    assert_eq!(s, 404);
    let (s, v) = put(&app, &id, "image/front", &otok, b"%PDF-1.4 nope".to_vec()).await;
    assert_eq!((s, v["code"].as_str()), (415, Some("wrong_type")), "{v}");
    let (s, v) = put(&app, &id, "image/passport-scan", &otok, jpeg(800, 500)).await;
    assert_eq!(s, 404, "{v}");
    for slot in ["image/front", "image/back", "image/selfie"] {
        let (s, v) = put(&app, &id, slot, &otok, jpeg(800, 500)).await;
        assert_eq!(s, 201, "{slot}: {v}");
    }
    let webm = kycdesk::assets::DemoAssets::get("recording.webm")
        .map(|f| f.data.to_vec())
        .unwrap_or_default();
    let (s, v) = put(&app, &id, "recording/video", &otok, webm).await;
    assert_eq!(
        (s, v["mediaType"].as_str()),
        (201, Some("video/webm")),
        "{v}"
    );
    // Retakes are fine, up to a ceiling that stops anyone filling the disk.
    let mut accepted = 4;
    loop {
        let (s, v) = put(&app, &id, "image/selfie", &otok, jpeg(640, 400 + accepted)).await;
        if s != 201 {
            assert_eq!((s, v["code"].as_str()), (429, Some("too_many")), "{v}");
            break;
        }
        accepted += 1;
        assert!(accepted <= 40, "no ceiling on uploads");
    }
    assert_eq!(accepted, kycdesk::review::MAX_UPLOADS as u32);
    // A reload resumes: the page knows what is uploaded.
    let html = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        html.contains(r#"data-slot="image/back" data-done="1""#),
        "{html}"
    );

    let submit = |t: String| {
        let http = http.clone();
        let u = app.url(&format!("/onboarding/{id}/submit"));
        async move {
            let r = http
                .post(u)
                .header("X-Onboarding-Token", t)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, _) = submit("wrong".into()).await;
    assert_eq!(s, 404);
    let (s, v) = submit(otok.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["redirectUrl"], "https://bank.example/kyc/done?x=1");
    assert_eq!(v["topWindow"], false);
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VALIDATION"),
        "the integrator's submit state"
    );
    // Nothing was extracted from the photos: the case reaches the desk with
    // a failing validation the queue's Failing filter finds (SPEC §4).
    let failing = app
        .process_field(&id, "failing_validations")
        .await
        .unwrap_or_default();
    assert!(failing.contains(",documentDataPresent,"), "{failing}");
    let desk = app.login(crate::helpers::AGENT).await;
    let queue = desk
        .get("/desk/queue?state=PENDING_VALIDATION&failing=documentDataPresent")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(queue.contains(&id), "the Failing filter finds the case");
    // Single use: the token now only shows the finished page.
    let (s, v) = submit(otok.clone()).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("closed")));
    let (s, _) = put(&app, &id, "image/front", &otok, jpeg(800, 500)).await;
    assert_eq!(s, 409);
    let done = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.status(), 200);
    let page = done.text().await.unwrap_or_default();
    assert!(page.contains("Your documents were sent"), "{page}");
    assert!(page.contains("https://bank.example/kyc/done?x=1"));

    // An expired link and a deleted process: clear pages, not error dumps.
    let (s, created) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({"redirectUrl": "javascript:alert(1)"})),
    )
    .await;
    assert_eq!(s, 400, "only http(s) redirect URLs: {created}");
    let (_, created) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({})),
    )
    .await;
    let old = created["scanId"].as_str().unwrap_or_default().to_string();
    sqlx::query("UPDATE processes SET created_at = created_at - $1 WHERE scan_id = $2")
        .bind(30i64 * 24 * 3_600_000)
        .bind(&old)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = http
        .get(created["url"].as_str().unwrap_or_default())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap_or_default().contains("expired"));
    let (s, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/mobbscan-agent/api/verification/{id}"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let r = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("This link cannot be used"));
}
