//! CSV export of queue views: supervisors and admins only, the view's
//! filters honoured, every matching row across keyset batches, formulas
//! neutralised, and audited.

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp, AGENT, SUPERVISOR};
use kycdesk::domain::{Document, State};
use kycdesk::store::processes::NewProcess;

both_backends!(csv_export_equals_the_view_and_neutralises_formulas);

/// Rejected cases, quickly: more than one export batch (1,000 rows).
async fn add_rejected(app: &TestApp, n: usize, integrator_id: &str) {
    let now = kycdesk::domain::now_ms();
    let ps: Vec<NewProcess> = (0..n)
        .map(|i| NewProcess {
            scan_id: uuid::Uuid::new_v4().to_string(),
            integrator_id: integrator_id.into(),
            state: State::NotVerified,
            country_id: Some("ESP".into()),
            doc_type: Some("IDCard".into()),
            doc_specific_type: None,
            redirect_url: None,
            document: Document {
                name: Some(format!("Bulk{i}")),
                surname: Some("Export".into()),
                ..Document::default()
            },
            validations: "{}".into(),
            failing_validations: ",".into(),
            agent: Some("agent@kycdesk.demo".into()),
            verification_result: Some("KO".into()),
            rejection_reason: Some("Document expired".into()),
            // Every tenth carries what a spreadsheet would run as a formula.
            comment: Some(if i % 10 == 0 {
                "=HYPERLINK(\"http://evil.example\",\"click\")".into()
            } else {
                format!("bulk {i}")
            }),
            client_info: None,
            pdf_checksum: None,
            created_at: now - 1_000_000 + i as i64,
            verification_time: Some(now),
        })
        .collect();
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    for chunk in ps.chunks(200) {
        kycdesk::store::processes::insert_many(&mut tx, chunk, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
}

fn parse(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(body.as_bytes());
    let header = r
        .headers()
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(str::to_string)
        .collect();
    let rows = r
        .records()
        .map(|x| {
            x.unwrap_or_else(|e| panic!("{e}"))
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (header, rows)
}

async fn csv_export_equals_the_view_and_neutralises_formulas(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let integrator: String =
        sqlx::query_scalar("SELECT id FROM integrators WHERE name = 'Nordic Pay'")
            .fetch_one(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    add_rejected(&app, 1_150, &integrator).await;

    // Agents may not export.
    let agent = app.login(AGENT).await;
    let r = agent.get("/desk/queue.csv?state=NOT_VERIFIED").await;
    assert_eq!(r.status(), 403);

    let sup = app.login(SUPERVISOR).await;
    let r = sup.get("/desk/queue.csv?state=NOT_VERIFIED").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/csv"));
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap_or_default()
        .starts_with("attachment; filename=\"kycdesk-not_verified-"));
    let body = r.text().await.unwrap_or_default();
    let (header, rows) = parse(&body);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let mut exported: Vec<String> = rows.iter().map(|r| r[col("scanId")].clone()).collect();
    let mut direct = app.cases_in("NOT_VERIFIED").await;
    assert!(direct.len() > 1_150, "more than one batch");
    exported.sort();
    direct.sort();
    assert_eq!(exported, direct, "every rejected case, once");
    // Newest first, like the view.
    let times: Vec<&String> = rows.iter().map(|r| &r[col("createdAt")]).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Formulas are text; nothing else is touched.
    let comments: Vec<&String> = rows.iter().map(|r| &r[col("comment")]).collect();
    assert!(comments
        .iter()
        .any(|c| c.as_str() == "'=HYPERLINK(\"http://evil.example\",\"click\")"));
    assert!(
        comments.iter().all(|c| !c.starts_with('=')),
        "no cell starts a formula"
    );
    assert!(comments.iter().any(|c| c.as_str() == "bulk 1"));
    assert!(rows
        .iter()
        .all(|r| r[col("stateLabel")] == "Not verified" && r[col("verificationResult")] == "KO"));

    // A filter of the view is honoured.
    let r = sup
        .get(&format!(
            "/desk/queue.csv?state=NOT_VERIFIED&integrator={integrator}"
        ))
        .await;
    let (_, rows) = parse(&r.text().await.unwrap_or_default());
    let n = app
        .scalar_i64(
            "SELECT COUNT(*) FROM processes WHERE state = 'NOT_VERIFIED' AND integrator_id = $1",
            &integrator,
        )
        .await;
    assert_eq!(rows.len() as i64, n);
    assert!(rows.iter().all(|r| r[col("integrator")] == "Nordic Pay"));
    // A bad filter is refused before anything is written.
    let r = sup.get("/desk/queue.csv?state=NOPE").await;
    assert_eq!(r.status(), 400);

    // Audited, with the view's query.
    let exports = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "queue.export",
        )
        .await;
    assert_eq!(exports, 2, "two exports, each audited once");
}
