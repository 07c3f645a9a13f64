//! The Apiture-style Identity API under `/identity`, in HAL+JSON: fraud-risk
//! reports, quizzes, contact verification and approvals; errors in the
//! reference's `_error` shape.

use super::problem::Problem;
use super::token::ApiClient;
use crate::domain::rfc3339_ms;
use crate::state::AppState;
use crate::verification::records::{self, ApprovalRow, FraudRow, PageQuery, QuizRow};
use crate::verification::{contact_uri, parse_contact_uri, Pii, VerifyError};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const HAL: &str = "application/hal+json";
const PROFILES: &str = "https://api.apiture.com/schemas";

/// The identity API's rendering of a `Problem`: HAL `_error` with the
/// status and `type` the Apiture reference uses (it has no 413/415/429/502:
/// those read as 400 and 503 there).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HalError(#[from] pub Problem);

impl From<sqlx::Error> for HalError {
    fn from(e: sqlx::Error) -> Self {
        HalError(Problem::internal(e))
    }
}

impl From<VerifyError> for HalError {
    fn from(e: VerifyError) -> Self {
        HalError(Problem::from(e))
    }
}

impl HalError {
    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match &self.0 {
            Problem::BadRequest(_) | Problem::TooLarge(_) | Problem::UnsupportedType(_) => {
                (StatusCode::BAD_REQUEST, "badRequest")
            }
            Problem::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Problem::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Problem::NotFound(_) => (StatusCode::NOT_FOUND, "notFound"),
            Problem::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Problem::Unprocessable(_) | Problem::NotAcceptable(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unprocessableEntity")
            }
            Problem::TooManyRequests { .. } | Problem::BadGateway(_) | Problem::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable")
            }
            Problem::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "methodNotAllowed"),
            Problem::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internalError"),
        }
    }
}

impl ResponseError for HalError {
    fn status_code(&self) -> StatusCode {
        self.status_and_type().0
    }

    fn error_response(&self) -> HttpResponse {
        let rid = crate::security::request_id::current().unwrap_or_default();
        let message = self.0.public_message("identity API");
        let (status, kind) = self.status_and_type();
        let mut b = HttpResponse::build(status);
        if matches!(self.0, Problem::Unauthorized(_)) {
            b.insert_header(("WWW-Authenticate", "Bearer"));
        }
        b.content_type(HAL).json(json!({
            "_profile": format!("{PROFILES}/common/errorResponse/v1.0.0/profile.json"),
            "_error": {
                "_id": if rid.is_empty() { uuid::Uuid::new_v4().to_string() } else { rid.to_string() },
                "message": message,
                "statusCode": status.as_u16(),
                "type": kind,
                "occurredAt": rfc3339_ms(crate::domain::now_ms()),
                "_links": {},
            }
        }))
    }
}

/// The integrator: `Authorization: Bearer <JWT>`; an `API-Key` sent beside
/// it must be that integrator's.
pub struct IdentityClient(pub ApiClient);

async fn key_owner(state: &AppState, key: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
    Ok(crate::store::integrators::by_api_key(state.db.read(), key)
        .await?
        .map(|r| (r.id, r.enabled)))
}

/// The `API-Key` header as sent. Present but empty or unreadable is still a
/// key (a wrong one): a credential that was sent is never silently ignored.
fn api_key_header(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("API-Key")
        .map(|v| v.to_str().map(|s| s.trim().to_string()).unwrap_or_default())
}

impl FromRequest for IdentityClient {
    type Error = HalError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, p: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let fut = ApiClient::from_request(&req, p);
        Box::pin(async move {
            let client = fut.await?;
            if let Some(k) = api_key_header(&req) {
                let state = crate::api::app_state(&req).map_err(HalError)?;
                match key_owner(state, &k).await? {
                    Some((id, _)) if id == client.integrator_id => {}
                    _ => {
                        return Err(HalError(Problem::Unauthorized(
                            "the API-Key does not belong to the integrator of the access token"
                                .into(),
                        )))
                    }
                }
            }
            Ok(IdentityClient(client))
        })
    }
}

