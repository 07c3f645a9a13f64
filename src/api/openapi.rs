//! The OpenAPI documents of the API families: the MobbScan-compatible
//! integrator API (`/api/openapi.json`) and the mobile + Verification APIs
//! (`/api/openapi/mobile.json`) and the Identity API (`/identity/apiDoc`).
//! Paths and methods come from the same route registrations that serve them
//! (utoipa-actix-web collects them from `api::routes`, `apto::routes` and
//! `apiture::routes`), so a document cannot drift from what the server
//! answers.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `{status, description}`: every error, and the decision answers.
#[derive(Serialize, ToSchema)]
pub struct StatusBody {
    pub status: StatusValue,
    pub description: String,
}

/// The HTTP status code (errors, e.g. 404) or a MobbScan status name
/// (decisions, e.g. VERIFICATION_ACCEPTED).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum StatusValue {
    Code(u16),
    Name(String),
}

/// The refusals of an integrator's call on one of its processes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
pub enum ProcessRefusals {
    #[response(status = 401, description = "No, expired or invalid token")]
    Unauthorized(StatusBody),
    #[response(status = 403, description = "The integrator is disabled")]
    Forbidden(StatusBody),
    #[response(
        status = 404,
        description = "No such process (or another integrator's)"
    )]
    NotFound(StatusBody),
}

/// The refusals of an integrator's decision on a process: its own, and
/// those of any call on a process.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
pub enum DecisionRefusals {
    #[response(status = 400, description = "Missing or invalid field")]
    BadRequest(StatusBody),
    #[response(status = 401, description = "No, expired or invalid token")]
    Unauthorized(StatusBody),
    #[response(status = 403, description = "The integrator is disabled")]
    Forbidden(StatusBody),
    #[response(
        status = 404,
        description = "No such process (or another integrator's)"
    )]
    NotFound(StatusBody),
    #[response(
        status = 409,
        description = "Not in a state that allows this (e.g. already final)"
    )]
    Conflict(StatusBody),
}

/// The refusals of a capture call (a token, then the process).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
pub enum CaptureRefusals {
    #[response(status = 401, description = "No, expired or invalid token")]
    Unauthorized(StatusBody),
    #[response(
        status = 404,
        description = "No such process (or another integrator's)"
    )]
    NotFound(StatusBody),
}

/// The refusals every mobile API call keyed by `Api-Key` shares.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
pub enum MobileKeyRefusals {
    #[response(status = 401, description = "No or unknown Mobile API key")]
    Unauthorized(StatusBody),
    #[response(status = 403, description = "The integrator is disabled")]
    Forbidden(StatusBody),
}

/// The refusals every mobile API call made with a user token shares.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses for the document; never built
pub enum UserTokenRefusals {
    #[response(
        status = 401,
        description = "No, unknown, expired or revoked user token"
    )]
    Unauthorized(StatusBody),
    #[response(status = 403, description = "The integrator is disabled")]
    Forbidden(StatusBody),
}

/// The per-client, per-endpoint pace of the mobile API's sending calls.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 429,
    description = "One call per 30 s per client and endpoint (Retry-After)"
)]
#[allow(dead_code)] // describes a response for the document; never built
pub struct MobileRateLimited(StatusBody);

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingResponse {
    pub scan_id: String,
    /// Carries the applicant's session on the hosted page; single use after submission.
    pub onboarding_token: String,
    /// The hosted onboarding page to open or embed.
    pub url: String,
}

/// `Accept: application/json` form of an image, and of a recording: the
/// reference documents the same fields (`imageType`, `image`) for both.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageJson {
    pub timestamp: String,
    pub image_type: String,
    pub scan_id: String,
    /// Base64 of the original bytes.
    pub image: String,
}

/// `Accept: application/json` form of the report PDF (the reference's
/// `pdfDocument`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdfJson {
    pub timestamp: String,
    pub scan_id: String,
    /// Base64 of the PDF.
    pub pdf_document: String,
}

/// `GET /v1/config`.
#[derive(Serialize, ToSchema)]
pub struct ConfigResponse {
    pub project: ProjectConfig,
}

#[derive(Serialize, ToSchema)]
pub struct ProjectConfig {
    /// The latest date of birth of an applicant of the minimum age
    /// (today minus the minimum age), YYYY-MM-DD.
    #[schema(format = Date)]
    pub birthdate: String,
    /// Always `phone`.
    pub primary_auth_credential: String,
    /// Always `birthdate`.
    pub secondary_auth_credential: String,
    /// Code `000000` passes (testing integrators only).
    pub sandbox: bool,
}

/// A verification of the mobile API.
#[derive(Serialize, ToSchema)]
pub struct VerificationResponse {
    /// Always `verification`.
    #[serde(rename = "type")]
    pub kind: String,
    /// phone, email or birthdate.
    pub verification_type: String,
    pub verification_mechanism: String,
    #[schema(pattern = "^entity_[0-9a-f]{16}$")]
    pub verification_id: String,
    pub status: VerificationStatus,
    /// The date-of-birth verification that goes with a known user's login.
    pub secondary_credential: Option<SecondaryCredential>,
}

#[derive(Serialize, ToSchema)]
pub struct SecondaryCredential {
    #[serde(rename = "type")]
    pub kind: String,
    pub verification_type: String,
    pub verification_id: String,
    pub status: VerificationStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    Pending,
    Passed,
    Failed,
    Expired,
}

/// A mobile user, as `POST/PUT/GET /v1/user` return it.
#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    /// Always `user`.
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: String,
    pub user_token: String,
    /// `{type: "list", data: [...], page, rows, has_more, total_rows}`.
    #[schema(value_type = Object)]
    pub user_data: serde_json::Value,
    pub metadata: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: String,
    pub user_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ValidateResponse {
    /// Whether the code was right.
    pub result: bool,
}

