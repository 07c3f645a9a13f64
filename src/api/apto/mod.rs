//! The Apto-style mobile API (`/v1/config`, `/v1/verifications/...`,
//! `/v1/user...`) and the Verification API (`/v1/verification/...`).
//! Handlers parse and authenticate; `crate::verification` does the work.

use super::openapi::{
    ConfigResponse, LoginResponse, MessageResponse, MobileKeyRefusals, MobileRateLimited,
    ProjectConfig, StatusBody, UserResponse, UserTokenRefusals, ValidateResponse,
    VerificationResponse,
};
use super::problem::Problem;
use crate::security::client_addr;
use crate::state::AppState;
use crate::verification::users::{self, Datapoint, MobileUserRow};
use crate::verification::{otp, profile};
use actix_web::dev::Payload;
use actix_web::{get, post, put};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::app_state;

/// `Api-Key: Bearer <key>` (or the bare key), as the reference allows both.
fn api_key(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get("Api-Key")?.to_str().ok()?.trim();
    let v = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .unwrap_or(v);
    Some(v.trim().to_string()).filter(|s| !s.is_empty())
}

/// The integrator calling the mobile API, by its Mobile API key.
pub struct MobileClient {
    pub integrator_id: String,
    pub sandbox: bool,
    pub client_addr: String,
}

impl FromRequest for MobileClient {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let key = api_key(&req).ok_or_else(|| {
                Problem::Unauthorized("send the Mobile API key as 'Api-Key: Bearer <key>'".into())
            })?;
            let row = crate::store::integrators::by_api_key(state.db.read(), &key)
                .await?
                .ok_or_else(|| Problem::Unauthorized("unknown Mobile API key".into()))?;
            if row.enabled != 1 {
                return Err(Problem::Forbidden("this integrator is disabled".into()));
            }
            Ok(MobileClient {
                integrator_id: row.id,
                sandbox: row.sandbox == 1,
                client_addr: client_addr(&req),
            })
        })
    }
}

/// A logged-in mobile user (`Authorization: Bearer <user_token>`).
pub struct MobileUser {
    pub user: MobileUserRow,
    pub token: String,
    pub redirect_uris: Vec<String>,
    pub integrator_name: String,
}

impl FromRequest for MobileUser {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let token = req
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Problem::Unauthorized(
                        "send the user token as 'Authorization: Bearer <user_token>'".into(),
                    )
                })?
                .to_string();
            let user = users::by_token(&state.db, &token).await?.ok_or_else(|| {
                Problem::Unauthorized("the user token is unknown, expired or revoked".into())
            })?;
            let row = crate::store::integrators::get(state.db.read(), &user.integrator_id)
                .await?
                .ok_or_else(|| Problem::Unauthorized("the integrator no longer exists".into()))?;
            if row.enabled != 1 {
                return Err(Problem::Forbidden("this integrator is disabled".into()));
            }
            // A Mobile API key, when sent, must be this user's integrator's.
            if let Some(k) = api_key(&req) {
                if row.api_key.as_deref() != Some(k.as_str()) {
                    return Err(Problem::Unauthorized(
                        "the Api-Key does not belong to this user's integrator".into(),
                    ));
                }
            }
            // A corrupt allow-list is an error, never "no URI allowed".
            let redirect_uris = serde_json::from_str(&row.redirect_uris).map_err(|e| {
                Problem::Internal(anyhow::anyhow!(
                    "integrator {}: the stored redirect_uris do not decode: {e}",
                    row.id
                ))
            })?;
            Ok(MobileUser {
                user,
                token,
                redirect_uris,
                integrator_name: row.name,
            })
        })
    }
}

async fn limit(state: &AppState, endpoint: &str, who: &str) -> Result<(), Problem> {
    otp::rate_limit(
        &state.db,
        &format!("{endpoint}:{who}"),
        state.settings.otp.rate_window_ms,
    )
    .await
    .map_err(Problem::from)
}

fn mobile_who(c: &MobileClient) -> String {
    format!("{}:{}", c.integrator_id, c.client_addr)
}

