//! Browser tests: headless Chromium driven over WebDriver (chromedriver),
//! against a real server. Screenshots land in target/test-artifacts/.

use crate::helpers::{require_all, spawn_app, spawn_with, Backend, TestApp, AGENT};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver_path() -> Option<PathBuf> {
    let p = PathBuf::from(
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    p.exists().then_some(p)
}

async fn start_browser() -> Option<(Driver, Client)> {
    // Two TLS backends are linked in (reqwest and fantoccini); pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(path) = chromedriver_path() else {
        if require_all() {
            panic!("chromedriver is required (apt-get install chromium chromium-driver)");
        }
        eprintln!("SKIPPED browser test: no chromedriver; set KYCDESK_TEST_REQUIRE_ALL=1 to make this fail");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver: {e}"));
    let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let mut caps = serde_json::Map::new();
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": binary,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1400,1000",
                // A synthetic camera, so MediaRecorder can be exercised.
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                format!("--user-data-dir={}", driver._profile.path().display())
            ]
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = ClientBuilder::rustls()
            .unwrap_or_else(|e| panic!("{e}"))
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await;
        match attempt {
            Ok(c) => return Some((driver, c)),
            Err(e) if Instant::now() > deadline => {
                panic!("cannot start Chromium through chromedriver: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn url_of(c: &Client) -> String {
    c.current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default()
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn login(c: &Client, app: &TestApp) {
    login_as(c, app, AGENT).await
}

async fn login_as(c: &Client, app: &TestApp, who: (&str, &str)) {
    c.goto(&app.url("/desk/login"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#email"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys(who.0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#password"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys(who.1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#login-submit"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "nav.tabs")
        .await
        .unwrap_or_else(|e| panic!("queue after login: {e}"));
}

/// Waits for an element as WebDriver's wait does, asking again when a
/// lookup was cut short by the page navigating (htmx redirects after a
/// post): chromedriver answers such a lookup "aborted by navigation"
/// instead of retrying it.
async fn wait_for(
    c: &Client,
    css: &str,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    let mut tries = 0;
    loop {
        match c.wait().for_element(Locator::Css(css)).await {
            Err(e) if tries < 5 && e.to_string().contains("aborted by navigation") => tries += 1,
            other => return other,
        }
    }
}

async fn click(c: &Client, css: &str) {
    wait_for(c, css)
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Presses a desk key with the focus on the page, not in a field.
async fn press(c: &Client, key: &str) {
    c.find(Locator::Css("body"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys(key)
        .await
        .unwrap_or_else(|e| panic!("key {key}: {e}"));
}

/// Presses Accept. On a case that fails validations the desk asks first,
/// naming the failures: the question is checked and answered yes.
async fn accept_case(c: &Client, app: &TestApp, scan_id: &str) {
    let failing = app
        .process_field(scan_id, "failing_validations")
        .await
        .unwrap_or_default();
    wait_for(c, "#accept")
        .await
        .unwrap_or_else(|e| panic!("#accept: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #accept: {e}"));
    if failing.is_empty() {
        assert!(
            c.get_alert_text().await.is_err(),
            "no question for a case that passes every check"
        );
        return;
    }
    let question = c
        .get_alert_text()
        .await
        .unwrap_or_else(|e| panic!("{scan_id} fails {failing}: no confirmation ({e})"));
    assert!(
        question.starts_with("This case fails: ") && question.ends_with("Accept it anyway?"),
        "{question}"
    );
    c.accept_alert().await.unwrap_or_else(|e| panic!("{e}"));
}

async fn open_case_and_claim(c: &Client, app: &TestApp, scan_id: &str) {
    c.goto(&app.url(&format!("/desk/cases/{scan_id}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#claim-button").await;
    wait_for(c, "#edit-form")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("the claim", || async {
        text_of(c, "#claim")
            .await
            .contains("You are working on this case")
    })
    .await;
}

async fn desk_flow(app: &TestApp, c: &Client) {
    login(c, app).await;
    std::fs::write(
        artifact("queue.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // "?" opens the keyboard help over the page; its Close button shuts it.
    c.find(Locator::Css("body"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("?")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("the keyboard help", || async {
        c.find(Locator::Css("#keys-help[open]")).await.is_ok()
    })
    .await;
    assert!(text_of(c, "#keys-help")
        .await
        .contains("Take the next case"));
    std::fs::write(
        artifact("keys-help.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#keys-help-close").await;
    until("the help closed", || async {
        c.find(Locator::Css("#keys-help[open]")).await.is_err()
    })
    .await;

    // Filter the queue: htmx swaps the results and pushes a bookmarkable URL.
    let country = c
        .find(Locator::Css("#f-country"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    country
        .select_by_value("ESP")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("the filtered URL", || async {
        url_of(c).await.contains("country=ESP")
    })
    .await;
    let rows = c
        .find_all(Locator::Css("#queue-results tr.case-row td:nth-child(4)"))
        .await
        .unwrap_or_default();
    assert!(!rows.is_empty(), "the demo has Spanish cases in review");
    for r in rows {
        assert_eq!(r.text().await.unwrap_or_default(), "ESP");
    }
    c.back().await.unwrap_or_else(|e| panic!("{e}"));
    until("back to the unfiltered queue", || async {
        !url_of(c).await.contains("country=ESP")
    })
    .await;

    // Open the oldest case from the list, edit a field, accept.
    let accept_id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    click(c, &format!("tr[data-scan-id=\"{accept_id}\"] a.case-link")).await;
    wait_for(c, "#claim-button")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#claim-button").await;
    until("the claim", || async {
        text_of(c, "#claim")
            .await
            .contains("You are working on this case")
    })
    .await;
    let surname = c
        .find(Locator::Css("#pd-surname"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    surname.clear().await.unwrap_or_else(|e| panic!("{e}"));
    surname
        .send_keys("Browser Edited")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#edit-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("surname misread by OCR")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#save-edits").await;
    until("the edited surname", || async {
        text_of(c, "td[data-field=\"surname\"]").await == "Browser Edited"
    })
    .await;
    assert!(text_of(c, "#history")
        .await
        .contains("surname misread by OCR"));
    accept_case(c, app, &accept_id).await;
    until("the accepted state", || async {
        text_of(c, "#case-state").await == "Verified"
    })
    .await;
    std::fs::write(
        artifact("case.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        app.process_field(&accept_id, "state").await.as_deref(),
        Some("VERIFIED")
    );

    // Reject another with a reason from the list.
    // Claimed with the key c this time.
    let reject_id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    c.goto(&app.url(&format!("/desk/cases/{reject_id}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#claim-button")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    press(c, "c").await;
    until("the claim by key", || async {
        text_of(c, "#claim")
            .await
            .contains("You are working on this case")
    })
    .await;
    c.find(Locator::Css("#reject-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .select_by_value("Document expired")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#reject").await;
    until("the rejected state", || async {
        text_of(c, "#case-state").await == "Not verified"
    })
    .await;
    assert_eq!(
        app.process_field(&reject_id, "rejection_reason")
            .await
            .as_deref(),
        Some("Document expired")
    );

    // A rejected case offers no manual approval (it would contradict the
    // rejection); the accepted one does, and the approval with its reason
    // joins the case's verification timeline (agents may approve here).
    assert!(c.find(Locator::Css("#approval-form")).await.is_err());
    c.goto(&app.url(&format!("/desk/cases/{accept_id}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#approval-reason")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("Identity confirmed by video call")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#approval-form button").await;
    until("the approval in the timeline", || async {
        let t = text_of(c, "#verifications").await;
        t.contains("adminApproval") && t.contains("Identity confirmed by video call")
    })
    .await;

    // A reject without a reason shows the error next to the decision
    // buttons (not in the page's flash area) and changes nothing.
    let third = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    open_case_and_claim(c, app, &third).await;
    click(c, "#reject").await;
    until("the error message next to the buttons", || async {
        text_of(c, "#decision-feedback")
            .await
            .contains("choose a rejection reason")
    })
    .await;
    assert_eq!(text_of(c, "#flash").await, "", "not in the flash box");
    assert_eq!(
        app.process_field(&third, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );

    // An impossible date is refused next to the form, the field is marked
    // and keeps what was typed; putting the old value back clears the way.
    let dob = c
        .find(Locator::Css("#pd-dateOfBirth"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let old_dob = dob.prop("value").await.ok().flatten().unwrap_or_default();
    dob.clear().await.unwrap_or_else(|e| panic!("{e}"));
    dob.send_keys("31/02/1990")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#edit-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("typo")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#save-edits").await;
    until("the date refused next to the form", || async {
        text_of(c, "#edit-feedback")
            .await
            .contains("Date of birth: '31/02/1990' is not a real date")
    })
    .await;
    std::fs::write(
        artifact("case-invalid-date.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dob.attr("aria-invalid").await.ok().flatten().as_deref(),
        Some("true")
    );
    assert_eq!(
        dob.prop("value").await.ok().flatten().as_deref(),
        Some("31/02/1990")
    );
    dob.clear().await.unwrap_or_else(|e| panic!("{e}"));
    dob.send_keys(&old_dob)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let reason = c
        .find(Locator::Css("#edit-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    reason.clear().await.unwrap_or_else(|e| panic!("{e}"));

    // A corrected document number typed but not saved, then Accept: the
    // desk stops and asks for the edit reason in place (the typed number
    // stays), and with a reason the correction is applied with the decision.
    let number = c
        .find(Locator::Css("#pd-documentNumber"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    number.clear().await.unwrap_or_else(|e| panic!("{e}"));
    number
        .send_keys("ZX9876543")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    accept_case(c, app, &third).await;
    until("the unsaved-edit prompt", || async {
        let t = text_of(c, "#decision-feedback").await;
        t.contains("You changed Document number without saving")
            && t.contains("reason for the change")
    })
    .await;
    std::fs::write(
        artifact("case-unsaved-edit-prompt.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        number.prop("value").await.ok().flatten().as_deref(),
        Some("ZX9876543"),
        "the typed number is still there"
    );
    assert_eq!(
        app.process_field(&third, "state").await.as_deref(),
        Some("PENDING_VERIFICATION"),
        "nothing decided"
    );
    c.find(Locator::Css("#edit-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("number misread by OCR")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    accept_case(c, app, &third).await;
    until("the accepted state", || async {
        text_of(c, "#case-state").await == "Verified"
    })
    .await;
    let doc = app
        .process_field(&third, "document")
        .await
        .unwrap_or_default();
    assert!(doc.contains("\"ZX9876543\""), "{doc}");
    assert!(text_of(c, "#history")
        .await
        .contains("number misread by OCR"));

    // From the decided case, the key n takes the next case: the oldest
    // unclaimed one in review, claimed and opened in one step.
    let next_expected = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    c.find(Locator::Css("body"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("the next case", || async {
        url_of(c)
            .await
            .ends_with(&format!("/desk/cases/{next_expected}"))
    })
    .await;
    until("the claim of the next case", || async {
        text_of(c, "#claim")
            .await
            .contains("You are working on this case")
    })
    .await;
    std::fs::write(
        artifact("case-take-next.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // e puts the cursor in the edit form; a outside a field accepts.
    press(c, "e").await;
    until("the cursor in the first edit field", || async {
        c.execute(
            "return document.activeElement && document.activeElement.name || ''",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .is_some_and(|n| n.starts_with("pd_"))
    })
    .await;
    c.execute("document.activeElement.blur()", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failing = app
        .process_field(&next_expected, "failing_validations")
        .await
        .unwrap_or_default();
    press(c, "a").await;
    if !failing.is_empty() {
        let q = c.get_alert_text().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(q.starts_with("This case fails: "), "{q}");
        c.accept_alert().await.unwrap_or_else(|e| panic!("{e}"));
    }
    until("the case accepted by key", || async {
        text_of(c, "#case-state").await == "Verified"
    })
    .await;

    workbench(app, c).await;

    // Log out; the session is dead.
    click(c, "#logout").await;
    until("the login page", || async {
        url_of(c).await.ends_with("/desk/login")
    })
    .await;
    c.goto(&app.url("/desk/queue"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("a redirect to login", || async {
        url_of(c).await.contains("/desk/login?next=%2Fdesk%2Fqueue")
    })
    .await;
    let sessions = app
        .scalar_i64("SELECT COUNT(*) FROM sessions WHERE user_id <> $1", "")
        .await;
    assert_eq!(sessions, 0);
}

async fn js_bool(c: &Client, script: &str) -> bool {
    c.execute(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

async fn shot(c: &Client, name: &str) {
    std::fs::write(
        artifact(name),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The reviewer's workbench: the decision bar stays in view, the viewer
/// zooms into the original, j / k walk the queue, the page fits 1024 px,
/// and ten cases are cleared with the keyboard alone, keystrokes counted.
async fn workbench(app: &TestApp, c: &Client) {
    // The decision bar stays on screen at the bottom of a long case page.
    let id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    open_case_and_claim(c, app, &id).await;
    c.execute("window.scrollTo(0, document.body.scrollHeight)", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until("the decision bar in view after scrolling", || async {
        js_bool(
            c,
            "var r = document.getElementById('accept').getBoundingClientRect(); \
             return window.scrollY > 300 && r.top >= 0 && r.bottom <= 160;",
        )
        .await
    })
    .await;
    shot(c, "case-decision-bar-scrolled.png").await;

    // z zooms the first image and fetches its original, not the thumbnail.
    c.execute("window.scrollTo(0, 0)", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    press(c, "z").await;
    until("the original fetched by the zoom", || async {
        js_bool(
            c,
            "var img = document.querySelector('[data-viewer] img'); \
             return !!img && img.getAttribute('src') === img.dataset.full && img.complete && \
               performance.getEntriesByType('resource').some(function (e) { \
                 return e.name.endsWith(img.dataset.full); });",
        )
        .await
    })
    .await;
    // Arrow keys pan the zoomed image; the portrait crop sits beside the selfie.
    let before = c
        .execute(
            "return document.querySelector('[data-viewer] .stage').style.transform",
            vec![],
        )
        .await
        .ok();
    c.active_element()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("\u{E014}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = c
        .execute(
            "return document.querySelector('[data-viewer] .stage').style.transform",
            vec![],
        )
        .await
        .ok();
    assert_ne!(before, after, "ArrowRight pans the zoomed image");
    assert!(
        js_bool(
            c,
            "var el = document.getElementById('portrait-crop'); \
             return !!el && el.style.backgroundImage.indexOf('/evidence/') > 0;"
        )
        .await,
        "the document portrait is drawn beside the selfie"
    );
    shot(c, "case-zoomed.png").await;
    c.execute("document.activeElement.blur()", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#release").await;
    until("the release", || async {
        c.find(Locator::Css("#claim-button")).await.is_ok()
    })
    .await;

    // 1024 px wide: neither the queue nor a case scrolls sideways.
    c.set_window_size(1024, 800)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (page, name) in [
        ("/desk/queue".to_string(), "queue-1024.png"),
        (format!("/desk/cases/{id}"), "case-1024.png"),
    ] {
        c.goto(&app.url(&page))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for(c, "main").await.unwrap_or_else(|e| panic!("{e}"));
        let fits = js_bool(
            c,
            "return document.documentElement.scrollWidth <= window.innerWidth;",
        )
        .await;
        shot(c, name).await;
        assert!(fits, "{page} scrolls sideways at 1024 px");
    }

    // j / k walk the queue's rows; Enter opens the one in focus.
    c.goto(&app.url("/desk/queue"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "nav.tabs")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let queue = app.cases_in("PENDING_VERIFICATION").await;
    for k in ["j", "j", "k", "j"] {
        press(c, k).await;
    }
    c.active_element()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("\u{E007}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    until(
        "the second case of the queue opened by j j k j Enter",
        || async {
            url_of(c)
                .await
                .ends_with(&format!("/desk/cases/{}", queue[1]))
        },
    )
    .await;
    // On a case page, j opens the next case of its queue.
    press(c, "j").await;
    until("the next case by j", || async {
        url_of(c)
            .await
            .ends_with(&format!("/desk/cases/{}", queue[2]))
    })
    .await;

    // Ten cases cleared with the keyboard only: n takes the next case
    // (claimed and opened), a accepts, Enter answers the failing-checks
    // question. Keystrokes and page loads are counted.
    assert!(queue.len() >= 10, "the seed leaves ten cases in review");
    let views_before = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.view' AND actor = $1",
            AGENT.0,
        )
        .await;
    let mut keys = 0;
    for n in 0..10 {
        let before = url_of(c).await;
        press(c, "n").await;
        keys += 1;
        until("the next case taken by n", || async {
            let u = url_of(c).await;
            u != before
                && u.contains("/desk/cases/")
                && text_of(c, "#claim")
                    .await
                    .contains("You are working on this case")
        })
        .await;
        let url = url_of(c).await;
        let taken = url.rsplit('/').next().unwrap_or_default().to_string();
        press(c, "a").await;
        keys += 1;
        if c.get_alert_text().await.is_ok() {
            c.accept_alert().await.unwrap_or_else(|e| panic!("{e}"));
            keys += 1;
        }
        until("the case accepted by key", || async {
            text_of(c, "#case-state").await == "Verified"
        })
        .await;
        assert_eq!(
            app.process_field(&taken, "state").await.as_deref(),
            Some("VERIFIED"),
            "case {n} ({taken})"
        );
    }
    let views = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.view' AND actor = $1",
            AGENT.0,
        )
        .await
        - views_before;
    let report = format!(
        "keyboard-only: 10 decisions, {keys} keystrokes ({:.1} per decision), {views} case page loads ({:.1} per decision)\n",
        keys as f64 / 10.0,
        views as f64 / 10.0
    );
    eprint!("{report}");
    std::fs::write(artifact("keystrokes.txt"), &report).unwrap_or_else(|e| panic!("{e}"));
    assert!(keys <= 30, "{report}");
    shot(c, "case-keyboard-cleared.png").await;

    // A stale tab: the case is decided elsewhere (the same agent in another
    // tab) while this page is open. Accept then says so next to the buttons,
    // naming who decided, with a reload; nothing changes.
    press(c, "n").await;
    until("another case taken by n", || async {
        text_of(c, "#claim")
            .await
            .contains("You are working on this case")
    })
    .await;
    let url = url_of(c).await;
    let stale = url.rsplit('/').next().unwrap_or_default().to_string();
    let version = app
        .scalar_i64("SELECT version FROM processes WHERE scan_id = $1", &stale)
        .await
        .to_string();
    let other_tab = app.login(AGENT).await;
    let r = other_tab
        .post(
            &format!("/desk/cases/{stale}/decision"),
            &[
                ("action", "reject"),
                ("reason", "Document expired"),
                ("version", &version),
            ],
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    // The other tab signs out: only the browser's session remains.
    let r = other_tab.post("/desk/logout", &[]).await;
    assert!(r.status().is_success(), "{}", r.status());
    press(c, "a").await;
    if c.get_alert_text().await.is_ok() {
        c.accept_alert().await.unwrap_or_else(|e| panic!("{e}"));
    }
    until("the conflict shown next to the buttons", || async {
        let t = text_of(c, "#decision-feedback").await;
        t.contains(AGENT.0)
            && t.contains("already decided")
            && t.contains("Not verified (NOT_VERIFIED)")
            && t.contains("Reload the case")
    })
    .await;
    assert_eq!(text_of(c, "#flash").await, "", "not in the flash box");
    shot(c, "case-stale-409.png").await;
    assert_eq!(
        app.process_field(&stale, "state").await.as_deref(),
        Some("NOT_VERIFIED"),
        "the other tab's decision stands"
    );
    c.set_window_size(1400, 1000)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn run(b: Backend) {
    let Some(app) = spawn_with(b, |s| s.agents_can_approve = true).await else {
        return;
    };
    app.seed(40).await;
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    desk_flow(&app, &c).await;
    four_eyes_pages(&app, &c).await;
    supervisor_tools(&app, &c).await;
    let _ = c.close().await;
}

/// Bulk assignment from the keyboard (j/x), then the users admin's
/// password reset as an admin. Runs after `four_eyes_pages`, logged in as
/// the supervisor.
async fn supervisor_tools(app: &TestApp, c: &Client) {
    // The earlier flows decided most cases in review: use whichever open
    // queue still has two.
    let mut open_state = "PENDING_VERIFICATION";
    for s in ["PENDING_VERIFICATION", "PENDING_VALIDATION", "IN_PROGRESS"] {
        if app.cases_in(s).await.len() >= 2 {
            open_state = s;
            break;
        }
    }
    c.goto(&app.url(&format!("/desk/queue?state={open_state}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#bulk-form")
        .await
        .unwrap_or_else(|e| panic!("the bulk bar: {e}"));
    // j moves the focus to a row's link; x, sent to it, selects the row.
    for key in ["j", "x", "j", "x"] {
        c.active_element()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .send_keys(key)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    until("two rows selected", || async {
        text_of(c, "#bulk-count").await == "2 cases selected"
    })
    .await;
    c.find(Locator::Css("#bulk-assignee"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .select_by_value(crate::helpers::AGENT.0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#bulk-apply").await;
    until("the bulk result", || async {
        text_of(c, "#bulk-done")
            .await
            .contains("Assigned 2 cases to agent@kycdesk.demo.")
    })
    .await;
    until("the results reloaded", || async {
        text_of(c, "#bulk-count").await == "No case selected"
    })
    .await;
    shot(c, "queue-bulk.png").await;

    // The dashboard: the figures and charts of the last 30 days.
    c.goto(&app.url("/desk/dashboard"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "svg#throughput")
        .await
        .unwrap_or_else(|e| panic!("the throughput chart: {e}"));
    assert!(
        text_of(c, "#kpi-decisions")
            .await
            .parse::<i64>()
            .unwrap_or(0)
            > 0
    );
    shot(c, "dashboard.png").await;

    click(c, "#logout").await;
    until("the login page", || async {
        url_of(c).await.ends_with("/desk/login")
    })
    .await;
    login_as(c, app, crate::helpers::ADMIN).await;
    c.goto(&app.url("/desk/admin/users"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let agent_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(crate::helpers::AGENT.0)
        .fetch_one(app.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, &format!("#reset-password-{agent_id}")).await;
    c.accept_alert()
        .await
        .unwrap_or_else(|e| panic!("the reset asks first: {e}"));
    until("the temporary password", || async {
        text_of(c, "#temporary-password").await.len() == 19
    })
    .await;
    shot(c, "users-reset.png").await;
}

/// Four eyes in the browser: an agent's rejection becomes a proposal, a
/// supervisor finds it in Second review and confirms it; the policy page.
async fn four_eyes_pages(app: &TestApp, c: &Client) {
    let mut tx = app.state.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    kycdesk::store::proposals::set_policy(
        &mut tx,
        &kycdesk::domain::four_eyes::Policy {
            rejections: true,
            failing_accepts: true,
            integrators: vec![],
            sample_percent: 5,
        },
        "test",
        0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    c.set_window_size(1280, 900)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    login(c, app).await;
    let id = app
        .cases_in("PENDING_VERIFICATION")
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no case in review"));
    open_case_and_claim(c, app, &id).await;
    c.find(Locator::Css("#reject-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .select_by_value("Document expired")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#reject").await;
    wait_for(c, "#proposal-wait")
        .await
        .unwrap_or_else(|e| panic!("the proposal waits: {e}"));
    assert_eq!(text_of(c, "#case-state").await, "Review");
    assert!(text_of(c, "#proposal-summary")
        .await
        .contains("Proposed: Reject"));
    shot(c, "case-proposal.png").await;
    click(c, "#logout").await;
    until("the login page", || async {
        url_of(c).await.ends_with("/desk/login")
    })
    .await;

    login_as(c, app, crate::helpers::SUPERVISOR).await;
    c.goto(&app.url("/desk/second-review"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#second-review a.case-link")
        .await
        .unwrap_or_else(|e| panic!("the proposal is listed: {e}"));
    shot(c, "second-review.png").await;
    click(c, "#second-review a.case-link").await;
    // Overturning without a reason is refused next to the form.
    click(c, "#overturn-proposal").await;
    until("the inline refusal", || async {
        text_of(c, "#second-review-feedback")
            .await
            .contains("say why you overturn")
    })
    .await;
    click(c, "#confirm-proposal").await;
    until("the confirmed rejection", || async {
        text_of(c, "#case-state").await == "Not verified"
    })
    .await;
    assert!(text_of(c, "#history")
        .await
        .contains("confirmed the proposal of agent@kycdesk.demo"));
    shot(c, "case-confirmed.png").await;
    c.goto(&app.url("/desk/admin/policy"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#policy-form")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    shot(c, "policy-supervisor.png").await;

    // The rejection audit: a QA verdict from the supervisor on a rejection
    // the agent made, then the list with its overturn rates.
    let rejected = app.cases_in("NOT_VERIFIED").await;
    // Any rejection by the agent will do (the demo's, or the confirmed one).
    let theirs = rejected
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no rejected case"));
    c.goto(&app.url(&format!("/desk/cases/{theirs}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#qa-comment"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("The document was valid: the expiry date was misread")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#qa-disagree").await;
    wait_for(c, "#qa-verdict")
        .await
        .unwrap_or_else(|e| panic!("the verdict shows: {e}"));
    assert_eq!(text_of(c, "#case-state").await, "Not verified");
    c.goto(&app.url("/desk/qa?state=NOT_VERIFIED"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#rates-agent")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(text_of(c, "#rates-agent").await.contains("100.0 %"));
    shot(c, "rejection-audit.png").await;

    // The audit-log explorer: every case action in words, the chain verified.
    c.goto(&app.url("/desk/audit?action=case."))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#verify-chain").await;
    until("the chain's verdict", || async {
        text_of(c, "#chain-verdict").await.contains("Intact")
    })
    .await;
    assert!(text_of(c, "#audit-entries")
        .await
        .contains("confirmed the proposal of agent@kycdesk.demo"));
    shot(c, "audit-explorer.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_review_flow_sqlite() {
    run(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_review_flow_postgres() {
    run(Backend::Postgres).await
}

/// A page on another origin that embeds the hosted onboarding page in an
/// iframe, as an integrator's site does; `/done` is its redirect target.
async fn embedding_site() -> String {
    use actix_web::{web, App, HttpResponse, HttpServer};
    #[derive(serde::Deserialize)]
    struct Q {
        src: String,
    }
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/embed",
                web::get().to(|q: web::Query<Q>| async move {
                    let src = q.src.replace('"', "&quot;");
                    HttpResponse::Ok().content_type("text/html").body(format!(
                        "<!doctype html><title>Bank</title><h1 id=bank>Bank site</h1>\
                         <iframe id=kyc src=\"{src}\" allow=\"camera; microphone\" width=380 height=800></iframe>"
                    ))
                }),
            )
            .route(
                "/done",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html")
                        .body("<!doctype html><title>Done</title><h1 id=welcome>Welcome back to the bank</h1>")
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap_or_else(|e| panic!("{e}"));
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

async fn upload_in_step(c: &Client, input: &str, file: &std::path::Path, step: &str) {
    wait_for(c, input)
        .await
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .send_keys(&file.display().to_string())
        .await
        .unwrap_or_else(|e| panic!("send file to {input}: {e}"));
    until(&format!("the upload in {step}"), || async {
        let t = text_of(c, &format!("{step} .status")).await;
        // English, or the Spanish page of the contact flow.
        t.contains("Uploaded") || t.contains("Subido")
    })
    .await;
}

async fn onboarding_flow(app: &TestApp, c: &Client) {
    use crate::helpers::{call, token};
    use crate::onboarding::{framed_integrator, jpeg};
    let site = embedding_site().await;
    let other_site = embedding_site().await;
    let ci = framed_integrator(app, std::slice::from_ref(&site), true).await;
    let tok = token(app, &ci).await;
    let (s, created) = call(
        app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(serde_json::json!({"docType": "IDCard", "redirectUrl": format!("{site}/done")})),
    )
    .await;
    assert_eq!(s, 200);
    let id = created["scanId"].as_str().unwrap_or_default().to_string();
    let url = created["url"].as_str().unwrap_or_default().to_string();
    let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let photo = files.path().join("document.jpg");
    std::fs::write(&photo, jpeg(1000, 640)).unwrap_or_else(|e| panic!("{e}"));
    let selfie = files.path().join("selfie.jpg");
    std::fs::write(&selfie, jpeg(600, 800)).unwrap_or_else(|e| panic!("{e}"));
    let bad = files.path().join("statement.jpg");
    std::fs::write(&bad, b"%PDF-1.4 not a photo").unwrap_or_else(|e| panic!("{e}"));

    // A phone-sized window, the page framed by the integrator's site.
    c.set_window_size(390, 844)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let embed = format!(
        "{site}/embed?src={}",
        url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
    );
    c.goto(&embed).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#bank").await.unwrap_or_else(|e| panic!("{e}"));
    let frame = c
        .wait()
        .for_element(Locator::Css("#kyc"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    frame
        .enter_frame()
        .await
        .unwrap_or_else(|e| panic!("enter the iframe: {e}"));
    wait_for(c, "#onboarding")
        .await
        .unwrap_or_else(|e| panic!("the allowed origin can frame the page: {e}"));

    // A file that is not a photo is refused with a clear message.
    upload_attempt(c, "#file-front", &bad).await;
    until("the refusal", || async {
        text_of(c, "#step-front .status")
            .await
            .contains("not accepted")
    })
    .await;
    upload_in_step(c, "#file-front", &photo, "#step-front").await;
    click(c, "#step-front button.next").await;
    upload_in_step(c, "#file-back", &photo, "#step-back").await;
    click(c, "#step-back button.next").await;
    upload_in_step(c, "#file-selfie", &selfie, "#step-selfie").await;
    click(c, "#step-selfie button.next").await;
    // The optional video, recorded in the browser (MediaRecorder, a fake camera).
    click(c, "#step-video button.record").await;
    wait_for(c, "#step-video button.stop:not([hidden])")
        .await
        .unwrap_or_else(|e| panic!("recording started: {e}"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    click(c, "#step-video button.stop").await;
    until("the recorded video's upload", || async {
        text_of(c, "#step-video .status").await.contains("Uploaded")
    })
    .await;
    click(c, "#step-video button.next").await;
    until("the review", || async {
        text_of(c, "#step-review").await.contains("Uploaded")
    })
    .await;
    std::fs::write(
        artifact("onboarding.png"),
        c.screenshot().await.unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#submit").await;
    // The integrator asked for the top window: the whole page goes to redirectUrl.
    until("the redirect of the top window", || async {
        url_of(c).await == format!("{site}/done")
    })
    .await;
    c.enter_frame(None)
        .await
        .unwrap_or_else(|e| panic!("back to the top document: {e}"));
    wait_for(c, "#welcome")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("PENDING_VALIDATION")
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM evidence WHERE scan_id = $1 AND kind = 'image'",
            &id
        )
        .await,
        3
    );
    assert_eq!(
        app.process_field_of_evidence(&id, "recording")
            .await
            .as_deref(),
        Some("video/webm"),
        "the browser's recording passed the container check"
    );

    retake_flow(app, c, &id, &embed).await;

    // Framed by an origin the integrator did not allow: the browser blocks it.
    let (_, created) = call(
        app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(serde_json::json!({})),
    )
    .await;
    let url2 = created["url"].as_str().unwrap_or_default().to_string();
    let embed2 = format!(
        "{other_site}/embed?src={}",
        url::form_urlencoded::byte_serialize(url2.as_bytes()).collect::<String>()
    );
    c.goto(&embed2).await.unwrap_or_else(|e| panic!("{e}"));
    let frame = c
        .wait()
        .for_element(Locator::Css("#kyc"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    frame
        .enter_frame()
        .await
        .unwrap_or_else(|e| panic!("enter the iframe: {e}"));
    assert!(
        c.find(Locator::Css("#onboarding")).await.is_err(),
        "a foreign origin must not be able to frame the page"
    );
}

/// A reviewer asks for a new front and selfie (keyboard: `t`, Space); the
/// applicant's framed page reopens for just those two steps; resubmitted,
/// the case is back in its queue with the old evidence kept.
async fn retake_flow(app: &TestApp, c: &Client, id: &str, embed: &str) {
    use crate::onboarding::jpeg;
    c.set_window_size(1280, 900)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    login(c, app).await;
    open_case_and_claim(c, app, id).await;
    press(c, "t").await;
    until("the retake form, focused on its first box", || async {
        js_bool(
            c,
            "return document.getElementById('retake-panel').open && document.activeElement.id === 'retake-front'",
        )
        .await
    })
    .await;
    c.active_element()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys(" ")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Sent without a reason: refused next to the form, nothing changes.
    click(c, "#retake-send").await;
    until("the inline refusal", || async {
        text_of(c, "#retake-feedback").await.contains("choose why")
    })
    .await;
    assert_eq!(
        app.process_field(id, "state").await.as_deref(),
        Some("PENDING_VALIDATION")
    );
    click(c, "#retake-selfie").await;
    c.find(Locator::Css("#retake-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .select_by_value("glare")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#retake-message"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys("Hold the card away from the window")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    shot(c, "case-retake-request.png").await;
    click(c, "#retake-send").await;
    wait_for(c, "#retake-awaiting")
        .await
        .unwrap_or_else(|e| panic!("the case waits for the applicant: {e}"));
    assert!(text_of(c, "#retake-awaiting")
        .await
        .contains("Document front and Selfie"));
    assert_eq!(text_of(c, "#case-state").await, "In progress");
    shot(c, "case-retake-awaiting.png").await;

    // The applicant, on a phone, in the integrator's iframe again.
    let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let front = files.path().join("front-again.jpg");
    std::fs::write(&front, jpeg(1100, 700)).unwrap_or_else(|e| panic!("{e}"));
    let selfie = files.path().join("selfie-again.jpg");
    std::fs::write(&selfie, jpeg(620, 820)).unwrap_or_else(|e| panic!("{e}"));
    c.set_window_size(390, 844)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.goto(embed).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#kyc")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .enter_frame()
        .await
        .unwrap_or_else(|e| panic!("enter the iframe: {e}"));
    wait_for(c, "#retake-notice")
        .await
        .unwrap_or_else(|e| panic!("the page explains the retake: {e}"));
    let notice = text_of(c, "#retake-notice").await;
    assert!(
        notice.contains("Front of your document")
            && notice.contains("A selfie")
            && notice.contains("glare")
            && notice.contains("Hold the card away from the window"),
        "{notice}"
    );
    assert!(
        c.find(Locator::Css("#step-back")).await.is_err()
            && c.find(Locator::Css("#step-video")).await.is_err(),
        "only the steps asked for"
    );
    assert!(text_of(c, "#step-front .count").await.contains("1 of 3"));
    shot(c, "onboarding-retake.png").await;
    upload_in_step(c, "#file-front", &front, "#step-front").await;
    click(c, "#step-front button.next").await;
    upload_in_step(c, "#file-selfie", &selfie, "#step-selfie").await;
    click(c, "#step-selfie button.next").await;
    click(c, "#submit").await;
    until("the redirect after the resubmission", || async {
        url_of(c).await.ends_with("/done")
    })
    .await;
    c.enter_frame(None)
        .await
        .unwrap_or_else(|e| panic!("back to the top document: {e}"));
    assert_eq!(
        app.process_field(id, "state").await.as_deref(),
        Some("PENDING_VALIDATION"),
        "back in the queue it left"
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM replaced_evidence WHERE scan_id = $1",
            id
        )
        .await,
        3,
        "the old front, selfie and report are kept"
    );

    // The reviewer sees the new evidence and, apart, the replaced one.
    c.set_window_size(1280, 900)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.goto(&app.url(&format!("/desk/cases/{id}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#replaced-evidence")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(text_of(c, "#history")
        .await
        .contains("asked the applicant to retake: document front, selfie"));
    assert!(
        js_bool(
            c,
            "document.getElementById('replaced-evidence').scrollIntoView({block: 'center'}); return true",
        )
        .await
    );
    shot(c, "case-retake-replaced.png").await;
}

async fn upload_attempt(c: &Client, input: &str, file: &std::path::Path) {
    wait_for(c, input)
        .await
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .send_keys(&file.display().to_string())
        .await
        .unwrap_or_else(|e| panic!("send file to {input}: {e}"));
}

async fn run_onboarding(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(3).await;
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    onboarding_flow(&app, &c).await;
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_onboarding_flow_sqlite() {
    run_onboarding(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_onboarding_flow_postgres() {
    run_onboarding(Backend::Postgres).await
}

/// Types into a field (after clearing it); `\u{E007}` at the end is Enter.
async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear()
        .await
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    e.send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

const ENTER: &str = "\u{E007}";

/// Issue 17: the applicant confirms a phone (SMS code from the outbox) and
/// an e-mail (code from a loopback SMTP server) in the framed page on a
/// phone-sized window, keyboard only for the fields: a wrong code, the
/// resend countdown, an expired code and a resend, then the documents and
/// the submission; the case shows both confirmed contacts.
async fn contact_flow(
    app: &TestApp,
    c: &Client,
    inbox: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use crate::contact_confirm::{confirming_integrator, open, outbox_codes, window_passes};
    use crate::helpers::code_in;
    use crate::onboarding::jpeg;
    use kycdesk::domain::confirmation::Confirmation;
    let site = embedding_site().await;
    let ci = confirming_integrator(
        app,
        "OTP Bank",
        Confirmation::Both,
        std::slice::from_ref(&site),
    )
    .await;
    let (id, _, url) = open(app, &ci, serde_json::json!({"email": "lucia@example.com"})).await;
    let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let photo = files.path().join("document.jpg");
    std::fs::write(&photo, jpeg(1000, 640)).unwrap_or_else(|e| panic!("{e}"));

    c.set_window_size(390, 844)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let embed = format!(
        "{site}/embed?src={}",
        url::form_urlencoded::byte_serialize(format!("{url}&lang=es").as_bytes())
            .collect::<String>()
    );
    c.goto(&embed).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for(c, "#kyc")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .enter_frame()
        .await
        .unwrap_or_else(|e| panic!("enter the iframe: {e}"));
    wait_for(c, "#step-phone")
        .await
        .unwrap_or_else(|e| panic!("the phone step comes first: {e}"));
    assert!(text_of(c, "#step-phone h2").await.contains("Paso 1 de 7"));
    shot(c, "onboarding-phone-step.png").await;

    // A national number and Enter: the code goes out; resend waits 30 s.
    type_into(c, "#value-phone", &format!("612 34 56 78{ENTER}")).await;
    until("the code was sent", || async {
        text_of(c, "#status-phone").await.contains("+34••••••678")
    })
    .await;
    assert!(
        js_bool(c, "return document.activeElement.id === 'code-phone'").await,
        "focus moves to the code"
    );
    assert!(
        js_bool(
            c,
            "return document.querySelector('#step-phone button.resend').disabled"
        )
        .await
    );
    assert!(text_of(c, "#step-phone .hint")
        .await
        .contains("Podrás pedir un código nuevo en"));
    let sms = outbox_codes(app, "+34612345678").await;
    assert_eq!(sms.len(), 1);
    // A wrong code: the message next to the field, in Spanish.
    let wrong: String = sms[0].chars().rev().collect::<String>();
    let wrong = if wrong == sms[0] {
        "000000".to_string()
    } else {
        wrong
    };
    type_into(c, "#code-phone", &format!("{wrong}{ENTER}")).await;
    until("the wrong-code message", || async {
        text_of(c, "#code-status-phone")
            .await
            .contains("Intentos restantes: 4")
    })
    .await;
    assert!(
        js_bool(
            c,
            "return document.querySelector('#code-phone').getAttribute('aria-invalid') === 'true'"
        )
        .await
    );
    shot(c, "onboarding-phone-wrong-code.png").await;
    type_into(c, "#code-phone", &format!("{}{ENTER}", sms[0])).await;
    until("the phone confirmed", || async {
        text_of(c, "#status-phone")
            .await
            .contains("Confirmado: +34••••••678")
    })
    .await;
    shot(c, "onboarding-phone-confirmed.png").await;
    click(c, "#step-phone button.next").await;

    // The e-mail, pre-filled by the integrator: send, let it expire, resend.
    until("the e-mail step", || async {
        js_bool(c, "return !document.querySelector('#step-email').hidden").await
    })
    .await;
    assert!(
        js_bool(
            c,
            "return document.querySelector('#value-email').value === 'lucia@example.com'"
        )
        .await
    );
    click(c, "#step-email button.send").await;
    let mail = crate::helpers::next_mail(inbox).await;
    assert!(
        mail.contains("Caduca en 15 minutos"),
        "the mail is in Spanish: {mail}"
    );
    let first = code_in(&mail).unwrap_or_else(|| panic!("no code in {mail}"));
    sqlx::query("UPDATE verifications SET expires_at = 0 WHERE target = $1")
        .bind("lucia@example.com")
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    type_into(c, "#code-email", &format!("{first}{ENTER}")).await;
    until("the expired-code message", || async {
        text_of(c, "#code-status-email")
            .await
            .contains("ha caducado")
    })
    .await;
    shot(c, "onboarding-email-expired.png").await;
    window_passes(app, &id, "email").await;
    click(c, "#step-email button.resend").await;
    let mail = crate::helpers::next_mail(inbox).await;
    let second = code_in(&mail).unwrap_or_else(|| panic!("no code in {mail}"));
    until("the new code's notice", || async {
        text_of(c, "#status-email")
            .await
            .contains("l•••@example.com")
    })
    .await;
    type_into(c, "#code-email", &format!("{second}{ENTER}")).await;
    until("the e-mail confirmed", || async {
        text_of(c, "#status-email").await.contains("Confirmado")
    })
    .await;
    click(c, "#step-email button.next").await;

    // Then the documents, as before, and the submission.
    upload_in_step(c, "#file-front", &photo, "#step-front").await;
    click(c, "#step-front button.next").await;
    upload_in_step(c, "#file-back", &photo, "#step-back").await;
    click(c, "#step-back button.next").await;
    upload_in_step(c, "#file-selfie", &photo, "#step-selfie").await;
    click(c, "#step-selfie button.next").await;
    click(c, "#step-video button.next").await;
    until("the review lists the confirmed contacts", || async {
        text_of(c, "#step-review")
            .await
            .matches("confirmado")
            .count()
            == 2
    })
    .await;
    shot(c, "onboarding-contact-review.png").await;
    click(c, "#submit").await;
    until("the submission", || async {
        app.process_field(&id, "state").await.as_deref() == Some("PENDING_VERIFICATION")
    })
    .await;
    c.enter_frame(None)
        .await
        .unwrap_or_else(|e| panic!("back to the top document: {e}"));

    // The reviewer sees both confirmed contacts on the case.
    c.set_window_size(1280, 900)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    login(c, app).await;
    c.goto(&app.url(&format!("/desk/cases/{id}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let timeline = text_of(c, "#verifications").await;
    assert!(
        timeline.contains("Mobile number code (hosted page)") && timeline.contains("+34612345678"),
        "{timeline}"
    );
    assert!(
        timeline.contains("E-mail code (hosted page)") && timeline.contains("lucia@example.com"),
        "{timeline}"
    );
    c.execute(
        "document.getElementById('verifications').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    shot(c, "case-confirmed-contacts.png").await;
}

async fn run_contact(b: Backend) {
    let (port, mut inbox) = crate::helpers::smtp_server().await;
    let Some(app) = spawn_with(b, |s| {
        s.messaging.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await
    else {
        return;
    };
    app.seed(3).await;
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    contact_flow(&app, &c, &mut inbox).await;
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_contact_confirmation_sqlite() {
    run_contact(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_contact_confirmation_postgres() {
    run_contact(Backend::Postgres).await
}
