//! Test harness: a real server on a random port over a real database — a
//! fresh SQLite file or a fresh PostgreSQL database per test.

use kycdesk::accounts::integrators::Credentials;
use kycdesk::app::{AppState, Application};
use kycdesk::config::Settings;
use reqwest::redirect::Policy;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// CI sets this so a missing PostgreSQL or Chromium fails instead of skipping.
pub fn require_all() -> bool {
    std::env::var("KYCDESK_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

pub fn postgres_admin_url() -> String {
    std::env::var("KYCDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestApp {
    pub base: String,
    pub state: actix_web::web::Data<AppState>,
    pub database_url: String,
    pub data_dir: std::path::PathBuf,
    pub settings: Settings,
    stop: kycdesk::app::StopHandle,
    _dir: tempfile::TempDir,
}

/// A passing test's PostgreSQL database is dropped with it (each test
/// creates one: a full run left ~100 behind); a failing test's is kept to
/// be looked at.
impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() || !self.database_url.starts_with("postgres") {
            return;
        }
        let Some(name) = url::Url::parse(&self.database_url)
            .ok()
            .map(|u| u.path().trim_start_matches('/').to_string())
            .filter(|n| n.starts_with("kycdesk_"))
        else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a thread of its own with its own runtime does the drop.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .map_err(|e| e.to_string())?;
                // FORCE ends the stopped server's pool connections.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("the test database was kept: {e}");
        }
    }
}

fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_test_writer()
                .try_init();
        }
    });
}

pub async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let conn = sqlx::PgConnection::connect(&admin).await;
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) if !require_all() => {
            eprintln!("SKIPPED (PostgreSQL unreachable at {admin}: {e}); set KYCDESK_TEST_REQUIRE_ALL=1 to make this fail");
            return None;
        }
        Err(e) => panic!("PostgreSQL required but unreachable at {admin}: {e}"),
    };
    let name = format!("kycdesk_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create database: {e}"));
    let mut url = url::Url::parse(&admin).unwrap_or_else(|e| panic!("{e}"));
    url.set_path(&name);
    Some(url.to_string())
}

pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    init_tracing();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data_dir = dir.path().join("data");
    let mut args = kycdesk::config::ServeArgs::for_data_dir(&data_dir)
        .unwrap_or_else(|e| panic!("the serve flags: {e}"));
    args.db.database_url = Some(kycdesk::config::default_database_url(&data_dir));
    args.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    args.public_url = None;
    let mut s = Settings::try_from(args).unwrap_or_else(|e| panic!("settings: {e}"));
    s.workers = 2;
    // Test receivers listen on loopback, and retries must come quickly.
    s.webhooks.allow_private = true;
    s.webhooks.first_retry_ms = 300;
    s.webhooks.max_delay_ms = 1_000;
    s.webhooks.poll_ms = 50;
    s.webhooks.timeout_ms = 3_000;
    // So the test of a client vanishing mid-upload needs no long wait.
    s.evidence.upload_idle_ms = 1_500;
    let default_url = s.database_url.clone();
    tweak(&mut s);
    // A test that names its own database gets it, and no fresh one besides.
    if backend == Backend::Postgres && s.database_url == default_url {
        s.database_url = fresh_postgres().await?;
    }
    let database_url = s.database_url.clone();
    let data_dir = s.data_dir.clone();
    let (base, state, stop) = start(s.clone()).await;
    Some(TestApp {
        base,
        state,
        database_url,
        data_dir,
        settings: s,
        stop,
        _dir: dir,
    })
}

async fn start(
    s: Settings,
) -> (
    String,
    actix_web::web::Data<AppState>,
    kycdesk::app::StopHandle,
) {
    let app = Application::build(s)
        .await
        .unwrap_or_else(|e| panic!("build: {e:#}"));
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state.clone();
    let stop = app.stop_handle();
    tokio::spawn(app.run_until_stopped());
    (base, state, stop)
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |_| {}).await
}

/// A browser-like client: keeps cookies, does not follow redirects so tests
/// can see them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

pub const AGENT: (&str, &str) = ("agent@kycdesk.demo", "agent-demo-password");
pub const SUPERVISOR: (&str, &str) = ("supervisor@kycdesk.demo", "supervisor-demo-password");
pub const ADMIN: (&str, &str) = ("admin@kycdesk.demo", "admin-demo-password");

/// A logged-in desk user: its own cookie jar and the page's CSRF token.
pub struct Desk {
    pub client: reqwest::Client,
    pub csrf: String,
    pub base: String,
}

pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

impl TestApp {
    /// Stops the server and its background tasks and starts a new one on
    /// the same database and data dir (a new port).
    pub async fn restart(&mut self) {
        self.stop.stop().await;
        let (base, state, stop) = start(self.settings.clone()).await;
        self.base = base;
        self.state = state;
        self.stop = stop;
    }

