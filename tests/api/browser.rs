//! Browser tests: headless Chromium driven over WebDriver (chromedriver),
//! against a real server. Screenshots land in target/test-artifacts/.

use crate::helpers::{require_all, spawn_app, Backend, TestApp, AGENT};
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
    c.goto(&app.url("/desk/login"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#email"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys(AGENT.0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#password"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .send_keys(AGENT.1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.find(Locator::Css("#login-submit"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.wait()
        .for_element(Locator::Css("nav.tabs"))
        .await
        .unwrap_or_else(|e| panic!("queue after login: {e}"));
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn open_case_and_claim(c: &Client, app: &TestApp, scan_id: &str) {
    c.goto(&app.url(&format!("/desk/cases/{scan_id}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#claim-button").await;
    c.wait()
        .for_element(Locator::Css("#edit-form"))
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
    c.wait()
        .for_element(Locator::Css("#claim-button"))
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
    click(c, "#accept").await;
    until("the accepted state", || async {
        text_of(c, "#case-state").await == "VERIFIED"
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
    let reject_id = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    open_case_and_claim(c, app, &reject_id).await;
    c.find(Locator::Css("#reject-reason"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .select_by_value("Document expired")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(c, "#reject").await;
    until("the rejected state", || async {
        text_of(c, "#case-state").await == "NOT_VERIFIED"
    })
    .await;
    assert_eq!(
        app.process_field(&reject_id, "rejection_reason")
            .await
            .as_deref(),
        Some("Document expired")
    );

    // A reject without a reason shows the error in place and changes nothing.
    let third = app.cases_in("PENDING_VERIFICATION").await.remove(0);
    open_case_and_claim(c, app, &third).await;
    click(c, "#reject").await;
    until("the error message", || async {
        text_of(c, "#flash")
            .await
            .contains("choose a rejection reason")
    })
    .await;
    assert_eq!(
        app.process_field(&third, "state").await.as_deref(),
        Some("PENDING_VERIFICATION")
    );

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
        url_of(c).await.ends_with("/desk/login")
    })
    .await;
    let sessions = app
        .scalar_i64("SELECT COUNT(*) FROM sessions WHERE user_id <> $1", "")
        .await;
    assert_eq!(sessions, 0);
}

async fn run(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(40).await;
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    desk_flow(&app, &c).await;
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_review_flow_sqlite() {
    run(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_review_flow_postgres() {
    run(Backend::Postgres).await
}
