//! Handlers of the MobbScan API Gateway paths. Decisions go through
//! `review::decide`, the same operation the desk uses.

pub mod capture;
pub mod evidence;

use super::openapi::{
    Binary, DecisionRefusals, OnboardingResponse, ProcessRefusals, StatusBody, TokenResponse,
};
use super::problem::Problem;
use super::token::{self, ApiClient};
use crate::accounts::integrators::{self, Authentication};
use crate::audit::{self, Event};
use crate::certify::process_json::ProcessData;
use crate::domain::process::DOC_TYPES;
use crate::review::{self, Decision, DecisionInput};
use crate::security::client_addr;
use crate::state::AppState;
use crate::store::processes::{self as rows, ProcessRow};
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    #[schema(required, nullable = false)]
    api_key: Option<String>,
    #[schema(required, nullable = false)]
    api_secret: Option<String>,
}

/// Bad credentials from one address: after 10 in 5 minutes that address is
/// refused with 429 for 5 minutes, whatever key it tries.
fn token_throttle() -> crate::security::rate_limit::Policy {
    crate::security::rate_limit::Policy {
        max_failures: 10,
        window_ms: 5 * 60_000,
        lock_ms: 5 * 60_000,
    }
}

#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "Malformed request", body = StatusBody),
        (status = 401, description = "Wrong api_key or api_secret", body = StatusBody),
        (status = 403, description = "The integrator is disabled", body = StatusBody),
        (status = 429, description = "Too many bad credentials from this address (Retry-After)", body = StatusBody),
    )
)]
#[post("/auth/token")]
#[tracing::instrument(skip_all)]
pub async fn auth_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, Problem> {
    let (Some(key), Some(secret)) = (body.api_key.as_deref(), body.api_secret.as_deref()) else {
        return Err(Problem::BadRequest(
            "api_key and api_secret are required".into(),
        ));
    };
    let addr = client_addr(&req);
    let throttle_key = format!("api-token:{addr}");
    let policy = token_throttle();
    let throttle =
        match crate::security::rate_limit::Attempt::reserve(&state.db, &throttle_key, &policy)
            .await?
        {
            Ok(t) => t,
            Err(limited) => {
                let retry_after_secs = limited.retry_after_secs();
                return Err(Problem::TooManyRequests {
                    message: format!(
                        "too many failed attempts from this address; retry in {retry_after_secs} s"
                    ),
                    retry_after_secs,
                });
            }
        };
    match integrators::authenticate(&state.db, key, secret).await? {
        Authentication::Invalid => {
            throttle.fail(&state.db).await?;
            audit::record_now(
                &state.db,
                Event {
                    actor: "api",
                    action: "api.token.failed",
                    scan_id: None,
                    client_addr: &addr,
                    detail: serde_json::json!({}),
                },
            )
            .await?;
            Err(Problem::Unauthorized("wrong api_key or api_secret".into()))
        }
        Authentication::Disabled => {
            throttle.release(&state.db).await?;
            Err(Problem::Forbidden("this integrator is disabled".into()))
        }
        Authentication::Ok(row) => {
            // An address can be shared by several integrators (or be an
            // attacker holding its own valid key): one's success does not
            // wipe the failures counted against the address.
            throttle.release(&state.db).await?;
            let token = token::issue(&state, &row.id, row.secret_hash.as_deref())?;
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(serde_json::json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": state.settings.token_ttl.as_secs(),
                })))
        }
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingRequest {
    /// ISO 3166-1 alpha-3, e.g. ESP.
    #[schema(pattern = r"^\s*([A-Z]{3})?\s*$")]
    country_id: Option<String>,
    #[schema(pattern = r"^\s*(IDCard|Passport|DrivingLicense)?\s*$")]
    doc_type: Option<String>,
    doc_specific_type: Option<String>,
    /// Where the applicant goes after submitting: an http(s) URL (it must
    /// also parse as a URL, which no pattern states).
    #[schema(pattern = r"^\s*([Hh][Tt][Tt][Pp][Ss]?://.+)?\s*$")]
    redirect_url: Option<String>,
    /// Your own id for the process (a UUID); one is made when absent.
    #[schema(
        pattern = r"^\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?\s*$"
    )]
    scan_id: Option<String>,
    verification_extra_data: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The field without surrounding spaces, `None` when nothing is left.