/// `personalData` of a decision: only these names, each a string; the
/// fields sent change, the others stay.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct PersonalData {
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[schema(nullable = false)]
    pub surname: Option<String>,
    #[schema(nullable = false)]
    pub first_surname: Option<String>,
    #[schema(nullable = false)]
    pub second_surname: Option<String>,
    #[schema(nullable = false)]
    pub document_number: Option<String>,
    #[schema(nullable = false)]
    pub personal_number: Option<String>,
    #[schema(nullable = false)]
    pub date_of_birth: Option<String>,
    #[schema(nullable = false)]
    pub date_of_expiry: Option<String>,
    #[schema(nullable = false)]
    pub gender: Option<String>,
    #[schema(nullable = false)]
    pub country: Option<String>,
    #[schema(nullable = false)]
    pub country_document_type: Option<String>,
    #[schema(nullable = false)]
    pub address: Option<String>,
    #[schema(nullable = false)]
    pub city: Option<String>,
    #[schema(nullable = false)]
    pub region: Option<String>,
    #[schema(nullable = false)]
    pub post_code: Option<String>,
    #[schema(nullable = false)]
    pub city_of_birth: Option<String>,
    #[schema(nullable = false)]
    pub region_of_birth: Option<String>,
    #[schema(nullable = false)]
    pub state_of_birth: Option<String>,
    #[schema(nullable = false)]
    pub curp: Option<String>,
    #[schema(nullable = false)]
    pub mrz: Option<String>,
}

/// The document fields a capture engine may send, each at most 500
/// characters.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct CaptureFields {
    #[schema(nullable = false, max_length = 500)]
    pub document_type: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub issuing_state: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub date_of_issuing: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub nationality: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub name: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub surname: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub first_surname: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub second_surname: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub document_number: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub personal_number: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub date_of_birth: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub date_of_expiry: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub gender: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub country: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub country_document_type: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub address: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub city: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub region: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub post_code: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub city_of_birth: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub region_of_birth: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub state_of_birth: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub curp: Option<String>,
    #[schema(nullable = false, max_length = 500)]
    pub mrz: Option<String>,
}

/// `POST /mobbscan-agent/reject`: the reason is required.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RejectBody {
    /// The scanId of the process to reject.
    #[schema(nullable = false)]
    pub verification_id: String,
    /// Why (free text; it is also the decision's comment).
    #[schema(nullable = false, pattern = "\\S")]
    pub rejection_comment: String,
    #[schema(nullable = false)]
    pub personal_data: Option<PersonalData>,
    /// Ignored (the reference sends AUTO or MANUAL).
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Raw bytes (binary forms; `Range` honoured).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// The integrator's access token, as the integrator and Identity APIs take it.
fn integrator_bearer() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("From POST /auth/token; 15 minutes by default."))
            .build(),
    )
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", integrator_bearer());
    }
}

struct MobileAuth;

impl Modify for MobileAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Api-Key",
                "The integrator's Mobile API key, as `Bearer <key>` or bare",
            ))),
        );
        components.add_security_scheme(
            "userToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A user token from POST /v1/user or /v1/user/login"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kycdesk mobile and Verification APIs",
        description = "The Apto Mobile API (/v1/config, /v1/verifications, /v1/user) and the Verification API (/v1/verification: e-mail and SMS one-time codes, e-mail magic links), compatible with their references. One call per 30 s per client and endpoint on verification and login endpoints.",
    ),
    modifiers(&MobileAuth),
    components(schemas(StatusBody))
)]
pub struct MobileDoc;

/// The mobile and Verification APIs' document, collected from
/// `apto::routes`.
pub fn mobile_document(public_url: &str) -> utoipa::openapi::OpenApi {
    collect(MobileDoc::openapi(), super::apto::routes, public_url)
}

fn collect(
    base: utoipa::openapi::OpenApi,
    routes: fn(&mut utoipa_actix_web::service_config::ServiceConfig),
    public_url: &str,
) -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    let (_, mut doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(base)
        .configure(routes)
        .split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new(
        public_url.trim_end_matches('/'),
    )]);
    doc
}

struct IdentityAuth;

impl Modify for IdentityAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", integrator_bearer());
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "API-Key",
                "The integrator's api_key; beside a bearer token it must be the same integrator's",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Identity",
        description = "Fraud-risk reports, KBA quizzes, contact verification and manual approvals (Apiture Identity compatible), served by kycdesk. HAL+JSON; errors in the `_error` shape.",
    ),
    modifiers(&IdentityAuth)
)]
pub struct IdentityDoc;

/// The Identity API's document, collected from `apiture::routes`, with
/// paths relative to its base (`<public URL>/identity`) as the reference
/// writes them.
pub fn identity_document(public_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = collect(IdentityDoc::openapi(), super::apiture::routes, public_url);
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, item) in paths {
        let relative = match path.strip_prefix("/identity") {
            Some("") => "/".to_string(),
            Some(rest) => rest.to_string(),
            None => path,
        };
        doc.paths.paths.insert(relative, item);
    }
    doc.servers = Some(vec![utoipa::openapi::Server::new(format!(
        "{}/identity",
        public_url.trim_end_matches('/')
    ))]);
    doc
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kycdesk integrator API",
        description = "Compatible with the MobbScan API Gateway: same paths, field names, status names, content negotiation and status codes. Webhooks: POST {verificationId, status} to the integrator's URL, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>).",
    ),
    modifiers(&BearerAuth),
    components(schemas(StatusBody))
)]
pub struct ApiDoc;

/// The document, with `servers` set to this instance's public URL.
pub fn document(public_url: &str) -> utoipa::openapi::OpenApi {
    collect(ApiDoc::openapi(), super::routes, public_url)
}
