//! `kycdesk bench`: bulk-loads N processes, starts the real server on a
//! loopback port and measures desk page latency over HTTP, plus the
//! process's memory. Figures, not pass/fail: see the README for results.

pub mod api;

use crate::app::Application;
use crate::config::Settings;
use crate::domain::validation::{self, failing_key};
use crate::domain::{now_ms, Document, Role, State};
use crate::store::processes::{self as rows, NewProcess};
use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Number of processes to load (skipped when the database already has them).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Requests per measured page.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Database to load; default: SQLite in the data dir.
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long, default_value = "./kycdesk-bench")]
    pub data_dir: std::path::PathBuf,
    /// Skip the desk page latency measurements.
    #[arg(long)]
    pub skip_desk: bool,
    /// Seconds to load each integrator API endpoint for (0 skips it).
    #[arg(long, default_value_t = 10)]
    pub api_seconds: u64,
    /// Concurrent keep-alive connections for the API load.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Stream a certified zip holding a recording of this many MB (0 skips it).
    #[arg(long, default_value_t = 0)]
    pub zip_mb: u64,
}

const SURNAMES: [&str; 20] = [
    "Garcia",
    "Perez",
    "Lopez",
    "Martinez",
    "Fernandez",
    "Silva",
    "Santos",
    "Dubois",
    "Moreau",
    "Rossi",
    "Bianchi",
    "Muller",
    "Schmidt",
    "Smith",
    "Nunez",
    "Jones",
    "Costa",
    "Ferrari",
    "Weber",
    "Laurent",
];
const NAMES: [&str; 12] = [
    "Maria", "Lucia", "Ana", "Sofia", "Jose", "Javier", "Hugo", "Mateo", "Joao", "Lucas", "Theo",
    "Luca",
];
const COUNTRIES: [&str; 8] = ["ESP", "PRT", "FRA", "ITA", "DEU", "MEX", "GBR", "NLD"];

const SUFFIXES: [&str; 10] = [
    "", "son", "ez", "ini", "ov", "berg", "ado", "elli", "mann", "ard",
];

/// 200 surnames, so a surname search matches about 0.5 % of the cases, as in
/// a real population, not 5 %.
fn surname(rng: &mut StdRng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        SUFFIXES[rng.gen_range(0..SUFFIXES.len())]
    )
}

fn synthetic(i: usize, rng: &mut StdRng, integrators: &[String], now: i64) -> NewProcess {
    let state = match i % 20 {
        0..=7 => State::PendingVerification,
        8..=10 => State::PendingValidation,
        11 | 12 => State::InProgress,
        13 => State::Created,
        14..=17 => State::Verified,
        _ => State::NotVerified,
    };
    let s1 = surname(rng);
    let s2 = surname(rng);
    let number = format!("B{:08}", i);
    let doc_type = ["IDCard", "Passport", "DrivingLicense"][i % 3];
    let document = Document {
        document_type: Some(doc_type.into()),
        document_number: Some(number),
        name: Some(NAMES[rng.gen_range(0..NAMES.len())].into()),
        surname: Some(format!("{s1} {s2}")),
        first_surname: Some(s1.clone()),
        second_surname: Some(s2.clone()),
        gender: Some(if i % 2 == 0 { "F" } else { "M" }.into()),
        date_of_birth: Some(format!(
            "19{:02}-0{}-1{}",
            rng.gen_range(40..99),
            rng.gen_range(1..9),
            rng.gen_range(0..9)
        )),
        date_of_expiry: Some(format!("20{:02}-06-30", rng.gen_range(20..35))),
        facial_matching_score: Some(format!("{:.2}", rng.gen_range(0.3..0.99))),
        facial_liveness_score: Some(format!("{:.2}", rng.gen_range(0.3..0.99))),
        ..Default::default()
    };
    // Decided cases have an agent, a decision time (minutes to days after
    // creation) and, for rejections, a reason: the dashboard and the
    // rejection audit read them.
    let created_at = now - rng.gen_range(0..365 * 86_400_000i64);
    let (agent, verification_time, rejection_reason) = if state.is_final() {
        let took = rng.gen_range(60_000..5 * 86_400_000i64);
        (
            Some(format!("agent{}@kycdesk.bench", i % 7)),
            Some((created_at + took).min(now)),
            (state == State::NotVerified).then(|| {
                crate::config::DEFAULT_REJECT_REASONS
                    [i % crate::config::DEFAULT_REJECT_REASONS.len()]
                .to_string()
            }),
        )
    } else {
        (None, None, None)
    };
    let today = chrono::Utc::now().date_naive();
    let v = validation::validate(
        &document,
        &validation::Images::present(true, true),
        today,
        &validation::Thresholds::default(),
    );
    NewProcess {
        scan_id: uuid::Builder::from_random_bytes(rng.gen())
            .into_uuid()
            .to_string(),
        integrator_id: integrators[i % integrators.len()].clone(),
        state,
        country_id: Some(COUNTRIES[rng.gen_range(0..COUNTRIES.len())].into()),
        doc_type: Some(doc_type.into()),
        doc_specific_type: None,
        redirect_url: None,
        validations: serde_json::to_string(&v).unwrap_or_default(),
        failing_validations: failing_key(&v),
        document,
        agent,
        verification_result: match state {
            State::Verified => Some("OK".into()),
            State::NotVerified => Some("KO".into()),
            _ => None,
        },
        rejection_reason,
        comment: None,
        client_info: None,
        pdf_checksum: None,
        created_at,
        verification_time,
    }
}