/// Spaces are those every regex dialect's `\s` agrees on (the schema's
/// patterns allow `\s*` around the value): Unicode White_Space without
/// U+0085, which ECMA-262 does not count.
fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref()
        .map(|s| s.trim_matches(|c: char| c.is_whitespace() && c != '\u{85}'))
        .filter(|s| !s.is_empty())
}

/// Starts with `http://` or `https://` (any case) and holds no control
/// character or line separator.
fn plain_http_url(r: &str) -> bool {
    let lower = r.get(..8).unwrap_or(r).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !r
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// Whether a required comment says something: a character that no regex
/// dialect counts as a space. The published schema states `\S`, and
/// validators disagree on `\s` (Python adds U+001C..U+001F, ECMA-262
/// adds U+FEFF to Unicode White_Space), so a comment of only those is
/// refused too, whichever validator an integrator checks against.
fn has_text(s: &str) -> bool {
    s.chars()
        .any(|c| !(c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c) || c == '\u{feff}'))
}

#[utoipa::path(
    tag = "onboarding",
    security(("bearer" = [])),
    request_body(content = Option<OnboardingRequest>, description = "Optional, and so is every field"),
    responses(
        (status = 200, description = "The process and its hosted page", body = OnboardingResponse),
        (status = 400, description = "Invalid field", body = StatusBody),
        (status = 401, description = "No, expired or invalid token", body = StatusBody),
        (status = 403, description = "The integrator is disabled", body = StatusBody),
        (status = 409, description = "scanId already taken", body = StatusBody),
    )
)]
#[post("/onboarding")]
#[tracing::instrument(skip_all)]
pub async fn create_onboarding(
    state: web::Data<AppState>,
    client: ApiClient,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    // No body at all is the reference's plain call; a body that is not the
    // JSON object it claims to be (whitespace included: schemathesis sent
    // ' ') is refused, never read as "no body".
    let b: OnboardingRequest = if body.is_empty() {
        OnboardingRequest::default()
    } else {
        serde_json::from_slice::<Option<OnboardingRequest>>(&body)
            .map_err(|e| Problem::BadRequest(format!("malformed JSON body: {e}")))?
            .unwrap_or_default()
    };
    let country = blank(&b.country_id)
        .map(|c| {
            if c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase()) {
                Ok(c.to_string())
            } else {
                Err(Problem::BadRequest(format!(
                    "countryId '{c}' must be ISO 3166-1 alpha-3, e.g. ESP"
                )))
            }
        })
        .transpose()?;
    let doc_type = blank(&b.doc_type)
        .map(|d| {
            DOC_TYPES
                .contains(&d)
                .then(|| d.to_string())
                .ok_or_else(|| {
                    Problem::BadRequest(format!(
                        "docType '{d}' must be one of IDCard, Passport, DrivingLicense"
                    ))
                })
        })
        .transpose()?;
    let redirect = blank(&b.redirect_url)
        .map(|r| match url::Url::parse(r) {
            // The literal `http(s)://` prefix and one line, as the schema's
            // pattern says: the URL parser alone would take `http:x.com`
            // and drop a newline inside, and the stored value becomes a
            // Location header.
            Ok(u) if matches!(u.scheme(), "http" | "https") && plain_http_url(r) => {
                Ok(r.to_string())
            }
            _ => Err(Problem::BadRequest(format!(
                "redirectUrl {r:?} must be an http(s) URL (http:// or https://, on one line, \
                 without control characters)"
            ))),
        })
        .transpose()?;
    let scan_id = match blank(&b.scan_id) {
        Some(s) => uuid::Uuid::parse_str(s)
            .map_err(|_| Problem::BadRequest(format!("scanId '{s}' must be a UUID")))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let opened = crate::onboarding::open(
        &state,
        &client.integrator_id,
        crate::onboarding::NewOnboarding {
            scan_id,
            country_id: country,
            doc_type,
            doc_specific_type: blank(&b.doc_specific_type).map(str::to_string),
            redirect_url: redirect,
            extra: b.verification_extra_data.unwrap_or_default(),
        },
        &client.actor(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "scanId": opened.scan_id,
        "onboardingToken": opened.token,
        "url": opened.url,
    })))
}

/// A scanId as stored (canonical UUID text); anything else names no
/// process.
fn scan_id(id: &str) -> Result<String, Problem> {
    Ok(uuid::Uuid::parse_str(id)
        .map_err(|_| Problem::no_process())?
        .to_string())
}

