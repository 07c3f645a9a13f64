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

/// One report line; `floor` is `/healthz` at the same concurrency;
/// `peak_kb` the server's peak RSS so far (which page raised it).
pub fn line(label: &str, conns: usize, f: &Figures, peak_kb: u64, floor: Option<&Figures>) {
    let ratio = floor
        .filter(|fl| fl.per_sec > 0.0)
        .map(|fl| format!("{:>8.1} %", 100.0 * f.per_sec / fl.per_sec))
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
