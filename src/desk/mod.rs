//! The review desk: server-rendered HTML (askama) with htmx partial updates.
//! Handlers stay thin: parse, call `cases` / `identity` / `store`, render.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod case;
pub mod charts;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod history;
pub mod integrations;
pub mod params;
pub mod qa;
pub mod queue;
pub mod second;
pub mod session;
pub mod view;

use crate::desk::session::DeskSession;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use error::DeskError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/desk")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/login", web::get().to(auth::login_page))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/password", web::get().to(auth::password_page))
            .route("/password", web::post().to(auth::change_password))
            .route("/queue", web::get().to(queue::queue))
            .route("/queue/next", web::post().to(queue::take_next))
            .route("/queue/bulk", web::post().to(queue::bulk))
            .route("/queue.csv", web::get().to(export::queue_csv))
            .route("/second-review", web::get().to(second::queue))
            .route("/qa", web::get().to(qa::page))
            .route("/dashboard", web::get().to(dashboard::page))
            .route("/cases/{scan_id}/qa", web::post().to(qa::verdict))
            .route(
                "/cases/{scan_id}/second-review",
                web::post().to(second::review),
            )
            .route("/admin/policy", web::get().to(second::policy_page))
            .route("/admin/policy", web::post().to(second::set_policy))
            .route("/cases/{scan_id}", web::get().to(case::page))
            .route("/cases/{scan_id}/claim", web::post().to(case::claim))
            .route("/cases/{scan_id}/release", web::post().to(case::release))
            .route("/cases/{scan_id}/edit", web::post().to(case::edit))
            .route("/cases/{scan_id}/decision", web::post().to(case::decide))
            .route("/cases/{scan_id}/notes", web::post().to(case::note))
            .route("/cases/{scan_id}/retake", web::post().to(case::retake))
            .route("/cases/{scan_id}/approval", web::post().to(case::approve))
            .route(
                "/cases/{scan_id}/revoke-tokens",
                web::post().to(case::revoke_tokens),
            )
            .route("/cases/{scan_id}/zip", web::get().to(case::certified_zip))
            .route(
                "/cases/{scan_id}/evidence/{id}",
                web::get().to(case::evidence),
            )
            .route(
                "/cases/{scan_id}/evidence/{id}/thumb",
                web::get().to(case::thumb),
            )
            .route("/audit", web::get().to(audit::page))
            .route("/audit.csv", web::get().to(audit::export))
            .route("/audit/verify", web::post().to(audit::verify))
            .route("/admin/users", web::get().to(admin::users))
            .route("/admin/users", web::post().to(admin::create_user))
            .route(
                "/admin/users/{id}/disable",
                web::post().to(admin::disable_user),
            )
            .route(
                "/admin/users/{id}/enable",
                web::post().to(admin::enable_user),
            )
            .route("/admin/users/{id}/role", web::post().to(admin::set_role))
            .route(
                "/admin/users/{id}/reset-password",
                web::post().to(admin::reset_password),
            )
            .route("/admin/integrators", web::get().to(integrations::list))
            .route(
                "/admin/integrators/{id}/verification",
                web::post().to(integrations::verification),
            )
            .route("/admin/messages", web::get().to(integrations::messages))
            .route("/admin/integrators", web::post().to(integrations::create))
            .route(
                "/admin/integrators/{id}",
                web::post().to(integrations::update),
            )
            .route(
                "/admin/integrators/{id}/rotate",
                web::post().to(integrations::rotate),
            )
            .route(
                "/admin/integrators/{id}/disable",
                web::post().to(integrations::disable),
            )
            .route(
                "/admin/integrators/{id}/enable",
                web::post().to(integrations::enable),
            )
            .route("/admin/webhooks", web::get().to(integrations::deliveries))
            .route(
                "/admin/webhooks/{id}/redeliver",
                web::post().to(integrations::redeliver),
            ),
    );
}

async fn home() -> HttpResponse {
    redirect("/desk/queue")
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// After an htmx action succeeds the page reloads from the server, so what
/// the reviewer sees is always what was stored.
pub fn htmx_go(to: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("HX-Redirect", to))
        .finish()
}

/// What every desk page's frame needs.
pub struct Layout {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub css: String,
    pub js: String,
    pub htmx: String,
    pub is_supervisor: bool,
    pub is_admin: bool,
}

impl Layout {
    pub fn new(s: &DeskSession) -> Layout {
        use crate::domain::Role;
        Layout {
            user_id: s.user_id.clone(),
            email: s.email.clone(),
            role: s.role.to_string(),
            csrf: s.csrf.clone(),
            css: crate::assets::url("app.css"),
            js: crate::assets::url("app.js"),
            htmx: crate::assets::url("htmx.min.js"),
            is_supervisor: s.role >= Role::Supervisor,
            is_admin: s.role >= Role::Admin,
        }
    }
}

pub fn render<T: Template>(t: &T) -> Result<HttpResponse, DeskError> {
    let body = t.render().map_err(|e| DeskError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::VARY, "HX-Request"))
        .body(body))
}
