//! The integrator API, compatible with the MobbScan API Gateway: same paths,
//! field names, status names and codes.

pub mod error;
pub mod evidence;
pub mod mobbscan;
pub mod process_json;
pub mod token;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config())
        .route("/auth/token", web::post().to(mobbscan::token))
        .route("/onboarding", web::post().to(mobbscan::create_onboarding))
        .route(
            "/mobbscan-agent/getVerificationProcessData/{id}",
            web::get().to(mobbscan::process_data),
        )
        .route("/mobbscan-agent/accept", web::post().to(mobbscan::accept))
        .route("/mobbscan-agent/reject", web::post().to(mobbscan::reject))
        .route("/mobbscan-agent/pending", web::post().to(mobbscan::pending))
        .route("/mobbscan-agent/api/pdf/{id}", web::get().to(evidence::pdf))
        .route(
            "/mobbscan-agent/api/verification/{id}",
            web::delete().to(mobbscan::delete),
        )
        .route(
            "/mobbscan-agent/{id}/image/{image_type}",
            web::get().to(evidence::image),
        )
        .route(
            "/mobbscan-agent/{id}/recording/{recording_type}",
            web::get().to(evidence::recording),
        );
}
