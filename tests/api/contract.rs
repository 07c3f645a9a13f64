//! The published contract: the references' own request samples replayed as
//! written, methods the documents do not list, and the mobile API's
//! generated document.

use crate::both_backends;
use crate::helpers::{integrator, token};
use crate::helpers::{spawn_app, Backend, TestApp};
use kycdesk::accounts::integrators;
use reqwest::Method;
use serde_json::{json, Value};

both_backends!(
    reference_samples_are_answered_as_the_references_say,
    undocumented_methods_get_405_with_allow,
    the_mobile_document_is_generated_and_served,
    a_corrupt_stored_row_is_an_error_not_an_empty_field
);

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<(&str, String)>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some((ct, b)) = body {
        req = req.header("Content-Type", ct).body(b);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

const PAYLOAD_KEY: &str = "a-test-payload-signing-key-of-32-plus-chars";

/// The creating-users guide, step by step: start with its sample body,
/// finish with the sandbox code, then POST /v1/user as a signed payload
/// (application/jwt); the answer's phone item carries country_code.
async fn reference_samples_are_answered_as_the_references_say(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Guide Bank").await;
    integrators::set_verification(&app.state.db, &c.integrator_id, true, &[], "test", "test")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let key = [("Api-Key", format!("Bearer {}", c.api_key))];

    // GET /v1/config: the reference's project fields, birthdate included.
    let (s, config, _) = send(&app, Method::GET, "/v1/config", &key, None).await;
    assert_eq!(s, 200, "{config}");
    let birthdate = config["project"]["birthdate"].as_str().unwrap_or_default();
    assert!(
        chrono::NaiveDate::parse_from_str(birthdate, "%Y-%m-%d").is_ok(),
        "{config}"
    );
    assert_eq!(config["project"]["primary_auth_credential"], "phone");
    assert_eq!(config["project"]["secondary_auth_credential"], "birthdate");

    // The guide's sample, as written.
    let sample = r#"{
"datapoint": {
"data_type": "phone",
"country_code": "1",
"phone_number": "2105555555"
},
"datapoint_type": "phone"
}"#;
    let (s, v, _) = send(
        &app,
        Method::POST,
        "/v1/verifications/start",
        &key,
        Some(("application/json", sample.into())),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let vid = v["verification_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (s, v, _) = send(
        &app,
        Method::POST,
        &format!("/v1/verifications/{vid}/finish"),
        &key,
        Some(("application/json", r#"{"secret": "000000"}"#.into())),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("passed")), "{v}");

    // POST /v1/user as a signed payload: refused while the integrator has
    // no key, verified once it has one, refused when signed otherwise.
    let claims = json!({"data_points": {"type": "list", "data": [
        {"data_type": "phone", "country_code": "1", "phone_number": "2105555555", "verification": {"verification_id": vid}},
        {"data_type": "birthdate", "date": "1990-02-03"}
    ]}});
    let sign = |k: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(k.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let (s, v, _) = send(
        &app,
        Method::POST,
        "/v1/user",
        &key,
        Some(("application/jwt", sign(PAYLOAD_KEY))),
    )
    .await;
    assert_eq!(s, 415, "no key set yet: {v}");
    integrators::set_user_payload_key(&app.state.db, &c.integrator_id, PAYLOAD_KEY, "test", "test")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (s, v, _) = send(
        &app,
        Method::POST,
        "/v1/user",
        &key,
        Some((
            "application/jwt",
            sign("someone-elses-key-someone-elses-key"),
        )),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["description"]
        .as_str()
        .is_some_and(|d| d.contains("does not verify")));
    let (s, user, _) = send(
        &app,
        Method::POST,
        "/v1/user",
        &key,
        Some(("application/jwt", sign(PAYLOAD_KEY))),
    )
    .await;
    assert_eq!(s, 200, "{user}");
    let phone = user["user_data"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["type"] == "phone")
        .cloned()
        .unwrap_or_default();
    assert_eq!(phone["country_code"], "1", "{user}");
    assert_eq!(phone["phone_number"], "2105555555", "{user}");
    let user_token = user["user_token"].as_str().unwrap_or_default().to_string();

    // primary/start answers with the secondary credential, as the sample.
    let (s, v, _) = send(
        &app,
        Method::POST,
        "/v1/verifications/primary/start",
        &[
            ("Authorization", format!("Bearer {user_token}")),
            key[0].clone(),
        ],
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["secondary_credential"]["verification_type"], "birthdate",
        "{v}"
    );
    assert_eq!(v["secondary_credential"]["status"], "pending", "{v}");
}

/// A documented path asked with another method: 405, `Allow`, and the
/// family's error shape; an unknown path: the family's 404.
async fn undocumented_methods_get_405_with_allow(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let c = integrator(&app, "Method Bank").await;
    let tok = token(&app, &c).await;
    let bearer = [("Authorization", format!("Bearer {tok}"))];
    let id = "0b9d2a4e-3c55-4f0e-9a61-1d2f3e4a5b6c";
    let (s, v, h) = send(
        &app,
        Method::GET,
        &format!("/mobbscan-agent/api/verification/{id}"),
        &bearer,
        None,
    )
    .await;
    assert_eq!(s, 405, "{v}");
    assert_eq!(h["allow"], "DELETE");
    assert_eq!(v["status"], 405, "{v}");
    assert!(v["description"].is_string(), "{v}");
    let trace = Method::from_bytes(b"TRACE").unwrap_or(Method::GET);
    let (s, _, h) = send(&app, trace, "/auth/token", &[], None).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "POST");
    let (s, _, h) = send(&app, Method::DELETE, "/v1/user", &[], None).await;
    assert_eq!(s, 405);
    let allow = h["allow"].to_str().unwrap_or_default().to_string();
    for m in ["GET", "POST", "PUT"] {
        assert!(allow.contains(m), "{allow}");
    }
    let (s, v, h) = send(&app, Method::DELETE, "/identity/quizzes/q1", &bearer, None).await;
    assert_eq!(s, 405);
    assert_eq!(h["allow"], "GET");
    assert_eq!(v["_error"]["statusCode"], 405, "{v}");
    let (s, v, _) = send(
        &app,
        Method::GET,
        "/mobbscan-agent/nothing/here/at/all",
        &bearer,
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(v["status"], 404, "{v}");
}

/// `/api/openapi/mobile.json` lists the mobile and Verification operations,
/// collected from the routes that serve them, and each one is answered.
async fn the_mobile_document_is_generated_and_served(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let (s, doc, _) = send(&app, Method::GET, "/api/openapi/mobile.json", &[], None).await;
    assert_eq!(s, 200);
    let mut ops = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (m, op) in item.as_object().into_iter().flatten() {
            ops.insert(format!("{} {path}", m.to_uppercase()));
            // Every templated parameter is declared.
            for p in path.split('/').filter(|s| s.starts_with('{')) {
                let name = p.trim_matches(['{', '}']);
                assert!(
                    op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["name"] == name && x["in"] == "path"),
                    "{m} {path}: {name} undeclared"
                );
            }
        }
    }
    for want in [
        "GET /v1/config",
        "POST /v1/verifications/start",
        "POST /v1/verifications/primary/start",
        "POST /v1/verifications/{verification_id}/finish",
        "POST /v1/verifications/{verification_id}/restart",
        "GET /v1/verifications/{verification_id}/status",
        "POST /v1/user",
        "PUT /v1/user",
        "GET /v1/user",
        "POST /v1/user/login",
        "POST /v1/verification/links/email",
        "GET /v1/verification/links/email/{id}",
        "POST /v1/verification/links/email/{id}",
        "POST /v1/verification/otp/email/send",
        "POST /v1/verification/otp/email/validate",
        "POST /v1/verification/otp/sms/send",
        "POST /v1/verification/otp/sms/validate",
    ] {
        assert!(ops.contains(want), "{want} is not documented: {ops:?}");
    }
    assert_eq!(ops.len(), 17, "{ops:?}");
    // Served: never the router's "nothing is served" answer.
    for op in &ops {
        let (m, path) = op.split_once(' ').unwrap_or_default();
        let path = path
            .replace("{verification_id}", "entity_0123456789abcdef")
            .replace("{id}", "entity_0123456789abcdef");
        let method: Method = m.parse().unwrap_or(Method::GET);
        let (s, v, _) = send(
            &app,
            method,
            &path,
            &[],
            Some(("application/json", "{}".into())),
        )
        .await;
        assert!(
            s != 405
                && !v["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("nothing is served")),
            "{op}: {s} {v}"
        );
    }
    // The identity document declares its path parameters too.
    let c = integrator(&app, "Doc Bank").await;
    let (s, idoc, _) = send(
        &app,
        Method::GET,
        "/identity/apiDoc",
        &[("API-Key", c.api_key.clone())],
        None,
    )
    .await;
    assert_eq!(s, 200);
    for (path, item) in idoc["paths"].as_object().into_iter().flatten() {
        for (m, op) in item.as_object().into_iter().flatten() {
            for p in path.split('/').filter(|s| s.starts_with('{')) {
                let name = p.trim_matches(['{', '}']);
                assert!(
                    op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["name"] == name),
                    "identity {m} {path}: {name} undeclared"
                );
            }
            // Either credential: the bearer token alone is one option.
            assert!(
                op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s.as_object().is_some_and(|o| o.len() == 1)),
                "identity {m} {path}: {}",
                op["security"]
            );
        }
    }
}

/// Stored validations that no longer decode make the process JSON fail
/// loudly (500 with a request id), never render as "nothing failing".
async fn a_corrupt_stored_row_is_an_error_not_an_empty_field(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(10).await;
    let c = integrator(&app, "Corrupt Bank").await;
    crate::helpers::adopt(&app, &c).await;
    let tok = token(&app, &c).await;
    let id = crate::helpers::owned_in(&app, &c, "PENDING_VERIFICATION").await[0].clone();
    let path = format!("/mobbscan-agent/getVerificationProcessData/{id}");
    let bearer = [("Authorization", format!("Bearer {tok}"))];
    let (s, v, _) = send(&app, Method::GET, &path, &bearer, None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["validations"].as_object().is_some_and(|o| !o.is_empty()));
    sqlx::query("UPDATE processes SET validations = 'not json' WHERE scan_id = $1")
        .bind(&id)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (s, v, _) = send(&app, Method::GET, &path, &bearer, None).await;
    assert_eq!(s, 500, "{v}");
    assert!(
        v["description"]
            .as_str()
            .is_some_and(|d| d.contains("request id")),
        "{v}"
    );
}
