//! The audit-log explorer: filters that match SQL counts, details in words,
//! the chain's first broken entry linked, and a CSV of exactly the filtered
//! entries.

use crate::both_backends;
use crate::helpers::{client, spawn_app, Backend, AGENT, SUPERVISOR};

both_backends!(the_explorer_filters_reads_and_exports_the_log);

fn rows_on(html: &str) -> usize {
    html.matches("<tr id=\"entry-").count()
}

async fn the_explorer_filters_reads_and_exports_the_log(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(12).await;
    let agent = app.login(AGENT).await;
    let sup = app.login(SUPERVISOR).await;
    let ids = app.cases_in("PENDING_VERIFICATION").await;
    for id in ids.iter().take(2) {
        agent.claim(id).await;
        let r = agent
            .post(
                &format!("/desk/cases/{id}/decision"),
                &[
                    ("action", "reject"),
                    ("reason", "Document expired"),
                    ("comment", "=HYPERLINK(\"x\")"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
    // A failed login whose typed e-mail a spreadsheet would run.
    app.post_login(&client(), "=cmd|' /C calc'!A0", "nope")
        .await;

    let count = |sql: &'static str, arg: String| {
        let app = &app;
        async move { app.scalar_i64(sql, &arg).await as usize }
    };
    // Each filter shows exactly what SQL counts.
    let by_actor = sup
        .get(&format!("/desk/audit?actor={}", AGENT.0.to_uppercase()))
        .await
        .text()
        .await
        .unwrap_or_default();
    let want = count(
        "SELECT COUNT(*) FROM audit_log WHERE actor = $1",
        AGENT.0.into(),
    )
    .await;
    assert!(want > 3 && want < 100, "{want}");
    assert_eq!(rows_on(&by_actor), want, "actor filter (case-insensitive)");

    let decisions = sup
        .get("/desk/audit?action=case.decide")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(rows_on(&decisions), 2);
    // Details read as words, not JSON.
    assert!(
        decisions.contains("rejected → Not verified — Document expired"),
        "{decisions}"
    );
    assert!(
        decisions.contains("<dt>Reason</dt><dd>Document expired</dd>"),
        "{decisions}"
    );
    assert!(decisions.contains("Not verified (NOT_VERIFIED)"));
    assert!(!decisions.contains("{&quot;decision"), "no raw JSON");

    let family = sup
        .get("/desk/audit?action=case.")
        .await
        .text()
        .await
        .unwrap_or_default();
    let want = count(
        "SELECT COUNT(*) FROM audit_log WHERE action LIKE $1",
        "case.%".into(),
    )
    .await;
    assert_eq!(rows_on(&family), want.min(100), "every case action");

    let one_case = sup
        .get(&format!("/desk/audit?case={}", ids[0]))
        .await
        .text()
        .await
        .unwrap_or_default();
    let want = count(
        "SELECT COUNT(*) FROM audit_log WHERE scan_id = $1",
        ids[0].clone(),
    )
    .await;
    assert_eq!(rows_on(&one_case), want);

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let since_today = sup
        .get(&format!("/desk/audit?from={today}&action=case.decide"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(rows_on(&since_today), 2);
    let until_yesterday = sup
        .get(&format!("/desk/audit?to={yesterday}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(rows_on(&until_yesterday), 0);
    assert!(until_yesterday.contains("No entry matches"));
    // Bad filters say what to fix.
    for (q, says) in [
        (format!("from={today}&to={yesterday}"), "swap the dates"),
        ("from=31/12/2026".to_string(), "not a date"),
        ("action=drop%20table".to_string(), "not an action"),
    ] {
        let r = sup.get(&format!("/desk/audit?{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
        assert!(r.text().await.unwrap_or_default().contains(says), "{q}");
    }

    // The export holds exactly the filtered entries, formulas neutralised,
    // and is itself audited.
    let csv = sup.get("/desk/audit.csv?action=login").await;
    assert_eq!(csv.status(), 200);
    assert!(csv
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("text/csv"));
    let body = csv.text().await.unwrap_or_default();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap_or_default()).collect();
    let logins = count(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('login', 'login.failed', $1)",
        "login.locked".into(),
    )
    .await;
    assert_eq!(records.len(), logins);
    assert!(
        records
            .iter()
            .any(|r| r.get(2) == Some("'=cmd|' /c calc'!a0")),
        "formula neutralised: {body}"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "audit.export".into()
        )
        .await,
        1
    );
    let all = count(
        "SELECT COUNT(*) FROM audit_log WHERE action <> $1",
        "-".into(),
    )
    .await;
    let everything = sup
        .get("/desk/audit.csv")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(
        csv::Reader::from_reader(everything.as_bytes())
            .records()
            .count(),
        all + 1,
        "every entry, and this export's own"
    );
    assert_eq!(agent.get("/desk/audit.csv").await.status(), 403);
    assert_eq!(agent.get("/desk/audit").await.status(), 403);

    // A tampered entry: the verdict links to it, on a page that shows it.
    let seq: i64 =
        sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE action = 'case.decide'")
            .fetch_one(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("UPDATE audit_log SET client_addr = '10.6.6.6' WHERE seq = $1")
        .bind(seq)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let verdict = sup
        .post("/desk/audit/verify", &[])
        .await
        .text()
        .await
        .unwrap_or_default();
    let link = format!("href=\"/desk/audit?before={}#entry-{seq}\"", seq + 1);
    assert!(verdict.contains(&link), "{verdict}");
    let there = sup
        .get(&format!("/desk/audit?before={}", seq + 1))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(there.contains(&format!("<tr id=\"entry-{seq}\">")));
}
