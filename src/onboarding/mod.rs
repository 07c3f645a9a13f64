//! The hosted onboarding page (SPEC section 4): what the applicant sees,
//! usually inside the integrator's iframe. The applicant's session is the
//! onboarding token (in the link, then in a request header), never a
//! cookie: third-party cookies do not survive in iframes. The page may be
//! framed only by the integrator's allowed origins.

pub mod contact;
pub mod i18n;

use crate::domain::confirmation::{masked, ContactKind};
use crate::domain::{now_ms, State};
use crate::evidence::intake::{Kind, Refused};
use crate::evidence::upload::{self, UploadError};
use crate::review::{self, Actor, CaseError};
use crate::security::{client_addr, constant_time_eq, sha256_hex};
use crate::state::AppState;
use crate::store::integrators::{self as integrator_rows, IntegratorRow};
use crate::store::processes::{self as rows, ProcessRow};
use crate::store::retakes::Retake;
use crate::verification::confirm;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use i18n::Strings;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/onboarding/{scan_id}", web::get().to(page))
        .route(
            "/onboarding/{scan_id}/evidence/{kind}/{evidence_type}",
            web::post().to(evidence),
        )
        .route(
            "/onboarding/{scan_id}/contact/{kind}",
            web::post().to(contact::send),
        )
        .route(
            "/onboarding/{scan_id}/contact/{kind}/code",
            web::post().to(contact::code),
        )
        .route("/onboarding/{scan_id}/submit", web::post().to(submit));
}

/// The page's policy: its own scripts and styles only, camera previews from
/// blob: URLs, and framing by the integrator's allowed origins alone.
fn csp(origins: &[String]) -> String {
    let ancestors = if origins.is_empty() {
        "'none'".to_string()
    } else {
        origins.join(" ")
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {ancestors}"
    )
}

fn framing_headers(b: &mut actix_web::HttpResponseBuilder, origins: &[String]) {
    b.insert_header(("Content-Security-Policy", csp(origins)))
        // The camera is this page's job; inside an iframe the integrator
        // must also grant it (allow="camera; microphone").
        .insert_header((
            "Permissions-Policy",
            "camera=(self), microphone=(self), geolocation=()",
        ))
        // A popup opened by the integrator keeps its opener.
        .insert_header(("Cross-Origin-Opener-Policy", "unsafe-none"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"));
}

/// A usable link: its process, the (enabled) integrator, and the retake
/// request it is under when the reviewer asked for one.
struct OpenLink {
    p: ProcessRow,
    integrator: IntegratorRow,
    retake: Option<Retake>,
}

/// Whether the link can be used, and if not, why (shown to the applicant).
enum Access {
    Open(Box<OpenLink>),
    Finished(Box<ProcessRow>, Box<IntegratorRow>),
    Expired,
    Invalid,
}

async fn access(state: &AppState, scan_id: &str, token: &str) -> Result<Access, sqlx::Error> {
    let Ok(id) = uuid::Uuid::parse_str(scan_id) else {
        return Ok(Access::Invalid);
    };
    let id = id.to_string();
    let Some(p) = rows::get(state.db.read(), &id).await? else {
        return Ok(Access::Invalid);
    };
    let stored = rows::onboarding_token_hash(state.db.read(), &id).await?;
    let valid = stored
        .as_deref()
        .is_some_and(|h| !token.is_empty() && constant_time_eq(h, &sha256_hex(token)));
    if !valid {
        return Ok(Access::Invalid);
    }
    // A disabled integrator's links stop working with its API access.
    let Some(integrator) = integrator_rows::get(state.db.read(), &p.integrator_id)
        .await?
        .filter(|i| i.enabled == 1)
    else {
        return Ok(Access::Invalid);
    };
    Ok(match p.state() {
        Ok(State::Created | State::InProgress) => {
            // A retake request carries its own expiry, counted from when
            // the reviewer asked.
            let retake = crate::store::retakes::open(state.db.read(), &p.scan_id).await?;
            let expires = match &retake {
                Some(r) => r.expires_at,
                None => p.created_at + crate::domain::ms(state.settings.onboarding_ttl),
            };
            if now_ms() > expires {
                Access::Expired
            } else {
                Access::Open(Box::new(OpenLink {
                    p,
                    integrator,
                    retake,
                }))
            }
        }
        _ => Access::Finished(Box::new(p), Box::new(integrator)),
    })
}

#[derive(Deserialize)]
pub struct PageQuery {
    token: Option<String>,
    lang: Option<String>,
}

fn strings(req: &HttpRequest, lang: Option<&str>) -> &'static Strings {
    let header = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    i18n::pick(lang, header)
}

#[derive(Template)]
#[template(path = "onboarding/page.html")]
struct Page<'a> {
    t: &'static Strings,
    scan_id: &'a str,
    token: &'a str,
    /// The steps shown, in order, as `kind/type` slots.
    slots: Vec<String>,
    steps: usize,
    i18n_json: String,
    css: String,
    js: String,
    has: Vec<String>,
    retake: Option<RetakeNotice>,
    /// The contact steps shown (before the documents).
    contacts: Vec<ContactStep>,
}