/// Root and apiDoc: an API-Key alone is enough, or a bearer token.
async fn any_credential(req: &HttpRequest, state: &AppState) -> Result<(), HalError> {
    if let Some(k) = api_key_header(req) {
        return match key_owner(state, &k).await? {
            Some((_, 1)) => Ok(()),
            Some(_) => Err(HalError(Problem::Forbidden(
                "this integrator is disabled".into(),
            ))),
            None => Err(HalError(Problem::Unauthorized("unknown API-Key".into()))),
        };
    }
    IdentityClient::from_request(req, &mut actix_web::dev::Payload::None)
        .await
        .map(|_| ())
}

fn hal(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(HAL)
        .insert_header(("Cache-Control", "no-store"))
        .body(body.to_string())
}

fn link(href: impl Into<String>) -> Value {
    json!({"href": href.into()})
}

/// `GET /identity/`
#[utoipa::path(
    tag = "identity",
    operation_id = "getApi",
    security(("apiKey" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Top-level resources and operations in this API", content_type = "application/hal+json", body = HalObject),
        HalCredentialRefusals,
    )
)]
#[get("/identity/")]
#[tracing::instrument(skip_all)]
pub async fn root(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HalError> {
    root_answer(req, state).await
}

/// `GET /identity` (no trailing slash): the same answer.
#[tracing::instrument(skip_all)]
pub async fn root_answer(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HalError> {
    any_credential(&req, &state).await?;
    Ok(hal(
        StatusCode::OK,
        json!({
            "id": "identity",
            "name": "Identity",
            "apiVersion": "0.1.0",
            "_profile": format!("{PROFILES}/common/root/v1.0.0/profile.json"),
            "_links": {
                "apiture:fraudRiskReports": link("/identity/fraudRiskReports"),
                "apiture:quizzes": link("/identity/quizzes"),
                "apiture:contactVerification": link("/identity/contactVerification"),
                "apiture:approvals": link("/identity/approvals"),
                "apiture:apiDoc": link("/identity/apiDoc"),
            }
        }),
    ))
}

/// `GET /identity/apiDoc`: this API's OpenAPI document.
#[utoipa::path(
    tag = "identity",
    operation_id = "getApiDoc",
    security(("apiKey" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "This API's OpenAPI document", body = Object),
        HalCredentialRefusals,
    )
)]
#[get("/identity/apiDoc")]
#[tracing::instrument(skip_all)]
pub async fn api_doc(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HalError> {
    any_credential(&req, &state).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(state.identity_openapi.clone()))
}

fn identity_json(p: &Pii) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or_else(|_| json!({}));
    v["_profile"] = json!(format!("{PROFILES}/identity/identity/v1.0.0/profile.json"));
    v
}

/// The opaque verification token: a JWT under the instance key naming the
/// contact, the resource and its state.
fn verification_token(
    state: &AppState,
    contact_id: &str,
    kind: &str,
    id: &str,
    st: &str,
) -> String {
    let claims = json!({
        "sub": contact_id,
        "typ": kind,
        "rid": id,
        "state": st,
        "iat": chrono::Utc::now().timestamp(),
        "iss": super::token::issuer(state),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&state.jwt_key),
    )
    .unwrap_or_default()
}

fn fraud_json(state: &AppState, r: &FraudRow) -> Result<Value, HalError> {
    let (pii, categories) = (r.pii()?, r.categories()?);
    Ok(json!({
        "_profile": format!("{PROFILES}/identity/fraudRiskReport/v1.0.0/profile.json"),
        "_links": {
            "self": link(format!("/identity/fraudRiskReports/{}", r.id)),
            "apiture:contact": link(contact_uri(&r.contact_id)),
        },
        "_id": r.id,
        "type": "fraudRiskReport",
        "createdAt": rfc3339_ms(r.created_at),
        "inputs": {"identity": identity_json(&pii)},
        "outputs": {
            "state": r.state,
            "fraudRiskCategories": categories,
            "token": verification_token(state, &r.contact_id, "fraudRiskReport", &r.id, &r.state),
        }
    }))
}

