//! The hosted page's contact steps: ask for a code, then type it
//! (`verification::confirm` holds the rules and limits).

use super::{applicant, case_error, i18n, json_error, open_process};
use crate::domain::confirmation::{Confirmation, ContactKind};
use crate::review::CaseError;
use crate::state::AppState;
use crate::store::processes::ProcessRow;
use crate::verification::confirm::{self, ConfirmError, ForProcess};
use crate::verification::messaging::{Channel, Message};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

fn confirm_error(e: ConfirmError) -> HttpResponse {
    let status = match &e {
        ConfirmError::BadValue(_) => StatusCode::BAD_REQUEST,
        ConfirmError::NotAsked(_) => StatusCode::NOT_FOUND,
        ConfirmError::AlreadyConfirmed(_) | ConfirmError::NoCode => StatusCode::CONFLICT,
        ConfirmError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ConfirmError::WrongCode { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ConfirmError::Expired => StatusCode::GONE,
        ConfirmError::Exhausted => StatusCode::UNPROCESSABLE_ENTITY,
        ConfirmError::Delivery(_) => StatusCode::BAD_GATEWAY,
        ConfirmError::Internal(err) => {
            tracing::error!(error = ?err, "onboarding contact step failed");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "other",
                "internal error".into(),
            );
        }
    };
    let mut body = serde_json::json!({
        "status": status.as_u16(),
        "code": e.code(),
        "description": e.to_string(),
    });
    let mut b = HttpResponse::build(status);
    b.insert_header(("Cache-Control", "no-store"));
    // The page counts down, or says how many tries are left, from these.
    match &e {
        ConfirmError::Limited {
            retry_after_secs, ..
        } => {
            body["retryAfter"] = (*retry_after_secs).into();
            b.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        ConfirmError::WrongCode { left } => body["attemptsLeft"] = (*left).into(),
        _ => {}
    }
    b.json(body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendBody {
    value: String,
    country_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

/// A contact request, checked: the open process, the step, the body and
/// what the integrator asks.
struct Parsed<T> {
    p: ProcessRow,
    kind: ContactKind,
    body: T,
    asked: Confirmation,
    default_country: Option<String>,
    confirmed: Vec<crate::domain::confirmation::Confirmed>,
}

impl<T> Parsed<T> {
    fn process(&self) -> ForProcess<'_> {
        ForProcess {
            scan_id: &self.p.scan_id,
            integrator_id: &self.p.integrator_id,
            asked: self.asked,
            confirmed: &self.confirmed,
        }
    }
}

/// Checks the link, the step and the JSON body (NUL is refused before, by
/// the app's `refuse_nul` middleware), or gives the answer to send instead.
async fn parse<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &AppState,
    path: (String, String),
    raw: &[u8],
) -> Result<Parsed<T>, HttpResponse> {
    let (scan_id, kind) = path;
    let link = open_process(req, state, &scan_id).await?;
    let kind = ContactKind::parse(&kind).ok_or_else(|| {
        json_error(
            StatusCode::NOT_FOUND,
            "other",
            format!("no contact step {kind}: use phone or email"),
        )
    })?;
    let body = serde_json::from_slice(raw).map_err(|e| {
        json_error(
            StatusCode::BAD_REQUEST,
            "other",
            format!("the body must be JSON as documented: {e}"),
        )
    })?;
    let asked = link
        .integrator
        .confirmation()
        .map_err(|e| case_error(CaseError::Internal(e)))?;
    let confirmed = link
        .p
        .confirmed_contacts()
        .map_err(|e| case_error(CaseError::Internal(e.into())))?;
    let super::OpenLink { p, integrator, .. } = *link;
    Ok(Parsed {
        p,
        kind,
        body,
        asked,
        default_country: integrator.phone_country,
        confirmed,
    })
}

/// `POST /onboarding/{scan_id}/contact/{kind}`: `{"value", "countryCode"?}`
/// sends a code; answers where it went (masked) and the countdowns.
#[tracing::instrument(skip_all, fields(kind = %path.1))]
pub async fn send(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    raw: web::Bytes,
) -> HttpResponse {
    let r: Parsed<SendBody> = match parse(&req, &state, path.into_inner(), &raw).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let t = lang_of(&req);
    let country = r
        .body
        .country_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .or(r.default_country.as_deref());
    let minutes = state.settings.otp.ttl_ms / 60_000;
    let app = state.settings.otp.app_name.clone();
    let kind = r.kind;
    let sent = confirm::send(
        &state.db,
        &state.postman,
        &state.jwt_key,
        &state.settings.otp,
        &r.process(),
        kind,
        &r.body.value,
        country,
        |to, code| code_message(t, kind, to, code, &app, minutes),
    )
    .await;
    match sent {
        Ok(s) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({
                "to": s.to_masked,
                "resendIn": s.resend_in_secs,
                "expiresIn": s.expires_in_secs,
            })),
        Err(e) => confirm_error(e),
    }
}

/// `POST /onboarding/{scan_id}/contact/{kind}/code`: `{"code"}`.
#[tracing::instrument(skip_all, fields(kind = %path.1))]
pub async fn code(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    raw: web::Bytes,
) -> HttpResponse {
    let r: Parsed<CodeBody> = match parse(&req, &state, path.into_inner(), &raw).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let who = applicant(&req);
    match confirm::check(
        &state.db,
        &state.jwt_key,
        &state.settings.otp,
        &r.process(),
        r.kind,
        &r.body.code,
        &who.name,
        &who.client_addr,
    )
    .await
    {
        Ok(c) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({
                "confirmed": true,
                "to": crate::domain::confirmation::masked(r.kind, &c.value),
            })),
        Err(e) => confirm_error(e),
    }
}

/// The language the page is shown in (it sends it with each request).
fn lang_of(req: &HttpRequest) -> &'static i18n::Strings {
    let lang = req
        .headers()
        .get("X-Onboarding-Lang")
        .and_then(|v| v.to_str().ok());
    let header = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    i18n::pick(lang, header)
}

/// The SMS or e-mail carrying a code, in the applicant's language.
fn code_message(
    t: &i18n::Strings,
    kind: ContactKind,
    to: &str,
    code: &str,
    app: &str,
    minutes: i64,
) -> Message {
    let fill = |s: &str| {
        s.replace("{code}", code)
            .replace("{app}", app)
            .replace("{m}", &minutes.to_string())
    };
    match kind {
        ContactKind::Phone => Message {
            channel: Channel::Sms,
            to: to.into(),
            subject: fill(t.code_subject),
            body: fill(t.code_sms),
        },
        ContactKind::Email => Message {
            channel: Channel::Email,
            to: to.into(),
            subject: fill(t.code_subject),
            body: fill(t.code_email),
        },
    }
}
