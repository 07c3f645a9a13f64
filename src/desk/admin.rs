//! Supervisor and admin pages: the audit log and desk users.

use super::error::DeskError;
use super::{htmx_go, render, Layout};
use crate::accounts;
use crate::audit::{self, Entry, Verdict};
use crate::desk::session::DeskSession;
use crate::domain::Role;
use crate::state::AppState;
use crate::store::{audit as audit_rows, users as user_rows};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "desk/audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<Entry>,
    before: Option<i64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

#[tracing::instrument(skip_all)]
pub async fn audit_log(
    state: web::Data<AppState>,
    session: DeskSession,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let entries = audit_rows::recent(state.db.read(), q.before, 100).await?;
    let before = if entries.len() == 100 {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    render(&AuditPage {
        layout: Layout::new(&session),
        entries,
        before,
    })
}

#[tracing::instrument(skip_all)]
pub async fn audit_verify(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let html = match audit::verify(&state.db).await? {
        Verdict::Intact { entries } => format!(
            "<p class=\"badge pass\" id=\"chain-verdict\">Intact: {entries} entries verified.</p>"
        ),
        Verdict::Broken { seq, reason } => {
            let reason = reason.replace('<', "&lt;");
            format!(
                "<p class=\"badge fail\" id=\"chain-verdict\">Broken at entry {seq}: {reason}</p>"
            )
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[derive(Template)]
#[template(path = "desk/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<user_rows::UserRow>,
}

#[tracing::instrument(skip_all)]
pub async fn users(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    // Supervisors read; admins change (the POST routes stay admin-only).
    session.require(Role::Supervisor)?;
    let users = user_rows::list_users(state.db.read()).await?;
    render(&UsersPage {
        layout: Layout::new(&session),
        users,
    })
}

#[derive(Deserialize)]
pub struct NewUserForm {
    email: String,
    role: String,
    password: String,
}

#[tracing::instrument(skip_all)]
pub async fn create_user(
    state: web::Data<AppState>,
    session: DeskSession,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let role: Role = form.role.parse().map_err(DeskError::BadRequest)?;
    accounts::create_user(
        &state.db,
        &form.email,
        role,
        &form.password,
        &session.email,
        &session.client_addr,
    )
    .await?;
    Ok(htmx_go("/desk/admin/users"))
}

async fn set_active(
    state: &AppState,
    session: &DeskSession,
    id: &str,
    active: bool,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    if id == session.user_id {
        return Err(DeskError::BadRequest("you cannot disable yourself".into()));
    }
    accounts::set_active(&state.db, id, active, &session.email, &session.client_addr).await?;
    Ok(htmx_go("/desk/admin/users"))
}

#[tracing::instrument(skip_all)]
pub async fn disable_user(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    set_active(&state, &session, &path.into_inner(), false).await
}

#[tracing::instrument(skip_all)]
pub async fn enable_user(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    set_active(&state, &session, &path.into_inner(), true).await
}