fn quiz_json(state: &AppState, q: &QuizRow) -> Result<Value, HalError> {
    let base = format!("/identity/quizzes/{}", q.id);
    let mut links = serde_json::Map::new();
    links.insert("self".into(), link(&base));
    if q.state == "asked" {
        links.insert("apiture:score".into(), link(format!("{base}/answers")));
    }
    if q.state == "pending" {
        links.insert(
            "apiture:getQuestions".into(),
            link(format!("{base}/questions")),
        );
    }
    links.insert("apiture:contact".into(), link(contact_uri(&q.contact_id)));
    let pii = q.pii()?;
    Ok(json!({
        "_id": q.id,
        "type": "quiz",
        "createdAt": rfc3339_ms(q.created_at),
        "expiresAt": rfc3339_ms(q.expires_at),
        "_profile": format!("{PROFILES}/identity/quiz/v1.0.0/profile.json"),
        "_links": links,
        "inputs": {"identity": identity_json(&pii)},
        "outputs": {
            "state": q.state,
            "token": verification_token(state, &q.contact_id, "quiz", &q.id, &q.state),
        }
    }))
}

fn approval_json(a: &ApprovalRow) -> Value {
    json!({
        "_profile": format!("{PROFILES}/identity/approval/v1.0.0/profile.json"),
        "_links": {
            "self": link(format!("/identity/approvals/{}", a.id)),
            "apiture:contact": link(contact_uri(&a.contact_id)),
        },
        "_id": a.id,
        "type": "adminApproval",
        "createdAt": rfc3339_ms(a.created_at),
        "reason": a.reason,
    })
}

/// The body of a create request: the identity at the top level (the create
/// schemas) or under `inputs.identity` (the resource's own shape), and an
/// optional `_links.apiture:contact.href`. Unknown fields are ignored, as the
/// reference's clients send whole resources back.
#[derive(serde::Deserialize, Default)]
struct CreateBody {
    #[serde(flatten)]
    top: Pii,
    #[serde(rename = "_links")]
    links: Option<CreateLinks>,
    inputs: Option<CreateInputs>,
}

#[derive(serde::Deserialize)]
struct CreateLinks {
    #[serde(rename = "apiture:contact")]
    contact: Option<Href>,
}

#[derive(serde::Deserialize)]
struct Href {
    href: String,
}

#[derive(serde::Deserialize)]
struct CreateInputs {
    identity: Option<Pii>,
}

/// PII and the optional `apiture:contact` link of a create request.
fn create_body(body: &[u8]) -> Result<(Option<String>, Pii), HalError> {
    let b: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| HalError(Problem::BadRequest(format!("invalid identity body: {e}"))))?
    };
    let contact = match b.links.and_then(|l| l.contact) {
        None => None,
        Some(Href { href }) => Some(parse_contact_uri(&href).ok_or_else(|| {
            HalError(Problem::BadRequest(format!(
                "the apiture:contact link '{href}' is not a contact URI (/contacts/contacts/{{id}})"
            )))
        })?),
    };
    let pii = b.inputs.and_then(|i| i.identity).unwrap_or(b.top);
    Ok((contact, pii.validated().map_err(VerifyError::Invalid)?))
}

fn created(location: String, body: Value) -> HttpResponse {
    HttpResponse::Created()
        .content_type(HAL)
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .body(body.to_string())
}

