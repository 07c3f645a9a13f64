//! The desk's error type. One response serves both kinds of request: a full
//! error page for a browser navigation, from which htmx picks only
//! `#error-message` (HX-Reselect) and drops it into the page's flash area.

use crate::accounts::IdentityError;
use crate::review::CaseError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No live session: to the login page, which says so when a session
    /// had ended (`expired`) and returns to `back_to` afterwards.
    #[error("please log in")]
    Unauthenticated {
        htmx: bool,
        expired: bool,
        back_to: Option<String>,
    },
    /// The password is temporary: to the password page first.
    #[error("choose a new password first")]
    MustChangePassword { htmx: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "the security token of this form is missing or out of date; reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for DeskError {
    fn from(e: sqlx::Error) -> Self {
        DeskError::Internal(e.into())
    }
}

impl From<CaseError> for DeskError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::NotFound => DeskError::NotFound("no such case".into()),
            CaseError::Invalid(m) => DeskError::BadRequest(m),
            CaseError::Conflict(m) | CaseError::Limit(m) => DeskError::Conflict(m),
            CaseError::Internal(e) => DeskError::Internal(e),
        }
    }
}

impl From<crate::verification::VerifyError> for DeskError {
    fn from(e: crate::verification::VerifyError) -> Self {
        use crate::verification::VerifyError as V;
        match e {
            V::Invalid(m) | V::Unprocessable(m) => DeskError::BadRequest(m),
            V::NotFound(m) => DeskError::NotFound(m),
            V::Conflict(m) => DeskError::Conflict(m),
            V::Internal(e) => DeskError::Internal(e),
            // Not a reviewer's mistake (a rate limit, a failed delivery):
            // logged with its source, shown with a request id.
            other => DeskError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<IdentityError> for DeskError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(m) => DeskError::BadRequest(m),
            IdentityError::Duplicate(_) => DeskError::Conflict(e.to_string()),
            IdentityError::Internal(e) => DeskError::Internal(e),
        }
    }
}

#[derive(Template)]
#[template(path = "desk/error.html")]
struct ErrorPage<'a> {
    status: u16,
    request_id: String,
    title: &'a str,
    message: String,
    css: String,
}

/// Sends the browser elsewhere: htmx follows `HX-Redirect` (with the
/// error's status), a plain navigation a 303.
fn redirect(htmx: bool, status: StatusCode, to: &str) -> HttpResponse {
    if htmx {
        HttpResponse::build(status)
            .insert_header(("HX-Redirect", to))
            .finish()
    } else {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .finish()
    }
}

impl ResponseError for DeskError {
    fn status_code(&self) -> StatusCode {
        match self {
            DeskError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            DeskError::Forbidden(_) | DeskError::Csrf | DeskError::MustChangePassword { .. } => {
                StatusCode::FORBIDDEN
            }
            DeskError::NotFound(_) => StatusCode::NOT_FOUND,
            DeskError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DeskError::Conflict(_) => StatusCode::CONFLICT,
            DeskError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            DeskError::Unauthenticated {
                htmx,
                expired,
                back_to,
            } => {
                let to = super::auth::login_url(back_to.as_deref(), *expired);
                return redirect(*htmx, StatusCode::UNAUTHORIZED, &to);
            }
            DeskError::MustChangePassword { htmx } => {
                return redirect(*htmx, StatusCode::FORBIDDEN, "/desk/password");
            }
            _ => {}
        }
        let message = match self {
            DeskError::Internal(e) => {
                // The reviewer gets an id to quote; the log gets the cause chain.
                let id = crate::security::request_id::current().unwrap_or_default();
                tracing::error!(request_id = %id, error = ?e, "desk request failed");
                format!("something went wrong on our side (request id {id}); nothing was changed")
            }
            other => other.to_string(),
        };
        let status = self.status_code();
        let page = ErrorPage {
            status: status.as_u16(),
            request_id: crate::security::request_id::current().unwrap_or_default(),
            title: status.canonical_reason().unwrap_or("Error"),
            message,
            css: crate::assets::url("app.css"),
        };
        let body = page.render().unwrap_or_else(|_| "error".to_string());
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header(("HX-Retarget", "#flash"))
            .insert_header(("HX-Reswap", "innerHTML"))
            .insert_header(("HX-Reselect", "#error-message"))
            .body(body)
    }
}
