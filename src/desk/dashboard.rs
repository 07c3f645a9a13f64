//! The supervisors' dashboard: throughput per day, decision mix by reason,
//! time to decision (p50 / p90), backlog by age, review-target breaches,
//! per agent and per integrator, and QA overturn rates, for a range of
//! days. Every figure comes from the rollups (store::metrics), which change
//! in the same transactions as what they count.

use super::charts::{self, Stack};
use super::error::DeskError;
use super::params::set;
use super::{render, Layout};
use crate::desk::session::DeskSession;
use crate::domain::metrics::{
    backlog_cuts, bucket_label, day_of, hour_of, percentile_bucket, BACKLOG_BANDS, DAY_MS,
    TTD_BOUNDS_MIN,
};
use crate::domain::{now_ms, Role, State};
use crate::state::AppState;
use crate::store::{metrics as rows, processes, qa};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The longest range one page shows (a year of days).
const MAX_DAYS: i64 = 366;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DashParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Figures of one agent or integrator.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Group {
    pub key: String,
    pub verified: i64,
    pub rejected: i64,
    pub breaches: i64,
    pub hist: Vec<i64>,
    pub p50: String,
    pub p90: String,
}

impl Group {
    pub fn decisions(&self) -> i64 {
        self.verified + self.rejected
    }
}

/// Everything the page shows, computed from the rollups.
#[derive(Debug, Default)]
pub struct Figures {
    pub verified: i64,
    pub rejected: i64,
    pub breaches: i64,
    pub p50: String,
    pub p90: String,
    /// (day, verified, rejected) for every day of the range.
    pub per_day: Vec<(i64, i64, i64)>,
    /// Rejections per reason, most first.
    pub reasons: Vec<(String, i64)>,
    pub agents: Vec<Group>,
    pub integrators: Vec<Group>,
    /// Cases awaiting review per age band.
    pub backlog: Vec<(String, i64)>,
    pub backlog_total: i64,
}

fn pct(hist: &[i64], p: f64) -> String {
    percentile_bucket(hist, p).map_or("—".into(), bucket_label)
}

fn add_hist(into: &mut Vec<i64>, bucket: i64, n: i64) {
    let len = TTD_BOUNDS_MIN.len() + 1;
    if into.len() < len {
        into.resize(len, 0);
    }
    if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| into.get_mut(b)) {
        *slot += n;
    }
}

