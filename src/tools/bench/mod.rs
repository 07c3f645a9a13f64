//! `kycdesk bench`: bulk-loads N processes, starts the real server on a
//! loopback port and measures desk page latency over HTTP, plus the
//! process's memory. Figures, not pass/fail: see the README for results.

pub mod api;
pub mod drive;

use crate::app::Application;
use crate::config::Settings;
use crate::domain::validation::{self, failing_key};
use crate::domain::{now_ms, Document, Role, State};
use crate::store::processes::{self as rows, NewProcess};
use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Number of processes to load (skipped when the database already has them).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Seconds each desk page is loaded for, at each concurrency.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Concurrent keep-alive connections (comma-separated: each page is
    /// measured at each, against `/healthz` at the same concurrency).
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub connections: Vec<usize>,
    /// Database to load; default: SQLite in the data dir.
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long, default_value = "./kycdesk-bench")]
    pub data_dir: std::path::PathBuf,
    /// Skip the desk pages.
    #[arg(long)]
    pub skip_desk: bool,
    /// Seconds each integrator API endpoint is loaded for, at each
    /// concurrency (0 skips them).
    #[arg(long, default_value_t = 5.0)]
    pub api_seconds: f64,
    /// Stream a certified zip holding a recording of this many MB (0 skips it).
    #[arg(long, default_value_t = 0)]
    pub zip_mb: u64,
    /// Measure only the pages whose label contains one of these words
    /// (comma-separated, any case; `/healthz` is always measured): for
    /// profiling one page, or a quick before/after of the pages a change
    /// touches.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Measure every page this many times, each round after its own
    /// `/healthz` floor; with more than one, a last table gives each page's
    /// median over the rounds (the machine is shared: its speed drifts from
    /// minute to minute, and one round can catch a slow spell).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
}

impl BenchArgs {
    fn measures(&self, label: &str) -> bool {
        let label = label.to_lowercase();
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|w| label.contains(&w.trim().to_lowercase()))
    }
}

/// The floor's label in the report.
const FLOOR: &str = "/healthz (the floor)";

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

/// The bench's cases span the last year.
const SPAN_MS: i64 = 365 * 86_400_000;

/// Case `i` of `n`. Cases are made oldest first, each in its own slice of
/// the year, so they are stored in the order they were created, as a
/// running deployment stores them (a case row is written when the case
/// is created). Random creation times made every newest-first page read
/// rows from all over the table, which no real database does.
fn synthetic(i: usize, n: usize, rng: &mut StdRng, integrators: &[String], now: i64) -> NewProcess {
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
    let slot = (SPAN_MS / n.max(1) as i64).max(1);
    let created_at = (now - SPAN_MS + i as i64 * slot + rng.gen_range(0..slot)).min(now);
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
    let scan_id = uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .to_string();
    NewProcess {
        state,
        country_id: Some(COUNTRIES[rng.gen_range(0..COUNTRIES.len())].into()),
        doc_type: Some(doc_type.into()),
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
        verification_time,
        ..NewProcess::created(
            scan_id,
            integrators[i % integrators.len()].clone(),
            created_at,
        )
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
                .map(|k| synthetic(k, n, &mut rng, &integrators, now))
                .collect();
            rows::insert_many(&mut tx, &ps, 0).await?;
            i = upto;
        }
        tx.commit().await?;
        progress(i - have as usize, n - have as usize, started.elapsed());
    }
    eprintln!();
    analyze(app).await?;
    Ok(started.elapsed())
}

