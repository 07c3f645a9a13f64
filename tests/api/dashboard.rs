//! The dashboard's numbers equal direct counts on the processes table,
//! after desk decisions, API deletes and a rebuild from scratch.

use crate::both_backends;
use crate::helpers::{call, integrator, spawn_app, token, Backend, TestApp, AGENT, SUPERVISOR};
use kycdesk::desk::dashboard::{figures, Figures};
use kycdesk::domain::metrics::{
    backlog_band, bucket_label, day_of, hour_of, ttd_bucket, BACKLOG_BANDS, DAY_MS,
};
use std::collections::BTreeMap;

both_backends!(dashboard_numbers_equal_direct_counts);

#[derive(sqlx::FromRow)]
struct Decided {
    state: String,
    agent: Option<String>,
    reason: Option<String>,
    name: String,
    created_at: i64,
    decided_at: i64,
    sla_hours: Option<i64>,
}

/// The figures computed straight from `processes`, the slow way.
async fn direct(app: &TestApp, from: i64, to: i64, now: i64) -> (Figures, Vec<i64>) {
    let rows: Vec<Decided> = sqlx::query_as(
        "SELECT p.state, p.agent, p.rejection_reason AS reason, i.name, p.created_at, \
         COALESCE(p.verification_time, p.created_at) AS decided_at, i.sla_hours \
         FROM processes p JOIN integrators i ON i.id = p.integrator_id \
         WHERE p.state IN ('VERIFIED', 'NOT_VERIFIED') \
         AND COALESCE(p.verification_time, p.created_at) >= $1 AND COALESCE(p.verification_time, p.created_at) < $2",
    )
    .bind(from * DAY_MS)
    .bind(to * DAY_MS)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut f = Figures::default();
    let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_day: BTreeMap<i64, (i64, i64)> = (from..to).map(|d| (d, (0, 0))).collect();
    let mut ttds = Vec::new();
    for r in &rows {
        let took = r.decided_at - r.created_at;
        ttds.push(took);
        if r.sla_hours.is_some_and(|h| h > 0 && took > h * 3_600_000) {
            f.breaches += 1;
        }
        if r.state == "NOT_VERIFIED" {
            f.rejected += 1;
            *reasons
                .entry(
                    r.reason
                        .clone()
                        .unwrap_or_else(|| "(no reason given)".into()),
                )
                .or_default() += 1;
        } else {
            f.verified += 1;
        }
        let _ = (&r.agent, &r.name);
        let day = per_day.entry(day_of(r.decided_at)).or_default();
        if r.state == "NOT_VERIFIED" {
            day.1 += 1;
        } else {
            day.0 += 1;
        }
    }
    f.per_day = per_day.into_iter().map(|(d, (a, r))| (d, a, r)).collect();
    f.reasons = reasons.into_iter().collect();
    f.reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let open: Vec<i64> = sqlx::query_scalar(
        "SELECT created_at FROM processes WHERE state IN ('PENDING_VERIFICATION', 'PENDING_VALIDATION')",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut bands = vec![0i64; BACKLOG_BANDS.len()];
    for c in &open {
        bands[backlog_band((hour_of(now) - hour_of(*c)).max(0))] += 1;
    }
    f.backlog_total = open.len() as i64;
    f.backlog = BACKLOG_BANDS
        .iter()
        .zip(bands)
        .map(|((l, _), n)| (l.to_string(), n))
        .collect();
    // Per agent and per integrator, as (key, accepted, rejected).
    let mut agents: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut integrators: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        let rej = r.state == "NOT_VERIFIED";
        for (m, k) in [
            (
                &mut agents,
                r.agent
                    .clone()
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "(no agent)".into()),
            ),
            (&mut integrators, r.name.clone()),
        ] {
            let e = m.entry(k).or_default();
            if rej {
                e.1 += 1
            } else {
                e.0 += 1
            }
        }
    }
    let groups = |m: BTreeMap<String, (i64, i64)>| {
        m.into_iter()
            .map(|(k, (v, r))| kycdesk::desk::dashboard::Group {
                key: k,
                verified: v,
                rejected: r,
                ..Default::default()
            })
            .collect()
    };
    f.agents = groups(agents);
    f.integrators = groups(integrators);
    ttds.sort_unstable();
    (f, ttds)
}

/// The exact nearest-rank percentile's bucket.
fn exact(ttds: &[i64], p: f64) -> String {
    if ttds.is_empty() {
        return "—".into();
    }
    let rank = ((p * ttds.len() as f64).ceil() as usize).max(1);
    bucket_label(ttd_bucket(ttds[rank - 1]) as usize)
}

fn groups(g: &[kycdesk::desk::dashboard::Group]) -> BTreeMap<String, (i64, i64)> {
    g.iter()
        .map(|g| (g.key.clone(), (g.verified, g.rejected)))
        .collect()
}

/// Over 400 days (the rollups read whole, in group order) and over the
/// last 30 (read by day).
async fn check(app: &TestApp, what: &str) {
    for days in [400, 30] {
        check_days(app, &format!("{what}, {days} days"), days).await;
    }
}

