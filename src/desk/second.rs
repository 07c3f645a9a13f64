//! Four-eyes on the desk: the admin's review policy, the Second review
//! queue, and a second reviewer's confirm / overturn.

use super::error::DeskError;
use super::view::When;
use super::{htmx_go, render, Layout};
use crate::audit::{self, Event};
use crate::desk::session::DeskSession;
use crate::domain::four_eyes::{Policy, Rule, Verdict};
use crate::domain::{now_ms, Role};
use crate::review::four_eyes::{self, SecondInput};
use crate::state::AppState;
use crate::store::processes as rows;
use crate::store::proposals;
use actix_web::{web, HttpResponse};
use askama::Template;

pub struct WaitingRow {
    pub scan_id: String,
    pub name: String,
    pub integrator: String,
    pub decision: &'static str,
    pub reason: String,
    pub rule: &'static str,
    pub proposed_by: String,
    pub when: When,
}

#[derive(Template)]
#[template(path = "desk/second_review.html")]
struct SecondReviewPage {
    layout: Layout,
    rows: Vec<WaitingRow>,
    total: i64,
}

pub fn decision_label(d: &str) -> &'static str {
    match d {
        "accept" => "Accept",
        "reject" => "Reject",
        _ => "Send to review",
    }
}

/// The Second review queue: proposals waiting, oldest first.
#[tracing::instrument(skip_all)]
pub async fn queue(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let now = now_ms();
    let waiting = proposals::waiting(state.db.read(), 200).await?;
    let rows = waiting
        .into_iter()
        .map(|w| {
            let doc = w.document().map_err(|e| DeskError::Internal(e.into()))?;
            Ok(WaitingRow {
                name: doc.display_name(),
                integrator: w.integrator_name,
                decision: decision_label(&w.decision),
                reason: w.reason.unwrap_or_default(),
                rule: Rule::label(&w.rule),
                proposed_by: w.proposed_by,
                when: When::at(w.proposed_at, now),
                scan_id: w.scan_id,
            })
        })
        .collect::<Result<Vec<_>, DeskError>>()?;
    render(&SecondReviewPage {
        layout: Layout::new(&session),
        total: proposals::waiting_count(state.db.read()).await?,
        rows,
    })
}

/// Confirm or overturn (form: `verdict`, `reason`, `rejection_reason`,
/// `version`). Supervisors and admins only, never the proposer.
#[tracing::instrument(skip_all)]
pub async fn review(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let scan_id = path.into_inner();
    let (mut verdict, mut reason, mut rejection_reason, mut version) = (None, None, None, None);
    for (k, v) in form.into_inner() {
        match k.as_str() {
            "verdict" => verdict = Some(v),
            "reason" => reason = Some(v),
            "rejection_reason" => rejection_reason = Some(v).filter(|r| !r.trim().is_empty()),
            "version" => {
                version =
                    Some(v.parse::<i64>().map_err(|_| {
                        DeskError::BadRequest("bad version: reload the case".into())
                    })?)
            }
            _ => {}
        }
    }
    let verdict = match verdict.as_deref() {
        Some("confirm") => Verdict::Confirm,
        Some("overturn") => Verdict::Overturn,
        _ => return Err(DeskError::BadRequest("choose Confirm or Overturn".into())),
    };
    four_eyes::second_review(
        &state.db,
        &state.settings,
        &state.blobs,
        &scan_id,
        &SecondInput {
            verdict,
            reason,
            rejection_reason,
            expected_version: version,
        },
        &session.actor(),
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

#[derive(Template)]
#[template(path = "desk/policy.html")]
struct PolicyPage {
    layout: Layout,
    policy: Policy,
    integrators: Vec<rows::IntegratorChoice>,
    waiting: i64,
}

impl PolicyPage {
    fn covers(&self, id: &str) -> bool {
        self.policy.integrators.iter().any(|i| i == id)
    }
}

#[tracing::instrument(skip_all)]
pub async fn policy_page(
    state: web::Data<AppState>,
    session: DeskSession,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    render(&PolicyPage {
        layout: Layout::new(&session),
        policy: proposals::policy(state.db.read()).await?,
        integrators: rows::list_integrators(state.db.read()).await?,
        waiting: proposals::waiting_count(state.db.read()).await?,
    })
}

/// Admins set the policy; it applies to decisions made from now on
/// (proposals already waiting stay until reviewed). Audited with the new
/// and the old policy.
#[tracing::instrument(skip_all)]
pub async fn set_policy(
    state: web::Data<AppState>,
    session: DeskSession,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Admin)?;
    let known: Vec<String> = rows::list_integrators(state.db.read())
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let mut p = Policy::default();
    for (k, v) in form.into_inner() {
        match k.as_str() {
            "rejections" => p.rejections = v == "1",
            "failing_accepts" => p.failing_accepts = v == "1",
            "integrator" if known.contains(&v) => p.integrators.push(v),
            "integrator" => {
                return Err(DeskError::BadRequest(format!("no integrator '{v}'")));
            }
            "sample_percent" => {
                let t = v.trim();
                p.sample_percent = if t.is_empty() {
                    0
                } else {
                    t.parse::<u8>().ok().filter(|n| *n <= 100).ok_or_else(|| {
                        DeskError::BadRequest(format!(
                            "sample of accepts: '{t}' is not a whole percentage from 0 to 100"
                        ))
                    })?
                };
            }
            _ => {}
        }
    }
    let old = proposals::policy(state.db.read()).await?;
    let mut work = audit::Work::begin(&state.db).await?;
    proposals::set_policy(&mut work.tx, &p, &session.email, now_ms()).await?;
    let show = |x: &Policy| {
        serde_json::json!({
            "rejections": x.rejections, "failing_accepts": x.failing_accepts,
            "integrators": x.integrators, "sample_percent": x.sample_percent,
        })
    };
    work.commit(Event {
        actor: &session.email,
        action: "policy.four_eyes",
        scan_id: None,
        client_addr: &session.client_addr,
        detail: serde_json::json!({"new": show(&p), "old": show(&old)}),
    })
    .await?;
    Ok(htmx_go("/desk/admin/policy"))
}