async fn load(app: &Application, n: usize) -> anyhow::Result<Duration> {
    let db = &app.state.db;
    let have = crate::store::bench_samples::count_processes(db).await?;
    if have as usize >= n {
        println!("load: database already holds {have} processes; not loading");
        analyze(app).await?;
        return Ok(Duration::ZERO);
    }
    let now = now_ms();
    let mut integrators = Vec::new();
    let mut tx = db.begin().await?;
    for k in 0..5 {
        let id = uuid::Uuid::new_v4().to_string();
        rows::insert_integrator(&mut tx, &id, &format!("Bench integrator {k}"), now).await?;
        integrators.push(id);
    }
    tx.commit().await?;
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(n as u64);
    let batch = 400;
    let per_tx = 20_000;
    let mut i = have as usize;
    while i < n {
        let mut tx = db.begin().await?;
        let end = (i + per_tx).min(n);
        while i < end {
            let upto = (i + batch).min(end);
            let ps: Vec<NewProcess> = (i..upto)
                .map(|k| synthetic(k, &mut rng, &integrators, now))
                .collect();
            rows::insert_many(&mut tx, &ps).await?;
            i = upto;
        }
        tx.commit().await?;
        if i % 200_000 == 0 || i == n {
            println!(
                "load: {i} / {n} after {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    analyze(app).await?;
    Ok(started.elapsed())
}

/// Fresh statistics (and, on PostgreSQL, a visibility map so index-only
/// scans work), as a production database has after autovacuum.
async fn analyze(app: &Application) -> anyhow::Result<()> {
    crate::store::bench_samples::analyze(&app.state.db).await?;
    Ok(())
}

/// The bench's desk client: logs in like a browser (login token, cookies)
/// and keeps one connection alive, so each measured request is one
/// round trip on loopback.
async fn login(base: &str, email: &str, password: &str) -> anyhow::Result<reqwest::Client> {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()?;
    let html = c
        .get(format!("{base}/desk/login"))
        .send()
        .await?
        .text()
        .await?;
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .context("no login token")?;
    let r = c
        .post(format!("{base}/desk/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", token),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        r.status().as_u16() == 303,
        "bench login failed with {}",
        r.status()
    );
    Ok(c)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn measure(
    c: &reqwest::Client,
    base: &str,
    label: &str,
    paths: &[String],
) -> anyhow::Result<()> {
    let get = |p: &str| {
        let url = format!("{base}{p}");
        async move {
            let r = c.get(url).send().await?;
            let status = r.status().as_u16();
            let body = r.bytes().await?;
            anyhow::Ok((status, body))
        }
    };
    let mut times = Vec::with_capacity(paths.len());
    // One warm-up request so the first connection setup is not measured.
    get(&paths[0]).await?;
    for p in paths {
        let t = Instant::now();
        let (status, body) = get(p).await?;
        times.push(t.elapsed());
        anyhow::ensure!(
            status == 200,
            "{label}: {p} answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    times.sort();
    println!(
        "{label:<28} n={:<5} p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms",
        times.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.95),
        percentile(&times, 0.99)
    );
    Ok(())
}

fn memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|_| "unavailable".into())
}

const SUPERVISOR: (&str, &str) = ("bench.supervisor@kycdesk.bench", "bench-password-123");

pub async fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let mut args = crate::config::ServeArgs::for_data_dir(&a.data_dir)?;
    args.db.database_url = Some(
        a.database_url
            .clone()
            .unwrap_or_else(|| crate::config::default_database_url(&a.data_dir)),
    );
    args.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let s = Settings::try_from(args)?;
    let backend = crate::store::Backend::from_url(&s.database_url).map_err(anyhow::Error::msg)?;
    println!(
        "bench: {} at {}, N = {}",
        backend.name(),
        crate::store::redact(&s.database_url),
        a.n
    );
    let app = Application::build(s).await?;
    let took = load(&app, a.n).await?;
    if !took.is_zero() {
        println!(
            "load: {} processes in {:.1} s ({:.0} rows/s)",
            a.n,
            took.as_secs_f64(),
            a.n as f64 / took.as_secs_f64()
        );
    }
    let (email, password) = ("bench@kycdesk.bench", "bench-password-123");
    // The agent who reads queues and cases, the supervisor who reads the
    // dashboard; an earlier run's users are reused.
    for (who, pw, role) in [
        (email, password, Role::Agent),
        (SUPERVISOR.0, SUPERVISOR.1, Role::Supervisor),
    ] {
        match crate::accounts::create_user(&app.state.db, who, role, pw, false, "bench", "local")
            .await
        {
            Ok(_) | Err(crate::accounts::IdentityError::Duplicate(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let port = app.port();
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    let base = format!("http://127.0.0.1:{port}");
    if a.zip_mb > 0 {
        crate::tools::bench::api::zip_stream(&state, &base, a.zip_mb).await?;
    }
    if a.api_seconds > 0 {
        crate::tools::bench::api::api_throughput(&state, &base, a.concurrency, a.api_seconds)
            .await?;
    }
    if a.skip_desk {
        println!(
            "memory (server and bench client, one process): {}",
            memory()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let c = login(&base, email, password).await?;

    let deep = crate::store::bench_samples::pending_position(&state.db, 10_000).await?;
    let ids = crate::store::bench_samples::pending_ids(&state.db, 2000).await?;
    anyhow::ensure!(!ids.is_empty(), "no processes to measure");
    let mut rng = StdRng::seed_from_u64(7);
    let r = a.requests;
    let first: Vec<String> = (0..r)
        .map(|_| "/desk/queue?state=PENDING_VERIFICATION".to_string())
        .collect();
    measure(&c, &base, "queue, first page", &first).await?;
    match deep {
        Some((at, id)) => {
            let p = format!("/desk/queue?state=PENDING_VERIFICATION&after={at}_{id}");
            measure(&c, &base, "queue, 10,000 rows deep", &vec![p; r]).await?;
        }
        None => {
            println!("queue, 10,000 rows deep      (fewer than 10,000 cases in review; skipped)")
        }
    }
    let filtered: Vec<String> = (0..r)
        .map(|_| {
            format!(
                "/desk/queue?state=PENDING_VERIFICATION&country={}&doc_type=Passport&score_min=0.5",
                COUNTRIES[rng.gen_range(0..COUNTRIES.len())]
            )
        })
        .collect();
    measure(&c, &base, "queue, filtered", &filtered).await?;
    let search: Vec<String> = (0..r)
        .map(|k| {
            if k % 2 == 0 {
                format!("/desk/queue?q={}", surname(&mut rng).to_lowercase())
            } else {
                format!("/desk/queue?q=B{:08}", rng.gen_range(0..a.n))
            }
        })
        .collect();
    measure(&c, &base, "search (surname / doc no.)", &search).await?;
    // Two words, given name and surname, in either order.
    let words: Vec<String> = (0..r)
        .map(|k| {
            let (n, s) = (NAMES[rng.gen_range(0..NAMES.len())], surname(&mut rng));
            if k % 2 == 0 {
                format!("/desk/queue?q={n}+{s}")
            } else {
                format!("/desk/queue?q={s}+{n}")
            }
        })
        .collect();
    measure(&c, &base, "search (two words)", &words).await?;
    let cases: Vec<String> = (0..r)
        .map(|_| format!("/desk/cases/{}", ids[rng.gen_range(0..ids.len())]))
        .collect();
    measure(&c, &base, "case page", &cases).await?;
    // The supervisors' dashboard: the default 30 days and a whole year.
    let sup = login(&base, SUPERVISOR.0, SUPERVISOR.1).await?;
    let month: Vec<String> = vec!["/desk/dashboard".to_string(); r];
    measure(&sup, &base, "dashboard, 30 days", &month).await?;
    let today = chrono::Utc::now().date_naive();
    let year = format!(
        "/desk/dashboard?from={}&to={}",
        today - chrono::Duration::days(365),
        today
    );
    measure(&sup, &base, "dashboard, 366 days", &vec![year; r]).await?;
    println!(
        "memory (server and bench client, one process): {}",
        memory()
    );
    Ok(ExitCode::SUCCESS)
}
