//! Review queues: a tab per state with counts, filters, search and keyset
//! pagination. htmx asks for just the results; a direct visit, a bookmark or
//! the back button gets the whole page for the same URL.

use super::error::DeskError;
use super::{render, Layout};
use crate::desk::session::DeskSession;
use crate::desk::view::{age, When};
use crate::domain::process::{doc_type_label, DOC_TYPES};
use crate::domain::queue::{Cursor, QueueFilter, QueueParams, Search, Sort};
use crate::domain::{now_ms, validation, Role, State};
use crate::review::claim_is_live;
use crate::state::AppState;
use crate::store::processes::{self as rows, IntegratorChoice, QueueRow};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

pub const PAGE_SIZE: i64 = 50;

pub struct Tab {
    pub state: &'static str,
    pub label: &'static str,
    pub count: i64,
    pub active: bool,
    pub query: String,
}

pub struct Row {
    pub scan_id: String,
    pub name: String,
    pub state: String,
    pub state_label: &'static str,
    pub integrator: String,
    pub country: String,
    pub doc_type: String,
    pub created: When,
    /// How long the case has waited, for the age column.
    pub age: String,
    /// Waiting longer than its integrator's review target (open cases only).
    pub overdue: bool,
    pub score: String,
    /// (code, label) of each failing validation.
    pub failing: Vec<(String, &'static str)>,
    pub claimed_by: String,
}

#[derive(Template)]
#[template(path = "desk/queue.html")]
struct QueuePage {
    layout: Layout,
    tabs: Vec<Tab>,
    /// The agent's own live claims: a tab of its own.
    mine: Tab,
    state: &'static str,
    state_label: &'static str,
    p: QueueParams,
    integrators: Vec<IntegratorChoice>,
    countries: Vec<String>,
    /// (code, label) of each document type, for the Document filter.
    doc_types: Vec<(&'static str, &'static str)>,
    /// (code, label) of every validation, for the Failing filter.
    validations: Vec<(&'static str, &'static str)>,
    sorts: [(&'static str, &'static str); 3],
    rows: Vec<Row>,
    next_query: Option<String>,
    searching: bool,
    bulk: bool,
    /// Active desk users a supervisor can assign cases to.
    assignees: Vec<String>,
}

#[derive(Template)]
#[template(path = "desk/queue_results_partial.html")]
struct QueueResults {
    rows: Vec<Row>,
    next_query: Option<String>,
    searching: bool,
    /// Supervisors select rows for bulk actions.
    bulk: bool,
}

/// A stored document that no longer decodes fails the page (500 with a
/// request id) rather than showing a nameless row.
fn to_row(r: QueueRow, now: i64, idle: i64) -> Result<Row, DeskError> {
    let doc = r.document().map_err(|e| DeskError::Internal(e.into()))?;
    let live = claim_is_live(r.claimed_by.as_deref(), r.claimed_at, now, idle);
    let state: State = r
        .state
        .parse()
        .map_err(|e| DeskError::Internal(anyhow::anyhow!("process {}: {e}", r.scan_id)))?;
    let overdue = r.overdue(state, now);
    Ok(Row {
        name: doc.display_name(),
        state_label: state.label(),
        state: r.state,
        integrator: r.integrator_name,
        country: r.country_id.unwrap_or_default(),
        doc_type: doc_type_label(r.doc_type.as_deref().unwrap_or_default()).to_string(),
        created: When::at(r.created_at, now),
        age: age(r.created_at, now),
        overdue,
        score: r
            .facial_matching_score
            .map(|s| format!("{s:.2}"))
            .unwrap_or_default(),
        failing: r
            .failing_validations
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), validation::static_label(s)))
            .collect(),
        claimed_by: if live {
            r.claimed_by.unwrap_or_default()
        } else {
            String::new()
        },
        scan_id: r.scan_id,
    })
}