/// A phone or e-mail to confirm by code.
struct ContactStep {
    /// `phone` or `email`.
    kind: &'static str,
    /// What the input starts with: the integrator's value, if it passed one.
    value: String,
    /// The calling code assumed for a number typed without one.
    country: String,
    /// "Confirmed: +34••••••233" once confirmed (masked).
    confirmed: Option<String>,
}

/// What the applicant is told when a reviewer asked for a retake.
struct RetakeNotice {
    steps: Vec<&'static str>,
    reason: &'static str,
    message: Option<String>,
}

impl Page<'_> {
    /// `1` when the slot already holds evidence (a reloaded page).
    fn done(&self, slot: &str) -> &'static str {
        if self.has.iter().any(|h| h == slot) {
            "1"
        } else {
            ""
        }
    }

    fn shows(&self, slot: &str) -> bool {
        self.slots.iter().any(|s| s == slot)
    }

    /// The step's number on the page (1-based).
    fn num(&self, slot: &str) -> usize {
        self.slots
            .iter()
            .position(|s| s == slot)
            .map_or(0, |i| i + 1)
    }

    /// The video is optional on a first visit, required when asked again.
    fn video_optional(&self) -> bool {
        self.retake.is_none()
    }
}

#[derive(Template)]
#[template(path = "onboarding/closed.html")]
struct Closed {
    t: &'static Strings,
    title: &'static str,
    text: &'static str,
    link: Option<String>,
    css: String,
}

fn html(status: StatusCode, origins: &[String], body: String) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    framing_headers(&mut b, origins);
    b.content_type("text/html; charset=utf-8").body(body)
}

fn render<T: Template>(t: &T) -> Result<String, actix_web::Error> {
    t.render()
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))
}

/// The phone or e-mail an integrator passed in `verificationExtraData`
/// (`phone`, `phoneNumber` or `mobile`; `email`): the contact step starts
/// with it, for the applicant to confirm or correct.
fn prefill(extra: &serde_json::Value, k: ContactKind) -> String {
    let keys: &[&str] = match k {
        ContactKind::Phone => &["phone", "phoneNumber", "mobile"],
        ContactKind::Email => &["email"],
    };
    keys.iter()
        .find_map(|key| extra.get(*key).and_then(serde_json::Value::as_str))
        .map(|v| v.chars().filter(|c| !c.is_control()).take(254).collect())
        .unwrap_or_default()
}

/// Only http(s) redirect targets are followed.
fn safe_redirect(u: Option<&str>) -> Option<String> {
    u.and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.to_string())
}