/// A one-line progress bar on stderr, redrawn in place.
fn progress(done: usize, total: usize, took: Duration) {
    let frac = done as f64 / total.max(1) as f64;
    let width = 30;
    let filled = (frac * width as f64).round() as usize;
    let rate = done as f64 / took.as_secs_f64().max(1e-3);
    let eta = (total - done) as f64 / rate.max(1.0);
    eprint!(
        "\rload [{}{}] {:>3.0} %  {done} / {total}  {:.0} rows/s  eta {:.0} s   ",
        "#".repeat(filled),
        " ".repeat(width - filled),
        frac * 100.0,
        rate,
        eta
    );
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
        .pool_max_idle_per_host(256)
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
    // The server under load is a separate `kycdesk serve` on the same
    // database, so its memory is its own (the loader's and the client's
    // are not counted) and client and server are scheduled apart.
    let state = app.state.clone();
    drop(app);
    let creds = api::credentials(&state).await?;
    let server = Server::start(&a.data_dir, a.database_url.as_deref()).await?;
    let base = server.base.clone();
    let idle = server.memory();
    println!(
        "serve (pid {}): RSS {:.1} MB idle after start",
        server.pid,
        idle.0 as f64 / 1024.0
    );
    if a.zip_mb > 0 {
        api::zip_stream(&state, &base, a.zip_mb, server.pid, &creds).await?;
    }
    let plain = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let api_pages = if a.api_seconds > 0.0 {
        api::pages(&state, &base, &creds).await?
    } else {
        Vec::new()
    };
    let desk = if a.skip_desk {
        None
    } else {
        Some(desk_pages(&state, &base, a.n, email, password).await?)
    };
    let peak_before = server.memory().1;
    for &conns in &a.connections {
        // Each page's label and its rounds, in the order first measured.
        let mut measured: Vec<(String, Vec<drive::Round>)> = Vec::new();
        for round in 1..=a.rounds {
            println!();
            if a.rounds > 1 {
                println!("round {round} of {}, {conns} connections", a.rounds);
            }
            drive::header();
            let healthz = format!("{base}/healthz");
            let floor = drive::drive(&plain, conns, a.seconds.max(a.api_seconds), move |c, _| {
                Some(c.get(&healthz))
            })
            .await?;
            let mut report = |label: &str, f: drive::Figures| {
                let ratio =
                    (label != FLOOR && floor.per_sec > 0.0).then(|| f.per_sec / floor.per_sec);
                drive::line(label, conns, &f, server.memory().1, ratio);
                match measured.iter_mut().find(|(l, _)| l == label) {
                    Some((_, runs)) => runs.push((f, ratio)),
                    None => measured.push((label.to_string(), vec![(f, ratio)])),
                }
            };
            report(FLOOR, floor);
            for page in api_pages.iter().filter(|p| a.measures(&p.label)) {
                report(&page.label, page.run(&plain, conns, a.api_seconds).await?);
            }
            if let Some(pages) = &desk {
                for (client, page) in pages.iter().filter(|(_, p)| a.measures(&p.label)) {
                    report(&page.label, page.run(client, conns, a.seconds).await?);
                }
            }
        }
        if a.rounds > 1 {
            println!();
            println!(
                "median of {} rounds, {conns} connections (each column on its own; the ratio is the median of each round's page ÷ that round's floor)",
                a.rounds
            );
            drive::header();
            for (label, runs) in &measured {
                drive::median_line(label, conns, runs, server.memory().1);
            }
        }
    }
    let (now, peak) = server.memory();
    println!();
    println!(
        "memory of serve: RSS {:.1} MB idle after start, {:.1} MB now, peak {:.1} MB \
         (peak before the measured load {:.1} MB)",
        idle.0 as f64 / 1024.0,
        now as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak_before as f64 / 1024.0,
    );
    Ok(ExitCode::SUCCESS)
}

/// `kycdesk serve` in a child process, killed when dropped.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
}

