//! How malformed request bodies answer on the MobbScan and Apto APIs: in
//! the `Problem` shape, before a handler runs.

use super::problem::Problem;

/// Malformed JSON bodies answer 400 in the same shape.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(256 * 1024)
        .error_handler(|err, _| Problem::BadRequest(format!("malformed JSON body: {err}")).into())
}

/// Malformed form bodies answer in the same shape: 415 when the body is not
/// a form at all, 400 otherwise.
pub fn form_config() -> actix_web::web::FormConfig {
    actix_web::web::FormConfig::default().error_handler(|err, _| {
        use actix_web::error::UrlencodedError;
        match err {
            UrlencodedError::ContentType => Problem::UnsupportedType(
                "send the form as application/x-www-form-urlencoded".into(),
            )
            .into(),
            other => Problem::BadRequest(format!("malformed form body: {other}")).into(),
        }
    })
}