fn ok(v: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(v)
}

/// `GET /v1/config`
#[utoipa::path(
    tag = "mobile",
    operation_id = "getConfig",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "The verifications required for login and user creation", body = ConfigResponse),
        MobileKeyRefusals,
    )
)]
#[get("/v1/config")]
#[tracing::instrument(skip_all)]
pub async fn config(state: web::Data<AppState>, c: MobileClient) -> Result<HttpResponse, Problem> {
    let today = chrono::Utc::now().date_naive();
    let years = state.settings.thresholds.minimum_age;
    let birthdate = today
        .checked_sub_months(chrono::Months::new(12 * years))
        .unwrap_or(today);
    let answer = ConfigResponse {
        project: ProjectConfig {
            birthdate: birthdate.to_string(),
            primary_auth_credential: "phone".into(),
            secondary_auth_credential: "birthdate".into(),
            sandbox: c.sandbox,
        },
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

#[derive(Deserialize, ToSchema)]
pub struct StartBody {
    /// phone or email.
    #[schema(required, nullable = false)]
    datapoint_type: Option<String>,
    /// `{data_type, country_code, phone_number}` or `{data_type, email}`.
    #[schema(required, nullable = false)]
    datapoint: Option<Value>,
}

/// `POST /v1/verifications/start`
#[utoipa::path(
    tag = "mobile",
    operation_id = "startVerification",
    security(("apiKey" = [])),
    request_body = StartBody,
    responses(
        (status = 200, description = "Started: a code was sent", body = VerificationResponse),
        (status = 400, description = "Invalid datapoint", body = StatusBody),
        MobileKeyRefusals,
        MobileRateLimited,
        (status = 502, description = "The code could not be delivered", body = StatusBody),
    )
)]
#[post("/v1/verifications/start")]
#[tracing::instrument(skip_all)]
pub async fn start(
    state: web::Data<AppState>,
    c: MobileClient,
    body: web::Json<StartBody>,
) -> Result<HttpResponse, Problem> {
    let dp = Datapoint::parse(
        body.datapoint_type.as_deref(),
        body.datapoint.as_ref().unwrap_or(&Value::Null),
    )?;
    limit(&state, "mobile:start", &mobile_who(&c)).await?;
    let (v, s) = users::start(
        &state.db,
        &state.postman,
        &state.jwt_key,
        &state.settings.otp,
        &c.integrator_id,
        &dp,
        None,
    )
    .await?;
    Ok(ok(users::verification_json(&v, s.as_ref())))
}

/// `POST /v1/verifications/primary/start`
#[utoipa::path(
    tag = "mobile",
    operation_id = "startPrimaryVerification",
    security(("userToken" = [], "apiKey" = [])),
    responses(
        (status = 200, description = "Started on the user's primary credential", body = VerificationResponse),
        (status = 400, description = "The user has no primary credential", body = StatusBody),
        UserTokenRefusals,
        MobileRateLimited,
        (status = 502, description = "The code could not be delivered", body = StatusBody),
    )
)]
#[post("/v1/verifications/primary/start")]
#[tracing::instrument(skip_all)]
pub async fn primary_start(
    state: web::Data<AppState>,
    c: MobileClient,
    u: MobileUser,
) -> Result<HttpResponse, Problem> {
    if u.user.integrator_id != c.integrator_id {
        return Err(Problem::Unauthorized(
            "the user token belongs to another integrator".into(),
        ));
    }
    limit(&state, "mobile:primary", &mobile_who(&c)).await?;
    let (v, s) = users::start_primary(
        &state.db,
        &state.postman,
        &state.jwt_key,
        &state.settings.otp,
        &u.user,
    )
    .await?;
    Ok(ok(users::verification_json(&v, s.as_ref())))
}

fn verification_id(raw: &str) -> Result<&str, Problem> {
    let ok = raw.len() == 23
        && raw.starts_with("entity_")
        && raw[7..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(raw)
    } else {
        Err(Problem::BadRequest(format!(
            "'{raw}' is not a verification id (entity_ and 16 hex digits)"
        )))
    }
}

