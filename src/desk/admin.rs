//! Admin pages: desk users.

use super::error::DeskError;
use super::{htmx_go, render, Layout};
use crate::accounts;
use crate::desk::session::DeskSession;
use crate::domain::Role;
use crate::state::AppState;
use crate::store::users as user_rows;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "desk/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<user_rows::UserRow>,
    roles: [Role; 3],
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
        roles: Role::ALL,
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
    // A password typed by an admin for someone else is temporary.
    accounts::create_user(
        &state.db,
        &form.email,
        role,
        &form.password,
        true,
        &session.email,
        &session.client_addr,
    )
    .await?;
    Ok(htmx_go("/desk/admin/users"))
}

fn admin<'a>(session: &'a DeskSession) -> Result<accounts::AdminActor<'a>, DeskError> {
    session.require(Role::Admin)?;
    Ok(accounts::AdminActor {
        id: &session.user_id,
        email: &session.email,
        client_addr: &session.client_addr,
    })
}

async fn set_active(
    state: &AppState,
    session: &DeskSession,
    id: &str,
    active: bool,
) -> Result<HttpResponse, DeskError> {
    accounts::set_active(&state.db, id, active, &admin(session)?).await?;
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

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

#[tracing::instrument(skip_all)]
pub async fn set_role(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, DeskError> {
    let by = admin(&session)?;
    let role: Role = form.role.parse().map_err(DeskError::BadRequest)?;
    accounts::set_role(&state.db, &path.into_inner(), role, &by).await?;
    Ok(htmx_go("/desk/admin/users"))
}

#[derive(Template)]
#[template(path = "desk/password_reset_partial.html")]
struct ResetDone {
    email: String,
    temporary: String,
}

/// Answers with the temporary password, shown once in the user's row for
/// the admin to hand over; it is stored only as a hash.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    let by = admin(&session)?;
    let (user, temporary) = accounts::reset_password(&state.db, &path.into_inner(), &by).await?;
    let mut resp = render(&ResetDone {
        email: user.email,
        temporary,
    })?;
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}