    pub async fn seed(&self, n: usize) {
        kycdesk::demo::seed_if_empty(&self.state, n)
            .await
            .unwrap_or_else(|e| panic!("seed: {e:#}"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Posts the login form; returns the response.
    pub async fn post_login(
        &self,
        c: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.post_login_to(c, email, password, None).await
    }

    /// The login form as a browser sends it, with the page to return to.
    pub async fn post_login_to(
        &self,
        c: &reqwest::Client,
        email: &str,
        password: &str,
        next: Option<&str>,
    ) -> reqwest::Response {
        let page = c
            .get(self.url("/desk/login"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let html = page.text().await.unwrap_or_default();
        let token = between(&html, "name=\"csrf_token\" value=\"", "\"")
            .unwrap_or_default()
            .to_string();
        let mut form = vec![
            ("email", email),
            ("password", password),
            ("csrf_token", token.as_str()),
        ];
        form.extend(next.map(|n| ("next", n)));
        c.post(self.url("/desk/login"))
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn login(&self, who: (&str, &str)) -> Desk {
        self.login_at(who.0, who.1, "/desk/queue").await
    }

    /// Logs in and reads the CSRF token from `page` (the password page
    /// while a password is temporary).
    pub async fn login_at(&self, email: &str, password: &str, page: &str) -> Desk {
        let c = client();
        let r = self.post_login(&c, email, password).await;
        assert_eq!(r.status(), 303, "login of {email} failed");
        let html = c
            .get(self.url(page))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        let csrf = between(&html, "name=\"csrf-token\" content=\"", "\"")
            .unwrap_or_else(|| panic!("no csrf on {page}: {html}"))
            .to_string();
        Desk {
            client: c,
            csrf,
            base: self.base.clone(),
        }
    }

    /// Scan ids of the cases in a state, straight from the database.
    pub async fn cases_in(&self, state: &str) -> Vec<String> {
        sqlx::query_scalar::<_, String>(
            "SELECT scan_id FROM processes WHERE state = $1 ORDER BY created_at, scan_id",
        )
        .bind(state)
        .fetch_all(self.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn scalar_i64(&self, sql: &str, arg: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(arg)
            .fetch_one(self.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn process_field(&self, scan_id: &str, col: &str) -> Option<String> {
        sqlx::query_scalar::<_, Option<String>>(&format!(
            "SELECT {col} FROM processes WHERE scan_id = $1"
        ))
        .bind(scan_id)
        .fetch_one(self.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Desk {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A page's HTML; anything but 200 fails the test.
    pub async fn html(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// An htmx form post, CSRF header included.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", &self.csrf)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn claim(&self, scan_id: &str) {
        let r = self
            .post(&format!("/desk/cases/{scan_id}/claim"), &[])
            .await;
        assert_eq!(
            r.status(),
            200,
            "claim {scan_id}: {}",
            r.text().await.unwrap_or_default()
        );
    }
}

/// Runs a test body once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

impl TestApp {
    pub async fn integrator_field(&self, id: &str, col: &str) -> Option<String> {
        sqlx::query_scalar::<_, Option<String>>(&format!(
            "SELECT {col} FROM integrators WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(self.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl TestApp {
    /// The media type of a process's evidence of one kind.
    pub async fn process_field_of_evidence(&self, scan_id: &str, kind: &str) -> Option<String> {
        sqlx::query_scalar::<_, String>(
            "SELECT media_type FROM evidence WHERE scan_id = $1 AND kind = $2",
        )
        .bind(scan_id)
        .bind(kind)
        .fetch_optional(self.state.db.read())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

// The integrator API as the MobbScan reference drives it, shared by every
// family's tests.

pub async fn integrator(app: &TestApp, name: &str) -> Credentials {
    kycdesk::accounts::integrators::create(
        &app.state.db,
        name,
        Some("http://127.0.0.1:9/hook"),
        &[],
        true,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn token(app: &TestApp, c: &Credentials) -> String {
    let r = reqwest::Client::new()
        .post(app.url("/auth/token"))
        .header("Accept", "application/json")
        .json(&serde_json::json!({"api_key": c.api_key, "api_secret": c.api_secret}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("token body: {e}"));
    match v["access_token"].as_str() {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => panic!("no access_token in {v}"),
    }
}

pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Hands the demo cases of one demo integrator to a credentialed one.
pub async fn adopt(app: &TestApp, c: &Credentials) {
    sqlx::query("UPDATE processes SET integrator_id = $1 WHERE integrator_id = (SELECT id FROM integrators WHERE name = 'Acme Bank')")
        .bind(&c.integrator_id)
        .execute(app.state.db.write())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

pub async fn owned_in(app: &TestApp, c: &Credentials, state: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT scan_id FROM processes WHERE integrator_id = $1 AND state = $2 ORDER BY created_at",
    )
    .bind(&c.integrator_id)
    .bind(state)
    .fetch_all(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The first `ddd-ddd` code in a message, as six digits.
pub fn code_in(body: &str) -> Option<String> {
    let b = body.as_bytes();
    (0..b.len().saturating_sub(6)).find_map(|i| {
        let w = &b[i..i + 7];
        let ok = w[..3].iter().all(u8::is_ascii_digit)
            && w[3] == b'-'
            && w[4..].iter().all(u8::is_ascii_digit);
        ok.then(|| format!("{}{}", &body[i..i + 3], &body[i + 4..i + 7]))
    })
}

/// A minimal SMTP server: accepts every message, hands each DATA to `tx`.
pub async fn smtp_server() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 test ESMTP\r\n").await;
                let mut envelope = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = w.write_all(b"354 go ahead\r\n").await;
                        let mut data = envelope.clone();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        let _ = tx.send(data);
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        if upper.starts_with("RCPT") {
                            envelope.push_str(&line);
                            envelope.push('\n');
                        }
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, rx)
}

/// The next message the test SMTP server received (10 s at most).
pub async fn next_mail(inbox: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), inbox.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no mail reached the SMTP server"))
}