/// `POST /identity/fraudRiskReports`
#[utoipa::path(
    tag = "identity",
    operation_id = "createFraudRiskReport",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    request_body(content = Option<IdentityInput>, content_type = "application/json", description = "The identity to check, at the top level or under inputs.identity, with an optional _links.apiture:contact"),
    responses(
        (status = 201, description = "The report, with a Location", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 422, description = "The identity lacks what the checks need", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[post("/identity/fraudRiskReports")]
#[tracing::instrument(skip_all)]
pub async fn create_fraud_report(
    state: web::Data<AppState>,
    c: IdentityClient,
    body: web::Bytes,
) -> Result<HttpResponse, HalError> {
    let (contact, pii) = create_body(&body)?;
    let r = records::create_fraud_report(
        &state.db,
        state.settings.thresholds.minimum_age,
        &c.0.integrator_id,
        contact.as_deref(),
        pii,
    )
    .await?;
    Ok(created(
        format!("/identity/fraudRiskReports/{}", r.id),
        fraud_json(&state, &r)?,
    ))
}

/// `GET /identity/fraudRiskReports/{id}`
#[utoipa::path(
    tag = "identity",
    operation_id = "getFraudRiskReport",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(("fraudRiskReportId" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The report", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 404, description = "No such report (or another integrator's)", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[get("/identity/fraudRiskReports/{fraudRiskReportId}")]
#[tracing::instrument(skip_all)]
pub async fn fraud_report(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
) -> Result<HttpResponse, HalError> {
    let r = crate::store::identity_checks::fraud_report(&state.db, &c.0.integrator_id, &path)
        .await?
        .ok_or_else(|| {
            HalError(Problem::NotFound(format!(
                "There is no such fraud-risk report resource at {}",
                path.as_str()
            )))
        })?;
    Ok(hal(StatusCode::OK, fraud_json(&state, &r)?))
}

fn page_query(q: &BTreeMap<String, String>, of_quizzes: bool) -> Result<PageQuery, HalError> {
    let int = |name: &str, default: i64| -> Result<i64, HalError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                HalError(Problem::BadRequest(format!(
                    "{name} must be an integer, not '{v}'"
                )))
            }),
        }
    };
    let start = int("start", 0)?;
    let limit = int("limit", 100)?;
    if start < 0 {
        return Err(HalError(Problem::Unprocessable(
            "start must be 0 or more".into(),
        )));
    }
    if !(1..=1000).contains(&limit) {
        return Err(HalError(Problem::Unprocessable(
            "limit must be 1 to 1000".into(),
        )));
    }
    let mut sort = vec![];
    if let Some(s) = q.get("sortBy").filter(|s| !s.trim().is_empty()) {
        for part in s.split(',') {
            let part = part.trim();
            let (desc, field) = match part.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, part.strip_prefix('+').unwrap_or(part)),
            };
            let col = records::column(field, of_quizzes).ok_or_else(|| {
                HalError(Problem::Unprocessable(format!(
                    "cannot sort by '{field}': use state, createdAt{}",
                    if of_quizzes { ", expiresAt" } else { "" }
                )))
            })?;
            sort.push((col, desc));
        }
    }
    let filter = match q.get("filter").filter(|s| !s.trim().is_empty()) {
        Some(f) => Some(
            records::parse_filter(f, of_quizzes)
                .map_err(|e| HalError(Problem::BadRequest(format!("filter: {e}"))))?,
        ),
        None => None,
    };
    Ok(PageQuery {
        start,
        limit,
        sort,
        filter,
        q: q.get("q").cloned(),
    })
}

/// `_links` for paging: the query's other parameters are kept.
fn paging_links(path: &str, q: &BTreeMap<String, String>, p: &PageQuery, more: bool) -> Value {
    let with = |start: i64| {
        let mut params: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| *k != "start" && *k != "limit")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.insert(0, ("limit".into(), p.limit.to_string()));
        params.insert(0, ("start".into(), start.to_string()));
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    };
    let mut l = serde_json::Map::new();
    l.insert("self".into(), link(with(p.start)));
    l.insert("first".into(), link(with(0)));
    if p.start > 0 {
        l.insert("prev".into(), link(with((p.start - p.limit).max(0))));
    }
    if more {
        l.insert("next".into(), link(with(p.start + p.limit)));
    }
    l.insert("collection".into(), link(path));
    Value::Object(l)
}

fn collection(
    name: &str,
    item_profile: &str,
    path: &str,
    q: &BTreeMap<String, String>,
    p: &PageQuery,
    items: Vec<Value>,
    more: bool,
) -> Value {
    json!({
        "_profile": format!("{PROFILES}/identity/{name}/v1.0.0/profile.json"),
        "start": p.start,
        "limit": p.limit,
        "count": items.len(),
        "name": name,
        "_links": paging_links(path, q, p, more),
        "_embedded": {
            "_profile": format!("{PROFILES}/identity/{item_profile}/v1.0.0/profile.json"),
            "items": items,
        }
    })
}

/// `GET /identity/fraudRiskReports`
#[utoipa::path(
    tag = "identity",
    operation_id = "getFraudRiskReports",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of reports", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 422, description = "start or limit out of range", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[get("/identity/fraudRiskReports")]