async fn check_days(app: &TestApp, what: &str, days: i64) {
    let now = kycdesk::domain::now_ms();
    let (from, to) = (day_of(now) - days, day_of(now) + 1);
    let got = figures(&app.state, from, to, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (want, ttds) = direct(app, from, to, now).await;
    assert!(
        want.verified + want.rejected > 0,
        "{what}: there are decisions"
    );
    assert_eq!(
        (got.verified, got.rejected, got.breaches),
        (want.verified, want.rejected, want.breaches),
        "{what}: accepted, rejected, breaches"
    );
    assert_eq!(got.reasons, want.reasons, "{what}: reasons");
    assert_eq!(got.per_day, want.per_day, "{what}: per day");
    // The bands are summed by the database: cases in several bands, or a
    // wrong cut between two of them would go unseen.
    assert!(
        want.backlog.iter().filter(|(_, n)| *n > 0).count() >= 3,
        "{what}: awaiting cases of several ages: {:?}",
        want.backlog
    );
    assert_eq!(got.backlog, want.backlog, "{what}: backlog by age");
    assert_eq!(got.backlog_total, want.backlog_total, "{what}");
    assert_eq!(
        groups(&got.agents),
        groups(&want.agents),
        "{what}: per agent"
    );
    assert_eq!(
        groups(&got.integrators),
        groups(&want.integrators),
        "{what}: per integrator"
    );
    assert_eq!(got.p50, exact(&ttds, 0.5), "{what}: median");
    assert_eq!(got.p90, exact(&ttds, 0.9), "{what}: p90");
    let per_day_total: i64 = got.per_day.iter().map(|d| d.1 + d.2).sum();
    assert_eq!(
        per_day_total,
        want.verified + want.rejected,
        "{what}: per day"
    );
}

async fn dashboard_numbers_equal_direct_counts(b: Backend) {
    let Some(mut app) = spawn_app(b).await else {
        return;
    };
    // Review targets first, so decisions count their breaches.
    sqlx::query("UPDATE integrators SET sla_hours = 24")
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.seed(60).await;
    check(&app, "after the seed").await;

    let agent = app.login(AGENT).await;
    let pending = app.cases_in("PENDING_VERIFICATION").await;
    for (i, id) in pending.iter().take(6).enumerate() {
        agent.claim(id).await;
        let form: Vec<(&str, &str)> = if i % 2 == 0 {
            vec![("action", "accept"), ("confirm_failing", "1")]
        } else {
            vec![("action", "reject"), ("reason", "Document expired")]
        };
        let r = agent
            .post(&format!("/desk/cases/{id}/decision"), &form)
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
    check(&app, "after desk decisions").await;

    // An integrator deletes one of the decided cases.
    let c = integrator(&app, "Dashboard Bank").await;
    let gone = app.cases_in("NOT_VERIFIED").await.remove(0);
    let gone_agent = app.process_field(&gone, "agent").await;
    sqlx::query("UPDATE integrators SET sla_hours = NULL WHERE id = $1")
        .bind(&c.integrator_id)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Hand the case to the new integrator the way the rollups saw it:
    // uncount, move, count again (a raw UPDATE of integrator_id is not
    // something kycdesk does).
    {
        use kycdesk::store::metrics::{add_finals, Final};
        let row: (String, Option<String>, i64, Option<i64>, String) = sqlx::query_as(
            "SELECT integrator_id, rejection_reason, created_at, verification_time, state FROM processes WHERE scan_id = $1",
        )
        .bind(&gone)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
        let st: kycdesk::domain::State = row.4.parse().unwrap_or_else(|e| panic!("{e}"));
        let old = Final::of(
            &row.0,
            st,
            gone_agent.as_deref(),
            row.1.as_deref(),
            row.2,
            row.3,
        );
        let new = Final::of(
            &c.integrator_id,
            st,
            gone_agent.as_deref(),
            row.1.as_deref(),
            row.2,
            row.3,
        );
        add_finals(&mut tx, &[old], -1, app.state.db.counter_shard().id())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("UPDATE processes SET integrator_id = $1 WHERE scan_id = $2")
            .bind(&c.integrator_id)
            .bind(&gone)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        add_finals(&mut tx, &[new], 1, app.state.db.counter_shard().id())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    }
    check(&app, "after moving a case").await;
    let tok = token(&app, &c).await;
    let (s, body) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/mobbscan-agent/api/verification/{gone}"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    check(&app, "after an API delete").await;
    // Counter shards folded as if every day were past (PostgreSQL; SQLite
    // has one shard): the same numbers from one row per key.
    kycdesk::store::metrics::fold_shards(
        &app.state.db,
        kycdesk::domain::now_ms() + 3 * kycdesk::domain::metrics::DAY_MS,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    check(&app, "after folding the counter shards").await;

    // The page shows the same numbers, to supervisors only.
    let sup = app.login(SUPERVISOR).await;
    let now = kycdesk::domain::now_ms();
    let f = figures(&app.state, day_of(now) - 29, day_of(now) + 1, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let html = sup
        .get("/desk/dashboard")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        html.contains(&format!(
            "id=\"kpi-decisions\">{}<",
            f.verified + f.rejected
        )),
        "{html}"
    );
    assert!(html.contains(&format!("id=\"kpi-backlog\">{}<", f.backlog_total)));
    assert!(html.contains("<svg class=\"chart\" id=\"throughput\""));
    assert_eq!(agent.get("/desk/dashboard").await.status(), 403);
    let bad = sup
        .get("/desk/dashboard?from=2020-01-01&to=2026-01-01")
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap_or_default().contains("at most 366"));

    // Built again from the processes alone (as at the first start after
    // the migration), the rollups give the same numbers.
    for t in [
        "decision_rollup",
        "ttd_rollup",
        "open_by_hour",
        "rollup_meta",
    ] {
        sqlx::query(&format!("DELETE FROM {t}"))
            .execute(app.state.db.write())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    app.restart().await;
    check(&app, "after a rebuild").await;
}