#[tracing::instrument(skip_all)]
pub async fn queue(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: DeskSession,
    params: web::Query<QueueParams>,
) -> Result<HttpResponse, DeskError> {
    let p = params.into_inner();
    let filter = QueueFilter::parse(&p).map_err(DeskError::BadRequest)?;
    let now = now_ms();
    let idle = crate::domain::ms(state.settings.claim_idle);
    let db = &state.db;
    let hx = req.headers();
    let wants_partial = hx.contains_key("HX-Request")
        && !hx.contains_key("HX-History-Restore-Request")
        && hx.get("HX-Target").and_then(|v| v.to_str().ok()) == Some("queue-results");
    let supervisor = session.role >= Role::Supervisor;
    // A search of several words, the desk's most expensive read, holds a
    // turn through its statements, the page's chrome included, and gives
    // it back before the page is rendered (see `Db::search_turn`).
    let turn = match filter.search {
        Some(Search::Words(_)) => Some(db.search_turn().await?),
        _ => None,
    };
    // One row more than a page tells whether a next page exists.
    let mut found = rows::queue(db.read(), &filter, now, now - idle, PAGE_SIZE + 1).await?;
    let chrome = if wants_partial {
        None
    } else {
        Some(rows::queue_chrome(db.read(), &session.email, now - idle, supervisor).await?)
    };
    drop(turn);
    let more = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let next_query = match (more, found.last()) {
        (true, Some(last)) => Some(
            p.with(
                None,
                Some(
                    &Cursor {
                        score: (filter.sort == Sort::LowestScore && filter.search.is_none())
                            .then(|| last.facial_matching_score.unwrap_or(-1.0)),
                        created_at: last.created_at,
                        scan_id: last.scan_id.clone(),
                    }
                    .encode(),
                ),
            ),
        ),
        _ => None,
    };
    let rows: Vec<Row> = found
        .into_iter()
        .map(|r| to_row(r, now, idle))
        .collect::<Result<_, _>>()?;
    let searching = filter.search.is_some();

    let Some(chrome) = chrome else {
        return render(&QueueResults {
            rows,
            next_query,
            searching,
            bulk: supervisor,
        });
    };
    let mine_active = !searching
        && matches!(&filter.assignee, Some(crate::domain::queue::Assignee::User(u)) if *u == session.email);
    let mine = Tab {
        state: filter.state.as_str(),
        label: "Mine",
        count: chrome.mine,
        active: mine_active,
        query: QueueParams {
            state: Some(State::PendingVerification.as_str().into()),
            assignee: Some(session.email.clone()),
            ..QueueParams::default()
        }
        .with(None, None),
    };
    let tabs = State::ALL
        .into_iter()
        .map(|s| Tab {
            state: s.as_str(),
            label: s.label(),
            count: chrome.counts.get(s.as_str()).copied().unwrap_or(0),
            active: s == filter.state && !searching && !mine_active,
            query: QueueParams {
                q: None,
                ..p.clone()
            }
            .with(Some(s.as_str()), None),
        })
        .collect();
    render(&QueuePage {
        layout: Layout::new(&session),
        tabs,
        mine,
        state: filter.state.as_str(),
        state_label: filter.state.label(),
        integrators: chrome.integrators,
        countries: chrome.countries,
        doc_types: DOC_TYPES.iter().map(|d| (*d, doc_type_label(d))).collect(),
        validations: validation::NAMES
            .iter()
            .map(|n| (*n, validation::label(n)))
            .collect(),
        sorts: Sort::CHOICES,
        p,
        rows,
        next_query,
        searching,
        bulk: supervisor,
        assignees: chrome.assignees,
    })
}

#[derive(Template)]
#[template(path = "desk/bulk_result_partial.html")]
struct BulkResult {
    done: String,
    skipped: Vec<(String, String)>,
}

