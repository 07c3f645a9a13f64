use crate::helpers::{spawn_with, Backend};
use std::io::Write;
use std::process::{Command, Stdio};

fn kycdesk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kycdesk"))
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_the_user_can_log_in() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut child = kycdesk()
        .args([
            "user",
            "create",
            "--email",
            "Lead@Bank.example",
            "--role",
            "supervisor",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    child
        .stdin
        .take()
        .map(|mut s| s.write_all(b"a very good password\n"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created supervisor user lead@bank.example")
    );
    assert!(
        data.join("kycdesk.db").exists(),
        "the SQLite file is created on first use"
    );

    let Some(app) = spawn_with(Backend::Sqlite, |s| {
        s.data_dir = data.clone();
        s.database_url = kycdesk::config::default_database_url(&data);
    })
    .await
    else {
        return;
    };
    let c = crate::helpers::client();
    assert_eq!(
        app.post_login(&c, "lead@bank.example", "a very good password")
            .await
            .status(),
        303
    );

    // A weak password or a bad role is refused with a reason.
    let out = kycdesk()
        .args([
            "user",
            "create",
            "--email",
            "x@bank.example",
            "--role",
            "root",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role 'root'"));
}

#[test]
fn unsupported_database_urls_are_refused_at_start() {
    let out = kycdesk()
        .args([
            "serve",
            "--database-url",
            "mysql://root@localhost/x",
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn integrator_create_prints_credentials_once_and_stores_the_secret_hashed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let out = kycdesk()
        .args([
            "integrator",
            "create",
            "--name",
            "Acme Bank",
            "--webhook-url",
            "https://acme.example/hook",
            "--frame-ancestor",
            "https://acme.example",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON object on stdout: {e}"));
    for k in ["integrator_id", "api_key", "api_secret", "webhook_secret"] {
        assert!(v[k].as_str().is_some_and(|s| s.len() > 20), "{k}: {v}");
    }
    let mut db = std::fs::read(data.join("kycdesk.db")).unwrap_or_default();
    db.extend(std::fs::read(data.join("kycdesk.db-wal")).unwrap_or_default());
    let hash = kycdesk::security::sha256_hex(v["api_secret"].as_str().unwrap_or_default());
    assert!(
        db.windows(hash.len()).any(|w| w == hash.as_bytes()),
        "its SHA-256 is stored"
    );
    let secret = v["api_secret"].as_str().unwrap_or_default();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the API secret is not stored in clear"
    );
    let bad = kycdesk()
        .args([
            "integrator",
            "create",
            "--name",
            "X",
            "--frame-ancestor",
            "https://x.example/path",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be an origin"));
}

#[test]
fn integrator_create_takes_webhook_headers_and_submit_state_and_refuses_bad_ones_whole() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let run = |extra: &[&str]| {
        kycdesk()
            .args(["integrator", "create", "--name", "Hooked"])
            .args(extra)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let ok = run(&[
        "--webhook-url",
        "https://hooked.example/kyc",
        "--webhook-header",
        "Authorization: Bearer abc",
        "--submit-state",
        "PENDING_VALIDATION",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (args, why) in [
        (
            vec!["--webhook-header", "webhook-signature: v1,forged"],
            "set by kycdesk",
        ),
        (vec!["--webhook-header", "no colon"], "Name: value"),
        (vec!["--submit-state", "VERIFIED"], "--submit-state"),
        (vec!["--webhook-url", "http://127.0.0.1:9/hook"], "private"),
    ] {
        let bad = run(&args);
        assert!(!bad.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // signing-key reads the key `serve` made; it never makes one, and says
    // where it looked.
    let none = kycdesk()
        .args(["signing-key", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains(&data.join("signing-key.ed25519").display().to_string()),
        "{err}"
    );
    assert!(
        !data.join("signing-key.ed25519").exists(),
        "no key was created"
    );
    let made = kycdesk::certify::signing::load_or_create(&data).unwrap_or_else(|e| panic!("{e}"));
    let out = kycdesk()
        .args(["signing-key", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        key,
        kycdesk::certify::signing::public_key_text(&made.verifying_key())
    );
    // KYCDESK_DATA_DIR is read like `serve` reads it.
    let from_env = kycdesk()
        .arg("signing-key")
        .env("KYCDESK_DATA_DIR", &data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&from_env.stdout).trim(), key);
    let again = kycdesk()
        .args(["signing-key", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        key,
        "one key per instance"
    );

    // Exactly one integrator was created: the refused ones left nothing.
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (n, state, headers): (i64, String, String) = rt.block_on(async {
        let db = kycdesk::store::Db::connect(&kycdesk::config::default_database_url(&data))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM integrators")
            .fetch_one(db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (s, h): (String, String) =
            sqlx::query_as("SELECT submit_state, webhook_headers FROM integrators")
                .fetch_one(db.read())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        (n, s, h)
    });
    assert_eq!(n, 1);
    assert_eq!(state, "PENDING_VALIDATION");
    assert_eq!(headers, r#"{"Authorization":"Bearer abc"}"#);
}

/// Every boolean flag's env twin takes 1/0/true/false/yes/no, as the README
/// and the error messages write it (`KYCDESK_WEBHOOK_ALLOW_PRIVATE=1`).
#[tokio::test]
async fn boolean_env_values_start_the_server() {
    for (var, value) in [
        ("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "1"),
        ("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "0"),
        ("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "false"),
        ("KYCDESK_AGENTS_CAN_APPROVE", "yes"),
        ("KYCDESK_AGENTS_CAN_APPROVE", "no"),
    ] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut child = kycdesk()
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .env(var, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://127.0.0.1:{port}/healthz");
        let started = std::time::Instant::now();
        let mut up = false;
        while started.elapsed() < std::time::Duration::from_secs(30) {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("{var}={value}: serve exited ({status}): {err}");
            }
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(up, "{var}={value}: serve did not answer");
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = kycdesk()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("KYCDESK_WEBHOOK_ALLOW_PRIVATE", "maybe")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("maybe"));
}

/// The webhook policy and shutdown flags the README documents, as flags and
/// as env twins; out-of-bounds values are refused at start with the reason.
#[tokio::test]
async fn webhook_policy_flags_start_the_server_and_bad_values_are_refused() {
    let flags = [
        "--webhook-first-retry-secs",
        "5",
        "--webhook-max-delay-secs",
        "21600",
        "--webhook-retry-window-hours",
        "72",
        "--webhook-timeout-secs",
        "10",
        "--webhook-concurrency",
        "8",
        "--shutdown-grace-secs",
        "10",
    ];
    let envs = [
        ("KYCDESK_WEBHOOK_FIRST_RETRY_SECS", "5"),
        ("KYCDESK_WEBHOOK_MAX_DELAY_SECS", "21600"),
        ("KYCDESK_WEBHOOK_RETRY_WINDOW_HOURS", "72"),
        ("KYCDESK_WEBHOOK_TIMEOUT_SECS", "10"),
        ("KYCDESK_WEBHOOK_CONCURRENCY", "8"),
        ("KYCDESK_SHUTDOWN_GRACE_SECS", "10"),
    ];
    for use_env in [false, true] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = kycdesk();
        cmd.args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path());
        if use_env {
            cmd.envs(envs);
        } else {
            cmd.args(flags);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://127.0.0.1:{port}/healthz");
        let started = std::time::Instant::now();
        let mut up = false;
        while started.elapsed() < std::time::Duration::from_secs(30) {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                up = true;
                break;
            }
            if let Ok(Some(s)) = child.try_wait() {
                panic!("serve exited ({s}) with env={use_env}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(up, "env={use_env}");
    }
    for (flag, value, says) in [
        ("--webhook-concurrency", "0", "concurrency"),
        ("--webhook-first-retry-secs", "0", "first-retry"),
        ("--webhook-timeout-secs", "100000", "timeout"),
        ("--shutdown-grace-secs", "100000", "grace"),
    ] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = kycdesk()
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.status.success(), "{flag} {value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
}

/// `integrator create --user-payload-key-stdin`: the key comes from stdin,
/// is stored, and a short one is refused before anything is created.
#[test]
fn integrator_create_reads_the_payload_key_from_stdin() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let run = |key: &str| {
        let mut child = kycdesk()
            .args([
                "integrator",
                "create",
                "--name",
                "Signed Bank",
                "--user-payload-key-stdin",
                "--data-dir",
            ])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(key.as_bytes());
        }
        child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
    };
    let short = run("too-short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("32 characters"));
    let ok = run("a-payload-signing-key-long-enough-for-hs256\n");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let creds: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap_or_default();
    let id = creds["integrator_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (n, key): (i64, Option<String>) = rt.block_on(async {
        let db = kycdesk::store::Db::connect(&kycdesk::config::default_database_url(&data))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM integrators")
            .fetch_one(db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let key = kycdesk::store::integrators::user_payload_key(db.read(), &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (n, key)
    });
    assert_eq!(n, 1, "the refused call created nothing");
    assert_eq!(
        key.as_deref(),
        Some("a-payload-signing-key-long-enough-for-hs256")
    );
}

/// The README's `--bind`: an `IP:port`, where port 0 takes any free port and
/// the printed (public) URL names the port actually taken; a host name is
/// refused at start, naming the flag.
#[tokio::test]
async fn bind_port_zero_serves_on_the_port_it_prints() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = kycdesk()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        line
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let url = line
        .strip_prefix("kycdesk listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    let port = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or_else(|| panic!("no port in {url}"));
    assert_ne!(port, 0, "{line}");
    let health = reqwest::get(format!("{url}healthz")).await;
    let _ = child.kill();
    let _ = child.wait();
    let health = health.unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(health.status(), 200);

    let out = kycdesk()
        .args(["serve", "--bind", "localhost:8080", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bind"), "{err}");
}

/// The README's `--confirm-contact` and `--phone-country`: stored as given;
/// a bad value is refused before anything is created.
#[tokio::test]
async fn integrator_create_takes_the_contact_confirmation_settings() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let run = |extra: &[&str]| {
        kycdesk()
            .args(["integrator", "create", "--name", "OTP Bank"])
            .args(extra)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    for (bad, says) in [
        (vec!["--confirm-contact", "sms"], "invalid value 'sms'"),
        (
            vec!["--confirm-contact", "both", "--phone-country", "0034"],
            "calling code of 1 to 3 digits",
        ),
    ] {
        let out = run(&bad);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    let out = run(&["--confirm-contact", "both", "--phone-country", "34"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(app) = spawn_with(Backend::Sqlite, |s| {
        s.data_dir = data.clone();
        s.database_url = kycdesk::config::default_database_url(&data);
    })
    .await
    else {
        return;
    };
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT name, confirm_contact, phone_country FROM integrators")
            .fetch_all(app.state.db.read())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows,
        vec![("OTP Bank".into(), "both".into(), Some("34".into()))],
        "one integrator: the refused calls created nothing"
    );
}

/// The README's `kycdesk bench` (small N, short loads) on both backends:
/// every page reported against the floor, the server's own memory, and the
/// zip case keeps its recording after the bench (an earlier bench deleted
/// it, leaving a case whose zip answered 500) — also across a second run
/// that reuses the same recording.
#[tokio::test]
async fn bench_reports_every_page_against_the_floor_and_keeps_its_zip_recording() {
    let run = |dir: &std::path::Path, url: Option<&str>, extra: &[&str]| {
        let mut cmd = kycdesk();
        cmd.args(["bench", "--n", "400", "--zip-mb", "1", "--seconds", "0.3"])
            .args(["--api-seconds", "0.3", "--connections", "2,3", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "warn");
        if let Some(u) = url {
            cmd.args(["--database-url", u]);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let recording = |text: &str| {
        text.split("the recording (sha256 ")
            .nth(1)
            .and_then(|r| r.get(..64))
            .unwrap_or_else(|| panic!("no recording line in {text}"))
            .to_string()
    };
    let check = |text: &str| {
        for page in [
            "/healthz (the floor)",
            "POST /auth/token",
            "GET getVerificationProcessData",
            "POST accept (a decision)",
            "queue, first page",
            "queue, filtered",
            "search, surname / doc no.",
            "search, two words",
            "case page (writes an audit entry)",
            "dashboard, 366 days",
        ] {
            for conns in ["2", "3"] {
                assert!(
                    text.lines().any(|l| l.starts_with(page)
                        && l.split_whitespace().any(|w| w == conns)
                        && (page.starts_with("/healthz") || l.trim_end().ends_with('%'))),
                    "{page} at {conns} connections missing in\n{text}"
                );
            }
        }
        assert!(text.contains("memory of serve: RSS"), "{text}");
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = run(dir.path(), None, &[]);
    check(&first);
    // The decisions were made: cases accepted by the bench integrator over
    // the API (the loader's decided cases name desk agents).
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("kycdesk.db").display()
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let decided: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM processes WHERE state = 'VERIFIED' AND agent LIKE 'integrator:%'",
    )
    .fetch_one(&db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The loaded cases span the year and are stored in the order they were
    // created, as a running deployment stores them: the next row by rowid
    // is never older (newest-first pages then read the table's tail, not
    // rows from all over it).
    let (older_next, span_days): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM processes a JOIN processes b ON b.rowid = a.rowid + 1 \
                  WHERE b.created_at < a.created_at), \
                (MAX(created_at) - MIN(created_at)) / 86400000 FROM processes",
    )
    .fetch_one(&db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    db.close().await;
    assert!(decided > 0, "no API decision in\n{first}");
    assert_eq!(older_next, 0, "cases stored out of creation order");
    assert!(
        span_days >= 360,
        "the cases span {span_days} days, not a year"
    );
    let sha = recording(&first);
    let blob = dir.path().join("blobs").join(&sha[..2]).join(&sha);
    assert!(blob.exists(), "{} after the bench", blob.display());
    // `--only` as the README shows it: the named pages, any case, and the floor.
    let second = run(dir.path(), None, &["--only", "case,TOKEN"]);
    assert!(second.contains("not loading"), "{second}");
    let measured: Vec<&str> = second
        .lines()
        .filter(|l| l.trim_end().ends_with('%'))
        .collect();
    assert_eq!(
        measured.len(),
        4,
        "two pages at two concurrencies in\n{second}"
    );
    assert!(
        measured
            .iter()
            .all(|l| l.starts_with("case page") || l.starts_with("POST /auth/token")),
        "{second}"
    );
    assert!(second.contains("/healthz (the floor)"), "{second}");
    assert_eq!(recording(&second), sha, "the same bytes, the same blob");
    assert!(blob.exists(), "{} after a second bench", blob.display());
    // `--rounds 3`: each round after its own floor, then each page's
    // median (req/s and ratio) over the three rounds.
    let third = run(dir.path(), None, &["--only", "token", "--rounds", "3"]);
    for conns in ["2", "3"] {
        let (rounds, median) = third
            .split_once(&format!("median of 3 rounds, {conns} connections"))
            .unwrap_or_else(|| panic!("no median table at {conns} connections in\n{third}"));
        let token = |text: &str| -> Vec<(f64, f64)> {
            text.lines()
                .filter(|l| l.starts_with("POST /auth/token"))
                .filter(|l| l.split_whitespace().nth(2) == Some(conns))
                .map(|l| {
                    // POST /auth/token CONNS REQ/S p50 p95 p99 MB RATIO %
                    let w: Vec<&str> = l.split_whitespace().collect();
                    let num = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("{l}: {e}"));
                    (num(w[3]), num(w[w.len() - 2]))
                })
                .collect()
        };
        // Lines at the other concurrency are filtered out by `token`.
        let mut each = token(rounds);
        assert!(
            (1..=3).all(|r| rounds.contains(&format!("round {r} of 3, {conns} connections"))),
            "{third}"
        );
        assert_eq!(
            each.len(),
            3,
            "a token line per round at {conns} in\n{third}"
        );
        let mid = token(median);
        assert_eq!(mid.len(), 1, "one median line at {conns} in\n{third}");
        each.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(mid[0].0, each[1].0, "median req/s at {conns} in\n{third}");
        let mut ratios: Vec<f64> = each.iter().map(|e| e.1).collect();
        ratios.sort_by(f64::total_cmp);
        assert_eq!(mid[0].1, ratios[1], "median ratio at {conns} in\n{third}");
    }

    let Some(pg) = crate::helpers::fresh_postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text = run(dir.path(), Some(&pg), &[]);
    check(&text);
    assert!(text.contains("bench: PostgreSQL"), "{text}");
}
