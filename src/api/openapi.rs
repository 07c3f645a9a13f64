//! The OpenAPI 3 document of the integrator API. Paths and methods come
//! from the same route registrations that serve the API (utoipa-actix-web
//! collects them from `api::routes`), so the document cannot drift from
//! what the server answers.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `{status, description}`: every error, and the decision answers.
#[derive(Serialize, ToSchema)]
pub struct StatusBody {
    /// The HTTP status code (errors) or a MobbScan status name (decisions).
    #[schema(value_type = Object, example = 404)]
    pub status: serde_json::Value,
    pub description: String,
}

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

/// Raw bytes (binary forms; `Range` honoured).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("From POST /auth/token; 15 minutes by default."))
                    .build(),
            ),
        );
    }
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
    use utoipa_actix_web::AppExt;
    let (_, mut doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(super::routes)
        .split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new(
        public_url.trim_end_matches('/'),
    )]);
    doc
}
