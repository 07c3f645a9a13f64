//! The command line (SPEC section 1).

use crate::app::Application;
use crate::config::{DbArgs, ServeArgs, Settings};
use crate::domain::confirmation::{calling_code, Confirmation};
use crate::domain::Role;
use crate::store::Db;
use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kycdesk",
    version,
    about = "Self-hosted identity onboarding (KYC) with a review desk"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations, then serve the desk (and APIs).
    Serve(ServeArgs),
    /// Manage desk users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage integrators (API tenants).
    Integrator {
        #[command(subcommand)]
        command: IntegratorCommand,
    },
    /// The operator's fraud-risk lists (watchlists, addresses, IPs, e-mail domains).
    RiskList {
        #[command(subcommand)]
        command: RiskListCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Load N processes and measure desk page latency (see README).
    Bench(crate::tools::bench::BenchArgs),
    /// Check a certified zip offline and print a one-line verdict.
    ///
    /// Exit 0 and `OK: …` only when the signature checks against the key
    /// given with --public-key (the instance's, from `kycdesk signing-key`).
    /// Without --public-key the zip can only be checked against the key its
    /// own manifest names, which anyone re-signing a tampered zip can replace:
    /// exit 3 and `NOT TRUSTED: … signature not checked against a trusted
    /// key`. Exit 1 and `INVALID: <reason>` for a damaged or forged zip.
    VerifyZip {
        /// The zip to check.
        file: PathBuf,
        /// The trusted signing key (base64 or hex, as `kycdesk signing-key` prints).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the public key certified zips are signed with. Reads the key
    /// `serve` created in its data dir (--data-dir or KYCDESK_DATA_DIR, as for
    /// `serve`); never creates one.
    SigningKey {
        #[arg(long, env = "KYCDESK_DATA_DIR", default_value = "./kycdesk-data")]
        data_dir: PathBuf,
    },
}

/// `verify-zip`: the zip is intact and consistent, but its signature was
/// only checked against the key it carries itself.
const EXIT_UNTRUSTED: u8 = 3;

#[derive(Subcommand)]
enum UserCommand {
    /// Create a desk user; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum IntegratorCommand {
    /// Create an integrator; prints its credentials once, as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        webhook_url: Option<String>,
        /// An origin allowed to frame the hosted onboarding page (repeatable).
        #[arg(long = "frame-ancestor")]
        frame_ancestors: Vec<String>,
        /// An extra header for every webhook, "Name: value" (repeatable).
        #[arg(long = "webhook-header")]
        webhook_headers: Vec<String>,
        /// Where submissions go: PENDING_VERIFICATION (desk review) or
        /// PENDING_VALIDATION (the integrator validates first).
        #[arg(long, default_value = "PENDING_VERIFICATION")]
        submit_state: String,
        /// Accept a webhook URL on a loopback or private address (development only).
        #[arg(long, env = "KYCDESK_WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
        webhook_allow_private: bool,
        /// Mobile verifications pass with the code 000000 (testing only).
        #[arg(long)]
        sandbox: bool,
        /// A URI e-mail magic links may redirect to (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// What the hosted page confirms by one-time code before the
        /// document steps: none, phone, email or both.
        #[arg(long, default_value = "none", value_parser = ["none", "phone", "email", "both"])]
        confirm_contact: String,
        /// The calling code the hosted page assumes for a phone typed
        /// without one (e.g. 34).
        #[arg(long)]
        phone_country: Option<String>,
        /// Read the key the integrator signs POST /v1/user payloads with
        /// (application/jwt, HS256; at least 32 characters) from stdin.
        #[arg(long)]
        user_payload_key_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum RiskListCommand {
    /// Replace a list with the rows of a CSV file (format in README and samples/risk-lists).
    Load {
        /// watchlist, alertlist, high_risk_address, non_approved_address,
        /// restricted_ip or restricted_email_domain.
        #[arg(long)]
        list: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print how many entries each list holds.
    Show {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-compute the hash chain; exit 0 when intact.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Serve(a) => serve(a).await,
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    role,
                    password_stdin: _,
                    db,
                },
        } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            let store = open_db(&db).await?;
            let user =
                crate::accounts::create_user(&store, &email, role, password, false, "cli", "local")
                    .await?;
            println!("created {} user {}", user.role, user.email);
            Ok(ExitCode::SUCCESS)
        }
        Command::Integrator {
            command:
                IntegratorCommand::Create {
                    name,
                    webhook_url,
                    frame_ancestors,
                    webhook_headers,
                    submit_state,
                    webhook_allow_private,
                    sandbox,
                    redirect_uris,
                    user_payload_key_stdin,
                    confirm_contact,
                    phone_country,
                    db,
                },
        } => {
            use crate::accounts::integrators::{self, IntegratorSettings};
            // Everything is checked before anything is created.
            let mut headers = Vec::new();
            for h in &webhook_headers {
                let (k, v) = h.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!("--webhook-header '{h}' must look like 'Name: value'")
                })?;
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            integrators::webhook_headers(&headers)?;
            if !matches!(
                submit_state.as_str(),
                "PENDING_VERIFICATION" | "PENDING_VALIDATION"
            ) {
                anyhow::bail!("--submit-state must be PENDING_VERIFICATION or PENDING_VALIDATION");
            }
            integrators::origins(&frame_ancestors)?;
            let confirm_contact =
                Confirmation::parse(&confirm_contact).map_err(anyhow::Error::msg)?;
            if let Some(c) = &phone_country {
                calling_code(c).map_err(anyhow::Error::msg)?;
            }
            let payload_key = if user_payload_key_stdin {
                let mut k = String::new();
                std::io::stdin().read_to_string(&mut k)?;
                let k = k.trim().to_string();
                if k.chars().count() < 32 {
                    anyhow::bail!("the payload signing key must have at least 32 characters");
                }
                Some(k)
            } else {
                None
            };
            let store = open_db(&db).await?;
            let creds = crate::accounts::integrators::create(
                &store,
                &name,
                webhook_url.as_deref(),
                &frame_ancestors,
                webhook_allow_private,
                "cli",
                "local",
            )
            .await?;
            if !headers.is_empty()
                || submit_state != "PENDING_VERIFICATION"
                || confirm_contact != Confirmation::None
                || phone_country.is_some()
            {
                integrators::update(
                    &store,
                    &creds.integrator_id,
                    &IntegratorSettings {
                        webhook_url,
                        frame_ancestors,
                        submit_state,
                        webhook_headers: headers,
                        redirect_top: false,
                        sla_hours: None,
                        confirm_contact,
                        phone_country,
                    },
                    webhook_allow_private,
                    "cli",
                    "local",
                )
                .await?;
            }
            if sandbox || !redirect_uris.is_empty() {
                integrators::set_verification(
                    &store,
                    &creds.integrator_id,
                    sandbox,
                    &redirect_uris,
                    "cli",
                    "local",
                )
                .await?;
            }
            if let Some(k) = payload_key {
                integrators::set_user_payload_key(&store, &creds.integrator_id, &k, "cli", "local")
                    .await?;
            }
            println!("{}", serde_json::to_string(&creds)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::RiskList {
            command: RiskListCommand::Load { list, file, db },
        } => {
            let data = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let store = open_db(&db).await?;
            let n = crate::verification::lists::load(&store, &list, &data).await?;
            println!("loaded {n} entries into {list}");
            Ok(ExitCode::SUCCESS)
        }
        Command::RiskList {
            command: RiskListCommand::Show { db },
        } => {
            let store = open_db(&db).await?;
            for (list, n) in crate::verification::lists::counts(&store).await? {
                println!("{list}: {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify { db },
        } => {
            let store = open_db(&db).await?;
            match crate::audit::verify(&store).await? {
                crate::audit::Verdict::Intact { entries } => {
                    println!("audit chain intact: {entries} entries");
                    Ok(ExitCode::SUCCESS)
                }
                crate::audit::Verdict::Broken { seq, reason } => {
                    println!("audit chain BROKEN at entry {seq}: {reason}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Bench(a) => crate::tools::bench::run(a).await,
        Command::VerifyZip { file, public_key } => {
            let pinned = match public_key.as_deref() {
                Some(k) => Some(
                    crate::certify::signing::parse_public_key(k)
                        .map_err(|e| anyhow::anyhow!("--public-key: {e}"))?,
                ),
                None => None,
            };
            let verdict = tokio::task::spawn_blocking(move || {
                crate::certify::zip::verify(&file, pinned.as_ref())
            })
            .await?;
            match verdict {
                Ok(v) if v.pinned => {
                    println!("{}", crate::certify::zip::verdict_line(&v));
                    Ok(ExitCode::SUCCESS)
                }
                Ok(v) => {
                    println!("{}", crate::certify::zip::verdict_line(&v));
                    Ok(ExitCode::from(EXIT_UNTRUSTED))
                }
                Err(reason) => {
                    println!("INVALID: {reason}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::SigningKey { data_dir } => {
            let path = crate::certify::signing::key_path(&data_dir);
            if !path.exists() {
                anyhow::bail!(
                    "no signing key at {}: `kycdesk serve` creates it in its data dir; \
                     pass that dir with --data-dir or KYCDESK_DATA_DIR",
                    path.display()
                );
            }
            let key = crate::certify::signing::load(&path)?;
            println!(
                "{}",
                crate::certify::signing::public_key_text(&key.verifying_key())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_db(a: &DbArgs) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&a.data_dir)?;
    let db = Db::connect(&a.url()).await?;
    db.migrate().await?;
    Ok(db)
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let s = Settings::try_from(a)?;
    let app = Application::build(s).await?;
    let st = &app.state.settings;
    println!(
        "kycdesk listening on {} ({} at {})",
        st.public_url,
        app.state.db.backend.name(),
        crate::store::redact(&st.database_url)
    );
    if st.demo {
        println!(
            "demo data {} — log in at {}desk/login with:",
            if app.demo_credentials.is_some() {
                "seeded"
            } else {
                "already present"
            },
            st.public_url
        );
        for l in &crate::demo::LOGINS {
            println!(
                "  {:<10} {:<26} password: {}",
                l.role.as_str(),
                l.email,
                l.password
            );
        }
        match &app.demo_credentials {
            Some(c) => println!(
                "demo integrator {} (API credentials, shown once): api_key={} api_secret={}",
                crate::demo::INTEGRATORS[0],
                c.api_key,
                c.api_secret
            ),
            None => println!(
                "the demo integrator's API secret was shown when the demo was first seeded"
            ),
        }
        // A fresh applicant link on every demo start, to try the hosted page.
        let acme = crate::store::integrators::list(app.state.db.read())
            .await?
            .into_iter()
            .find(|i| i.name == crate::demo::INTEGRATORS[0]);
        if let Some(acme) = acme {
            let opened = crate::onboarding::open(
                &app.state,
                &acme.id,
                crate::onboarding::NewOnboarding {
                    scan_id: uuid::Uuid::new_v4().to_string(),
                    doc_type: Some("IDCard".into()),
                    country_id: Some("ESP".into()),
                    ..Default::default()
                },
                &crate::review::Actor {
                    name: "demo".into(),
                    client_addr: "local".into(),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("applicant page (a new demo onboarding): {}", opened.url);
        }
    }
    let stop = app.stop_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: finishing work in flight");
        stop.stop().await;
    });
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (service managers, `kill`) or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