/// The process if it belongs to the caller; another tenant's id answers
/// exactly as a missing one.
pub(crate) async fn owned(
    state: &AppState,
    client: &ApiClient,
    id: &str,
) -> Result<ProcessRow, Problem> {
    match rows::get(state.db.read(), &scan_id(id)?).await? {
        Some(p) if p.integrator_id == client.integrator_id => Ok(p),
        _ => Err(Problem::no_process()),
    }
}

#[utoipa::path(
    tag = "verification",
    security(("bearer" = [])),
    params(("verificationId" = String, Path, description = "The scanId")),
    responses(
        (status = 200, description = "The process", body = ProcessData),
        ProcessRefusals,
    )
)]
#[get("/mobbscan-agent/getVerificationProcessData/{verificationId}")]
#[tracing::instrument(skip_all)]
pub async fn process_data(
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = scan_id(&path.into_inner())?;
    let (p, evidence) = match rows::get_with_evidence_names(&state.db, &id).await? {
        Some((p, e)) if p.integrator_id == client.integrator_id => (p, e),
        _ => return Err(Problem::no_process()),
    };
    let base = state.settings.public_url.as_str().trim_end_matches('/');
    // Serialised straight from the typed answer: no JSON tree in between.
    let data = crate::certify::process_json::build(&p, &evidence, base)
        .map_err(|e| Problem::Internal(e.into()))?;
    Ok(HttpResponse::Ok().json(data))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionBody {
    /// The scanId of the process to decide.
    #[schema(required, nullable = false)]
    verification_id: Option<String>,
    #[schema(value_type = Option<super::openapi::PersonalData>, nullable = false)]
    personal_data: Option<BTreeMap<String, serde_json::Value>>,
    rejection_comment: Option<String>,
    #[serde(rename = "type")]
    _type: Option<String>,
}

fn personal_data(b: &DecisionBody) -> Result<BTreeMap<String, String>, Problem> {
    let mut out = BTreeMap::new();
    for (k, v) in b.personal_data.iter().flatten() {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => {
                return Err(Problem::BadRequest(format!(
                    "personalData.{k} must be a string, not {other}"
                )))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

async fn decide(
    state: &AppState,
    client: &ApiClient,
    b: &DecisionBody,
    decision: Decision,
) -> Result<String, Problem> {
    let id = b
        .verification_id
        .as_deref()
        .ok_or_else(|| Problem::BadRequest("verificationId is required".into()))?;
    // Read once, here and for the decision: the ownership check needs the
    // row the decision reads anyway.
    let id = scan_id(id)?;
    let case = match review::load_for_decision(&state.db, &id).await {
        Ok(c) if c.process.integrator_id == client.integrator_id => c,
        Ok(_) | Err(review::CaseError::NotFound) => return Err(Problem::no_process()),
        Err(e) => return Err(e.into()),
    };
    let input = DecisionInput {
        decision,
        expected_version: None,
        reason: b.rejection_comment.clone(),
        comment: b.rejection_comment.clone(),
        changes: personal_data(b)?,
        edit_reason: None,
    };
    review::decide(
        &state.db,
        &state.settings,
        &state.blobs,
        case,
        &input,
        &client.actor(),
        review::Channel::Integrator,
    )
    .await?;
    Ok(id)
}

#[utoipa::path(
    tag = "verification",
    security(("bearer" = [])),
    request_body(content = DecisionBody, description = "personalData optional: only the fields sent change"),
    responses(
        (status = 200, description = "Accepted (VERIFICATION_ACCEPTED)", body = StatusBody),
        DecisionRefusals,
    )
)]
#[post("/mobbscan-agent/accept")]
#[tracing::instrument(skip_all)]
pub async fn accept(
    state: web::Data<AppState>,
    client: ApiClient,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, Problem> {
    let id = decide(&state, &client, &body, Decision::Accept).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "VERIFICATION_ACCEPTED",
        "description": format!("Verification with id={id} accepted successfully"),
    })))
}

#[utoipa::path(
    tag = "verification",
    security(("bearer" = [])),
    request_body(content = super::openapi::RejectBody, description = "rejectionComment required"),
    responses(
        (status = 200, description = "Rejected (VERIFICATION_REJECTED)", body = StatusBody),
        DecisionRefusals,
    )
)]
#[post("/mobbscan-agent/reject")]
#[tracing::instrument(skip_all)]
pub async fn reject(
    state: web::Data<AppState>,
    client: ApiClient,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, Problem> {
    if !body.rejection_comment.as_deref().is_some_and(has_text) {
        return Err(Problem::BadRequest("rejectionComment is required".into()));
    }
    let id = decide(&state, &client, &body, Decision::Reject).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "VERIFICATION_REJECTED",
        "description": format!("Verification with id={id} rejected successfully"),
    })))
}