/// `POST /desk/queue/bulk`: `case` repeated (the selected rows), `action`
/// (assign, release, note), `assignee`, `note`. Supervisors and admins.
#[tracing::instrument(skip_all)]
pub async fn bulk(
    state: web::Data<AppState>,
    session: DeskSession,
    body: web::Bytes,
) -> Result<HttpResponse, DeskError> {
    use crate::review::bulk::{self, Action};
    session.require(Role::Supervisor)?;
    let (mut cases, mut action, mut assignee, mut note) = (Vec::new(), None, None, None);
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "case" => cases.push(v.into_owned()),
            "action" => action = Some(v.into_owned()),
            "assignee" => assignee = Some(v.into_owned()),
            "note" => note = Some(v.into_owned()),
            _ => {}
        }
    }
    let action = match action.as_deref() {
        Some("assign") => {
            let to = assignee.as_deref().map(str::trim).unwrap_or_default();
            if to.is_empty() {
                return Err(DeskError::BadRequest(
                    "Assignee: choose who gets the selected cases".into(),
                ));
            }
            let to = to.to_lowercase();
            let user = crate::store::users::user_by_email(state.db.read(), &to).await?;
            if user.is_none_or(|u| u.active != 1) {
                return Err(DeskError::BadRequest(format!(
                    "Assignee: {to} is not an active desk user; pick one from the list"
                )));
            }
            Action::Assign(to)
        }
        Some("release") => Action::Release,
        Some("note") => Action::Note(note.unwrap_or_default()),
        _ => {
            return Err(DeskError::BadRequest(
                "Action: choose assign, release or add a note".into(),
            ))
        }
    };
    let out = bulk::apply(&state.db, &cases, &action, &session.actor()).await?;
    let n = out.done.len();
    let cases_word = if n == 1 { "case" } else { "cases" };
    let done = match &action {
        Action::Assign(to) => format!("Assigned {n} {cases_word} to {to}."),
        Action::Release => format!("Released {n} {cases_word}."),
        Action::Note(_) => format!("Added the note to {n} {cases_word}."),
    };
    let mut resp = render(&BulkResult {
        done,
        skipped: out.skipped,
    })?;
    // The results reload with the filters as they are now.
    resp.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("hx-trigger"),
        actix_web::http::header::HeaderValue::from_static("queue-changed"),
    );
    Ok(resp)
}

/// How many of the oldest unclaimed cases `take_next` tries before saying
/// the view is empty: other agents pressing it at the same moment take some.
const TAKE_NEXT_TRIES: i64 = 20;

/// Take next: claims the oldest unclaimed case of the queue view the agent
/// is on (its filters honoured) and opens it. Each claim is one conditional
/// update, so two agents pressing it together get different cases: the one
/// whose claim loses moves on to the next case.
#[tracing::instrument(skip_all)]
pub async fn take_next(
    state: web::Data<AppState>,
    session: DeskSession,
    params: web::Form<QueueParams>,
) -> Result<HttpResponse, DeskError> {
    let mut p = params.into_inner();
    p.after = None;
    if p.state.as_deref().is_none_or(str::is_empty) {
        p.state = Some(State::PendingVerification.as_str().to_string());
    }
    let mut filter = QueueFilter::parse(&p).map_err(DeskError::BadRequest)?;
    if filter.state.is_final() {
        return Err(DeskError::BadRequest(format!(
            "{} cases are decided: take next works on a queue awaiting review",
            filter.state.label()
        )));
    }
    filter.assignee = Some(crate::domain::queue::Assignee::Unassigned);
    // The oldest first whatever order the view shows: waiting time is what
    // the review targets count.
    filter.sort = Sort::Oldest;
    let idle = crate::domain::ms(state.settings.claim_idle);
    let now = now_ms();
    let candidates =
        rows::queue(state.db.read(), &filter, now, now - idle, TAKE_NEXT_TRIES).await?;
    let who = session.actor();
    for c in candidates {
        match crate::review::claim(&state.db, &state.settings, &c.scan_id, &who).await {
            Ok(()) => return Ok(super::htmx_go(&format!("/desk/cases/{}", c.scan_id))),
            // Someone claimed or decided it since the list was read.
            Err(crate::review::CaseError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DeskError::Conflict(format!(
        "No unclaimed case is waiting in this view ({}). Clear a filter, or try again later.",
        filter.state.label()
    )))
}
