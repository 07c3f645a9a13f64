//! Admin pages for integrators (API tenants) and the webhook delivery log.

use super::error::DeskError;
use super::{htmx_go, render, Layout};
use crate::accounts::integrators::{self, IntegratorSettings};
use crate::desk::session::DeskSession;
use crate::domain::confirmation::{calling_code, Confirmation};
use crate::domain::{fmt_ms, now_ms, Role};
use crate::state::AppState;
use crate::store::integrators::{self as rows, IntegratorRow};
use crate::store::webhooks::{self as hooks, AttemptRow, EventRow};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub struct IntegratorView {
    pub row: IntegratorRow,
    pub origins: String,
    pub created: String,
    /// `Name: (unchanged)` per configured header: values may be secrets.
    pub headers: String,
    /// Magic-link redirect URIs, one per line.
    pub redirect_uris: String,
}

/// Shown in place of a configured header value; sent back, it keeps it.
const UNCHANGED: &str = "(unchanged)";

/// `Name: value` lines; a value of `(unchanged)` keeps the stored one.
fn header_lines(
    raw: &Option<String>,
    stored: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, DeskError> {
    let mut out = Vec::new();
    for line in raw.as_deref().unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| {
            DeskError::BadRequest(format!(
                "webhook header '{line}' must look like 'Name: value'"
            ))
        })?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        let v = if v == UNCHANGED {
            stored.get(&k).cloned().ok_or_else(|| {
                DeskError::BadRequest(format!("give a value for the new header {k}"))
            })?
        } else {
            v
        };
        out.push((k, v));
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "desk/integrators.html")]
struct IntegratorsPage {
    layout: Layout,
    integrators: Vec<IntegratorView>,
    confirmations: [Confirmation; 4],
}

#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    // Supervisors read; admins change (the POST routes stay admin-only).
    session.require(Role::Supervisor)?;
    // A stored setting that no longer decodes fails the page rather than
    // showing an empty field an admin might save over it.
    let integrators = rows::list(state.db.read())
        .await?
        .into_iter()
        .map(|row| {
            Ok(IntegratorView {
                origins: row.origins()?.join("\n"),
                created: fmt_ms(row.created_at),
                redirect_uris: row.redirect_uri_list()?.join("\n"),
                headers: row
                    .webhook_header_map()?
                    .keys()
                    .map(|k| format!("{k}: {UNCHANGED}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                row,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(DeskError::Internal)?;
    render(&IntegratorsPage {
        layout: Layout::new(&session),
        integrators,
        confirmations: Confirmation::ALL,
    })
}

#[derive(Template)]
#[template(path = "desk/secret_partial.html")]
struct SecretPartial {
    title: String,
    rows: Vec<(&'static str, String)>,
}

fn secret_html(
    title: String,
    rows: Vec<(&'static str, String)>,
) -> Result<HttpResponse, DeskError> {
    let html = SecretPartial { title, rows }
        .render()
        .map_err(|e| DeskError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html))
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    redirect_top: Option<String>,
    webhook_url: Option<String>,
    webhook_headers: Option<String>,
    frame_ancestors: Option<String>,
    submit_state: Option<String>,
    confirm_contact: Option<String>,
    phone_country: Option<String>,
}

/// The confirmation select: absent means none (a form from before it).
fn confirmation(v: &Option<String>) -> Result<Confirmation, DeskError> {
    Confirmation::parse(v.as_deref().unwrap_or("none")).map_err(DeskError::BadRequest)
}

/// The phone country field: empty means none; otherwise a calling code.
fn phone_country(v: &Option<String>) -> Result<Option<String>, DeskError> {
    v.as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| calling_code(c).map_err(DeskError::BadRequest))
        .transpose()
}

fn lines(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or_default()
        .split(['\n', ',', ' '])
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Creates an integrator and shows its credentials once, in place.
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    session: DeskSession,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let allow = state.settings.webhooks.allow_private;
    let webhook = form
        .webhook_url
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty());
    let origins = lines(&form.frame_ancestors);
    let headers = header_lines(&form.webhook_headers, &Default::default())?;
    integrators::webhook_headers(&headers)?;
    let submit_state = form
        .submit_state
        .clone()
        .unwrap_or_else(|| "PENDING_VERIFICATION".into());
    // Check everything before creating anything.
    let confirm_contact = confirmation(&form.confirm_contact)?;
    let phone_country = phone_country(&form.phone_country)?;
    if !matches!(
        submit_state.as_str(),
        "PENDING_VALIDATION" | "PENDING_VERIFICATION"
    ) {
        return Err(DeskError::BadRequest(
            "submissions go to PENDING_VALIDATION or PENDING_VERIFICATION".into(),
        ));
    }
    let creds = integrators::create(
        &state.db,
        &form.name,
        webhook,
        &origins,
        allow,
        &session.email,
        &session.client_addr,
    )
    .await?;
    if submit_state != "PENDING_VERIFICATION"
        || !headers.is_empty()
        || form.redirect_top.is_some()
        || confirm_contact != Confirmation::None
        || phone_country.is_some()
    {
        integrators::update(
            &state.db,
            &creds.integrator_id,
            &IntegratorSettings {
                webhook_url: webhook.map(str::to_string),
                frame_ancestors: origins,
                submit_state,
                webhook_headers: headers,
                redirect_top: form.redirect_top.is_some(),
                sla_hours: None,
                confirm_contact,
                phone_country,
            },
            allow,
            &session.email,
            &session.client_addr,
        )
        .await?;
    }
    secret_html(
        format!(
            "Integrator '{}' created. Copy these now: the secret is not shown again.",
            form.name.trim()
        ),
        vec![
            ("integrator_id", creds.integrator_id),
            ("api_key", creds.api_key),
            ("api_secret", creds.api_secret),
            ("webhook_secret", creds.webhook_secret),
        ],
    )
}

#[derive(Deserialize)]
pub struct SettingsForm {
    redirect_top: Option<String>,
    webhook_url: Option<String>,
    webhook_headers: Option<String>,
    frame_ancestors: Option<String>,
    submit_state: String,
    /// Hours, or empty for no review target.
    sla_hours: Option<String>,
    confirm_contact: Option<String>,
    phone_country: Option<String>,
}

/// The review-target field: empty means none; anything else must be a
/// whole number of hours.
fn sla_hours(v: &Option<String>) -> Result<Option<i64>, DeskError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            DeskError::BadRequest(format!(
                "Review target: '{s}' is not a whole number of hours (e.g. 24), or leave it empty"
            ))
        }),
    }
}