#[utoipa::path(
    tag = "verification",
    security(("bearer" = [])),
    request_body(content = DecisionBody, description = "PENDING_VALIDATION → PENDING_VERIFICATION, applying personalData"),
    responses(
        (status = 200, description = "Sent to the review desk (UPDATED_VERIFICATION)", body = StatusBody),
        DecisionRefusals,
    )
)]
#[post("/mobbscan-agent/pending")]
#[tracing::instrument(skip_all)]
pub async fn pending(
    state: web::Data<AppState>,
    client: ApiClient,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, Problem> {
    let id = decide(&state, &client, &body, Decision::Pending).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "UPDATED_VERIFICATION",
        "description": format!("Verification with id={id} sent to review successfully"),
    })))
}

/// Deletes the process and its evidence for good. The audit log keeps a
/// tombstone: the id, the state and the evidence hashes, no personal data.
#[utoipa::path(
    tag = "verification",
    security(("bearer" = [])),
    params(("verificationId" = String, Path, description = "The scanId")),
    responses(
        (status = 200, description = "Deleted with its evidence (VERIFICATION_DELETED); the audit log keeps a tombstone", body = StatusBody),
        ProcessRefusals,
    )
)]
#[delete("/mobbscan-agent/api/verification/{verificationId}")]
#[tracing::instrument(skip_all)]
pub async fn delete_verification(
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let p = owned(&state, &client, &path.into_inner()).await?;
    let st = p.state().map_err(|e| Problem::Internal(e.into()))?;
    let evidence = rows::evidence_for(state.db.read(), &p.scan_id).await?;
    let hashes: Vec<&str> = evidence.iter().map(|e| e.sha256.as_str()).collect();
    let mut work = audit::Work::begin(&state.db).await?;
    if rows::delete(&mut work.tx, &p.scan_id).await? == 0 {
        return Err(Problem::no_process());
    }
    let shard = state.db.counter_shard();
    rows::bump_count(&mut work.tx, shard.id(), st, p.created_at, -1).await?;
    if st.is_final() {
        crate::store::metrics::add_finals(
            &mut work.tx,
            &[crate::store::metrics::Final::of(
                &p.integrator_id,
                st,
                p.agent.as_deref(),
                p.rejection_reason.as_deref(),
                p.created_at,
                p.verification_time,
            )],
            -1,
            shard.id(),
        )
        .await?;
    }
    work.commit(Event {
        actor: &client.actor().name,
        action: "case.delete",
        scan_id: Some(&p.scan_id),
        client_addr: &client.client_addr,
        detail: serde_json::json!({"state": st.as_str(), "evidence_sha256": hashes}),
    })
    .await?;
    // Bytes go after the commit: a failed delete never loses evidence.
    for e in &evidence {
        crate::evidence::forget(&state.db, &state.blobs, Some(&state.thumbs), &e.sha256).await;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "VERIFICATION_DELETED",
        "description": format!("Verification with id={} deleted successfully", p.scan_id),
    })))
}

/// The certified zip (SPEC section 5), streamed; only for final processes.
#[utoipa::path(
    tag = "verification",
    security(("bearer" = [])),
    params(("verificationId" = String, Path, description = "The scanId")),
    responses(
        (status = 200, description = "The certified zip: originals, process JSON, edit history, decision, audit entries, manifest.json and its Ed25519 signature manifest.sig", content_type = "application/zip", body = Binary),
        ProcessRefusals,
        (status = 409, description = "The process is not final yet", body = StatusBody),
    )
)]
#[get("/api/zip/{verificationId}")]
#[tracing::instrument(skip_all)]
pub async fn certified_zip(
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let p = owned(&state, &client, &path.into_inner()).await?;
    let pkg = crate::certify::zip::issue(
        &state.zip_issuer(),
        &p,
        &client.actor().name,
        &client.client_addr,
    )
    .await
    .map_err(|e| match e {
        crate::certify::zip::IssueError::NotFinal(st) => Problem::Conflict(format!(
            "the certified zip is issued once the process is final; it is {st}"
        )),
        crate::certify::zip::IssueError::Internal(e) => Problem::Internal(e),
    })?;
    Ok(pkg.into_response())
}
