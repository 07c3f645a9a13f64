//! The integrator API, compatible with the MobbScan API Gateway: same paths,
//! field names, status names and codes.

pub mod capture;
pub mod error;
pub mod evidence;
pub mod identity;
pub mod methods;
pub mod mobbscan;
pub mod mobile;
pub mod openapi;
pub mod process_json;
pub mod token;

use actix_web::{web, HttpResponse};

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
        .service(evidence::pdf)
        .service(mobbscan::certified_zip)
        .service(mobbscan::delete_verification)
        .service(evidence::image)
        .service(evidence::recording)
        .service(capture::image)
        .service(capture::recording)
        .service(capture::document)
        .service(capture::submit);
}

/// `GET /api/openapi.json`: built once at start (`AppState::openapi`).
pub async fn openapi_json(state: web::Data<crate::startup::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// `GET /api/openapi/mobile.json`: the mobile and Verification APIs.
pub async fn mobile_openapi_json(state: web::Data<crate::startup::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.mobile_openapi.clone())
}

/// The Identity family's aliases (and the contacts its links point at).
pub fn identity_routes(cfg: &mut web::ServiceConfig) {
    identity::alias_routes(cfg);
}
