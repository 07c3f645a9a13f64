//! The integrator API, driven as the MobbScan reference's examples do.

use crate::both_backends;
use crate::helpers::{adopt, call, integrator, owned_in, spawn_app, token, Backend, TestApp};
use serde_json::{json, Value};

both_backends!(
    tokens_are_issued_and_checked,
    onboardings_are_created_as_the_reference_says,
    decisions_over_the_api_are_the_desk_operation,
    other_tenants_see_nothing
);

async fn tokens_are_issued_and_checked(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Token Bank").await;
    let http = reqwest::Client::new();
    let r = http
        .post(app.url("/auth/token"))
        .json(&json!({"api_key": c.api_key, "api_secret": c.api_secret}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap_or_default();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    let good = v["access_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(good.split('.').count(), 3);

    let wrong = http
        .post(app.url("/auth/token"))
        .json(&json!({"api_key": c.api_key, "api_secret": "nope"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap_or_default();
    assert_eq!(body["status"], 401);
    assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
    let malformed = http
        .post(app.url("/auth/token"))
        .header("Content-Type", "application/json")
        .body("{\"api_key\":")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(malformed.status(), 400);
    let missing = http
        .post(app.url("/auth/token"))
        .json(&json!({"api_key": c.api_key}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(missing.status(), 400);

    let probe = "/mobbscan-agent/getVerificationProcessData/4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c";
    assert_eq!(
        call(&app, reqwest::Method::GET, probe, &good, None).await.0,
        404,
        "a valid token reaches the API"
    );
    let none = http
        .get(app.url(probe))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.status(), 401);
    // Forged signature, alg:none, expired, wrong audience: all 401.
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('A') { 'B' } else { 'A' });
    let parts: Vec<&str> = good.split('.').collect();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let alg_none = format!(
        "{}.{}.",
        b64("{\"alg\":\"none\",\"typ\":\"JWT\"}"),
        parts[1]
    );
    let key = jsonwebtoken::EncodingKey::from_secret(&app.state.jwt_key);
    let now = chrono::Utc::now().timestamp();
    let iss = app
        .state
        .settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let craft = |exp: i64, aud: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"sub": c.integrator_id, "iss": iss, "aud": aud, "iat": now - 3600, "exp": exp, "jti": "x"}),
            &key,
        )
        .unwrap_or_default()
    };
    let expired = craft(now - 60, "kycdesk-api");
    let wrong_aud = craft(now + 600, "someone-else");
    for (what, t) in [
        ("forged", forged),
        ("alg none", alg_none),
        ("expired", expired),
        ("audience", wrong_aud),
    ] {
        assert_eq!(
            call(&app, reqwest::Method::GET, probe, &t, None).await.0,
            401,
            "{what}"
        );
    }
    // A disabled integrator can neither get tokens nor use the ones it has.
    // Disabled straight in the database, as another app server sharing it
    // would: this instance's cached row ends within its stated bound (a
    // change made through this instance ends it at once: see
    // `integrators_are_administered_on_the_desk`).
    assert_ne!(
        call(&app, reqwest::Method::GET, probe, &good, None).await.0,
        403,
        "the row is cached while enabled"
    );
    kycdesk::store::integrators::set_enabled(app.state.db.write(), &c.integrator_id, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(
        kycdesk::store::integrators::AUTH_CACHE_TTL + std::time::Duration::from_millis(50),
    )
    .await;
    let r = http
        .post(app.url("/auth/token"))
        .json(&json!({"api_key": c.api_key, "api_secret": c.api_secret}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 403);
    assert_eq!(
        call(&app, reqwest::Method::GET, probe, &good, None).await.0,
        403
    );
}

async fn onboardings_are_created_as_the_reference_says(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Onboard Bank").await;
    let t = token(&app, &c).await;
    let chosen = "0e76e708-1dff-47d8-80fe-12b40043f86d";
    let body = json!({"countryId": "ESP", "docType": "IDCard", "docSpecificType": "", "redirectUrl": "https://bank.example/done", "scanId": chosen, "verificationExtraData": {"additionalProp1": "string"}});
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &t,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scanId"], chosen);
    let ot = v["onboardingToken"].as_str().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(ot).is_ok());
    assert_eq!(
        v["url"],
        format!("{}/onboarding/{chosen}?token={ot}", app.base)
    );
    let (s, _) = call(&app, reqwest::Method::POST, "/onboarding", &t, Some(body)).await;
    assert_eq!(s, 409, "a taken scanId");
    // A JSON body of whitespace is not JSON (schemathesis found it read as
    // "no body"); no body at all stays the plain call.
    let ws = reqwest::Client::new()
        .post(app.url("/onboarding"))
        .header("Authorization", format!("Bearer {t}"))
        .header("Content-Type", "application/json")
        .body(" ")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ws.status(), 400);
    let (s, v) = call(&app, reqwest::Method::POST, "/onboarding", &t, None).await;
    assert_eq!(s, 200, "{v}");
    for bad in [
        json!({"docType": "Visa"}),
        json!({"countryId": "Spain"}),
        json!({"countryId": "\u{85}ESP"}),
        json!({"scanId": "abc"}),
        json!({"redirectUrl": "javascript:alert(1)"}),
        // What the URL parser would take but the schema's pattern does not.
        json!({"redirectUrl": "http:bank.example/done"}),
        json!({"redirectUrl": "https://bank.example\ndone"}),
        json!({"redirectUrl": "https://bank.example/\rx"}),
        json!({"redirectUrl": "https://bank.example/\u{2028}x"}),
    ] {
        let (s, v) = call(
            &app,
            reqwest::Method::POST,
            "/onboarding",
            &t,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &t,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "every field is optional: {v}");
    let (s, p) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{chosen}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["scanId"], chosen);
    assert_eq!(p["status"], "CREATED");
    assert_eq!(p["countryId"], "ESP");
    assert_eq!(p["docType"], "IDCard");
    assert_eq!(p["redirectUrl"], "https://bank.example/done");
    assert_eq!(p["verificationExtraData"]["additionalProp1"], "string");
    for k in [
        "verificationResult",
        "licenseId",
        "agent",
        "document",
        "images",
        "recordings",
        "extraParameters",
        "extraImages",
        "validations",
        "pdfUrl",
        "pdfChecksum",
        "rejectionReason",
        "comment",
        "creationTime",
        "verificationTime",
        "clientInfo",
        "certificatedZipUrl",
    ] {
        assert!(p.get(k).is_some(), "process data has {k}");
    }
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM processes WHERE onboarding_token_hash IS NOT NULL AND scan_id = $1", chosen).await, 1);
}

async fn decisions_over_the_api_are_the_desk_operation(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(60).await;
    let c = integrator(&app, "Decide Bank").await;
    adopt(&app, &c).await;
    let t = token(&app, &c).await;
    let validation = owned_in(&app, &c, "PENDING_VALIDATION").await;
    let review = owned_in(&app, &c, "PENDING_VERIFICATION").await;
    assert!(validation.len() >= 2 && review.len() >= 2);

    let id = &validation[0];
    let (s, v) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(v["images"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["validations"]["mrzCheckDigits"]["result"].is_string());

    // Accept with partial personalData: applied with the decision, atomically.
    let bad = json!({"personalData": {"nationality": "XXX"}, "type": "AUTO", "verificationId": id});
    assert_eq!(
        call(
            &app,
            reqwest::Method::POST,
            "/mobbscan-agent/accept",
            &t,
            Some(bad)
        )
        .await
        .0,
        400
    );
    assert_eq!(
        app.process_field(id, "state").await.as_deref(),
        Some("PENDING_VALIDATION"),
        "nothing half-written"
    );
    let body = json!({"personalData": {"surname": "Doe Smith", "city": "Sampletown"}, "type": "AUTO", "verificationId": id});
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/accept",
        &t,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"status": "VERIFICATION_ACCEPTED", "description": format!("Verification with id={id} accepted successfully")})
    );
    assert_eq!(
        app.process_field(id, "state").await.as_deref(),
        Some("VERIFIED")
    );
    let doc: Value =
        serde_json::from_str(&app.process_field(id, "document").await.unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(doc["surname"], "Doe Smith");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM field_edits WHERE scan_id = $1", id)
            .await,
        2
    );
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/accept",
        &t,
        Some(body),
    )
    .await;
    assert_eq!(s, 409, "a final case cannot be accepted again");

    let r = &review[0];
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/reject",
        &t,
        Some(json!({"type": "AUTO", "verificationId": r})),
    )
    .await;
    assert_eq!(s, 400, "rejectionComment is required");
    // Blank by any regex dialect's `\s` (the schema says `\S`): Unicode
    // spaces, Python's extra U+001C..U+001F, ECMA-262's U+FEFF.
    for blank in [" \t\n", "\u{85}\u{a0}\u{3000}", "\u{1c}\u{1f}", "\u{feff}"] {
        let (s, _) = call(
            &app,
            reqwest::Method::POST,
            "/mobbscan-agent/reject",
            &t,
            Some(json!({"rejectionComment": blank, "verificationId": r})),
        )
        .await;
        assert_eq!(s, 400, "{blank:?} is no comment");
    }
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/reject",
        &t,
        Some(json!({"rejectionComment": "blurry document", "type": "AUTO", "verificationId": r})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "VERIFICATION_REJECTED");
    assert_eq!(
        app.process_field(r, "state").await.as_deref(),
        Some("NOT_VERIFIED")
    );
    assert_eq!(
        app.process_field(r, "rejection_reason").await.as_deref(),
        Some("blurry document")
    );

    let p = &validation[1];
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/pending",
        &t,
        Some(json!({"verificationId": p, "personalData": {"postCode": "56789"}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "UPDATED_VERIFICATION");
    assert_eq!(
        app.process_field(p, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/pending",
        &t,
        Some(json!({"verificationId": review[1]})),
    )
    .await;
    assert_eq!(s, 409, "pending only from PENDING_VALIDATION");
    let actor = format!("integrator:{}", "Decide Bank");
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.decide' AND actor = $1",
            &actor
        )
        .await,
        3
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM decisions WHERE actor = $1", &actor)
            .await,
        3
    );
    assert!(matches!(
        kycdesk::audit::verify(&app.state.db).await,
        Ok(kycdesk::audit::Verdict::Intact { .. })
    ));
}

