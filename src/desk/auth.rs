//! Login and logout.

use super::error::DeskError;
use super::session::{self, DeskSession};
use super::{redirect, render};
use crate::accounts::{self, LoginOutcome};
use crate::audit::{self, Event};
use crate::security::client_addr;
use crate::security::{constant_time_eq, random_token};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "desk/login.html")]
struct LoginPage {
    css: String,
    csrf: String,
    email: String,
    message: Option<String>,
    notice: Option<&'static str>,
    next: String,
}

/// A desk page to return to after logging in: a path on this desk only
/// (never another site, never the login itself).
pub fn is_return_path(p: &str) -> bool {
    p.starts_with("/desk/")
        && !p.starts_with("/desk/login")
        && !p.starts_with("/desk/logout")
        && p.len() <= 2000
        && !p.contains("//")
        && !p.contains('\\')
        && !p.chars().any(char::is_control)
}

/// The login page, remembering where to return and whether a session ended.
pub fn login_url(back_to: Option<&str>, expired: bool) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(p) = back_to.filter(|p| is_return_path(p)) {
        q.append_pair("next", p);
    }
    if expired {
        q.append_pair("expired", "1");
    }
    let q = q.finish();
    if q.is_empty() {
        "/desk/login".into()
    } else {
        format!("/desk/login?{q}")
    }
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// The login form is protected by a double-submit token: a cookie and a
/// hidden field that must match, since there is no session yet.
fn login_form(
    state: &AppState,
    email: String,
    message: Option<String>,
    notice: Option<&'static str>,
    next: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, DeskError> {
    let csrf = random_token();
    let page = LoginPage {
        css: crate::assets::url("app.css"),
        csrf: csrf.clone(),
        email,
        message,
        notice,
        next: next.filter(|p| is_return_path(p)).unwrap_or_default(),
    };
    let mut resp = render(&page)?;
    *resp.status_mut() = status;
    resp.add_cookie(&session::cookie(
        state,
        state.settings.login_csrf_cookie(),
        csrf,
    ))
    .map_err(|e| DeskError::Internal(e.into()))?;
    Ok(resp)
}

#[tracing::instrument(skip_all)]
pub async fn login_page(
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, DeskError> {
    let q = query.into_inner();
    let notice = q.expired.is_some().then_some(
        "Your session has ended (it was idle too long, or you were logged out). \
         Log in again to return to the page you were on.",
    );
    login_form(
        &state,
        String::new(),
        None,
        notice,
        q.next,
        actix_web::http::StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
    #[serde(default)]
    next: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, DeskError> {
    use actix_web::http::StatusCode;
    let form = form.into_inner();
    let cookie_token = req
        .cookie(state.settings.login_csrf_cookie())
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if cookie_token.is_empty() || !constant_time_eq(&cookie_token, &form.csrf_token) {
        return Err(DeskError::Csrf);
    }
    let addr = client_addr(&req);
    let outcome = accounts::login(
        &state.db,
        &state.settings.lockout,
        &form.email,
        &form.password,
    )
    .await?;
    let email_key = form.email.trim().to_lowercase();
    match outcome {
        LoginOutcome::Success(user) => {
            // A new session id at every login; any session the browser
            // already had is ended so an planted id can never be promoted.
            if let Some(old) = req.cookie(state.settings.session_cookie()) {
                crate::store::users::delete_session(
                    &state.db,
                    &crate::security::sha256_hex(old.value()),
                )
                .await?;
            }
            let token = session::start(&state, &user.id, &addr).await?;
            record_login(&state, &user.email, "login", &addr).await?;
            let to = form
                .next
                .as_deref()
                .filter(|p| is_return_path(p))
                .unwrap_or("/desk/queue");
            let mut resp = redirect(to);
            resp.add_cookie(&session::cookie(
                &state,
                state.settings.session_cookie(),
                token,
            ))
            .map_err(|e| DeskError::Internal(e.into()))?;
            resp.add_cookie(&session::removal(
                &state,
                state.settings.login_csrf_cookie(),
            ))
            .map_err(|e| DeskError::Internal(e.into()))?;
            Ok(resp)
        }
        LoginOutcome::Invalid => {
            record_login(&state, &email_key, "login.failed", &addr).await?;
            login_form(
                &state,
                form.email,
                Some("Wrong e-mail or password.".into()),
                None,
                form.next,
                StatusCode::UNAUTHORIZED,
            )
        }
        LoginOutcome::Locked { minutes } => {
            record_login(&state, &email_key, "login.locked", &addr).await?;
            login_form(
                &state,
                form.email,
                Some(format!(
                    "Too many failed attempts. Try again in {minutes} minutes."
                )),
                None,
                form.next,
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
    }
}

/// A login attempt's audit entry: who tried, how it ended, from where.
async fn record_login(
    state: &AppState,
    actor: &str,
    action: &str,
    addr: &str,
) -> Result<(), DeskError> {
    audit::record_now(
        &state.db,
        Event {
            actor,
            action,
            scan_id: None,
            client_addr: addr,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn logout(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    session.end(&state).await?;
    audit::record_now(
        &state.db,
        Event {
            actor: &session.email,
            action: "logout",
            scan_id: None,
            client_addr: &session.client_addr,
            detail: serde_json::json!({}),
        },
    )
    .await?;
    let mut resp = HttpResponse::Ok()
        .insert_header(("HX-Redirect", "/desk/login"))
        .finish();
    resp.add_cookie(&session::removal(&state, state.settings.session_cookie()))
        .map_err(|e| DeskError::Internal(e.into()))?;
    Ok(resp)
}

#[derive(Template)]
#[template(path = "desk/password.html")]
struct PasswordPage {
    layout: super::Layout,
    forced: bool,
}

/// The password page: where a temporary password must be changed before
/// anything else, and where anyone may change their own.
#[tracing::instrument(skip_all)]
pub async fn password_page(session: DeskSession) -> Result<HttpResponse, DeskError> {
    render(&PasswordPage {
        layout: super::Layout::new(&session),
        forced: session.must_change_password,
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

#[tracing::instrument(skip_all)]
pub async fn change_password(
    state: web::Data<AppState>,
    session: DeskSession,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, DeskError> {
    use accounts::PasswordChangeError as E;
    if form.new != form.confirm {
        return Err(DeskError::BadRequest(
            "the two new passwords differ; type the same one twice".into(),
        ));
    }
    accounts::change_password(
        &state.db,
        &state.settings.lockout,
        &session.user_id,
        session.token_hash(),
        &form.current,
        &form.new,
        &session.client_addr,
    )
    .await
    .map_err(|e| match e {
        E::WrongCurrent | E::Invalid(_) => DeskError::BadRequest(e.to_string()),
        E::Locked(_) => DeskError::Conflict(e.to_string()),
        E::Internal(e) => DeskError::Internal(e),
    })?;
    Ok(super::htmx_go("/desk/queue"))
}
