use crate::both_backends;
use crate::helpers::{between, spawn_app, Backend, ADMIN, AGENT};
use std::collections::HashSet;

both_backends!(
    tabs_count_every_state,
    keyset_pages_visit_every_case_once_oldest_first,
    filters_and_search_narrow_the_queue,
    htmx_gets_a_partial_and_urls_are_bookmarkable,
    bad_filters_are_refused_clearly,
    take_next_gives_concurrent_agents_different_cases_of_the_view,
    score_sort_pages_and_overdue_filter_match_the_data,
    several_words_in_any_order_and_scan_id_prefixes_find_the_case,
    word_index_search_matches_the_data_on_every_path,
    review_targets_are_validated_at_the_form
);

/// Follows the "Next page" links from `first` (at most 20 pages) and
/// returns the scanIds of every row in the order shown.
async fn walk_pages(desk: &crate::helpers::Desk, first: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut path = first.to_string();
    for _ in 0..20 {
        let html = desk.get(&path).await.text().await.unwrap_or_default();
        seen.extend(scan_ids(&html));
        match between(&html, "id=\"next-page\" href=\"", "\"") {
            Some(next) => path = next.replace("&#38;", "&").replace("&amp;", "&"),
            None => break,
        }
    }
    seen
}

fn scan_ids(html: &str) -> Vec<String> {
    html.split("data-scan-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

async fn tabs_count_every_state(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    let desk = app.login(AGENT).await;
    let html = desk.html("/desk/queue").await;
    for state in [
        "PENDING_VERIFICATION",
        "PENDING_VALIDATION",
        "IN_PROGRESS",
        "CREATED",
        "VERIFIED",
        "NOT_VERIFIED",
    ] {
        let want = app.cases_in(state).await.len();
        let tab = between(&html, &format!("data-state=\"{state}\">"), "</a>")
            .unwrap_or_else(|| panic!("no tab {state}"));
        let shown = between(tab, "class=\"count\">", "<").unwrap_or_default();
        assert_eq!(shown, want.to_string(), "{state}");
        assert!(want > 0, "the demo has cases in {state}");
    }
    // The rest of the page's chrome comes from the same statement: the
    // Mine count, and the drop-downs' countries and integrators in order.
    let mine_count = |html: &str| {
        between(html, "id=\"tab-mine\">", "</a>")
            .and_then(|t| between(t, "class=\"count\">", "<"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(mine_count(&html), "0");
    crate::helpers::integrator(&app, "Aardvark Bank").await;
    let pending = app.cases_in("PENDING_VERIFICATION").await;
    for id in &pending[..2] {
        desk.claim(id).await;
    }
    let html = desk.html("/desk/queue").await;
    assert_eq!(mine_count(&html), "2");
    let options = |id: &str| -> Vec<String> {
        let select = between(&html, &format!("id=\"{id}\">"), "</select>").unwrap_or_default();
        select
            .split("<option value=\"")
            .skip(2)
            .filter_map(|o| between(o, ">", "<"))
            .map(str::to_string)
            .collect()
    };
    let countries: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT country_id FROM processes WHERE country_id IS NOT NULL ORDER BY country_id",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(countries.len() > 1, "the demo has several countries");
    assert_eq!(options("f-country"), countries);
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM integrators ORDER BY name")
        .fetch_all(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(names.len() > 1 && names.contains(&"Aardvark Bank".to_string()));
    assert_eq!(options("f-integrator"), names);
}

async fn keyset_pages_visit_every_case_once_oldest_first(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(140).await;
    let desk = app.login(AGENT).await;
    let want = app.cases_in("PENDING_VERIFICATION").await;
    assert!(want.len() > 50, "needs more than one page");
    let seen = walk_pages(&desk, "/desk/queue?state=PENDING_VERIFICATION").await;
    assert_eq!(seen, want, "every case exactly once, oldest first");
    // Final states page newest first.
    let verified = desk
        .get("/desk/queue?state=VERIFIED")
        .await
        .text()
        .await
        .unwrap_or_default();
    let mut newest = app.cases_in("VERIFIED").await;
    newest.reverse();
    assert_eq!(
        scan_ids(&verified),
        newest.into_iter().take(50).collect::<Vec<_>>()
    );
}

async fn filters_and_search_narrow_the_queue(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(60).await;
    let desk = app.login(AGENT).await;
    let esp = desk
        .get("/desk/queue?state=PENDING_VERIFICATION&country=ESP")
        .await
        .text()
        .await
        .unwrap_or_default();
    let ids = scan_ids(&esp);
    let want = app.scalar_i64("SELECT COUNT(*) FROM processes WHERE state = 'PENDING_VERIFICATION' AND country_id = $1", "ESP").await;
    assert_eq!(ids.len() as i64, want);
    for id in &ids {
        assert_eq!(
            app.process_field(id, "country_id").await.as_deref(),
            Some("ESP")
        );
    }
    let failing = desk
        .get("/desk/queue?state=PENDING_VERIFICATION&failing=mrzCheckDigits")
        .await
        .text()
        .await
        .unwrap_or_default();
    let want = app.scalar_i64("SELECT COUNT(*) FROM processes WHERE state = 'PENDING_VERIFICATION' AND failing_validations LIKE $1", "%,mrzCheckDigits,%").await;
    assert_eq!(scan_ids(&failing).len() as i64, want);
    let low = desk
        .get("/desk/queue?state=PENDING_VERIFICATION&score_max=0.7")
        .await
        .text()
        .await
        .unwrap_or_default();
    for id in scan_ids(&low) {
        let s = sqlx::query_scalar::<_, f64>(
            "SELECT facial_matching_score FROM processes WHERE scan_id = $1",
        )
        .bind(&id)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_default();
        assert!(s <= 0.7, "{s}");
    }

    // Search by a surname, accent- and case-insensitively, across states.
    let target = app.cases_in("VERIFIED").await.remove(0);
    let doc: serde_json::Value = serde_json::from_str(
        &app.process_field(&target, "document")
            .await
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let first_surname = doc["firstSurname"].as_str().unwrap_or_default().to_string();
    let folded = first_surname
        .to_lowercase()
        .replace('é', "e")
        .replace('á', "a")
        .replace('í', "i")
        .replace('ó', "o")
        .replace('ú', "u")
        .replace('ñ', "n")
        .replace('ü', "u");
    let hits = desk
        .get(&format!("/desk/queue?q={}", &folded[..folded.len().min(4)]))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        scan_ids(&hits).contains(&target),
        "search '{folded}' finds {target}"
    );
    let number = doc["documentNumber"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    let by_number = desk
        .get(&format!("/desk/queue?q={number}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(scan_ids(&by_number), vec![target.clone()]);
    let by_id = desk
        .get(&format!("/desk/queue?q={target}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(scan_ids(&by_id), vec![target.clone()]);
    let none = desk
        .get("/desk/queue?q=zzzzqqq")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(scan_ids(&none).is_empty() && none.contains("No cases match."));
}

async fn htmx_gets_a_partial_and_urls_are_bookmarkable(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let desk = app.login(AGENT).await;
    let path = "/desk/queue?state=PENDING_VERIFICATION&doc_type=Passport";
    let partial = desk
        .client
        .get(desk.url(path))
        .header("HX-Request", "true")
        .header("HX-Target", "queue-results")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(partial.headers()["vary"], "HX-Request");
    let partial = partial.text().await.unwrap_or_default();
    assert!(
        partial.contains("href=\"/desk/cases/") && !partial.contains("<html"),
        "htmx gets only the results: {partial}"
    );
    let full = desk.get(path).await.text().await.unwrap_or_default();
    assert!(full.contains("<html") && full.contains("id=\"queue-results\""));
    assert_eq!(
        scan_ids(&partial),
        scan_ids(&full),
        "the same URL shows the same cases"
    );
    assert!(
        full.contains("<option value=\"Passport\" selected>Passport</option>"),
        "the form reflects the URL"
    );
    // Document types read as words; the code stays the option's value.
    assert!(
        full.contains("<option value=\"IDCard\">ID card</option>")
            && full.contains("<option value=\"DrivingLicense\">Driving licence</option>"),
        "document type labels"
    );
    let ids_page = desk
        .html("/desk/queue?state=PENDING_VERIFICATION&doc_type=IDCard")
        .await;
    assert!(
        ids_page.contains("<td>ID card</td>") && !ids_page.contains("<td>IDCard</td>"),
        "the row names the document type in words"
    );
    // A history restore asks for the whole page.
    let restore = desk
        .client
        .get(desk.url(path))
        .header("HX-Request", "true")
        .header("HX-History-Restore-Request", "true")
        .header("HX-Target", "queue-results")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(restore.text().await.unwrap_or_default().contains("<html"));
    let unique: HashSet<_> = scan_ids(&full).into_iter().collect();
    for id in unique {
        assert_eq!(
            app.process_field(&id, "doc_type").await.as_deref(),
            Some("Passport")
        );
    }
}

async fn bad_filters_are_refused_clearly(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(2).await;
    let desk = app.login(AGENT).await;
    for (q, msg) in [
        ("state=DONE", "unknown process state"),
        ("country=Spain", "ISO 3166-1 alpha-3"),
        ("from=2024-02-31", "YYYY-MM-DD"),
        ("score_min=3", "between 0 and 1"),
        ("after=garbage", "cursor"),
    ] {
        let r = desk.get(&format!("/desk/queue?{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
        let body = r.text().await.unwrap_or_default();
        assert!(body.contains(msg), "{q}: {body}");
        assert!(body.contains("id=\"error-message\""));
    }
}

/// Take next claims the oldest unclaimed case of the view (its filters
/// honoured) and opens it; six agents pressing it at the same moment get
/// six different cases, each claimed by the agent it was given to; an
/// empty view says so and claims nothing.
async fn take_next_gives_concurrent_agents_different_cases_of_the_view(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let mut agents = Vec::new();
    for i in 0..6 {
        let email = format!("taker{i}@bank.example");
        kycdesk::accounts::create_user(
            &app.state.db,
            &email,
            kycdesk::domain::Role::Agent,
            "taker-password-123",
            false,
            "test",
            "test",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let desk = app.login((email.as_str(), "taker-password-123")).await;
        agents.push((email, desk));
    }
    let presses = agents.iter().map(|(_, d)| {
        d.post(
            "/desk/queue/next",
            &[("state", "PENDING_VERIFICATION"), ("country", "")],
        )
    });
    let answers = futures_util::future::join_all(presses).await;
    let mut taken = Vec::new();
    for ((email, _), r) in agents.iter().zip(answers) {
        assert_eq!(r.status(), 200, "{email}");
        let to = r.headers()["hx-redirect"]
            .to_str()
            .unwrap_or_default()
            .to_string();
        let id = to
            .strip_prefix("/desk/cases/")
            .unwrap_or_else(|| panic!("{to}"))
            .to_string();
        assert_eq!(
            app.process_field(&id, "claimed_by").await.as_deref(),
            Some(email.as_str()),
            "{id} is claimed by the agent who was sent to it"
        );
        taken.push(id);
    }
    let mut distinct = taken.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "{taken:?}");
    // They are the six oldest cases in review.
    let mut oldest: Vec<String> = app.cases_in("PENDING_VERIFICATION").await;
    oldest.truncate(6);
    oldest.sort();
    assert_eq!(distinct, oldest);

    // Filters are honoured.
    let (_, first) = &agents[0];
    let country: String = sqlx::query_scalar(
        "SELECT country_id FROM processes WHERE state = 'PENDING_VERIFICATION' AND claimed_by IS NULL AND country_id IS NOT NULL ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let r = first
        .post(
            "/desk/queue/next",
            &[("state", "PENDING_VERIFICATION"), ("country", &country)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let to = r.headers()["hx-redirect"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    let id = to.trim_start_matches("/desk/cases/");
    assert_eq!(app.process_field(id, "country_id").await, Some(country));

    // An empty view: 409 with what to do, nothing claimed.
    let claimed_before = app
        .scalar_i64(
            "SELECT COUNT(*) FROM processes WHERE claimed_by = $1",
            "taker1@bank.example",
        )
        .await;
    let (_, second) = &agents[1];
    let r = second
        .post(
            "/desk/queue/next",
            &[
                ("state", "PENDING_VERIFICATION"),
                ("q", "nobody-is-called-this"),
            ],
        )
        .await;
    assert_eq!(r.status(), 409);
    let body = r.text().await.unwrap_or_default();
    assert!(
        body.contains("No unclaimed case is waiting in this view"),
        "{body}"
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM processes WHERE claimed_by = $1",
            "taker1@bank.example"
        )
        .await,
        claimed_before
    );
    // A decided queue is not one to take from.
    let r = second
        .post("/desk/queue/next", &[("state", "VERIFIED")])
        .await;
    assert_eq!(r.status(), 400);
}

/// Sorted by face score, the keyset pages visit every case of the queue
/// once, lowest score first (none first of all); the overdue filter shows
/// exactly the cases past their integrator's review target, each marked.
async fn score_sort_pages_and_overdue_filter_match_the_data(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(140).await;
    let desk = app.login(AGENT).await;
    let want: Vec<String> = sqlx::query_scalar::<_, String>(
        "SELECT scan_id FROM processes WHERE state = 'PENDING_VERIFICATION' \
         ORDER BY COALESCE(facial_matching_score, -1), created_at, scan_id",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(want.len() > 50, "needs more than one page");
    let seen = walk_pages(&desk, "/desk/queue?state=PENDING_VERIFICATION&sort=score").await;
    assert_eq!(seen, want, "every case once, lowest face score first");

    let now = kycdesk::domain::now_ms();
    let overdue: HashSet<String> = sqlx::query_scalar::<_, String>(&format!(
        "SELECT p.scan_id FROM processes p JOIN integrators i ON i.id = p.integrator_id \
         WHERE p.state = 'PENDING_VERIFICATION' AND i.sla_hours IS NOT NULL \
         AND p.created_at + i.sla_hours * 3600000 < {now}"
    ))
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .into_iter()
    .collect();
    assert!(!overdue.is_empty(), "the demo has overdue cases");
    assert!(overdue.len() < want.len(), "and cases within target");
    let html = desk
        .get("/desk/queue?state=PENDING_VERIFICATION&overdue=1")
        .await
        .text()
        .await
        .unwrap_or_default();
    let shown: HashSet<String> = scan_ids(&html).into_iter().collect();
    assert_eq!(shown, overdue);
    assert_eq!(
        html.matches("class=\"case-row overdue\"").count(),
        overdue.len(),
        "every overdue row is marked"
    );
    // A cursor from another order is refused, not misread.
    let r = desk
        .get("/desk/queue?state=PENDING_VERIFICATION&sort=score&after=17_4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c")
        .await;
    assert_eq!(r.status(), 400);
}

/// An admin's review target: hours from 1 to 720 or empty; anything else is
/// refused with a message and changes nothing.
async fn review_targets_are_validated_at_the_form(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(5).await;
    let admin = app.login(ADMIN).await;
    let id = sqlx::query_scalar::<_, String>("SELECT id FROM integrators WHERE name = 'Acme Bank'")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sla = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT sla_hours FROM integrators WHERE id = $1")
            .bind(&id)
            .fetch_one(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let path = format!("/desk/admin/integrators/{id}");
    let form = |h: &'static str| {
        [
            ("submit_state", "PENDING_VERIFICATION"),
            ("webhook_url", ""),
            ("sla_hours", h),
        ]
    };
    let r = admin.post(&path, &form("24")).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(sla().await, Some(24));
    for bad in ["0", "721", "a day", "1.5"] {
        let r = admin.post(&path, &form(bad)).await;
        assert_eq!(r.status(), 400, "{bad}");
        let body = r.text().await.unwrap_or_default();
        assert!(
            body.contains("Review target") || body.contains("review target"),
            "{bad}: {body}"
        );
        assert_eq!(sla().await, Some(24), "{bad} changed nothing");
    }
    let r = admin.post(&path, &form("")).await;
    assert!(r.status().is_success());
    assert_eq!(sla().await, None);
}

/// "Sofía Schmidt" finds the case whatever the order, case or accents of
/// the words, and exactly the cases whose names hold every word; the first
/// 8 or more characters of a scanId find that case.
async fn several_words_in_any_order_and_scan_id_prefixes_find_the_case(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(140).await;
    let desk = app.login(AGENT).await;
    let target = app.cases_in("PENDING_VERIFICATION").await.remove(3);
    let doc: serde_json::Value = serde_json::from_str(
        &app.process_field(&target, "document")
            .await
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let name = doc["name"].as_str().unwrap_or_default().to_string();
    let second = doc["secondSurname"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!name.is_empty() && !second.is_empty(), "{doc}");
    let fold = |s: &str| kycdesk::domain::process::fold(s);
    // Every case whose folded names hold both words, straight from the data.
    let (n, s2) = (fold(&name), fold(&second));
    let mut want: Vec<String> = Vec::new();
    for id in sqlx::query_scalar::<_, String>("SELECT scan_id FROM processes")
        .fetch_all(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        let d: serde_json::Value =
            serde_json::from_str(&app.process_field(&id, "document").await.unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        let words: Vec<String> = [
            d["name"].as_str(),
            d["surname"].as_str(),
            d["firstSurname"].as_str(),
        ]
        .iter()
        .flatten()
        .flat_map(|v| {
            fold(v)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
        let has = |w: &str| words.iter().any(|x| x.starts_with(w));
        if has(&n) && has(&s2) {
            want.push(id);
        }
    }
    assert!(want.contains(&target));
    for q in [
        format!("{name} {second}"),
        format!("{second} {name}"),
        format!("{}  {}", second.to_uppercase(), n),
    ] {
        let html = desk
            .get(&format!("/desk/queue?q={}", urlencode(&q)))
            .await
            .text()
            .await
            .unwrap_or_default();
        let got: HashSet<String> = scan_ids(&html).into_iter().collect();
        let want_set: HashSet<String> = want.iter().cloned().collect();
        assert_eq!(got, want_set, "search '{q}'");
    }
    // A burst of word searches, far more than take turns at once (whole
    // pages and htmx partials, which give their turn back on another path):
    // every one waits for a turn and answers the same cases.
    let want_set: HashSet<String> = want.iter().cloned().collect();
    let q = urlencode(&format!("{second} {name}"));
    let burst = (0..40).map(|i| {
        let req = desk.client.get(desk.url(&format!("/desk/queue?q={q}")));
        let req = if i % 2 == 0 {
            req.header("HX-Request", "true")
                .header("HX-Target", "queue-results")
        } else {
            req
        };
        async move {
            let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.status(), 200, "search {i} of the burst");
            r.text().await.unwrap_or_default()
        }
    });
    for (i, html) in futures_util::future::join_all(burst)
        .await
        .into_iter()
        .enumerate()
    {
        let got: HashSet<String> = scan_ids(&html).into_iter().collect();
        assert_eq!(got, want_set, "search {i} of the burst");
        assert_eq!(
            html.contains("<html"),
            i % 2 == 1,
            "search {i}: page or partial"
        );
    }
    // scanId prefixes: 8 characters, and 13 (past the first dash).
    for len in [8, 13] {
        let html = desk
            .get(&format!("/desk/queue?q={}", &target[..len].to_uppercase()))
            .await
            .text()
            .await
            .unwrap_or_default();
        assert!(scan_ids(&html).contains(&target), "prefix of {len}");
        for id in scan_ids(&html) {
            assert!(
                id.starts_with(&target[..len]),
                "{id} does not start with the prefix"
            );
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A PostgreSQL database under a locale collation (ICU en-US with
/// alternate=shifted, as glibc locales behave), where
/// punctuation such as `-` is ignored at the first comparison level: a
/// scanId prefix must still find exactly the cases starting with it,
/// including prefixes that end just before or after a dash.
#[tokio::test]
async fn scan_id_prefixes_hold_under_a_locale_collation() {
    use sqlx::Connection;
    let admin = crate::helpers::postgres_admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if !crate::helpers::require_all() => {
            eprintln!("SKIPPED (PostgreSQL unreachable at {admin}: {e})");
            return;
        }
        Err(e) => panic!("PostgreSQL required but unreachable at {admin}: {e}"),
    };
    let name = format!("kycdesk_icu_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted' LOCALE 'C.UTF-8'"
    ))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("an ICU database (PostgreSQL 15+ with ICU): {e}"));
    let mut url = url::Url::parse(&admin).unwrap_or_else(|e| panic!("{e}"));
    url.set_path(&name);
    let Some(app) = crate::helpers::spawn_with(Backend::Postgres, |s| {
        s.database_url = url.to_string();
    })
    .await
    else {
        return;
    };
    // The collation really ignores the dash (else this test proves nothing).
    let ignores: bool = sqlx::query_scalar("SELECT 'ab-c' > 'abb'")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ignores,
        "the database collation should order 'ab-c' after 'abb'"
    );
    app.seed(60).await;
    let desk = app.login(AGENT).await;
    let all: Vec<String> = sqlx::query_scalar("SELECT scan_id FROM processes")
        .fetch_all(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for target in all.iter().take(12) {
        for len in [8, 10, 13, 14, 20] {
            let prefix = &target[..len];
            let html = desk
                .get(&format!("/desk/queue?q={prefix}"))
                .await
                .text()
                .await
                .unwrap_or_default();
            let got: HashSet<String> = scan_ids(&html).into_iter().collect();
            let want: HashSet<String> = all
                .iter()
                .filter(|id| id.starts_with(prefix))
                .cloned()
                .collect();
            assert_eq!(got, want, "prefix {prefix}");
        }
    }
}

/// A manual `ANALYZE` fills `sqlite_stat4`, whose samples make SQLite
/// re-prepare statements on every execution; the next start empties it
/// and keeps `sqlite_stat1`, and the queue still answers.
#[tokio::test]
async fn sqlite_sample_statistics_are_cleared_at_start() {
    let Some(mut app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.seed(30).await;
    sqlx::query("ANALYZE")
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let count = |app: &crate::helpers::TestApp, table: &'static str| {
        let db = app.state.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(db.read())
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"))
        }
    };
    assert!(count(&app, "sqlite_stat4").await > 0, "ANALYZE sampled");
    app.restart().await;
    assert_eq!(count(&app, "sqlite_stat4").await, 0);
    assert!(count(&app, "sqlite_stat1").await > 0, "stat1 is kept");
    let desk = app.login(AGENT).await;
    assert_eq!(desk.get("/desk/queue").await.status(), 200);
}

/// Every case in the database whose folded given names and surnames hold a
/// word starting with each query word (words split at spaces and hyphens),
/// newest first: the search's meaning, computed from the stored documents.
async fn name_matches(app: &crate::helpers::TestApp, q: &str) -> Vec<String> {
    let split = |s: &str| -> Vec<String> {
        kycdesk::domain::process::fold(s)
            .split(|c: char| c.is_whitespace() || c == '-')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let want = split(q);
    let rows = sqlx::query_as::<_, (String, i64, String)>(
        "SELECT scan_id, created_at, document FROM processes ORDER BY created_at DESC, scan_id DESC",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for (id, _, doc) in rows {
        let d: serde_json::Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}"));
        let surname = d["surname"].as_str().or(d["firstSurname"].as_str());
        let words: Vec<String> = [d["name"].as_str(), surname]
            .iter()
            .flatten()
            .flat_map(|v| split(v))
            .collect();
        if want.iter().all(|w| words.iter().any(|x| x.starts_with(w))) {
            out.push(id);
        }
    }
    out
}

/// Each query's pages, followed to the end, list exactly `name_matches`.
async fn check_searches(
    desk: &crate::helpers::Desk,
    app: &crate::helpers::TestApp,
    queries: &[&str],
) {
    for q in queries {
        let want = name_matches(app, q).await;
        let got = walk_pages(desk, &format!("/desk/queue?q={}", urlencode(q))).await;
        assert_eq!(got, want, "search '{q}'");
    }
}

/// The word index answers exactly what the documents say, in order, over
/// every page: a prefix with more completions than the index walks one by
/// one (the state walk), a word inside a hyphenated name, a second surname
/// alone, several words; after an edit the new name is found and the old
/// one is not; a database whose index was emptied is rebuilt at start; a
/// deleted case leaves no words behind.
async fn word_index_search_matches_the_data_on_every_path(b: Backend) {
    use kycdesk::domain::{Document, State};
    use kycdesk::store::processes::{insert_many, NewProcess};
    let Some(mut app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let integrator: String = sqlx::query_scalar("SELECT id FROM integrators ORDER BY id LIMIT 1")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = kycdesk::domain::now_ms();
    let states = [
        State::PendingVerification,
        State::Verified,
        State::InProgress,
    ];
    let cases: Vec<NewProcess> = (0..90)
        .map(|i| {
            let (name, surname) = match i % 3 {
                0 => (format!("Zq{i:03}"), "Lindqvist Åberg".to_string()),
                1 => (format!("Zq{i:03} Jean-Luc"), "Marsh Ekström".to_string()),
                _ => ("Jean-Luc".to_string(), format!("Dupont Zqx{i:03}")),
            };
            NewProcess {
                state: states[i % 3],
                country_id: Some("SWE".into()),
                doc_type: Some("IDCard".into()),
                document: Document {
                    name: Some(name),
                    surname: Some(surname),
                    document_number: Some(format!("ZQ{i:06}")),
                    ..Default::default()
                },
                // Two cases share each creation time: the scan_id breaks ties.
                ..NewProcess::created(
                    uuid::Uuid::new_v4().to_string(),
                    integrator.clone(),
                    now - 86_400_000 - (i as i64 / 2) * 1_000,
                )
            }
        })
        .collect();
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    insert_many(&mut tx, &cases, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    let desk = app.login(AGENT).await;
    // "zq": 60 given names zq000.. plus 30 surnames zqx..: more completions
    // than the index takes one by one, so the states are walked.
    let queries = [
        "zq",
        "ZQ01",
        "zq0",
        "zqx",
        "luc",
        "Jean-Luc",
        "ekstrom",
        "aberg zq00",
        "Martin jean",
        "zq luc",
        "marsh jean zq",
        // Pairs of whole words and of few completions (the pair table),
        // one of them a single word for both ("lu luc").
        "aberg lindqvist",
        "jean zq00",
        "lu luc",
        "dupont jean zqx0",
    ];
    check_searches(&desk, &app, &queries).await;
    assert!(
        name_matches(&app, "zq").await.len() >= 90,
        "the walk spans pages"
    );
    assert!(!name_matches(&app, "aberg zq00").await.is_empty());

    // Names at the edge's limit (500 characters each) of 4-byte letters:
    // the index keeps the first 1,000 bytes of words, which PostgreSQL's
    // b-tree takes (the whole would not fit an index entry).
    // Scattered CJK letters (4 bytes each, no case), so that PostgreSQL
    // cannot compress the entry under its limit either.
    let long = |seed: u32| -> Vec<String> {
        let mut x = seed;
        (0..45)
            .map(|i| {
                let w: String = (0..8)
                    .filter_map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        char::from_u32(0x20000 + (x >> 8) % 42_000)
                    })
                    .collect();
                format!("{w}{i:02}")
            })
            .collect()
    };
    let (given, family) = (long(1), long(2));
    let mut big = NewProcess {
        scan_id: uuid::Uuid::new_v4().to_string(),
        ..cases[0].clone()
    };
    big.document.name = Some(given.join(" "));
    big.document.surname = Some(family.join(" "));
    assert!(
        big.document
            .name
            .as_deref()
            .unwrap_or_default()
            .chars()
            .count()
            <= 500
    );
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    insert_many(&mut tx, &[big.clone()], 0)
        .await
        .unwrap_or_else(|e| panic!("names of 500 characters: {e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    let first = format!("/desk/queue?q={}", urlencode(&given[0]));
    assert_eq!(walk_pages(&desk, &first).await, vec![big.scan_id.clone()]);
    let past = format!("/desk/queue?q={}", urlencode(&family[44]));
    assert!(walk_pages(&desk, &past).await.is_empty(), "past the budget");
    // Too many words to pair: found by two words through the overflow row.
    let two = format!(
        "/desk/queue?q={}",
        urlencode(&format!("{} {}", given[10], given[3]))
    );
    assert_eq!(walk_pages(&desk, &two).await, vec![big.scan_id.clone()]);
    let pair_rows = |app: &crate::helpers::TestApp, id: String| {
        let db = app.state.db.clone();
        async move {
            sqlx::query_as::<_, (String, String)>(
                "SELECT first, second FROM process_word_pairs WHERE scan_id = $1 ORDER BY first, second",
            )
            .bind(id)
            .fetch_all(db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(
        pair_rows(&app, big.scan_id.clone()).await,
        vec![(String::new(), String::new())]
    );

    // An edit moves the case to its new words.
    let edited = cases[0].scan_id.clone();
    let version: i64 = sqlx::query_scalar("SELECT version FROM processes WHERE scan_id = $1")
        .bind(&edited)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let doc = Document {
        name: Some("Ödön".into()),
        surname: Some("Qwertz".into()),
        ..cases[0].document.clone()
    };
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    let n =
        kycdesk::store::processes::update_document(&mut tx, &edited, version, &doc, "{}", "", now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 1);
    let found = walk_pages(&desk, "/desk/queue?q=odon+qwertz").await;
    assert_eq!(found, vec![edited.clone()]);
    // The edit's pairs replace the old names' pairs ("zq000", "lindqvist",
    // "aberg": three), not added to them.
    assert_eq!(
        pair_rows(&app, edited.clone()).await,
        vec![("odon".to_string(), "qwertz".to_string())]
    );
    assert!(!walk_pages(&desk, "/desk/queue?q=zq000")
        .await
        .contains(&edited));
    check_searches(&desk, &app, &queries).await;

    // An index emptied and marked for rebuilding is filled at the next start.
    for table in ["process_words", "process_word_pairs"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(app.state.db.write())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    sqlx::query("INSERT INTO pending_rebuilds (name) VALUES ('process_words')")
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        walk_pages(&desk, "/desk/queue?q=zq").await.is_empty(),
        "emptied"
    );
    app.restart().await;
    let desk = app.login(AGENT).await;
    check_searches(&desk, &app, &queries).await;
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_rebuilds")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pending, 0);
    assert_eq!(
        pair_rows(&app, edited.clone()).await,
        vec![("odon".to_string(), "qwertz".to_string())],
        "rebuilt"
    );

    // A deleted case takes its words along.
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    kycdesk::store::processes::delete(&mut tx, &edited)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    for table in ["process_words", "process_word_pairs"] {
        let left = app
            .scalar_i64(
                &format!("SELECT COUNT(*) FROM {table} WHERE scan_id = $1"),
                &edited,
            )
            .await;
        assert_eq!(left, 0, "{table}");
    }
}

/// The running server checkpoints SQLite's WAL itself (its writer's commits
/// no longer do, below 20,000 pages): seeded cases reach the database file
/// within seconds. A copy of the file alone, without its WAL, holds only
/// what was checkpointed.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.seed(30).await;
    let path = app.data_dir.join("kycdesk.db");
    let want: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processes")
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(want >= 30, "seeded: {want}");
    let copy_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let copy = copy_dir.path().join("copy.db");
    let mut seen = -1;
    for _ in 0..50 {
        if std::fs::copy(&path, &copy).is_ok() {
            let url = format!("sqlite://{}?mode=rw", copy.display());
            if let Ok(mut c) = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await {
                seen = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM processes")
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or(-1);
                let _ = sqlx::Connection::close(c).await;
                if seen == want {
                    break;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(seen, want, "cases in the database file itself");
}