async fn load(
    state: &AppState,
    c: &MobileClient,
    id: &str,
) -> Result<otp::VerificationRow, Problem> {
    otp::get(&state.db, &c.integrator_id, verification_id(id)?)
        .await?
        .filter(|v| v.channel == "mobile")
        .ok_or_else(|| Problem::NotFound("No existing verification".into()))
}

async fn with_secondary(state: &AppState, v: &otp::VerificationRow) -> Result<Value, Problem> {
    let s = match &v.secondary_id {
        Some(s) => otp::get(&state.db, &v.integrator_id, s).await?,
        None => None,
    };
    Ok(users::verification_json(v, s.as_ref()))
}

#[derive(Deserialize, ToSchema)]
pub struct FinishBody {
    /// The 6-digit code, or the date of birth (YYYY-MM-DD) for a birthdate verification.
    #[schema(required, nullable = false)]
    secret: Option<String>,
}

/// `POST /v1/verifications/{verification_id}/finish`
#[utoipa::path(
    tag = "mobile",
    operation_id = "finishVerification",
    security(("apiKey" = [])),
    params(("verification_id" = String, Path, description = "The verification id", pattern = "^entity_[0-9a-f]{16}$")),
    request_body = FinishBody,
    responses(
        (status = 200, description = "The verification's status after this attempt", body = VerificationResponse),
        (status = 400, description = "Missing secret or malformed id", body = StatusBody),
        MobileKeyRefusals,
        (status = 404, description = "No such verification", body = StatusBody),
        MobileRateLimited,
    )
)]
#[post("/v1/verifications/{verification_id}/finish")]
#[tracing::instrument(skip_all)]
pub async fn finish(
    state: web::Data<AppState>,
    c: MobileClient,
    path: web::Path<String>,
    body: web::Json<FinishBody>,
) -> Result<HttpResponse, Problem> {
    let secret = body
        .secret
        .as_deref()
        .ok_or_else(|| Problem::BadRequest("secret is required".into()))?;
    limit(&state, "mobile:finish", &mobile_who(&c)).await?;
    let v = load(&state, &c, &path).await?;
    let v = users::finish(
        &state.db,
        &state.jwt_key,
        &state.settings.otp,
        c.sandbox,
        &v,
        secret,
    )
    .await?;
    Ok(ok(with_secondary(&state, &v).await?))
}

/// `POST /v1/verifications/{verification_id}/restart`
#[utoipa::path(
    tag = "mobile",
    operation_id = "restartVerification",
    security(("apiKey" = [])),
    params(("verification_id" = String, Path, description = "The verification id", pattern = "^entity_[0-9a-f]{16}$")),
    responses(
        (status = 200, description = "A new code was sent", body = VerificationResponse),
        (status = 400, description = "Malformed id", body = StatusBody),
        MobileKeyRefusals,
        (status = 404, description = "No such verification", body = StatusBody),
        (status = 409, description = "The verification cannot be restarted", body = StatusBody),
        MobileRateLimited,
        (status = 502, description = "The code could not be delivered", body = StatusBody),
    )
)]
#[post("/v1/verifications/{verification_id}/restart")]
#[tracing::instrument(skip_all)]
pub async fn restart(
    state: web::Data<AppState>,
    c: MobileClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    limit(&state, "mobile:restart", &mobile_who(&c)).await?;
    let v = load(&state, &c, &path).await?;
    let (v, s) = users::restart(
        &state.db,
        &state.postman,
        &state.jwt_key,
        &state.settings.otp,
        &v,
    )
    .await?;
    Ok(ok(users::verification_json(&v, s.as_ref())))
}

