//! The bench's load driver: N concurrent keep-alive connections send
//! requests for a fixed time, every latency is kept, and each page is
//! reported against the floor (the same server's `/healthz`, measured the
//! same way in the same run) because the machine is shared and absolute
//! figures move with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One page at one concurrency.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub ok: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Sends requests made by `make(i)` (i counts up per connection, spread so
/// connections do not repeat each other) from `conns` connections of
/// `client` for `secs`, or until `make` has no more (`None`: e.g. every
/// case to decide is decided; the rate then counts the time until the
/// last connection ran out). Any non-2xx answer or transport error fails
/// the run, naming the first one: a figure for failing requests means
/// nothing.
pub async fn drive<F>(
    client: &reqwest::Client,
    conns: usize,
    secs: f64,
    make: F,
) -> anyhow::Result<Figures>
where
    F: Fn(&reqwest::Client, usize) -> Option<reqwest::RequestBuilder> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(conns);
    for w in 0..conns {
        let (make, stop, client) = (make.clone(), stop.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(4096);
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let Some(req) = make(&client, i) else {
                    break;
                };
                let r = req.send().await?;
                let status = r.status();
                let body = r.bytes().await?;
                if !status.is_success() {
                    anyhow::bail!(
                        "answered {status}: {}",
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    );
                }
                times.push(t.elapsed());
                i += conns;
            }
            anyhow::Ok((times, Instant::now()))
        }));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    // Wakes early when every connection has run out of requests.
    while Instant::now() < deadline && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20).min(deadline - Instant::now())).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut ended = started;
    for t in tasks {
        let (times, end) = t.await??;
        all.extend(times);
        ended = ended.max(end);
    }
    let took = (ended - started).as_secs_f64().max(1e-3);
    all.sort_unstable();
    Ok(Figures {
        per_sec: all.len() as f64 / took,
        p50_ms: percentile(&all, 0.50),
        p95_ms: percentile(&all, 0.95),
        p99_ms: percentile(&all, 0.99),
        ok: all.len() as u64,
    })
}

/// The report's header line.
pub fn header() {
    println!(
        "{:<34} {:>5} {:>10} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "page", "conns", "req/s", "p50 ms", "p95 ms", "p99 ms", "peak MB", "÷ floor"
    );
}

/// One report line; `ratio` is the page's req/s ÷ `/healthz`'s at the
/// same concurrency (None on the floor's own line); `peak_kb` the server's
/// peak RSS so far (which page raised it).
pub fn line(label: &str, conns: usize, f: &Figures, peak_kb: u64, ratio: Option<f64>) {
    let ratio = ratio
        .map(|r| format!("{:>8.1} %", 100.0 * r))
        .unwrap_or_else(|| format!("{:>10}", "(floor)"));
    println!(
        "{label:<34} {conns:>5} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8.1} {ratio}",
        f.per_sec,
        f.p50_ms,
        f.p95_ms,
        f.p99_ms,
        peak_kb as f64 / 1024.0
    );
}

/// A page's figures in one round, with its ratio to that round's floor
/// (None on the floor's own line).
pub type Round = (Figures, Option<f64>);

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A page's line over several rounds, each figure the median of its
/// rounds. `runs` holds each round's figures and ratio to that round's
/// floor, so the ratio is the median of per-round ratios: a round caught
/// in a slow spell slows page and floor alike.
pub fn median_line(label: &str, conns: usize, runs: &[Round], peak_kb: u64) {
    let of = |pick: fn(&Figures) -> f64| median(runs.iter().map(|(f, _)| pick(f)).collect());
    let f = Figures {
        per_sec: of(|f| f.per_sec),
        p50_ms: of(|f| f.p50_ms),
        p95_ms: of(|f| f.p95_ms),
        p99_ms: of(|f| f.p99_ms),
        ok: runs.iter().map(|(f, _)| f.ok).sum(),
    };
    let ratios: Option<Vec<f64>> = runs.iter().map(|(_, r)| *r).collect();
    line(label, conns, &f, peak_kb, ratios.map(median));
}

/// A process's resident memory now (`VmRSS:`) or at its peak (`VmHWM:`),
/// KiB, from /proc/<pid>/status; 0 when unreadable.
pub fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
