//! The audit-log explorer (supervisors and admins): entries filtered by
//! actor, action, case and date, details in words rather than raw JSON, the
//! hash chain's verdict with the first broken entry linked, and a CSV export
//! of exactly the filtered entries.

use super::error::DeskError;
use super::export::{csv_download, neutralise, record};
use super::params::{day_range, set};
use super::view::When;
use super::{render, Layout};
use crate::audit::{self, Entry, Event, Verdict};
use crate::desk::session::DeskSession;
use crate::domain::audit::{action_label, key_label, ActionFilter, AuditFilter, ACTIONS, FAMILIES};
use crate::domain::{now_ms, rfc3339_ms, Role, State};
use crate::state::AppState;
use crate::store::{audit as rows, users as user_rows};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

const PAGE: i64 = 100;
const BATCH: i64 = 1000;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditParams {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub case: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(skip_serializing)]
    pub before: Option<i64>,
}

impl AuditParams {
    fn filter(&self) -> Result<AuditFilter, DeskError> {
        let (from_ms, to_ms) = day_range(&self.from, &self.to)?;
        Ok(AuditFilter {
            actor: set(&self.actor).map(|a| a.to_lowercase()),
            action: set(&self.action)
                .map(|a| ActionFilter::parse(&a))
                .transpose()
                .map_err(DeskError::BadRequest)?,
            scan_id: set(&self.case),
            from_ms,
            to_ms,
        })
    }

    /// The filters as a query string (no page position), for links.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("case", &self.case),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = set(v) {
                q.append_pair(k, &v);
            }
        }
        q.finish()
    }
}

/// One entry as people read it.
pub struct Line {
    pub seq: i64,
    pub when: When,
    pub actor: String,
    pub action: String,
    pub action_label: String,
    pub scan_id: String,
    pub client_addr: String,
    /// The case history's sentence for case actions ("rejected → Not
    /// verified"), when there is one.
    pub summary: Option<String>,
    /// The stored detail as labelled values.
    pub fields: Vec<(String, String)>,
    /// Set when the stored detail does not decode: shown raw and marked,
    /// never silently dropped.
    pub undecodable: Option<String>,
}

/// A JSON value in words: states by their label, lists joined, nested
/// objects as "key: value" pairs.
fn value_words(key: &str, v: &serde_json::Value) -> String {
    use serde_json::Value as V;
    match v {
        V::Null => "—".into(),
        V::Bool(b) => if *b { "yes" } else { "no" }.into(),
        V::Number(n) => n.to_string(),
        V::String(s) => {
            let is_state_key = matches!(
                key,
                "from" | "to" | "state" | "decided_state" | "correct_state"
            );
            match (is_state_key, s.parse::<State>()) {
                (true, Ok(st)) => format!("{} ({s})", st.label()),
                _ if s.is_empty() => "(empty)".into(),
                _ => s.clone(),
            }
        }
        V::Array(items) if items.is_empty() => "none".into(),
        V::Array(items) => items
            .iter()
            .map(|i| value_words(key, i))
            .collect::<Vec<_>>()
            .join(", "),
        V::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{}: {}", key_label(k), value_words(k, v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn line(e: Entry, now: i64) -> Line {
    let mut fields = Vec::new();
    let mut undecodable = None;
    match serde_json::from_str::<serde_json::Value>(&e.detail) {
        Ok(serde_json::Value::Object(map)) => {
            for (k, v) in &map {
                fields.push((key_label(k), value_words(k, v)));
            }
        }
        Ok(other) => fields.push(("Detail".into(), value_words("", &other))),
        Err(_) => undecodable = Some(e.detail.clone()),
    }
    // A case action reads as the case history says it.
    let summary = match super::history::describe(&e, now) {
        Ok(s) => s,
        Err(err) => {
            undecodable.get_or_insert_with(|| err.to_string());
            None
        }
    };
    Line {
        seq: e.seq,
        when: When::at(e.at, now),
        action_label: action_label(&e.action).to_string(),
        scan_id: e.scan_id.clone().unwrap_or_default(),
        summary,
        fields,
        undecodable,
        actor: e.actor,
        action: e.action,
        client_addr: e.client_addr,
    }
}

#[derive(Template)]
#[template(path = "desk/audit.html")]
struct AuditPage {
    layout: Layout,
    p: AuditParams,
    lines: Vec<Line>,
    older: Option<String>,
    query: String,
    actors: Vec<String>,
    families: Vec<(&'static str, &'static str)>,
    actions: Vec<(&'static str, &'static str)>,
    filtered: bool,
}

#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    session: DeskSession,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let p = q.into_inner();
    let filter = p.filter()?;
    let entries = rows::search(state.db.read(), &filter, p.before, PAGE).await?;
    let query = p.query();
    let older = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| e.seq))
        .flatten()
        .map(|seq| {
            if query.is_empty() {
                format!("/desk/audit?before={seq}")
            } else {
                format!("/desk/audit?{query}&before={seq}")
            }
        });
    let now = now_ms();
    let lines = entries.into_iter().map(|e| line(e, now)).collect();
    let mut actions: Vec<_> = ACTIONS.to_vec();
    actions.sort_by_key(|(_, label)| *label);
    let actors = user_rows::list_users(state.db.read())
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect();
    render(&AuditPage {
        layout: Layout::new(&session),
        filtered: filter != AuditFilter::default(),
        p,
        lines,
        older,
        query,
        actors,
        families: FAMILIES.to_vec(),
        actions,
    })
}