#[tracing::instrument(skip_all)]
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let token = q.token.clone().unwrap_or_default();
    let scan_id = path.into_inner();
    let css = crate::assets::url("onboarding.css");
    let acc = access(&state, &scan_id, &token)
        .await
        .map_err(actix_web::error::ErrorInternalServerError)?;
    // A retake reopens the page in the language the applicant submitted in
    // (unless the link says otherwise).
    let asked_lang = match &acc {
        Access::Open(link) => link.retake.as_ref().map(|r| r.lang.as_str()),
        _ => None,
    };
    let t = strings(&req, q.lang.as_deref().or(asked_lang));
    // Framing is allowed to the integrator's origins; a stored list that no
    // longer decodes is an error, never "no origins" or "any".
    let origins = match &acc {
        Access::Open(link) => link.integrator.origins(),
        Access::Finished(_, i) => i.origins(),
        _ => Ok(vec![]),
    }
    .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
    match acc {
        Access::Open(link) => {
            let OpenLink {
                p,
                integrator,
                retake,
            } = *link;
            // Under a retake only what came after the request counts as done.
            let since = retake.as_ref().map_or(i64::MIN, |r| r.requested_at);
            let mut has: Vec<String> = rows::evidence_for(state.db.read(), &p.scan_id)
                .await
                .map_err(actix_web::error::ErrorInternalServerError)?
                .into_iter()
                .filter(|e| e.created_at >= since)
                .map(|e| format!("{}/{}", e.kind, e.evidence_type))
                .collect();
            let asked = integrator
                .confirmation()
                .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
            let country = integrator.phone_country.clone();
            let confirmed = p
                .confirmed_contacts()
                .map_err(actix_web::error::ErrorInternalServerError)?;
            let extra = p
                .verification_extra_data()
                .map_err(actix_web::error::ErrorInternalServerError)?;
            let contacts: Vec<ContactStep> = confirm::status(asked, &confirmed)
                .into_iter()
                // A retake shows only what is still missing.
                .filter(|(_, c)| retake.is_none() || c.is_none())
                .map(|(k, c)| ContactStep {
                    kind: k.as_str(),
                    value: prefill(&extra, k),
                    country: country.clone().unwrap_or_default(),
                    confirmed: c.map(|c| t.confirmed_to.replace("{to}", &masked(k, &c.value))),
                })
                .collect();
            has.extend(
                contacts
                    .iter()
                    .filter(|c| c.confirmed.is_some())
                    .map(|c| format!("contact/{}", c.kind)),
            );
            let contact_slots = contacts.iter().map(|c| format!("contact/{}", c.kind));
            let slots: Vec<String> = contact_slots
                .chain(match &retake {
                    Some(r) => r.steps.iter().map(|s| s.slot()).collect::<Vec<_>>(),
                    None if p.doc_type.as_deref() == Some("Passport") => {
                        vec![
                            "image/front".into(),
                            "image/selfie".into(),
                            "recording/video".into(),
                        ]
                    }
                    None => vec![
                        "image/front".into(),
                        "image/back".into(),
                        "image/selfie".into(),
                        "recording/video".into(),
                    ],
                })
                .collect();
            let notice = retake.as_ref().map(|r| RetakeNotice {
                steps: r.steps.iter().map(|s| t.step_name(*s)).collect(),
                reason: t.reason(&r.reason),
                message: r.message.clone(),
            });
            let body = render(&Page {
                t,
                scan_id: &p.scan_id,
                token: &token,
                steps: slots.len() + 1,
                slots,
                retake: notice,
                i18n_json: serde_json::to_string(t)
                    .map_err(actix_web::error::ErrorInternalServerError)?
                    // Safe inside <script type="application/json">.
                    .replace('<', "\\u003c"),
                css,
                js: crate::assets::url("onboarding.js"),
                has,
                contacts,
            })?;
            Ok(html(StatusCode::OK, &origins, body))
        }
        Access::Finished(p, _) => {
            let body = render(&Closed {
                t,
                title: t.done_title,
                text: t.done_text,
                link: safe_redirect(p.redirect_url.as_deref()),
                css,
            })?;
            Ok(html(StatusCode::OK, &origins, body))
        }
        Access::Expired => {
            let body = render(&Closed {
                t,
                title: t.closed_title,
                text: t.expired_text,
                link: None,
                css,
            })?;
            Ok(html(StatusCode::GONE, &[], body))
        }
        Access::Invalid => {
            let body = render(&Closed {
                t,
                title: t.closed_title,
                text: t.invalid_text,
                link: None,
                css,
            })?;
            Ok(html(StatusCode::NOT_FOUND, &[], body))
        }
    }
}

/// Errors of the page's own requests: a status, a stable `code` the page
/// translates, and an English description for logs and integrators.
fn json_error(status: StatusCode, code: &str, description: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({"status": status.as_u16(), "code": code, "description": description}))
}

