//! The rejection audit: totals equal direct counts, filters honoured, a QA
//! verdict leaves the final case untouched and moves the overturn rate, the
//! sampler is reproducible, and only supervisors and admins may use it.

use crate::both_backends;
use crate::helpers::{between, spawn_app, Backend, Desk, AGENT, SUPERVISOR};

both_backends!(qa_verdicts_move_rates_and_never_change_the_case);

async fn page(desk: &Desk, query: &str) -> String {
    let r = desk.get(&format!("/desk/qa?{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    r.text().await.unwrap_or_default()
}

fn total(html: &str) -> i64 {
    between(html, "<p id=\"qa-total\"><b>", "</b>")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in {html}"))
}

fn listed(html: &str) -> Vec<String> {
    let table = between(html, "id=\"qa-decisions\"", "</table>").unwrap_or_default();
    table
        .split("href=\"/desk/cases/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

async fn qa_verdicts_move_rates_and_never_change_the_case(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(60).await;
    let agent = app.login(AGENT).await;
    let sup = app.login(SUPERVISOR).await;
    assert_eq!(agent.get("/desk/qa").await.status(), 403);

    // Totals equal the data, with and without a filter.
    let html = page(&sup, "state=NOT_VERIFIED").await;
    assert_eq!(
        total(&html),
        app.scalar_i64(
            "SELECT COUNT(*) FROM processes WHERE state = $1",
            "NOT_VERIFIED"
        )
        .await
    );
    let reason: String = sqlx::query_scalar(
        "SELECT rejection_reason FROM processes WHERE state = 'NOT_VERIFIED' ORDER BY scan_id LIMIT 1",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let q = format!(
        "state=NOT_VERIFIED&reason={}",
        url::form_urlencoded::byte_serialize(reason.as_bytes()).collect::<String>()
    );
    let html = page(&sup, &q).await;
    assert_eq!(
        total(&html),
        app.scalar_i64(
            "SELECT COUNT(*) FROM processes WHERE state = 'NOT_VERIFIED' AND rejection_reason = $1",
            &reason
        )
        .await
    );
    assert_eq!(
        sup.get("/desk/qa?state=PENDING_VERIFICATION")
            .await
            .status(),
        400
    );
    assert_eq!(sup.get("/desk/qa?from=31/02/2026").await.status(), 400);

    // A verdict: disagreeing needs a comment; the case stays as it was.
    let rejected = app.cases_in("NOT_VERIFIED").await;
    let (one, two) = (&rejected[0], &rejected[1]);
    let before = (
        app.process_field(one, "state").await,
        app.process_field(one, "agent").await,
        app.process_field(one, "rejection_reason").await,
    );
    let path = format!("/desk/cases/{one}/qa");
    let r = sup.post(&path, &[("verdict", "disagree")]).await;
    assert_eq!(r.status(), 400);
    let r = agent.post(&path, &[("verdict", "agree")]).await;
    assert_eq!(r.status(), 403, "agents give no QA verdicts");
    let r = sup
        .post(
            &path,
            &[
                ("verdict", "disagree"),
                ("comment", "The expiry date was misread"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let after = (
        app.process_field(one, "state").await,
        app.process_field(one, "agent").await,
        app.process_field(one, "rejection_reason").await,
    );
    assert_eq!(before, after, "a QA verdict never changes the case");
    let r = sup.post(&path, &[("verdict", "agree")]).await;
    assert_eq!(r.status(), 409, "one verdict per case");
    let case_page = sup
        .get(&format!("/desk/cases/{one}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        case_page.contains("disagreed with the decision (correct outcome: Verified)"),
        "{case_page}"
    );
    // Not on an open case.
    let open = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    let r = sup
        .post(&format!("/desk/cases/{open}/qa"), &[("verdict", "agree")])
        .await;
    assert_eq!(r.status(), 409);

    // The overturn rate moves: 1 of 1, then 1 of 2.
    let html = page(&sup, "state=NOT_VERIFIED").await;
    let agent_rates = between(&html, "id=\"rates-agent\"", "</table>").unwrap_or_default();
    assert!(
        agent_rates.contains("<td>agent@kycdesk.demo</td><td>1</td><td>1</td><td>100.0 %</td>"),
        "{agent_rates}"
    );
    let r = sup
        .post(&format!("/desk/cases/{two}/qa"), &[("verdict", "agree")])
        .await;
    assert_eq!(r.status(), 200);
    let html = page(&sup, "state=NOT_VERIFIED").await;
    let agent_rates = between(&html, "id=\"rates-agent\"", "</table>").unwrap_or_default();
    assert!(
        agent_rates.contains("<td>agent@kycdesk.demo</td><td>2</td><td>1</td><td>50.0 %</td>"),
        "{agent_rates}"
    );
    let audited = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "case.qa",
        )
        .await;
    assert_eq!(audited, 2);

    // The sampler: reproducible, at most N per agent, drawn from the week.
    let first: i64 = sqlx::query_scalar(
        "SELECT MIN(verification_time) FROM processes WHERE state = 'NOT_VERIFIED'",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let week = chrono::DateTime::from_timestamp_millis(first)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let q = format!("state=NOT_VERIFIED&sample=3&week={week}");
    let a = listed(&page(&sup, &q).await);
    let b = listed(&page(&sup, &q).await);
    assert!(!a.is_empty() && a.len() <= 3, "{a:?}");
    assert_eq!(a, b, "the same draw every time");
    let start = first - first.rem_euclid(86_400_000);
    let pool: Vec<(String, String)> = sqlx::query_as(
        "SELECT scan_id, agent FROM processes WHERE state = 'NOT_VERIFIED' AND verification_time >= $1 AND verification_time < $2",
    )
    .bind(start)
    .bind(start + 7 * 86_400_000)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut want = kycdesk::domain::qa::sample(&pool, 3, &week);
    let mut got = a.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "the page draws what the sampler defines");
}