#[tracing::instrument(skip_all)]
pub async fn update(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let id = path.into_inner();
    let current = rows::get(state.db.read(), &id)
        .await?
        .ok_or_else(|| DeskError::NotFound("no such integrator".into()))?;
    let stored = current.webhook_header_map().map_err(DeskError::Internal)?;
    integrators::update(
        &state.db,
        &id,
        &IntegratorSettings {
            webhook_url: form.webhook_url.clone(),
            frame_ancestors: lines(&form.frame_ancestors),
            submit_state: form.submit_state.clone(),
            webhook_headers: header_lines(&form.webhook_headers, &stored)?,
            redirect_top: form.redirect_top.is_some(),
            sla_hours: sla_hours(&form.sla_hours)?,
            confirm_contact: confirmation(&form.confirm_contact)?,
            phone_country: phone_country(&form.phone_country)?,
        },
        state.settings.webhooks.allow_private,
        &session.email,
        &session.client_addr,
    )
    .await?;
    Ok(htmx_go("/desk/admin/integrators"))
}

#[tracing::instrument(skip_all)]
pub async fn rotate(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let id = path.into_inner();
    let r =
        integrators::rotate_secret(&state.db, &id, &session.email, &session.client_addr).await?;
    secret_html(
        "New API secret. The old one and its tokens no longer work. Copy it now: it is not shown again.".into(),
        vec![("api_key", r.api_key), ("api_secret", r.api_secret)],
    )
}

async fn set_enabled(
    state: &AppState,
    session: &DeskSession,
    id: &str,
    enabled: bool,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    integrators::set_enabled(&state.db, id, enabled, &session.email, &session.client_addr).await?;
    Ok(htmx_go("/desk/admin/integrators"))
}

#[tracing::instrument(skip_all)]
pub async fn disable(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    set_enabled(&state, &session, &path.into_inner(), false).await
}

#[tracing::instrument(skip_all)]
pub async fn enable(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    set_enabled(&state, &session, &path.into_inner(), true).await
}