#[tracing::instrument(skip_all)]
pub async fn verify(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let html = match audit::verify(&state.db).await? {
        Verdict::Intact { entries } => format!(
            "<p class=\"badge pass\" id=\"chain-verdict\">Intact: {entries} entries verified.</p>"
        ),
        Verdict::Broken { seq, reason } => {
            let reason = reason.replace('&', "&amp;").replace('<', "&lt;");
            // The entry's page: the newest page that still holds it.
            format!(
                "<p class=\"badge fail\" id=\"chain-verdict\">Broken at \
                 <a href=\"/desk/audit?before={}#entry-{seq}\" id=\"first-broken\">entry {seq}</a>: \
                 {reason}. Every entry after it is unverified.</p>",
                seq + 1
            )
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

const HEADER: [&str; 9] = [
    "seq",
    "at",
    "actor",
    "action",
    "actionLabel",
    "scanId",
    "clientAddr",
    "detail",
    "hash",
];

/// `GET /desk/audit.csv?<the explorer's filters>`: every matching entry,
/// streamed in keyset batches, audited before the first byte. The detail
/// stays the stored JSON (with the hash, a recipient can re-verify).
#[tracing::instrument(skip_all)]
pub async fn export(
    state: web::Data<AppState>,
    session: DeskSession,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let p = q.into_inner();
    let filter = p.filter()?;
    audit::record_now(
        &state.db,
        Event {
            actor: &session.email,
            action: "audit.export",
            scan_id: None,
            client_addr: &session.client_addr,
            detail: serde_json::json!({"query": p.query(), "format": "csv"}),
        },
    )
    .await?;
    let db = state.db.clone();
    let batches =
        futures_util::stream::try_unfold(Some(None), move |before: Option<Option<i64>>| {
            let db = db.clone();
            let filter = filter.clone();
            async move {
                let Some(before) = before else {
                    return Ok(None);
                };
                let batch = rows::search(db.read(), &filter, before, BATCH).await?;
                let mut chunk = Vec::new();
                for e in &batch {
                    let cells = [
                        e.seq.to_string(),
                        rfc3339_ms(e.at),
                        e.actor.clone(),
                        e.action.clone(),
                        action_label(&e.action).to_string(),
                        e.scan_id.clone().unwrap_or_default(),
                        e.client_addr.clone(),
                        e.detail.clone(),
                        e.hash.clone(),
                    ];
                    chunk.extend(record(cells.iter().map(|c| neutralise(c).into_owned()))?);
                }
                let next = (batch.len() as i64 == BATCH).then(|| batch.last().map(|e| e.seq));
                Ok(Some((chunk, next)))
            }
        });
    let name = format!(
        "kycdesk-audit-{}.csv",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    csv_download(&name, &HEADER, batches)
}
