//! Bulk actions on a queue selection: assign, release, note — each case
//! audited on its own, cases that cannot take the action reported, refused
//! requests changing nothing.

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, Desk, TestApp, ADMIN, AGENT, SUPERVISOR};

both_backends!(
    bulk_assign_release_and_note_are_audited_per_case,
    concurrent_bulk_assignments_leave_the_audit_matching_the_holder
);

async fn bulk(desk: &Desk, cases: &[&str], fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = cases.iter().map(|c| ("case", *c)).collect();
    form.extend_from_slice(fields);
    desk.post("/desk/queue/bulk", &form).await
}

async fn holder(app: &TestApp, id: &str) -> Option<String> {
    app.process_field(id, "claimed_by").await
}

async fn entries(app: &TestApp, action: &str) -> i64 {
    app.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action = $1", action)
        .await
}

async fn bulk_assign_release_and_note_are_audited_per_case(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(20).await;
    let agent = app.login(AGENT).await;
    let sup = app.login(SUPERVISOR).await;
    let pending = app.cases_in("PENDING_VERIFICATION").await;
    let final_case = app.cases_in("NOT_VERIFIED").await.remove(0);
    let (a, rest) = pending.split_first().unwrap_or_else(|| panic!("no cases"));
    let (bcd, _) = rest.split_at(3);
    agent.claim(a).await;
    let mut selection: Vec<&str> = vec![a.as_str()];
    selection.extend(bcd.iter().map(String::as_str));
    selection.extend([final_case.as_str(), "no-such-case", bcd[0].as_str()]);

    // The queue page offers the selection to supervisors only.
    let page = sup
        .get("/desk/queue")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(page.contains("id=\"bulk-form\"") && page.contains("name=\"case\""));
    let agent_page = agent
        .get("/desk/queue")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(!agent_page.contains("id=\"bulk-form\""));
    // The assign drop-down offers the active desk users, by e-mail, and
    // no longer offers one who was deactivated.
    assert_eq!(
        assignees(&page),
        vec![ADMIN.0, AGENT.0, SUPERVISOR.0],
        "{page}"
    );
    sqlx::query("UPDATE users SET active = 0 WHERE email = $1")
        .bind(ADMIN.0)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let page = sup.html("/desk/queue").await;
    assert_eq!(assignees(&page), vec![AGENT.0, SUPERVISOR.0], "{page}");
    assert_eq!(
        bulk(&agent, &selection, &[("action", "release")])
            .await
            .status(),
        403
    );

    let r = bulk(
        &sup,
        &selection,
        &[("action", "assign"), ("assignee", AGENT.0)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("hx-trigger").and_then(|v| v.to_str().ok()),
        Some("queue-changed")
    );
    let html = r.text().await.unwrap_or_default();
    assert!(
        html.contains("Assigned 3 cases to agent@kycdesk.demo."),
        "{html}"
    );
    assert!(html.contains("3 left unchanged"), "{html}");
    assert!(
        html.contains("agent@kycdesk.demo already holds it"),
        "{html}"
    );
    assert!(html.contains("it is final"), "{html}");
    assert!(html.contains("no such case"), "{html}");
    for id in std::iter::once(a).chain(bcd) {
        assert_eq!(holder(&app, id).await.as_deref(), Some(AGENT.0));
    }
    assert_eq!(holder(&app, &final_case).await, None);
    assert_eq!(
        entries(&app, "case.assign").await,
        3,
        "one entry per changed case"
    );
    // The case history says it in words.
    let case_page = sup
        .get(&format!("/desk/cases/{}", bcd[1]))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(case_page.contains("assigned the case to agent@kycdesk.demo"));

    // Refused requests change nothing and say what to fix.
    for (cases, fields, says) in [
        (
            selection.clone(),
            vec![("action", "assign"), ("assignee", "ghost@kycdesk.demo")],
            "not an active desk user",
        ),
        (
            selection.clone(),
            vec![("action", "assign")],
            "choose who gets",
        ),
        (
            vec![],
            vec![("action", "release")],
            "select at least one case",
        ),
        (
            selection.clone(),
            vec![("action", "accept")],
            "choose assign, release",
        ),
        (
            selection.clone(),
            vec![("action", "note"), ("note", "  ")],
            "the note is empty",
        ),
    ] {
        let before = entries(&app, "case.assign").await
            + entries(&app, "case.release").await
            + entries(&app, "case.note").await;
        let r = bulk(&sup, &cases, &fields).await;
        assert_eq!(r.status(), 400, "{says}");
        assert!(r.text().await.unwrap_or_default().contains(says), "{says}");
        let after = entries(&app, "case.assign").await
            + entries(&app, "case.release").await
            + entries(&app, "case.note").await;
        assert_eq!(before, after, "{says}: nothing recorded");
    }
    assert_eq!(
        holder(&app, bcd[2].as_str()).await.as_deref(),
        Some(AGENT.0)
    );

    let r = bulk(&sup, &selection[..4], &[("action", "release")]).await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("Released 4 cases."));
    for id in &selection[..4] {
        assert_eq!(holder(&app, id).await, None);
    }
    let released: i64 = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.release' AND actor = $1",
            SUPERVISOR.0,
        )
        .await;
    assert_eq!(released, 4);

    let r = bulk(
        &sup,
        &selection[..2],
        &[
            ("action", "note"),
            ("note", "Checked against the sanctions list"),
        ],
    )
    .await;
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("Added the note to 2 cases."));
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM notes WHERE body = $1",
            "Checked against the sanctions list"
        )
        .await,
        2
    );
}

async fn concurrent_bulk_assignments_leave_the_audit_matching_the_holder(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let sup = app.login(SUPERVISOR).await;
    let admin = app.login(ADMIN).await;
    let cases = app.cases_in("PENDING_VERIFICATION").await;
    let cases: Vec<&str> = cases.iter().take(12).map(String::as_str).collect();
    let (r1, r2) = tokio::join!(
        bulk(&sup, &cases, &[("action", "assign"), ("assignee", AGENT.0)]),
        bulk(
            &admin,
            &cases,
            &[("action", "assign"), ("assignee", SUPERVISOR.0)]
        ),
    );
    assert_eq!((r1.status().as_u16(), r2.status().as_u16()), (200, 200));
    for id in &cases {
        let now = holder(&app, id).await;
        assert!(
            now.as_deref() == Some(AGENT.0) || now.as_deref() == Some(SUPERVISOR.0),
            "{id}: {now:?}"
        );
        let last: String = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'case.assign' AND scan_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(*id)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let to = serde_json::from_str::<serde_json::Value>(&last)
            .ok()
            .and_then(|v| v["to"].as_str().map(str::to_string));
        assert_eq!(to, now, "{id}: the last assignment recorded is the holder");
    }
}

/// The e-mails the bulk form's assignee drop-down offers, in order.
fn assignees(page: &str) -> Vec<String> {
    let select = crate::helpers::between(page, "id=\"bulk-assignee\">", "</select>")
        .unwrap_or_else(|| panic!("no assignee drop-down in {page}"));
    select
        .split("<option value=\"")
        .skip(1)
        .filter_map(|o| o.split('"').next())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}