/// `GET /v1/verifications/{verification_id}/status`
#[utoipa::path(
    tag = "mobile",
    operation_id = "getVerificationStatus",
    security(("apiKey" = [])),
    params(("verification_id" = String, Path, description = "The verification id", pattern = "^entity_[0-9a-f]{16}$")),
    responses(
        (status = 200, description = "The verification", body = VerificationResponse),
        (status = 400, description = "Malformed id", body = StatusBody),
        MobileKeyRefusals,
        (status = 404, description = "No such verification", body = StatusBody),
        MobileRateLimited,
    )
)]
#[get("/v1/verifications/{verification_id}/status")]
#[tracing::instrument(skip_all)]
pub async fn status(
    state: web::Data<AppState>,
    c: MobileClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    limit(&state, "mobile:status", &mobile_who(&c)).await?;
    let v = load(&state, &c, &path).await?;
    Ok(ok(with_secondary(&state, &v).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct UserBody {
    metadata: Option<String>,
    /// `{type: "list", data: [...]}` of phone, email, birthdate, name, address and id_document items.
    #[schema(required, nullable = false)]
    data_points: Option<Value>,
}

fn data_points(b: &UserBody) -> Result<users::UserData, Problem> {
    let dp = b
        .data_points
        .as_ref()
        .ok_or_else(|| Problem::BadRequest("data_points is required".into()))?;
    Ok(users::parse_data_points(dp)?)
}

/// The creating-users guide's signed payload: a compact JWS (HS256) whose
/// claims are the same JSON a plain request sends, signed with the key the
/// integrator set (`integrator create --user-payload-key-stdin`).
async fn signed_payload(
    state: &AppState,
    c: &MobileClient,
    body: &[u8],
) -> Result<UserBody, Problem> {
    let key = crate::store::integrators::user_payload_key(state.db.read(), &c.integrator_id)
        .await?
        .ok_or_else(|| {
            Problem::UnsupportedType(
                "this integrator has no payload signing key: set one (integrator create --user-payload-key-stdin) or send application/json".into(),
            )
        })?;
    let token = std::str::from_utf8(body)
        .map_err(|_| Problem::BadRequest("the signed payload is not text".into()))?
        .trim();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(key.as_bytes()),
        &v,
    )
    .map_err(|e| {
        Problem::BadRequest(format!(
            "the signed payload does not verify with the integrator's key (HS256): {e}"
        ))
    })?;
    // An expiry, when the signer set one, is honoured.
    if let Some(exp) = data.claims.get("exp").and_then(Value::as_i64) {
        if exp < chrono::Utc::now().timestamp() {
            return Err(Problem::BadRequest("the signed payload has expired".into()));
        }
    }
    serde_json::from_value(data.claims)
        .map_err(|e| Problem::BadRequest(format!("the signed payload's claims: {e}")))
}

/// `POST /v1/user`
#[utoipa::path(
    tag = "mobile",
    operation_id = "createUser",
    security(("apiKey" = [])),
    request_body(content(
        (UserBody = "application/json"),
        (String = "application/jwt"),
    ), description = "The user's data points, as JSON or as the creating-users guide's signed payload (a JWS over the same JSON, HS256 under the integrator's signing key)"),
    responses(
        (status = 200, description = "Created, with a user token", body = UserResponse),
        (status = 400, description = "Invalid data points, or a bad signature", body = StatusBody),
        MobileKeyRefusals,
        (status = 409, description = "The primary credential already belongs to a user", body = StatusBody),
        (status = 415, description = "Neither JSON nor a signed payload", body = StatusBody),
    )
)]
#[post("/v1/user")]
#[tracing::instrument(skip_all)]
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    c: MobileClient,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let ct = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let b: UserBody = if ct.starts_with("application/jwt") {
        signed_payload(&state, &c, &body).await?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::BadRequest(format!("malformed JSON body: {e}")))?
    };
    let data = data_points(&b)?;
    let (u, token) = users::create(
        &state.db,
        &state.settings.otp,
        &c.integrator_id,
        data,
        b.metadata.clone(),
    )
    .await?;
    Ok(ok(users::user_json(&state.db, &u, &token).await?))
}

