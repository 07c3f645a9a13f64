//! The integrator API's error type: JSON `{status, description}` with the
//! status code the MobbScan reference documents.

use crate::review::CaseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no verification process with that id")]
    NotFound,
    #[error("{0}")]
    NotFoundWhat(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed attempts from this address; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: i64 },
    #[error("answers are available as application/json, {0} or text/plain")]
    NotAcceptable(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: i64,
    },
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<crate::verification::VerifyError> for ApiError {
    fn from(e: crate::verification::VerifyError) -> Self {
        use crate::verification::VerifyError as V;
        match e {
            V::Invalid(m) => ApiError::BadRequest(m),
            V::Unauthorized(m) => ApiError::Unauthorized(m),
            V::NotFound(m) => ApiError::NotFoundWhat(m),
            V::Conflict(m) => ApiError::Conflict(m),
            V::Unprocessable(m) => ApiError::Unprocessable(m),
            r @ V::RateLimited {
                retry_after_secs, ..
            } => ApiError::RateLimited {
                message: r.to_string(),
                retry_after_secs,
            },
            V::Delivery(m) => ApiError::BadGateway(m),
            V::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::NotFound => ApiError::NotFound,
            CaseError::Invalid(m) => ApiError::BadRequest(m),
            CaseError::Conflict(m) | CaseError::Limit(m) => ApiError::Conflict(m),
            CaseError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::evidence::upload::UploadError> for ApiError {
    fn from(e: crate::evidence::upload::UploadError) -> Self {
        use crate::evidence::intake::Refused;
        use crate::evidence::upload::UploadError;
        match e {
            UploadError::Refused(r @ Refused::TooLarge { .. }) => ApiError::TooLarge(r.to_string()),
            UploadError::Refused(r @ Refused::WrongType(_)) => {
                ApiError::UnsupportedType(r.to_string())
            }
            UploadError::Refused(r) => ApiError::Unprocessable(r.to_string()),
            UploadError::Interrupted(m) => ApiError::BadRequest(m),
            UploadError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NotFoundWhat(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let rid = crate::security::request_id::current().unwrap_or_default();
        let description = match self {
            ApiError::Internal(e) => {
                tracing::error!(request_id = %rid, error = ?e, "API request failed");
                format!("internal error (request id {rid}); nothing was changed")
            }
            other => other.to_string(),
        };
        let mut b = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized(_) => {
                b.insert_header(("WWW-Authenticate", "Bearer"));
            }
            ApiError::TooManyRequests { retry_after_secs }
            | ApiError::RateLimited {
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

/// Malformed JSON bodies answer 400 in the same shape.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(256 * 1024)
        .error_handler(|err, _| ApiError::BadRequest(format!("malformed JSON body: {err}")).into())
}

/// Malformed form bodies answer in the same shape: 415 when the body is not
/// a form at all, 400 otherwise.
pub fn form_config() -> actix_web::web::FormConfig {
    actix_web::web::FormConfig::default().error_handler(|err, _| {
        use actix_web::error::UrlencodedError;
        match err {
            UrlencodedError::ContentType => ApiError::UnsupportedType(
                "send the form as application/x-www-form-urlencoded".into(),
            )
            .into(),
            other => ApiError::BadRequest(format!("malformed form body: {other}")).into(),
        }
    })
}