fn upload_error(e: UploadError) -> HttpResponse {
    let (status, code) = match &e {
        UploadError::Refused(r) => match r {
            Refused::Empty => (StatusCode::UNPROCESSABLE_ENTITY, "empty"),
            Refused::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Refused::WrongType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "wrong_type"),
            Refused::TooManyPixels { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels"),
            Refused::TooSmall { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "too_small"),
            Refused::Undecodable(_) | Refused::Polyglot | Refused::BadContainer(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unreadable")
            }
        },
        UploadError::Interrupted(_) => (StatusCode::BAD_REQUEST, "network"),
        UploadError::Internal(err) => {
            tracing::error!(error = ?err, "onboarding upload failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "other")
        }
    };
    json_error(status, code, e.to_string())
}

fn case_error(e: CaseError) -> HttpResponse {
    match e {
        CaseError::NotFound => json_error(StatusCode::NOT_FOUND, "closed", e.to_string()),
        CaseError::Invalid(m) => json_error(StatusCode::BAD_REQUEST, "other", m),
        CaseError::Conflict(m) => json_error(StatusCode::CONFLICT, "closed", m),
        CaseError::Limit(m) => json_error(StatusCode::TOO_MANY_REQUESTS, "too_many", m),
        CaseError::Internal(err) => {
            tracing::error!(error = ?err, "onboarding request failed");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "other",
                "internal error".into(),
            )
        }
    }
}

fn header_token(req: &HttpRequest) -> String {
    req.headers()
        .get("X-Onboarding-Token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The open process for a page request, or the response to give instead.
async fn open_process(
    req: &HttpRequest,
    state: &AppState,
    scan_id: &str,
) -> Result<Box<OpenLink>, HttpResponse> {
    match access(state, scan_id, &header_token(req)).await {
        Ok(Access::Open(link)) => Ok(link),
        Ok(Access::Finished(..)) => Err(json_error(
            StatusCode::CONFLICT,
            "closed",
            "this verification was already submitted".into(),
        )),
        Ok(Access::Expired) => Err(json_error(
            StatusCode::GONE,
            "closed",
            "this onboarding link has expired".into(),
        )),
        Ok(Access::Invalid) => Err(json_error(
            StatusCode::NOT_FOUND,
            "closed",
            "no such onboarding, or a wrong token".into(),
        )),
        Err(e) => Err(case_error(CaseError::from(e))),
    }
}

/// The documents wait for the contact steps the integrator asks for: the
/// refusal to answer with while some are missing.
fn contacts_missing(link: &OpenLink) -> Option<HttpResponse> {
    let asked = match link.integrator.confirmation() {
        Ok(a) => a,
        Err(e) => return Some(case_error(CaseError::Internal(e))),
    };
    let confirmed = match link.p.confirmed_contacts() {
        Ok(c) => c,
        Err(e) => return Some(case_error(CaseError::Internal(e.into()))),
    };
    let missing: Vec<&str> = confirm::missing(asked, &confirmed)
        .into_iter()
        .map(ContactKind::as_str)
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(json_error(
        StatusCode::CONFLICT,
        "contact_required",
        format!(
            "the applicant must first confirm their {} by code",
            missing.join(" and ")
        ),
    ))
}

fn applicant(req: &HttpRequest) -> Actor {
    Actor {
        name: "applicant".into(),
        client_addr: client_addr(req),
    }
}

const EVIDENCE_TYPES: [(&str, &str); 4] = [
    ("image", "front"),
    ("image", "back"),
    ("image", "selfie"),
    ("recording", "video"),
];

#[tracing::instrument(skip_all)]
pub async fn evidence(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (scan_id, kind, evidence_type) = path.into_inner();
    let link = match open_process(&req, &state, &scan_id).await {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    if let Some(resp) = contacts_missing(&link) {
        return resp;
    }
    let OpenLink { p, retake, .. } = *link;
    if !EVIDENCE_TYPES.contains(&(kind.as_str(), evidence_type.as_str())) {
        return json_error(
            StatusCode::NOT_FOUND,
            "other",
            format!("no evidence slot {kind}/{evidence_type}"),
        );
    }
    // Refused before the bytes are read; `review::attach_evidence` checks
    // again under the process lock.
    if let Some(r) = &retake {
        if let Err(m) = review::retake::allows(r, &kind, &evidence_type, now_ms()) {
            return json_error(StatusCode::CONFLICT, "not_asked", m);
        }
    }
    let Some(k) = Kind::parse(&kind) else {
        return json_error(StatusCode::NOT_FOUND, "other", "no such kind".into());
    };
    let declared = upload::declared_len(&req);
    let stored =
        match upload::receive(payload, declared, k, &state.settings.evidence, &state.blobs).await {
            Ok(s) => s,
            Err(e) => return upload_error(e),
        };
    let answer = serde_json::json!({
        "kind": kind,
        "type": evidence_type,
        "mediaType": stored.accepted.media_type,
        "size": stored.size,
    });
    if let Err(e) = review::attach_evidence(
        &state.db,
        &state.blobs,
        &p.scan_id,
        &evidence_type,
        stored,
        &applicant(&req),
    )
    .await
    {
        return case_error(e);
    }
    HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer)
}

#[tracing::instrument(skip_all)]
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let link = match open_process(&req, &state, &path.into_inner()).await {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    if let Some(resp) = contacts_missing(&link) {
        return resp;
    }
    let OpenLink { p, integrator, .. } = *link;
    // The page says which language it was shown in; a retake request
    // reopens it in the same one.
    let lang = req
        .headers()
        .get("X-Onboarding-Lang")
        .and_then(|v| v.to_str().ok())
        .map(|l| i18n::pick(Some(l), None).lang);
    if let Err(e) = review::submit(
        &state.db,
        &state.settings,
        &state.blobs,
        &p.scan_id,
        &applicant(&req),
        lang,
    )
    .await
    {
        return case_error(e);
    }
    let top = integrator.redirect_top == 1;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "redirectUrl": safe_redirect(p.redirect_url.as_deref()),
            "topWindow": top,
        }))
}