/// `PUT /v1/user`
#[utoipa::path(
    tag = "mobile",
    operation_id = "updateUser",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    request_body = UserBody,
    responses(
        (status = 200, description = "The updated user", body = UserResponse),
        (status = 400, description = "Invalid data points", body = StatusBody),
        UserTokenRefusals,
    )
)]
#[put("/v1/user")]
#[tracing::instrument(skip_all)]
pub async fn update_user(
    state: web::Data<AppState>,
    u: MobileUser,
    body: web::Json<UserBody>,
) -> Result<HttpResponse, Problem> {
    let data = data_points(&body)?;
    users::update(&state.db, &u.user, data).await?;
    Ok(ok(users::user_json(&state.db, &u.user, &u.token).await?))
}

/// `GET /v1/user`
#[utoipa::path(
    tag = "mobile",
    operation_id = "getUser",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        UserTokenRefusals,
    )
)]
#[get("/v1/user")]
#[tracing::instrument(skip_all)]
pub async fn get_user(state: web::Data<AppState>, u: MobileUser) -> Result<HttpResponse, Problem> {
    Ok(ok(users::user_json(&state.db, &u.user, &u.token).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// `{type: "list", data: [{verification_id}, ...]}`: passed verifications.
    #[schema(required, nullable = false)]
    verifications: Option<Value>,
}

/// `POST /v1/user/login`
#[utoipa::path(
    tag = "mobile",
    operation_id = "login",
    security(("apiKey" = [])),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed verifications", body = StatusBody),
        MobileKeyRefusals,
        (status = 404, description = "No such verification", body = StatusBody),
        MobileRateLimited,
    )
)]
#[post("/v1/user/login")]
#[tracing::instrument(skip_all)]
pub async fn login(
    state: web::Data<AppState>,
    c: MobileClient,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, Problem> {
    let ids: Vec<String> = body
        .verifications
        .as_ref()
        .and_then(|v| v.get("data"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Problem::BadRequest(
                "verifications must be {\"type\": \"list\", \"data\": [{\"verification_id\": ...}, ...]}".into(),
            )
        })?
        .iter()
        .filter_map(|v| v.get("verification_id").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    for id in &ids {
        verification_id(id)?;
    }
    limit(&state, "mobile:login", &mobile_who(&c)).await?;
    let (u, token) = users::login(&state.db, &state.settings.otp, &c.integrator_id, &ids).await?;
    Ok(ok(
        json!({"type": "user", "user_id": u.id, "user_token": token}),
    ))
}

// ---- Verification API ----------------------------------------------------

fn email_of(raw: Option<&str>) -> Result<String, Problem> {
    let e = raw.unwrap_or("").trim().to_lowercase();
    if crate::verification::valid_email(&e) {
        Ok(e)
    } else {
        Err(Problem::BadRequest(
            "email must be an e-mail address".into(),
        ))
    }
}

fn phone_of(raw: Option<&str>) -> Result<String, Problem> {
    let p = crate::verification::normalize_phone(raw.unwrap_or(""));
    let digits = p.trim_start_matches('+').len();
    if (7..=15).contains(&digits) {
        Ok(p)
    } else {
        Err(Problem::BadRequest(
            "phone_number must hold 7 to 15 digits (E.164, e.g. +15551230000)".into(),
        ))
    }
}

#[derive(Deserialize, ToSchema)]
pub struct LinkBody {
    #[schema(required, nullable = false)]
    email: Option<String>,
    /// One of the integrator's allowed redirect URIs.
    #[schema(required, nullable = false)]
    redirect_uri: Option<String>,
    #[schema(value_type = Option<Object>)]
    email_content: Option<profile::EmailContent>,
    #[serde(default)]
    update_primary: bool,
}

/// `POST /v1/verification/links/email`
#[utoipa::path(
    tag = "verification",
    operation_id = "sendEmailLink",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    request_body = LinkBody,
    responses(
        (status = 200, description = "Sent", body = MessageResponse),
        (status = 400, description = "Invalid e-mail or redirect URI", body = StatusBody),
        UserTokenRefusals,
        (status = 409, description = "Another user already verified this e-mail", body = StatusBody),
        MobileRateLimited,
        (status = 502, description = "The e-mail could not be delivered", body = StatusBody),
    )
)]
#[post("/v1/verification/links/email")]
#[tracing::instrument(skip_all)]
pub async fn send_link(
    state: web::Data<AppState>,
    u: MobileUser,
    body: web::Json<LinkBody>,
) -> Result<HttpResponse, Problem> {
    let email = email_of(body.email.as_deref())?;
    let redirect = body
        .redirect_uri
        .as_deref()
        .ok_or_else(|| Problem::BadRequest("redirect_uri is required".into()))?;
    if !profile::redirect_allowed(&u.redirect_uris, redirect) {
        return Err(Problem::BadRequest(format!(
            "redirect_uri '{redirect}' is not an allowed redirect URI of integrator {}",
            u.integrator_name
        )));
    }
    limit(&state, "otp:link", &u.user.id).await?;
    profile::send_link(
        &state.db,
        &state.postman,
        &state.jwt_key,
        &state.settings.otp,
        state.settings.public_url.as_str(),
        &u.user,
        &email,
        redirect,
        body.update_primary,
        &body.email_content.clone().unwrap_or_default(),
    )
    .await?;
    Ok(ok(json!({"message": "Verification email sent"})))
}

