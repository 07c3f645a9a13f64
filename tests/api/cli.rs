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