/// The dashboard's figures for the days `from..to` (UTC day numbers, `to`
/// excluded), at `now`.
pub async fn figures(state: &AppState, from: i64, to: i64, now: i64) -> Result<Figures, DeskError> {
    let db = state.db.read();
    let names: BTreeMap<String, String> = processes::list_integrators(db)
        .await?
        .into_iter()
        .map(|i| (i.id, i.name))
        .collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let agent_of = |a: &str| {
        if a.is_empty() {
            "(no agent)".to_string()
        } else {
            a.to_string()
        }
    };
    let mut f = Figures::default();
    let mut per_day: BTreeMap<i64, (i64, i64)> = (from..to).map(|d| (d, (0, 0))).collect();
    let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
    let mut agents: BTreeMap<String, Group> = BTreeMap::new();
    let mut integrators: BTreeMap<String, Group> = BTreeMap::new();
    for (d, accepted, rejected) in
        rows::decisions_per_day(db, from, to, State::NotVerified.as_str()).await?
    {
        let day = per_day.entry(d).or_default();
        day.0 += accepted;
        day.1 += rejected;
    }
    for r in rows::decisions(db, state.db.backend, from, to).await? {
        let rejected = r.state == State::NotVerified.as_str();
        let group_keys = [
            (&mut agents, agent_of(&r.agent)),
            (&mut integrators, name_of(&r.integrator_id)),
        ];
        for (groups, key) in group_keys {
            let g = groups.entry(key.clone()).or_insert_with(|| Group {
                key,
                ..Group::default()
            });
            if rejected {
                g.rejected += r.n;
            } else {
                g.verified += r.n;
            }
            g.breaches += r.breaches;
        }
        if rejected {
            f.rejected += r.n;
            let reason = if r.reason.is_empty() {
                "(no reason given)".to_string()
            } else {
                r.reason.clone()
            };
            *reasons.entry(reason).or_default() += r.n;
        } else {
            f.verified += r.n;
        }
        f.breaches += r.breaches;
    }
    let mut all = Vec::new();
    for t in rows::ttd(db, state.db.backend, from, to).await? {
        add_hist(&mut all, t.bucket, t.n);
        for (groups, key) in [
            (&mut agents, agent_of(&t.agent)),
            (&mut integrators, name_of(&t.integrator_id)),
        ] {
            if let Some(g) = groups.get_mut(&key) {
                add_hist(&mut g.hist, t.bucket, t.n);
            }
        }
    }
    f.p50 = pct(&all, 0.5);
    f.p90 = pct(&all, 0.9);
    for groups in [&mut agents, &mut integrators] {
        for g in groups.values_mut() {
            g.p50 = pct(&g.hist, 0.5);
            g.p90 = pct(&g.hist, 0.9);
        }
    }
    f.per_day = per_day.into_iter().map(|(d, (a, r))| (d, a, r)).collect();
    f.reasons = reasons.into_iter().collect();
    f.reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    f.agents = agents.into_values().collect();
    f.agents.sort_by_key(|g| std::cmp::Reverse(g.decisions()));
    f.integrators = integrators.into_values().collect();
    f.integrators
        .sort_by_key(|g| std::cmp::Reverse(g.decisions()));
    let mut bands = vec![0i64; BACKLOG_BANDS.len()];
    for (band, n) in rows::open_by_band(db, &backlog_cuts(hour_of(now))).await? {
        if let Some(slot) = usize::try_from(band).ok().and_then(|b| bands.get_mut(b)) {
            *slot += n;
        }
    }
    f.backlog_total = bands.iter().sum();
    f.backlog = BACKLOG_BANDS
        .iter()
        .zip(bands)
        .map(|((label, _), n)| (label.to_string(), n))
        .collect();
    Ok(f)
}

#[derive(Template)]
#[template(path = "desk/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    from: String,
    to: String,
    days: i64,
    f: Figures,
    /// (date, accepted, rejected) per day, for the table under the chart.
    day_rows: Vec<(String, i64, i64)>,
    throughput_svg: String,
    legend_svg: String,
    reasons_svg: String,
    backlog_svg: String,
    qa: Vec<super::qa::Rate>,
}

fn date(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn short(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|d| d.format("%-d %b").to_string())
        .unwrap_or_default()
}

/// The range asked for, by default the last 30 days including today.
fn range(p: &DashParams, now: i64) -> Result<(i64, i64), DeskError> {
    let (from_ms, to_ms) = super::params::day_range(&p.from, &p.to)?;
    let to = to_ms.map_or(day_of(now) + 1, day_of);
    let from = from_ms.map_or(to - 30, day_of);
    if to - from > MAX_DAYS {
        return Err(DeskError::BadRequest(format!(
            "From: the range covers {} days; choose at most {MAX_DAYS}",
            to - from
        )));
    }
    Ok((from, to))
}

#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    session: DeskSession,
    q: web::Query<DashParams>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let now = now_ms();
    let p = q.into_inner();
    let (from, to) = range(&p, now)?;
    let f = figures(&state, from, to, now).await?;
    let names = ("accepted", "rejected");
    let stacks: Vec<Stack> = f
        .per_day
        .iter()
        .map(|(d, a, r)| Stack {
            label: short(*d),
            a: *a,
            b: *r,
        })
        .collect();
    let qa = super::qa::rates(qa::rates_by_agent(state.db.read()).await?);
    render(&DashboardPage {
        layout: Layout::new(&session),
        from: set(&p.from).unwrap_or_else(|| date(from)),
        to: set(&p.to).unwrap_or_else(|| date(to - 1)),
        days: to - from,
        day_rows: f
            .per_day
            .iter()
            .map(|(d, a, r)| (date(*d), *a, *r))
            .collect(),
        throughput_svg: charts::stacked_bars("throughput", "Decisions per day", names, &stacks),
        legend_svg: charts::legend("throughput", names),
        reasons_svg: charts::hbars("reasons", "Rejections by reason", &f.reasons),
        backlog_svg: charts::hbars("backlog", "Cases awaiting review by age", &f.backlog),
        f,
        qa,
    })
}
