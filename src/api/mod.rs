//! The integrator-facing APIs, one folder per public reference they stay
//! compatible with (same paths, field names, status names and codes):
//! `mobbscan` (onboarding, evidence, decisions, capture engine), `apto`
//! (mobile users and the Verification API), `apiture` (the Identity HAL API).
//! `token` is the bearer they share, `error` the JSON error core, `openapi`
//! their documents.

pub mod apiture;
pub mod apto;
pub mod error;
pub mod mobbscan;
pub mod openapi;
pub mod problem;
pub mod token;

use actix_web::{web, HttpRequest, HttpResponse};
use problem::Problem;

/// The application state, for the families' request extractors (borrowed:
/// the bearer check runs on every API request).
pub(crate) fn app_state(req: &HttpRequest) -> Result<&web::Data<crate::state::AppState>, Problem> {
    req.app_data::<web::Data<crate::state::AppState>>()
        .ok_or_else(|| Problem::Internal(anyhow::anyhow!("application state missing")))
}

/// The integrator API's routes. Registered through utoipa-actix-web, which
/// also collects them into the OpenAPI document (`openapi::document`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.app_data(error::json_config())
        .service(mobbscan::auth_token)
        .service(mobbscan::create_onboarding)
        .service(mobbscan::process_data)
        .service(mobbscan::accept)
        .service(mobbscan::reject)
        .service(mobbscan::pending)
        .service(mobbscan::evidence::pdf)
        .service(mobbscan::certified_zip)
        .service(mobbscan::delete_verification)
        .service(mobbscan::evidence::image)
        .service(mobbscan::evidence::recording)
        .service(mobbscan::capture::image)
        .service(mobbscan::capture::recording)
        .service(mobbscan::capture::document)
        .service(mobbscan::capture::submit);
}

/// `GET /api/openapi.json`: built once at start (`AppState::openapi`).
#[tracing::instrument(skip_all)]
pub async fn openapi_json(state: web::Data<crate::state::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// `GET /api/openapi/mobile.json`: the mobile and Verification APIs.
#[tracing::instrument(skip_all)]
pub async fn mobile_openapi_json(state: web::Data<crate::state::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.mobile_openapi.clone())
}

/// The Identity family's aliases (and the contacts its links point at).
pub fn identity_routes(cfg: &mut web::ServiceConfig) {
    apiture::alias_routes(cfg);
}