async fn other_tenants_see_nothing(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let owner = integrator(&app, "Owner Bank").await;
    adopt(&app, &owner).await;
    let other = integrator(&app, "Other Bank").await;
    let t = token(&app, &other).await;
    let id = owned_in(&app, &owner, "PENDING_VERIFICATION")
        .await
        .remove(0);
    let (s, theirs) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{id}"),
        &t,
        None,
    )
    .await;
    let (s2, missing) = call(
        &app,
        reqwest::Method::GET,
        "/mobbscan-agent/getVerificationProcessData/4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c",
        &t,
        None,
    )
    .await;
    assert_eq!((s, s2), (404, 404));
    assert_eq!(
        theirs, missing,
        "another tenant's case answers exactly as a missing one"
    );
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/accept",
        &t,
        Some(json!({"verificationId": id, "type": "AUTO"})),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );
}

both_backends!(
    evidence_comes_in_the_three_forms,
    delete_removes_the_case_and_get_never_does
);

async fn get_with_accept(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .get(app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", accept);
    if let Some(range) = range {
        r = r.header("Range", range);
    }
    r.send().await.unwrap_or_else(|e| panic!("{e}"))
}

async fn evidence_comes_in_the_three_forms(b: Backend) {
    use base64::Engine;
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    let c = integrator(&app, "Evidence Bank").await;
    adopt(&app, &c).await;
    let t = token(&app, &c).await;
    let id = owned_in(&app, &c, "VERIFIED").await.remove(0);
    let path = format!("/mobbscan-agent/{id}/image/front");
    let bin = get_with_accept(&app, &path, &t, "image/jpeg", None).await;
    assert_eq!(bin.status(), 200);
    assert_eq!(bin.headers()["content-type"], "image/jpeg");
    let bytes = bin.bytes().await.unwrap_or_default();
    let img = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("a real JPEG: {e}"));
    assert_eq!((img.width(), img.height()), (856, 540));
    let json: Value = get_with_accept(&app, &path, &t, "application/json", None)
        .await
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(json["imageType"], "front");
    assert_eq!(json["scanId"], id);
    assert!(json["timestamp"].is_string());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(json["image"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(decoded, bytes, "the JSON form carries the same bytes");
    let text = get_with_accept(&app, &path, &t, "text/plain", None)
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap_or_default(),
        bytes
    );
    assert_eq!(
        get_with_accept(&app, &path, &t, "application/xml", None)
            .await
            .status(),
        406
    );
    assert_eq!(
        get_with_accept(
            &app,
            &format!("/mobbscan-agent/{id}/image/nothing"),
            &t,
            "image/jpeg",
            None
        )
        .await
        .status(),
        404
    );
    let part = get_with_accept(&app, &path, &t, "image/jpeg", Some("bytes=0-99")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap_or_default(), bytes[..100]);
    let pdf = get_with_accept(
        &app,
        &format!("/mobbscan-agent/api/pdf/{id}"),
        &t,
        "application/pdf",
        None,
    )
    .await;
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf.bytes().await.unwrap_or_default();
    let sum = app
        .process_field(&id, "pdf_checksum")
        .await
        .unwrap_or_default();
    assert_eq!(
        kycdesk::security::sha256_hex_bytes(&pdf),
        sum,
        "pdfChecksum is the PDF's SHA-256"
    );
    // The reference's JSON form of the PDF: {timestamp, scanId, pdfDocument}.
    let json: Value = get_with_accept(
        &app,
        &format!("/mobbscan-agent/api/pdf/{id}"),
        &t,
        "application/json",
        None,
    )
    .await
    .json()
    .await
    .unwrap_or_default();
    assert_eq!(json["scanId"], id);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(json["pdfDocument"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(decoded, pdf, "{json:.200}");
    // A recording's JSON form uses the fields the reference documents for
    // it: imageType and image, like an image's.
    let v: String = sqlx::query_scalar(
        "SELECT scan_id FROM evidence WHERE kind = 'recording' AND scan_id IN \
         (SELECT scan_id FROM processes WHERE integrator_id = $1) LIMIT 1",
    )
    .bind(&c.integrator_id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("the demo has recordings: {e}"));
    let json: Value = get_with_accept(
        &app,
        &format!("/mobbscan-agent/{v}/recording/video"),
        &t,
        "application/json",
        None,
    )
    .await
    .json()
    .await
    .unwrap_or_default();
    assert_eq!(json["imageType"], "video");
    assert!(json["image"].as_str().is_some_and(|b| !b.is_empty()));
}

async fn delete_removes_the_case_and_get_never_does(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    let c = integrator(&app, "Delete Bank").await;
    adopt(&app, &c).await;
    let t = token(&app, &c).await;
    let id = owned_in(&app, &c, "NOT_VERIFIED").await.remove(0);
    let path = format!("/mobbscan-agent/api/verification/{id}");
    let get = get_with_accept(&app, &path, &t, "application/json", None).await;
    assert!(
        get.status() == 405 || get.status() == 404,
        "{}",
        get.status()
    );
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("NOT_VERIFIED"),
        "GET never deletes"
    );
    let shas: Vec<String> = sqlx::query_scalar("SELECT sha256 FROM evidence WHERE scan_id = $1")
        .bind(&id)
        .fetch_all(app.state.db.read())
        .await
        .unwrap_or_default();
    assert!(!shas.is_empty());
    let before = app
        .scalar_i64(
            "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state = $1",
            "NOT_VERIFIED",
        )
        .await;
    let (s, v) = call(&app, reqwest::Method::DELETE, &path, &t, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM processes WHERE scan_id = $1", &id)
            .await,
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM evidence WHERE scan_id = $1", &id)
            .await,
        0
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT CAST(SUM(n) AS BIGINT) FROM state_counts WHERE state = $1",
            "NOT_VERIFIED"
        )
        .await,
        before - 1
    );
    for sha in &shas {
        let in_use = app
            .scalar_i64("SELECT COUNT(*) FROM evidence WHERE sha256 = $1", sha)
            .await;
        let exists = app
            .data_dir
            .join("blobs")
            .join(&sha[..2])
            .join(sha)
            .exists();
        assert_eq!(
            exists,
            in_use > 0,
            "blob {sha} removed unless another case shares it"
        );
    }
    let tomb: String = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'case.delete' AND scan_id = $1",
    )
    .bind(&id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_default();
    assert!(tomb.contains(&shas[0]), "the tombstone keeps the hashes");
    assert!(matches!(
        kycdesk::audit::verify(&app.state.db).await,
        Ok(kycdesk::audit::Verdict::Intact { .. })
    ));
    let (s, _) = call(&app, reqwest::Method::DELETE, &path, &t, None).await;
    assert_eq!(s, 404);
}

both_backends!(repeated_bad_credentials_are_refused_with_429);

async fn repeated_bad_credentials_are_refused_with_429(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Brute Bank").await;
    let http = reqwest::Client::new();
    let attempt = |secret: String| {
        let http = http.clone();
        let url = app.url("/auth/token");
        let key = c.api_key.clone();
        async move {
            http.post(url)
                .json(&json!({"api_key": key, "api_secret": secret}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    for i in 0..10 {
        assert_eq!(
            attempt(format!("guess-{i}")).await.status(),
            401,
            "attempt {i}"
        );
    }
    let refused = attempt(c.api_secret.clone()).await;
    assert_eq!(
        refused.status(),
        429,
        "even the right secret, from this address, for a while"
    );
    let retry: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!((250..=300).contains(&retry), "{retry}");
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "api.token.failed"
        )
        .await,
        10
    );
}

both_backends!(openapi_document_matches_the_served_api);

/// The OpenAPI document lists exactly the reference's operations, each of
/// them is really served, and the process schema names every field a real
/// answer carries.
async fn openapi_document_matches_the_served_api(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let r = reqwest::get(app.url("/api/openapi.json"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap_or_default();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    assert_eq!(doc["servers"][0]["url"], app.base.as_str());
    let mut ops = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            ops.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let want: std::collections::BTreeSet<String> = [
        "POST /auth/token",
        "POST /onboarding",
        "GET /mobbscan-agent/getVerificationProcessData/{verificationId}",
        "GET /mobbscan-agent/{verificationId}/image/{imageType}",
        "GET /mobbscan-agent/{verificationId}/recording/{recordingType}",
        "GET /mobbscan-agent/api/pdf/{verificationId}",
        "GET /api/zip/{verificationId}",
        "POST /mobbscan-agent/accept",
        "POST /mobbscan-agent/reject",
        "POST /mobbscan-agent/pending",
        "DELETE /mobbscan-agent/api/verification/{verificationId}",
        "POST /api/capture/{verificationId}/image/{imageType}",
        "POST /api/capture/{verificationId}/recording/{recordingType}",
        "POST /api/capture/{verificationId}/document",
        "POST /api/capture/{verificationId}/submit",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ops, want);

    // Every documented operation is served: an unknown id gets the API's own
    // JSON 404 (or a 4xx about the body), never the router's empty 404.
    let c = integrator(&app, "Doc Bank").await;
    let tok = token(&app, &c).await;
    let missing = "0b9d2a4e-3c55-4f0e-9a61-1d2f3e4a5b6c";
    for op in &ops {
        let (method, path) = op.split_once(' ').unwrap_or_default();
        let path = path
            .replace("{verificationId}", missing)
            .replace("{imageType}", "front")
            .replace("{recordingType}", "video");
        let m: reqwest::Method = method.parse().unwrap_or_else(|e| panic!("{e}"));
        let body = (m == reqwest::Method::POST)
            .then(|| json!({"verificationId": missing, "rejectionComment": "x"}));
        let r = reqwest::Client::new()
            .request(m, app.url(&path))
            .header("Authorization", format!("Bearer {tok}"))
            .json(&body.unwrap_or(json!({})))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status < 500 && (status != 404 || v["status"] == 404),
            "{op} is documented but not served: {status} {v}"
        );
    }

    // The documented process schema covers a real answer, field for field.
    adopt(&app, &c).await;
    let id = owned_in(&app, &c, "VERIFIED").await[0].clone();
    let (_, data) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{id}"),
        &tok,
        None,
    )
    .await;
    let props = &doc["components"]["schemas"]["ProcessData"]["properties"];
    for key in data.as_object().into_iter().flatten().map(|(k, _)| k) {
        assert!(props.get(key).is_some(), "{key} is sent but not documented");
    }
    let doc_props = &doc["components"]["schemas"]["Document"]["properties"];
    for key in data["document"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        assert!(
            doc_props.get(key).is_some(),
            "document.{key} is sent but not documented"
        );
    }
}

both_backends!(integrators_are_administered_on_the_desk);

async fn token_status(app: &TestApp, key: &str, secret: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(app.url("/auth/token"))
        .json(&json!({"api_key": key, "api_secret": secret}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or_default();
    (
        s,
        v["access_token"].as_str().unwrap_or_default().to_string(),
    )
}

/// Admins create integrators (credentials shown once), change their
/// settings, rotate the secret (old secret and tokens stop working) and
/// disable them; agents cannot.
async fn integrators_are_administered_on_the_desk(b: Backend) {
    use crate::helpers::{between, ADMIN, AGENT};
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(6).await;
    let agent = app.login(AGENT).await;
    assert_eq!(agent.get("/desk/admin/integrators").await.status(), 403);
    let r = agent
        .post("/desk/admin/integrators", &[("name", "Agent Bank")])
        .await;
    assert_eq!(r.status(), 403);

    let admin = app.login(ADMIN).await;
    let r = admin
        .post(
            "/desk/admin/integrators",
            &[
                ("name", "Desk Bank"),
                ("webhook_url", "https://hooks.desk-bank.example/kyc"),
                (
                    "frame_ancestors",
                    "https://desk-bank.example\nhttps://app.desk-bank.example:8443",
                ),
                ("submit_state", "PENDING_VALIDATION"),
                ("webhook_headers", "Authorization: Bearer desk-hook-secret"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap_or_default();
    let field = |k: &str| {
        between(&html, &format!("id=\"secret-{k}\">"), "<")
            .unwrap_or_default()
            .to_string()
    };
    let (id, key, secret) = (
        field("integrator_id"),
        field("api_key"),
        field("api_secret"),
    );
    assert!(field("webhook_secret").starts_with("whsec_"), "{html}");
    let (s, old_token) = token_status(&app, &key, &secret).await;
    assert_eq!(s, 200);
    let page = admin
        .get("/desk/admin/integrators")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains("Desk Bank") && page.contains(&key));
    assert!(!page.contains(&secret), "the secret is shown only once");
    assert!(page.contains("Authorization: (unchanged)"));
    assert!(
        !page.contains("desk-hook-secret"),
        "header values are not shown"
    );
    assert!(page.contains("https://app.desk-bank.example:8443"));
    assert_eq!(
        app.integrator_field(&id, "submit_state").await.as_deref(),
        Some("PENDING_VALIDATION")
    );

    // Bad settings are refused whole.
    let r = admin
        .post(
            &format!("/desk/admin/integrators/{id}"),
            &[
                ("webhook_url", "ftp://x.example/"),
                ("submit_state", "PENDING_VERIFICATION"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = admin
        .post(
            &format!("/desk/admin/integrators/{id}"),
            &[
                ("webhook_url", "http://10.0.0.8/hook"),
                ("submit_state", "PENDING_VERIFICATION"),
                (
                    "webhook_headers",
                    "Authorization: (unchanged)\nX-Tenant: desk",
                ),
            ],
        )
        .await;
    assert_eq!(r.status(), 200, "tests allow private webhook targets");
    assert_eq!(
        app.integrator_field(&id, "webhook_url").await.as_deref(),
        Some("http://10.0.0.8/hook")
    );
    let headers: Value = serde_json::from_str(
        &app.integrator_field(&id, "webhook_headers")
            .await
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(
        headers,
        json!({"Authorization": "Bearer desk-hook-secret", "X-Tenant": "desk"})
    );
    let r = admin
        .post(
            &format!("/desk/admin/integrators/{id}"),
            &[
                ("submit_state", "PENDING_VERIFICATION"),
                ("webhook_headers", "webhook-signature: forged"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400, "the signature headers are kycdesk's");

    // Rotation: the old secret and its tokens stop working at once.
    let r = admin
        .post(&format!("/desk/admin/integrators/{id}/rotate"), &[])
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap_or_default();
    let new_secret = between(&html, "id=\"secret-api_secret\">", "<")
        .unwrap_or_default()
        .to_string();
    assert!(!new_secret.is_empty() && new_secret != secret);
    assert_eq!(token_status(&app, &key, &secret).await.0, 401);
    let probe = "/mobbscan-agent/getVerificationProcessData/0b9d2a4e-3c55-4f0e-9a61-1d2f3e4a5b6c";
    assert_eq!(
        call(&app, reqwest::Method::GET, probe, &old_token, None)
            .await
            .0,
        401
    );
    let (s, new_token) = token_status(&app, &key, &new_secret).await;
    assert_eq!(s, 200);
    assert_eq!(
        call(&app, reqwest::Method::GET, probe, &new_token, None)
            .await
            .0,
        404
    );

    // Disabled: no tokens, and live ones stop at once.
    let r = admin
        .post(&format!("/desk/admin/integrators/{id}/disable"), &[])
        .await;
    assert!(r.status().is_success());
    assert_eq!(token_status(&app, &key, &new_secret).await.0, 403);
    assert_eq!(
        call(&app, reqwest::Method::GET, probe, &new_token, None)
            .await
            .0,
        403
    );
    let r = admin
        .post(&format!("/desk/admin/integrators/{id}/enable"), &[])
        .await;
    assert!(r.status().is_success());
    assert_eq!(token_status(&app, &key, &new_secret).await.0, 200);
    let audit = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'integrator.%' AND detail LIKE $1",
            &format!("%{id}%"),
        )
        .await;
    assert_eq!(
        audit, 6,
        "create, settings at creation, update, rotate, disable, enable"
    );
}