#[derive(Deserialize, ToSchema)]
pub struct EmailSendBody {
    #[schema(required, nullable = false)]
    email: Option<String>,
    #[schema(value_type = Option<Object>)]
    email_content: Option<profile::EmailContent>,
}

async fn send_code(
    state: &AppState,
    u: &MobileUser,
    kind: &str,
    target: &str,
    custom: Option<crate::verification::messaging::Message>,
) -> Result<(), Problem> {
    Ok(profile::send_code(
        &state.db,
        &state.postman,
        &state.jwt_key,
        &state.settings.otp,
        &u.user,
        kind,
        target,
        custom,
    )
    .await?)
}

/// `POST /v1/verification/otp/email/send`
#[utoipa::path(
    tag = "verification",
    operation_id = "sendEmailOtp",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    request_body = EmailSendBody,
    responses(
        (status = 200, description = "Sent", body = MessageResponse),
        (status = 400, description = "Invalid e-mail", body = StatusBody),
        UserTokenRefusals,
        (status = 409, description = "Another user already verified this e-mail", body = StatusBody),
        MobileRateLimited,
        (status = 502, description = "The e-mail could not be delivered", body = StatusBody),
    )
)]
#[post("/v1/verification/otp/email/send")]
#[tracing::instrument(skip_all)]
pub async fn email_send(
    state: web::Data<AppState>,
    u: MobileUser,
    body: web::Json<EmailSendBody>,
) -> Result<HttpResponse, Problem> {
    let email = email_of(body.email.as_deref())?;
    limit(&state, "otp:email", &u.user.id).await?;
    let custom = body.email_content.as_ref().and_then(|c| {
        c.text.as_ref().filter(|t| t.contains("{otp}")).map(|t| {
            crate::verification::messaging::Message {
                channel: crate::verification::messaging::Channel::Email,
                to: email.clone(),
                subject: c.subject.clone().unwrap_or_default(),
                body: t.clone(),
            }
        })
    });
    send_code(&state, &u, "email", &email, custom).await?;
    Ok(ok(json!({"message": "Email sent successfully"})))
}

#[derive(Deserialize, ToSchema)]
pub struct ValidateBody {
    email: Option<String>,
    phone_number: Option<String>,
    #[schema(required, nullable = false)]
    passcode: Option<String>,
    #[serde(default)]
    update_primary: bool,
}

async fn validate(
    state: &AppState,
    u: &MobileUser,
    kind: &str,
    target: &str,
    body: &ValidateBody,
) -> Result<HttpResponse, Problem> {
    let passcode = body
        .passcode
        .as_deref()
        .ok_or_else(|| Problem::BadRequest("passcode is required".into()))?;
    let result = profile::validate_code(
        &state.db,
        &state.jwt_key,
        &state.settings.otp,
        &u.user,
        kind,
        target,
        passcode,
        body.update_primary,
    )
    .await?;
    Ok(ok(json!({"result": result})))
}

