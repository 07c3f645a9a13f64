//! The rejection audit (quality assurance): final decisions filtered by
//! reason, agent, integrator, date and failing check; a reproducible weekly
//! sampler; QA verdicts and the overturn rates they give.

use super::error::DeskError;
use super::view::When;
use super::{htmx_go, render, Layout};
use crate::desk::session::DeskSession;
use crate::domain::qa::{sample, DecisionFilter};
use crate::domain::{now_ms, validation, Role, State};
use crate::state::AppState;
use crate::store::processes as rows;
use crate::store::qa;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct QaParams {
    pub state: Option<String>,
    pub agent: Option<String>,
    pub reason: Option<String>,
    pub integrator: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub failing: Option<String>,
    /// Draw this many decisions per agent from the week starting `week`.
    pub sample: Option<String>,
    pub week: Option<String>,
}

use super::params::{day_ms, day_range, set, DAY_MS};

fn filter_of(p: &QaParams) -> Result<DecisionFilter, DeskError> {
    let state = match set(&p.state).as_deref() {
        None | Some("NOT_VERIFIED") => State::NotVerified,
        Some("VERIFIED") => State::Verified,
        Some(other) => {
            return Err(DeskError::BadRequest(format!(
                "'{other}' is not a final state (VERIFIED or NOT_VERIFIED)"
            )))
        }
    };
    let failing = set(&p.failing);
    if let Some(f) = &failing {
        if !validation::NAMES.contains(&f.as_str()) {
            return Err(DeskError::BadRequest(format!("no validation '{f}'")));
        }
    }
    let (from_ms, to_ms) = day_range(&p.from, &p.to)?;
    Ok(DecisionFilter {
        state,
        agent: set(&p.agent),
        reason: set(&p.reason),
        integrator: set(&p.integrator),
        from_ms,
        to_ms,
        failing,
    })
}

pub struct DecidedRow {
    pub scan_id: String,
    pub name: String,
    pub agent: String,
    pub reason: String,
    pub integrator: String,
    pub decided: Option<When>,
    pub failing: Vec<&'static str>,
    pub qa: String,
}

pub struct Rate {
    pub key: String,
    pub reviewed: i64,
    pub disagreed: i64,
    pub percent: String,
}

/// Overturn rates as the pages show them (key, audited, disagreed, %).
pub fn rates(v: Vec<(String, i64, i64)>) -> Vec<Rate> {
    v.into_iter()
        .map(|(key, reviewed, disagreed)| Rate {
            percent: if reviewed > 0 {
                format!("{:.1} %", 100.0 * disagreed as f64 / reviewed as f64)
            } else {
                "—".into()
            },
            key,
            reviewed,
            disagreed,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "desk/qa.html")]
struct QaPage {
    layout: Layout,
    p: QaParams,
    state: &'static str,
    total: i64,
    rows: Vec<DecidedRow>,
    sampled: Option<String>,
    agents: Vec<String>,
    reasons: Vec<String>,
    integrators: Vec<rows::IntegratorChoice>,
    validations: Vec<(&'static str, &'static str)>,
    by_agent: Vec<Rate>,
    by_reason: Vec<Rate>,
}

/// Rows listed per page (the total is counted).
const LIST: i64 = 100;

#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    session: DeskSession,
    q: web::Query<QaParams>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let p = q.into_inner();
    let mut f = filter_of(&p)?;
    let db = state.db.read();
    let now = now_ms();
    let n = set(&p.sample)
        .map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| {
                    DeskError::BadRequest(format!(
                        "per agent: '{v}' is not a number of cases from 1 to 50"
                    ))
                })
        })
        .transpose()?;
    let (found, sampled) = match n {
        Some(n) => {
            // A week from the given day (default: the last seven days'
            // Monday): the seed is that day, so the draw is reproducible.
            let week = set(&p.week).ok_or_else(|| {
                DeskError::BadRequest("the sampler needs the week's first day".into())
            })?;
            let start = day_ms("Week", &week)?;
            f.from_ms = Some(start);
            f.to_ms = Some(start + 7 * DAY_MS);
            let pool = qa::decided_by(db, &f).await?;
            let ids = sample(&pool, n, &week);
            (
                qa::decisions_of(db, &ids).await?,
                Some(format!(
                    "{} per agent from the week of {week}: {} of {} decisions",
                    n,
                    ids.len(),
                    pool.len()
                )),
            )
        }
        None => (qa::decisions(db, &f, LIST).await?, None),
    };
    let rows = found
        .into_iter()
        .map(|d| {
            let doc = d.document().map_err(|e| DeskError::Internal(e.into()))?;
            Ok(DecidedRow {
                name: doc.display_name(),
                agent: d.agent.unwrap_or_default(),
                reason: d.rejection_reason.unwrap_or_default(),
                integrator: d.integrator_name,
                decided: d.verification_time.map(|t| When::at(t, now)),
                failing: d
                    .failing_validations
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(validation::static_label)
                    .collect(),
                qa: match d.qa_verdict.as_deref() {
                    Some("agree") => "Agreed".into(),
                    Some("disagree") => "Disagreed".into(),
                    _ => String::new(),
                },
                scan_id: d.scan_id,
            })
        })
        .collect::<Result<Vec<_>, DeskError>>()?;
    render(&QaPage {
        layout: Layout::new(&session),
        state: f.state.as_str(),
        total: qa::count(db, &f).await?,
        rows,
        sampled,
        agents: qa::agents(db).await?,
        reasons: state.settings.reject_reasons.clone(),
        integrators: rows::list_integrators(db).await?,
        validations: validation::NAMES
            .iter()
            .map(|n| (*n, validation::label(n)))
            .collect(),
        by_agent: rates(qa::rates_by_agent(db).await?),
        by_reason: rates(qa::rates_by_reason(db).await?),
        p,
    })
}

#[derive(Deserialize)]
pub struct VerdictForm {
    verdict: String,
    comment: Option<String>,
}

/// A supervisor's QA verdict on a final case; the case is not changed.
#[tracing::instrument(skip_all)]
pub async fn verdict(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<VerdictForm>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let scan_id = path.into_inner();
    crate::review::qa::record(
        &state.db,
        &scan_id,
        &form.verdict,
        form.comment.as_deref(),
        &session.actor(),
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}