impl Server {
    async fn start(
        data_dir: &std::path::Path,
        database_url: Option<&str>,
    ) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().context("start kycdesk serve")?;
        let pid = child.id().context("serve exited at once")?;
        let base = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = probe.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("kycdesk serve exited with {status}");
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "kycdesk serve did not answer /healthz within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Server { child, pid, base })
    }

    /// (RSS now, peak RSS) of the server, KiB.
    fn memory(&self) -> (u64, u64) {
        (
            drive::rss_kb(self.pid, "VmRSS:"),
            drive::rss_kb(self.pid, "VmHWM:"),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A page to load: a label and the paths to request, taken in turn.
pub struct Page {
    pub label: String,
    paths: Arc<Vec<String>>,
    bearer: Option<String>,
    /// JSON bodies make it a POST; request i sends body i (modulo their
    /// number unless `once`).
    bodies: Arc<Vec<serde_json::Value>>,
    /// Each body is sent once (a decision per case), across every run of
    /// the page: the next unused one. The page ends when they are used up.
    once: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Page {
    pub fn get(label: &str, paths: Vec<String>) -> Page {
        Page {
            label: label.into(),
            paths: Arc::new(paths),
            bearer: None,
            bodies: Arc::new(Vec::new()),
            once: None,
        }
    }

    pub fn with_bearer(mut self, token: &str) -> Page {
        self.bearer = Some(token.into());
        self
    }

    pub fn post(label: &str, url: String, body: serde_json::Value) -> Page {
        Page {
            label: label.into(),
            paths: Arc::new(vec![url]),
            bearer: None,
            bodies: Arc::new(vec![body]),
            once: None,
        }
    }

    /// A POST of each body once, in turn, until the time is up or they
    /// are used up.
    pub fn post_each(label: &str, url: String, bodies: Vec<serde_json::Value>) -> Page {
        Page {
            label: label.into(),
            paths: Arc::new(vec![url]),
            bearer: None,
            bodies: Arc::new(bodies),
            once: Some(Default::default()),
        }
    }

    pub async fn run(
        &self,
        client: &reqwest::Client,
        conns: usize,
        secs: f64,
    ) -> anyhow::Result<drive::Figures> {
        let (paths, bearer, bodies, once) = (
            self.paths.clone(),
            self.bearer.clone(),
            self.bodies.clone(),
            self.once.clone(),
        );
        drive::drive(client, conns, secs, move |c, i| {
            // A stride coprime with the usual list sizes spreads the
            // connections over the list.
            let url = &paths[i.wrapping_mul(7919) % paths.len()];
            let r = if bodies.is_empty() {
                c.get(url)
            } else if let Some(next) = &once {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                c.post(url).json(bodies.get(i)?)
            } else {
                c.post(url).json(&bodies[i % bodies.len()])
            };
            Some(match &bearer {
                Some(t) => r.bearer_auth(t),
                None => r,
            })
        })
        .await
        .with_context(|| self.label.clone())
    }
}

/// The desk pages, each with the logged-in client that reads it (an agent
/// for the queue and cases, a supervisor for the dashboard).
async fn desk_pages(
    state: &crate::state::AppState,
    base: &str,
    n: usize,
    email: &str,
    password: &str,
) -> anyhow::Result<Vec<(reqwest::Client, Page)>> {
    let c = login(base, email, password).await?;
    let sup = login(base, SUPERVISOR.0, SUPERVISOR.1).await?;
    let deep = crate::store::bench_samples::pending_position(&state.db, 10_000).await?;
    let ids = crate::store::bench_samples::pending_ids(&state.db, 2000).await?;
    anyhow::ensure!(!ids.is_empty(), "no processes to measure");
    let mut rng = StdRng::seed_from_u64(7);
    let k = 2000;
    let url = |p: String| format!("{base}{p}");
    let mut pages = vec![Page::get(
        "queue, first page",
        vec![url("/desk/queue?state=PENDING_VERIFICATION".into())],
    )];
    match deep {
        Some((at, id)) => pages.push(Page::get(
            "queue, 10,000 rows deep",
            vec![url(format!(
                "/desk/queue?state=PENDING_VERIFICATION&after={at}_{id}"
            ))],
        )),
        None => println!("queue, 10,000 rows deep: fewer than 10,000 cases in review; skipped"),
    }
    pages.push(Page::get(
        "queue, filtered",
        (0..k)
            .map(|_| {
                url(format!(
                    "/desk/queue?state=PENDING_VERIFICATION&country={}&doc_type=Passport&score_min=0.5",
                    COUNTRIES[rng.gen_range(0..COUNTRIES.len())]
                ))
            })
            .collect(),
    ));
    pages.push(Page::get(
        "search, surname / doc no.",
        (0..k)
            .map(|j| {
                if j % 2 == 0 {
                    url(format!(
                        "/desk/queue?q={}",
                        surname(&mut rng).to_lowercase()
                    ))
                } else {
                    url(format!("/desk/queue?q=B{:08}", rng.gen_range(0..n)))
                }
            })
            .collect(),
    ));
    // Two words, given name and surname, in either order.
    pages.push(Page::get(
        "search, two words",
        (0..k)
            .map(|j| {
                let (g, s) = (NAMES[rng.gen_range(0..NAMES.len())], surname(&mut rng));
                if j % 2 == 0 {
                    url(format!("/desk/queue?q={g}+{s}"))
                } else {
                    url(format!("/desk/queue?q={s}+{g}"))
                }
            })
            .collect(),
    ));
    pages.push(Page::get(
        "case page (writes an audit entry)",
        (0..k)
            .map(|_| url(format!("/desk/cases/{}", ids[rng.gen_range(0..ids.len())])))
            .collect(),
    ));
    let mut out: Vec<(reqwest::Client, Page)> = pages.into_iter().map(|p| (c.clone(), p)).collect();
    let today = chrono::Utc::now().date_naive();
    out.push((
        sup.clone(),
        Page::get("dashboard, 30 days", vec![url("/desk/dashboard".into())]),
    ));
    out.push((
        sup,
        Page::get(
            "dashboard, 366 days",
            vec![url(format!(
                "/desk/dashboard?from={}&to={}",
                today - chrono::Duration::days(365),
                today
            ))],
        ),
    ));
    Ok(out)
}