#[tracing::instrument(skip_all)]
pub async fn fraud_reports(
    state: web::Data<AppState>,
    c: IdentityClient,
    q: web::Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, HalError> {
    let p = page_query(&q, false)?;
    let (rows, more) = records::fraud_reports(&state.db, &c.0.integrator_id, &p).await?;
    let items = rows
        .iter()
        .map(|r| fraud_json(&state, r))
        .collect::<Result<_, _>>()?;
    Ok(hal(
        StatusCode::OK,
        collection(
            "fraudRiskReports",
            "fraudRiskReport",
            "/identity/fraudRiskReports",
            &q,
            &p,
            items,
            more,
        ),
    ))
}

/// `POST /identity/quizzes`
#[utoipa::path(
    tag = "identity",
    operation_id = "createQuiz",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    request_body(content = Option<IdentityInput>, content_type = "application/json", description = "The identity to quiz, at the top level or under inputs.identity, with an optional _links.apiture:contact"),
    responses(
        (status = 201, description = "The quiz (pending), with a Location", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 422, description = "The identity lacks what a quiz needs", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[post("/identity/quizzes")]
#[tracing::instrument(skip_all)]
pub async fn create_quiz(
    state: web::Data<AppState>,
    c: IdentityClient,
    body: web::Bytes,
) -> Result<HttpResponse, HalError> {
    let (contact, pii) = create_body(&body)?;
    let q = records::create_quiz(
        &state.db,
        crate::domain::ms(state.settings.quiz_ttl),
        &c.0.integrator_id,
        contact.as_deref(),
        pii,
    )
    .await?;
    Ok(created(
        format!("/identity/quizzes/{}", q.id),
        quiz_json(&state, &q)?,
    ))
}

async fn load_quiz(state: &AppState, c: &IdentityClient, id: &str) -> Result<QuizRow, HalError> {
    records::quiz(&state.db, &c.0.integrator_id, id)
        .await?
        .ok_or_else(|| {
            HalError(Problem::NotFound(format!(
                "There is no such quiz resource at {id}"
            )))
        })
}

/// `GET /identity/quizzes/{id}`
#[utoipa::path(
    tag = "identity",
    operation_id = "getQuiz",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(("quizId" = String, Path, description = "The quiz's id")),
    responses(
        (status = 200, description = "The quiz", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 404, description = "No such quiz (or another integrator's)", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[get("/identity/quizzes/{quizId}")]
#[tracing::instrument(skip_all)]
pub async fn quiz(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
) -> Result<HttpResponse, HalError> {
    let q = load_quiz(&state, &c, &path).await?;
    Ok(hal(StatusCode::OK, quiz_json(&state, &q)?))
}

/// `GET /identity/quizzes`
#[utoipa::path(
    tag = "identity",
    operation_id = "getQuizzes",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of quizzes", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 422, description = "start or limit out of range", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[get("/identity/quizzes")]
#[tracing::instrument(skip_all)]
pub async fn quizzes(
    state: web::Data<AppState>,
    c: IdentityClient,
    q: web::Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, HalError> {
    let p = page_query(&q, true)?;
    let (rows, more) = records::quizzes(&state.db, &c.0.integrator_id, &p).await?;
    let items = rows
        .iter()
        .map(|r| quiz_json(&state, r))
        .collect::<Result<_, _>>()?;
    Ok(hal(
        StatusCode::OK,
        collection("quizzes", "quiz", "/identity/quizzes", &q, &p, items, more),
    ))
}

/// `POST /identity/quizzes/{id}/questions`: pending → asked.
#[utoipa::path(
    tag = "identity",
    operation_id = "createQuizQuestions",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(("quizId" = String, Path, description = "The quiz's id")),
    responses(
        (status = 201, description = "The questions (pending → asked)", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 404, description = "No such quiz", content_type = "application/hal+json", body = HalErrorBody),
        (status = 409, description = "Questions only for a pending quiz", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[post("/identity/quizzes/{quizId}/questions")]
#[tracing::instrument(skip_all)]
pub async fn questions(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
) -> Result<HttpResponse, HalError> {
    let q = load_quiz(&state, &c, &path).await?;
    let qs = records::ask(&state.db, &q).await?;
    let base = format!("/identity/quizzes/{}", q.id);
    Ok(hal(
        StatusCode::CREATED,
        json!({
            "_links": {"up": link(&base), "apiture:score": link(format!("{base}/answers"))},
            "questions": qs.iter().map(|q| q.public()).collect::<Vec<_>>(),
            "token": verification_token(&state, &q.contact_id, "quiz", &q.id, "asked"),
        }),
    ))
}

/// `POST /identity/quizzes/{id}/answers`: asked → passed | failed.
#[utoipa::path(
    tag = "identity",
    operation_id = "scoreQuiz",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(("quizId" = String, Path, description = "The quiz's id")),
    request_body(content = AnswersInput, content_type = "application/json"),
    responses(
        (status = 201, description = "The scored quiz (passed or failed)", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 404, description = "No such quiz", content_type = "application/hal+json", body = HalErrorBody),
        (status = 409, description = "Answers only for an asked quiz", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[post("/identity/quizzes/{quizId}/answers")]
#[tracing::instrument(skip_all)]
pub async fn answers(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HalError> {
    let input: AnswersInput = serde_json::from_slice(&body).map_err(|e| {
        HalError(Problem::BadRequest(format!(
            "answers must be an array of {{questionId, answer}} strings: {e}"
        )))
    })?;
    let mut answers = vec![];
    for a in input.answers {
        for (n, s) in [("questionId", &a.question_id), ("answer", &a.answer)] {
            if s.is_empty() || s.chars().count() > 256 {
                return Err(HalError(Problem::BadRequest(format!(
                    "{n} must be 1 to 256 characters"
                ))));
            }
        }
        answers.push((a.question_id, a.answer));
    }
    let q = load_quiz(&state, &c, &path).await?;
    records::answer(&state.db, &q, &answers).await?;
    let q = load_quiz(&state, &c, &path).await?;
    Ok(hal(StatusCode::CREATED, quiz_json(&state, &q)?))
}

/// The contact named by `contactUri`, or 400 (malformed) / `unknown`.
async fn contact_param(
    state: &AppState,
    c: &IdentityClient,
    q: &BTreeMap<String, String>,
    unknown: fn(String) -> Problem,
) -> Result<crate::store::contacts::ContactRow, HalError> {
    let uri = q.get("contactUri").ok_or_else(|| {
        HalError(Problem::BadRequest(
            "the contactUri query parameter is required".into(),
        ))
    })?;
    let id = parse_contact_uri(uri).ok_or_else(|| {
        HalError(Problem::BadRequest(format!(
            "contactUri '{uri}' is not a contact URI (/contacts/contacts/{{id}})"
        )))
    })?;
    crate::store::contacts::get(state.db.read(), &c.0.integrator_id, &id)
        .await?
        .ok_or_else(|| HalError(unknown(format!("contactUri '{uri}' names no contact"))))
}

fn verification_type(q: &BTreeMap<String, String>) -> Result<Option<&str>, HalError> {
    match q.get("type").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(t @ ("fraudRiskReport" | "quiz" | "adminApproval")) => Ok(Some(t)),
        Some(t) => Err(HalError(Problem::BadRequest(format!(
            "type '{t}' is not fraudRiskReport, quiz or adminApproval"
        )))),
    }
}

/// A verification's state as the reference's `contactVerification` enumerates
/// it: `passed` or `failed`. A fraud report that passed with risk factors
/// passed; anything not finished is not a verification yet.
fn verification_state(state: &str) -> Option<&'static str> {
    match state {
        "failed" => Some("failed"),
        s if s.starts_with("passed") => Some("passed"),
        _ => None,
    }
}

/// `GET /identity/contactVerification?contactUri=…[&type=…]`
#[utoipa::path(
    tag = "identity",
    operation_id = "getContactVerification",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(ContactQuery),
    responses(
        (status = 200, description = "The contact's verifications (states passed or failed)", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
    )
)]
#[get("/identity/contactVerification")]
#[tracing::instrument(skip_all)]
pub async fn contact_verification(
    state: web::Data<AppState>,
    c: IdentityClient,
    q: web::Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, HalError> {
    let kind = verification_type(&q)?;
    let contact = contact_param(&state, &c, &q, Problem::BadRequest).await?;
    let vs = records::contact_verifications(&state.db, &contact.id, kind).await?;
    let items: Vec<Value> = vs
        .iter()
        .filter_map(|v| {
            let state = verification_state(&v.state)?;
            let href = match v.kind {
                "fraudRiskReport" => format!("/identity/fraudRiskReports/{}", v.id),
                "quiz" => format!("/identity/quizzes/{}", v.id),
                _ => format!("/identity/approvals/{}", v.id),
            };
            Some(json!({"type": v.kind, "_links": {"self": link(href)}, "state": state, "verifiedAt": rfc3339_ms(v.at)}))
        })
        .collect();
    Ok(hal(
        StatusCode::OK,
        json!({"_links": {"apiture:contact": link(contact_uri(&contact.id))}, "verifications": items}),
    ))
}

/// `POST /identity/approvals?contactUri=…&type=adminApproval`; an optional
/// JSON body `{"reason": "…"}` records why.
#[utoipa::path(
    tag = "identity",
    operation_id = "createApproval",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(ContactQuery),
    request_body(content = Option<ApprovalInput>, content_type = "application/json"),
    responses(
        (status = 201, description = "The approval, with a Location", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 422, description = "contactUri names no contact of this integrator", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[post("/identity/approvals")]
#[tracing::instrument(skip_all)]
pub async fn create_approval(
    state: web::Data<AppState>,
    c: IdentityClient,
    q: web::Query<BTreeMap<String, String>>,
    body: web::Bytes,
) -> Result<HttpResponse, HalError> {
    if let Some(t) = verification_type(&q)? {
        if t != "adminApproval" {
            return Err(HalError(Problem::BadRequest(format!(
                "approvals are of type adminApproval, not {t}"
            ))));
        }
    }
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let input: ApprovalInput = serde_json::from_slice(&body)
            .map_err(|e| HalError(Problem::BadRequest(format!("malformed approval body: {e}"))))?;
        input.reason
    };
    let contact = contact_param(&state, &c, &q, Problem::Unprocessable).await?;
    let reason = reason.unwrap_or_else(|| {
        format!(
            "Approved through the Identity API by integrator {}",
            c.0.name
        )
    });
    let a = records::create_approval(
        &state.db,
        &contact,
        &reason,
        &c.0.actor().name,
        &c.0.client_addr,
    )
    .await?;
    Ok(created(
        format!("/identity/approvals/{}", a.id),
        approval_json(&a),
    ))
}

/// `GET /identity/approvals/{id}`.
#[utoipa::path(
    tag = "identity",
    operation_id = "getApproval",
    security(("bearer" = []), ("bearer" = [], "apiKey" = [])),
    params(("approvalId" = String, Path, description = "The approval's id")),
    responses(
        (status = 200, description = "The approval", content_type = "application/hal+json", body = HalObject),
        HalCallRefusals,
        (status = 404, description = "No such approval", content_type = "application/hal+json", body = HalErrorBody),
    )
)]
#[get("/identity/approvals/{approvalId}")]
#[tracing::instrument(skip_all)]
pub async fn approval(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
) -> Result<HttpResponse, HalError> {
    approval_answer(state, c, path).await
}

/// `GET /identity/approval/{id}`: the form the reference's examples link to.
#[tracing::instrument(skip_all)]
pub async fn approval_answer(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
) -> Result<HttpResponse, HalError> {
    let a = crate::store::identity_checks::approval(&state.db, &c.0.integrator_id, &path)
        .await?
        .ok_or_else(|| {
            HalError(Problem::NotFound(format!(
                "There is no such approval at {}",
                path.as_str()
            )))
        })?;
    Ok(hal(StatusCode::OK, approval_json(&a)))
}

/// `GET /contacts/contacts/{id}`: what the `apiture:contact` links point at.
#[tracing::instrument(skip_all)]
pub async fn contact(
    state: web::Data<AppState>,
    c: IdentityClient,
    path: web::Path<String>,
) -> Result<HttpResponse, HalError> {
    let row = crate::store::contacts::get(state.db.read(), &c.0.integrator_id, &path)
        .await?
        .ok_or_else(|| {
            HalError(Problem::NotFound(format!(
                "There is no such contact at {}",
                path.as_str()
            )))
        })?;
    let mut v = serde_json::to_value(row.pii()).unwrap_or_else(|_| json!({}));
    v["_id"] = json!(row.id);
    v["_profile"] = json!(format!("{PROFILES}/contacts/contact/v1.0.0/profile.json"));
    v["createdAt"] = json!(rfc3339_ms(row.created_at));
    v["_links"] = json!({
        "self": link(contact_uri(&row.id)),
        "apiture:verification": link(format!("/identity/contactVerification?contactUri={}", contact_uri(&row.id))),
    });
    Ok(hal(StatusCode::OK, v))
}

/// The Identity API's documented routes, registered through
/// utoipa-actix-web so `openapi::identity_document` is collected from them.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.app_data(query_config())
        .service(root)
        .service(api_doc)
        .service(fraud_reports)
        .service(create_fraud_report)
        .service(fraud_report)
        .service(quizzes)
        .service(create_quiz)
        .service(quiz)
        .service(questions)
        .service(answers)
        .service(contact_verification)
        .service(create_approval)
        .service(approval);
}

/// Aliases the reference's examples use, and the contact the links point
/// at: served, not part of the Identity document.
pub fn alias_routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(query_config())
        .route("/identity", web::get().to(root_answer))
        .route("/identity/approval/{id}", web::get().to(approval_answer))
        .route("/contacts/contacts/{id}", web::get().to(contact));
}

/// Unreadable query strings answer in the `_error` shape.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        HalError(Problem::BadRequest(format!("malformed query: {err}"))).into()
    })
}

/// Collection paging, as the reference names it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct Paging {
    #[param(minimum = 0)]
    start: Option<i64>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    sort_by: Option<String>,
    filter: Option<String>,
    q: Option<String>,
}

/// The contact a request is about.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ContactQuery {
    /// `/contacts/contacts/{id}`
    #[param(rename = "contactUri")]
    contact_uri: String,
    #[param(rename = "type", inline)]
    kind: Option<VerificationKind>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum VerificationKind {
    #[schema(rename = "fraudRiskReport")]
    FraudRiskReport,
    #[schema(rename = "quiz")]
    Quiz,
    #[schema(rename = "adminApproval")]
    AdminApproval,
}

/// An identity to check: the fields of `Pii`, plus an optional
/// `_links.apiture:contact.href`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IdentityInput {
    #[serde(flatten)]
    identity: Pii,
    #[schema(rename = "_links", value_type = Option<Object>)]
    links: Option<Value>,
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswersInput {
    answers: Vec<AnswerInput>,
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerInput {
    question_id: String,
    answer: String,
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct ApprovalInput {
    reason: Option<String>,
}

/// A HAL resource (`_links`, `_profile`, its fields).
#[derive(utoipa::ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)]
pub struct HalObject(Value);

/// The reference's error shape: `{_profile, _error: {_id, message, statusCode, type, occurredAt, _links}}`.
#[derive(utoipa::ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)]
pub struct HalErrorBody(Value);

/// The refusals every Identity API call on a resource shares.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
enum HalCallRefusals {
    #[response(
        status = 400,
        description = "Bad request",
        content_type = "application/hal+json"
    )]
    BadRequest(HalErrorBody),
    #[response(
        status = 401,
        description = "No, expired or invalid bearer token, or an API-Key that is not the caller's",
        content_type = "application/hal+json"
    )]
    Unauthorized(HalErrorBody),
    #[response(
        status = 403,
        description = "The integrator is disabled",
        content_type = "application/hal+json"
    )]
    Forbidden(HalErrorBody),
}

/// The refusals of the Identity API's root and document (any credential).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
enum HalCredentialRefusals {
    #[response(
        status = 401,
        description = "No or unknown credential",
        content_type = "application/hal+json"
    )]
    Unauthorized(HalErrorBody),
    #[response(
        status = 403,
        description = "The integrator is disabled",
        content_type = "application/hal+json"
    )]
    Forbidden(HalErrorBody),
}

#[cfg(test)]
mod tests {
    use super::verification_state;

    #[test]
    fn contact_verification_states_stay_within_the_reference_enum() {
        assert_eq!(verification_state("passed"), Some("passed"));
        assert_eq!(verification_state("passedWithRiskFactors"), Some("passed"));
        assert_eq!(verification_state("failed"), Some("failed"));
        assert_eq!(verification_state("pending"), None);
    }
}