/// `POST /v1/verification/otp/email/validate`
#[utoipa::path(
    tag = "verification",
    operation_id = "validateEmailOtp",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    request_body = ValidateBody,
    responses(
        (status = 200, description = "Whether the code was right", body = ValidateResponse),
        (status = 400, description = "Invalid e-mail or missing passcode", body = StatusBody),
        UserTokenRefusals,
        (status = 404, description = "No code was sent to this e-mail", body = StatusBody),
        (status = 409, description = "Another user already verified this e-mail", body = StatusBody),
        (status = 422, description = "The code expired, was used or has no attempts left", body = StatusBody),
    )
)]
#[post("/v1/verification/otp/email/validate")]
#[tracing::instrument(skip_all)]
pub async fn email_validate(
    state: web::Data<AppState>,
    u: MobileUser,
    body: web::Json<ValidateBody>,
) -> Result<HttpResponse, Problem> {
    let email = email_of(body.email.as_deref())?;
    validate(&state, &u, "email", &email, &body).await
}

#[derive(Deserialize, ToSchema)]
pub struct SmsSendBody {
    custom_message: Option<String>,
    sender_id: Option<String>,
    #[schema(required, nullable = false)]
    phone_number: Option<String>,
}

/// `POST /v1/verification/otp/sms/send`
#[utoipa::path(
    tag = "verification",
    operation_id = "sendSmsOtp",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    request_body = SmsSendBody,
    responses(
        (status = 200, description = "Sent", body = MessageResponse),
        (status = 400, description = "Invalid phone number or message", body = StatusBody),
        UserTokenRefusals,
        (status = 409, description = "Another user already verified this number", body = StatusBody),
        MobileRateLimited,
        (status = 502, description = "The SMS could not be delivered", body = StatusBody),
    )
)]
#[post("/v1/verification/otp/sms/send")]
#[tracing::instrument(skip_all)]
pub async fn sms_send(
    state: web::Data<AppState>,
    u: MobileUser,
    body: web::Json<SmsSendBody>,
) -> Result<HttpResponse, Problem> {
    let phone = phone_of(body.phone_number.as_deref())?;
    if let Some(m) = &body.custom_message {
        if !m.contains("{otp}") || !m.contains("{app}") {
            return Err(Problem::BadRequest(
                "custom_message must contain the {otp} and {app} placeholders".into(),
            ));
        }
        if m.chars().count() > 140 {
            return Err(Problem::BadRequest(
                "custom_message is limited to 140 characters".into(),
            ));
        }
    }
    if body
        .sender_id
        .as_ref()
        .is_some_and(|s| s.chars().count() > 11)
    {
        return Err(Problem::BadRequest(
            "sender_id is limited to 11 characters".into(),
        ));
    }
    limit(&state, "otp:sms", &u.user.id).await?;
    let custom = body
        .custom_message
        .as_ref()
        .map(|m| crate::verification::messaging::Message {
            channel: crate::verification::messaging::Channel::Sms,
            to: phone.clone(),
            subject: body.sender_id.clone().unwrap_or_default(),
            body: m.clone(),
        });
    send_code(&state, &u, "phone", &phone, custom).await?;
    Ok(ok(json!({"message": "SMS sent"})))
}

/// `POST /v1/verification/otp/sms/validate`
#[utoipa::path(
    tag = "verification",
    operation_id = "validateSmsOtp",
    security(("userToken" = []), ("userToken" = [], "apiKey" = [])),
    request_body = ValidateBody,
    responses(
        (status = 200, description = "Whether the code was right", body = ValidateResponse),
        (status = 400, description = "Invalid phone number or missing passcode", body = StatusBody),
        UserTokenRefusals,
        (status = 404, description = "No code was sent to this number", body = StatusBody),
        (status = 409, description = "Another user already verified this number", body = StatusBody),
        (status = 422, description = "The code expired, was used or has no attempts left", body = StatusBody),
    )
)]
#[post("/v1/verification/otp/sms/validate")]
#[tracing::instrument(skip_all)]
pub async fn sms_validate(
    state: web::Data<AppState>,
    u: MobileUser,
    body: web::Json<ValidateBody>,
) -> Result<HttpResponse, Problem> {
    let phone = phone_of(body.phone_number.as_deref())?;
    validate(&state, &u, "phone", &phone, &body).await
}