/// What an integrator asks for when it opens an onboarding.
#[derive(Debug, Clone, Default)]
pub struct NewOnboarding {
    pub scan_id: String,
    pub country_id: Option<String>,
    pub doc_type: Option<String>,
    pub doc_specific_type: Option<String>,
    pub redirect_url: Option<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

pub struct Opened {
    pub scan_id: String,
    /// A UUID (as the reference says), shown once; only its SHA-256 is stored.
    pub token: String,
    pub url: String,
}

/// Creates a process in `CREATED` with a fresh onboarding token.
pub async fn open(
    state: &AppState,
    integrator_id: &str,
    n: NewOnboarding,
    who: &Actor,
) -> Result<Opened, CaseError> {
    use crate::domain::validation::{self, failing_key};
    // The reference types onboardingToken as a UUID: v4, 122 random bits.
    let token = uuid::Uuid::new_v4().to_string();
    let doc = crate::domain::Document::default();
    let checks = validation::validate(
        &doc,
        &validation::Images::default(),
        chrono::Utc::now().date_naive(),
        &state.settings.thresholds,
    );
    let process = rows::NewProcess {
        country_id: n.country_id,
        doc_type: n.doc_type,
        doc_specific_type: n.doc_specific_type,
        redirect_url: n.redirect_url,
        validations: serde_json::to_string(&checks).map_err(anyhow::Error::from)?,
        failing_validations: failing_key(&checks),
        document: doc,
        ..rows::NewProcess::created(n.scan_id.clone(), integrator_id.into(), now_ms())
    };
    let extra = serde_json::Value::Object(n.extra).to_string();
    // Held to the commit (see `store::CounterShards`).
    let shard = state.db.counter_shard();
    let mut work = crate::audit::Work::begin(&state.db).await?;
    if let Err(e) =
        rows::insert_many(&mut work.tx, std::slice::from_ref(&process), shard.id()).await
    {
        return Err(if crate::store::is_unique_violation(&e) {
            CaseError::Conflict(format!("scanId {} is already taken", n.scan_id))
        } else {
            e.into()
        });
    }
    rows::set_onboarding(&mut work.tx, &n.scan_id, &sha256_hex(&token), &extra).await?;
    work.commit(crate::audit::Event {
        actor: &who.name,
        action: "onboarding.create",
        scan_id: Some(&n.scan_id),
        client_addr: &who.client_addr,
        detail: serde_json::json!({}),
    })
    .await?;
    let base = state.settings.public_url.as_str().trim_end_matches('/');
    Ok(Opened {
        url: format!("{base}/onboarding/{}?token={token}", n.scan_id),
        scan_id: n.scan_id,
        token,
    })
}