pub struct EventView {
    pub e: EventRow,
    pub created: String,
    pub next: String,
    pub attempts: Vec<AttemptView>,
}

pub struct AttemptView {
    pub at: String,
    pub url: String,
    pub status: String,
    pub error: String,
    pub duration_ms: i64,
}

impl From<AttemptRow> for AttemptView {
    fn from(a: AttemptRow) -> Self {
        AttemptView {
            at: fmt_ms(a.at),
            url: a.url,
            status: a.status_code.map(|c| c.to_string()).unwrap_or_default(),
            error: a.error.unwrap_or_default(),
            duration_ms: a.duration_ms,
        }
    }
}

#[derive(Template)]
#[template(path = "desk/webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    events: Vec<EventView>,
    filter: String,
}

#[derive(Deserialize)]
pub struct WebhookQuery {
    state: Option<String>,
}

/// Every event with every attempt, newest first (the last 200).
#[tracing::instrument(skip_all)]
pub async fn deliveries(
    state: web::Data<AppState>,
    session: DeskSession,
    q: web::Query<WebhookQuery>,
) -> Result<HttpResponse, DeskError> {
    // Supervisors read; admins change (the POST routes stay admin-only).
    session.require(Role::Supervisor)?;
    let filter = q
        .state
        .clone()
        .filter(|s| matches!(s.as_str(), "pending" | "delivered" | "failed"))
        .unwrap_or_default();
    let rows = hooks::recent(
        state.db.read(),
        (!filter.is_empty()).then_some(filter.as_str()),
        200,
    )
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for e in rows {
        let attempts = hooks::attempts_for(state.db.read(), &e.id)
            .await?
            .into_iter()
            .map(AttemptView::from)
            .collect();
        events.push(EventView {
            created: fmt_ms(e.created_at),
            next: if e.state == "pending" {
                fmt_ms(e.next_attempt_at)
            } else {
                String::new()
            },
            attempts,
            e,
        });
    }
    render(&WebhooksPage {
        layout: Layout::new(&session),
        events,
        filter,
    })
}

/// Sends an event again now, with its original `webhook-id`.
#[tracing::instrument(skip_all)]
pub async fn redeliver(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let id = path.into_inner();
    // The change and its audit entry commit together or not at all.
    let mut work = crate::audit::Work::begin(&state.db).await?;
    if hooks::redeliver(&mut work.tx, &id, now_ms()).await? == 0 {
        return Err(DeskError::NotFound("no such webhook event".into()));
    }
    work.commit(crate::audit::Event {
        actor: &session.email,
        action: "webhook.redeliver",
        scan_id: None,
        client_addr: &session.client_addr,
        detail: serde_json::json!({"event": id}),
    })
    .await?;
    Ok(htmx_go("/desk/admin/webhooks"))
}

#[derive(Deserialize)]
pub struct VerificationForm {
    sandbox: Option<String>,
    redirect_uris: Option<String>,
}

/// The sandbox switch and the magic-link redirect allow-list.
#[tracing::instrument(skip_all)]
pub async fn verification(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<VerificationForm>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let uris: Vec<String> = form
        .redirect_uris
        .as_deref()
        .unwrap_or_default()
        .split(['\n', ' ', ','])
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    integrators::set_verification(
        &state.db,
        &path,
        form.sandbox.is_some(),
        &uris,
        &session.email,
        &session.client_addr,
    )
    .await?;
    Ok(htmx_go("/desk/admin/integrators"))
}

#[derive(Template)]
#[template(path = "desk/messages.html")]
struct MessagesPage {
    layout: Layout,
    messages: Vec<MessageView>,
}

pub struct MessageView {
    pub at: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub error: String,
}

/// The outbox: every SMS and e-mail kycdesk sent or tried to send. SMS has
/// no gateway yet, so this page is where development and pilots read them.
#[tracing::instrument(skip_all)]
pub async fn messages(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    // Supervisors read; admins change (the POST routes stay admin-only).
    session.require(Role::Supervisor)?;
    let messages = crate::verification::messaging::recent(&state.db, 200)
        .await?
        .into_iter()
        .map(|m| MessageView {
            at: fmt_ms(m.created_at),
            channel: m.channel,
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
            state: m.state,
            error: m.error.unwrap_or_default(),
        })
        .collect();
    render(&MessagesPage {
        layout: Layout::new(&session),
        messages,
    })
}
