//! The integrator APIs' one error core. Every API family answers with a
//! `Problem`; each renders it in its reference's shape: MobbScan and Apto
//! as JSON `{status, description}` (here), Apiture as HAL `_error`
//! (`api::apiture::HalError`). An internal error keeps its source for the
//! log and shows only the request id.

use crate::review::CaseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("answers are available as application/json, {0} or text/plain")]
    NotAcceptable(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: i64,
    },
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<crate::verification::VerifyError> for Problem {
    fn from(e: crate::verification::VerifyError) -> Self {
        use crate::verification::VerifyError as V;
        match e {
            V::Invalid(m) => Problem::BadRequest(m),
            V::Unauthorized(m) => Problem::Unauthorized(m),
            V::NotFound(m) => Problem::NotFound(m),
            V::Conflict(m) => Problem::Conflict(m),
            V::Unprocessable(m) => Problem::Unprocessable(m),
            r @ V::RateLimited {
                retry_after_secs, ..
            } => Problem::TooManyRequests {
                message: r.to_string(),
                retry_after_secs,
            },
            V::Delivery(m) => Problem::BadGateway(m),
            V::Internal(e) => Problem::Internal(e),
        }
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        Problem::Internal(e.into())
    }
}

impl From<CaseError> for Problem {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::NotFound => Problem::no_process(),
            CaseError::Invalid(m) => Problem::BadRequest(m),
            CaseError::Conflict(m) | CaseError::Limit(m) => Problem::Conflict(m),
            CaseError::Internal(e) => Problem::Internal(e),
        }
    }
}

impl From<crate::evidence::upload::UploadError> for Problem {
    fn from(e: crate::evidence::upload::UploadError) -> Self {
        use crate::evidence::intake::Refused;
        use crate::evidence::upload::UploadError;
        match e {
            UploadError::Refused(r @ Refused::TooLarge { .. }) => Problem::TooLarge(r.to_string()),
            UploadError::Refused(r @ Refused::WrongType(_)) => {
                Problem::UnsupportedType(r.to_string())
            }
            UploadError::Refused(r) => Problem::Unprocessable(r.to_string()),
            UploadError::Interrupted(m) => Problem::BadRequest(m),
            UploadError::Internal(e) => Problem::Internal(e),
        }
    }
}

impl Problem {
    /// MobbScan's 404 for a scan id that names no process.
    pub fn no_process() -> Problem {
        Problem::NotFound("no verification process with that id".into())
    }

    /// An internal failure; its source goes to the log, never to the client.
    pub fn internal(e: impl Into<anyhow::Error>) -> Problem {
        Problem::Internal(e.into())
    }

    /// The text a client sees: an internal error is logged here with the
    /// request id, and only that id is shown.
    pub fn public_message(&self, family: &str) -> String {
        let rid = crate::security::request_id::current().unwrap_or_default();
        match self {
            Problem::Internal(e) => {
                tracing::error!(request_id = %rid, error = ?e, "{family} request failed");
                format!("internal error (request id {rid}); nothing was changed")
            }
            other => other.to_string(),
        }
    }
}

/// MobbScan and Apto: JSON `{status, description}` with the status code the
/// MobbScan reference documents.
impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        match self {
            Problem::BadRequest(_) => StatusCode::BAD_REQUEST,
            Problem::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Problem::Forbidden(_) => StatusCode::FORBIDDEN,
            Problem::NotFound(_) => StatusCode::NOT_FOUND,
            Problem::Conflict(_) => StatusCode::CONFLICT,
            Problem::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Problem::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Problem::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Problem::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Problem::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Problem::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Problem::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Problem::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let description = self.public_message("API");
        let mut b = HttpResponse::build(self.status_code());
        match self {
            Problem::Unauthorized(_) => {
                b.insert_header(("WWW-Authenticate", "Bearer"));
            }
            Problem::TooManyRequests {
                retry_after_secs, ..
            } => {
                b.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            _ => {}
        }
        b.json(
            serde_json::json!({"status": self.status_code().as_u16(), "description": description}),
        )
    }
}