#[derive(Deserialize, ToSchema)]
pub struct LinkQuery {
    t: Option<String>,
}

fn link_parts<'a>(id: &'a str, t: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    let t = t?;
    let ok_id = verification_id(id).is_ok();
    let ok_t = !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (ok_id && ok_t).then_some((id, t))
}

fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
             <link rel=\"stylesheet\" href=\"/static/onboarding.css\"></head><body><main class=\"onb\"><h1>{title}</h1>{body}</main></body></html>"
        ))
}

/// `GET /v1/verification/links/email/{id}?t=…`: a page with a button.
/// Opening the link changes nothing, so mail scanners that fetch links
/// cannot use it up; the applicant's click (a POST) confirms.
#[utoipa::path(
    tag = "verification",
    operation_id = "getEmailLinkPage",
    params(
        ("id" = String, Path, description = "The verification id"),
        ("t" = Option<String>, Query, description = "The link's secret"),
    ),
    responses((status = 200, description = "A page with a confirm button (or saying the link is not valid)", content_type = "text/html", body = String))
)]
#[get("/v1/verification/links/email/{id}")]
#[tracing::instrument(skip_all)]
pub async fn link_page(path: web::Path<String>, q: web::Query<LinkQuery>) -> HttpResponse {
    match link_parts(&path, q.t.as_deref()) {
        Some((id, t)) => page(
            "Confirm your e-mail",
            &format!(
                "<form method=\"post\" action=\"/v1/verification/links/email/{id}\"><input type=\"hidden\" name=\"t\" value=\"{t}\">\
                 <p>Press the button to confirm this e-mail address.</p><button type=\"submit\">Confirm my e-mail</button></form>"
            ),
        ),
        None => page("This link is not valid", "<p>Ask for a new e-mail.</p>"),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct LinkForm {
    t: Option<String>,
}

/// `POST /v1/verification/links/email/{id}`: confirms, then sends the
/// browser to the integrator's redirect_uri with `result=true|false`.
#[utoipa::path(
    tag = "verification",
    operation_id = "confirmEmailLink",
    params(("id" = String, Path, description = "The verification id")),
    request_body(content = LinkForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The link is not valid (a page saying so)", content_type = "text/html", body = String),
        (status = 303, description = "Confirmed or not: on to the integrator's redirect_uri with result=true|false"),
        (status = 400, description = "The form is malformed", body = StatusBody),
        (status = 415, description = "Not a form (application/x-www-form-urlencoded)", body = StatusBody),
    )
)]
#[post("/v1/verification/links/email/{id}")]
#[tracing::instrument(skip_all)]
pub async fn link_confirm(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, Problem> {
    let Some((id, t)) = link_parts(&path, form.t.as_deref()) else {
        return Ok(page(
            "This link is not valid",
            "<p>Ask for a new e-mail.</p>",
        ));
    };
    match profile::confirm_link(&state.db, &state.jwt_key, &state.settings.otp, id, t).await {
        Ok((to, _)) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", to))
            .insert_header(("Cache-Control", "no-store"))
            .finish()),
        Err(crate::verification::VerifyError::NotFound(_)) => Ok(page(
            "This link is not valid",
            "<p>Ask for a new e-mail.</p>",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The mobile API's and the Verification API's routes, registered through
/// utoipa-actix-web so `openapi::mobile_document` is collected from them.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.app_data(super::error::json_config())
        .app_data(super::error::form_config())
        .service(config)
        .service(start)
        .service(primary_start)
        .service(finish)
        .service(restart)
        .service(status)
        .service(create_user)
        .service(update_user)
        .service(get_user)
        .service(login)
        .service(send_link)
        .service(link_page)
        .service(link_confirm)
        .service(email_send)
        .service(email_validate)
        .service(sms_send)
        .service(sms_validate);
}
