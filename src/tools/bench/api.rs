//! `kycdesk bench --api-seconds S` and `--zip-mb M`: integrator API
//! throughput (token and process-data requests per second over keep-alive
//! connections) and certified-zip streaming (MB/s and the process's memory
//! growth while a zip with a large recording streams).

use crate::domain::{now_ms, State};
use crate::review::Actor;
use crate::state::AppState;
use crate::store::processes as rows;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Gives the first bench integrator API credentials.
async fn credentials(state: &AppState) -> anyhow::Result<(String, String, String)> {
    let id = crate::store::bench_samples::integrator_with_pending(&state.db)
        .await
        .context("no process to read")?;
    let r = crate::accounts::integrators::rotate_secret(&state.db, &id, "bench", "local").await?;
    Ok((id, r.api_key, r.api_secret))
}

struct Totals {
    ok: AtomicU64,
    failed: AtomicU64,
    nanos: AtomicU64,
}

/// Runs `conc` workers, each with its own keep-alive client, sending
/// requests made by `make` for `secs` seconds; prints requests/s and the
/// mean latency.
async fn hammer<F>(label: &str, conc: usize, secs: u64, make: F) -> anyhow::Result<()>
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let totals = Arc::new(Totals {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        nanos: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (make, totals, stop) = (make.clone(), totals.clone(), stop.clone());
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = match make(&client, i).send().await {
                    Ok(r) => {
                        let good = r.status().is_success();
                        let _ = r.bytes().await;
                        good
                    }
                    Err(_) => false,
                };
                totals
                    .nanos
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                if ok {
                    totals.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    totals.failed.fetch_add(1, Ordering::Relaxed);
                }
                i += conc;
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed().as_secs_f64();
    let ok = totals.ok.load(Ordering::Relaxed);
    let failed = totals.failed.load(Ordering::Relaxed);
    let mean_ms = totals.nanos.load(Ordering::Relaxed) as f64 / (ok + failed).max(1) as f64 / 1e6;
    println!(
        "{label:<28} {conc} connections, {secs} s: {:>8.0} req/s, mean {:.2} ms, {ok} ok, {failed} failed",
        ok as f64 / took,
        mean_ms
    );
    anyhow::ensure!(failed == 0, "{label}: {failed} requests failed");
    Ok(())
}

pub async fn api_throughput(
    state: &AppState,
    base: &str,
    conc: usize,
    secs: u64,
) -> anyhow::Result<()> {
    let (integrator, key, secret) = credentials(state).await?;
    let url = format!("{base}/auth/token");
    let body = serde_json::json!({"api_key": key, "api_secret": secret});
    hammer("POST /auth/token", conc, secs, move |c, _| {
        c.post(&url).json(&body)
    })
    .await?;
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/auth/token"))
        .json(&serde_json::json!({"api_key": key, "api_secret": secret}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access token")?
        .to_string();
    let ids = crate::store::bench_samples::ids_of_integrator(&state.db, &integrator, 5000).await?;
    anyhow::ensure!(!ids.is_empty(), "the bench integrator has no processes");
    let base = base.to_string();
    hammer("GET getVerificationProcessData", conc, secs, move |c, i| {
        c.get(format!(
            "{base}/mobbscan-agent/getVerificationProcessData/{}",
            ids[i.wrapping_mul(7919) % ids.len()]
        ))
        .bearer_auth(&token)
    })
    .await
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Builds a final process with an `mb`-megabyte recording, then downloads
/// its certified zip once, discarding the bytes as they arrive.
pub async fn zip_stream(state: &AppState, base: &str, mb: u64) -> anyhow::Result<()> {
    let (integrator, key, secret) = credentials(state).await?;
    // The recording: pseudo-random bytes written straight into the blob
    // store, hashed on the way (as big uploads will be).
    let blobs_tmp = state.settings.data_dir.join("blobs").join("tmp");
    std::fs::create_dir_all(&blobs_tmp)?;
    let tmp = blobs_tmp.join(format!("bench-{}", uuid::Uuid::new_v4().simple()));
    let sha = tokio::task::spawn_blocking({
        let tmp = tmp.clone();
        move || -> anyhow::Result<String> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            let mut h = Sha256::new();
            let mut block = vec![0u8; 1 << 20];
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..mb {
                for chunk in block.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
                }
                h.update(&block);
                f.write_all(&block)?;
            }
            f.flush()?;
            Ok(hex::encode(h.finalize()))
        }
    })
    .await??;
    let dest = state.blobs.path_of(&sha).context("bad blob name")?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::rename(&tmp, &dest)?;

    let scan_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    rows::insert_many(
        &mut tx,
        &[rows::NewProcess {
            scan_id: scan_id.clone(),
            integrator_id: integrator.clone(),
            state: State::Created,
            country_id: Some("ESP".into()),
            doc_type: Some("Passport".into()),
            doc_specific_type: None,
            redirect_url: None,
            validations: "{}".into(),
            failing_validations: String::new(),
            document: crate::domain::Document::default(),
            agent: None,
            verification_result: None,
            rejection_reason: None,
            comment: None,
            client_info: None,
            pdf_checksum: None,
            created_at: now,
            verification_time: None,
        }],
    )
    .await
    .context("insert the bench process")?;
    // insert_many already counted it in its state.
    rows::insert_evidence(
        &mut tx,
        &rows::EvidenceRow {
            id: uuid::Uuid::new_v4().to_string(),
            scan_id: scan_id.clone(),
            kind: "recording".into(),
            evidence_type: "video".into(),
            sha256: sha.clone(),
            size: (mb << 20) as i64,
            media_type: "video/webm".into(),
            created_at: now,
            width: None,
            height: None,
        },
    )
    .await?;
    tx.commit().await?;
    let who = Actor {
        name: "bench".into(),
        client_addr: "local".into(),
    };
    crate::review::submit(
        &state.db,
        &state.settings,
        &state.blobs,
        &scan_id,
        &who,
        None,
    )
    .await?;
    crate::review::decide(
        &state.db,
        &state.settings,
        &state.blobs,
        &scan_id,
        &crate::review::DecisionInput {
            decision: crate::review::Decision::Accept,
            expected_version: None,
            reason: None,
            comment: None,
            changes: Default::default(),
            edit_reason: None,
        },
        &who,
        crate::review::Channel::Integrator,
    )
    .await?;

    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{base}/auth/token"))
        .json(&serde_json::json!({"api_key": key, "api_secret": secret}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().context("no token")?;
    let rss_before = rss_kb("VmRSS:");
    let peak_before = rss_kb("VmHWM:");
    let started = Instant::now();
    let mut resp = client
        .get(format!("{base}/api/zip/{scan_id}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "zip answered {}", resp.status());
    let mut total = 0u64;
    let mut peak_during = rss_before;
    while let Some(chunk) = resp.chunk().await? {
        total += chunk.len() as u64;
        if total % (64 << 20) < chunk.len() as u64 {
            peak_during = peak_during.max(rss_kb("VmRSS:"));
        }
    }
    let took = started.elapsed().as_secs_f64();
    let rss_after = rss_kb("VmRSS:");
    let peak_after = rss_kb("VmHWM:");
    println!(
        "certified zip, {mb} MB recording: {:.0} MB in {:.1} s = {:.0} MB/s",
        total as f64 / 1_048_576.0,
        took,
        total as f64 / 1_048_576.0 / took
    );
    println!(
        "  RSS before {:.1} MB, highest sampled during {:.1} MB, after {:.1} MB (growth {:+.1} MB); \
         peak RSS (VmHWM) {:.1} → {:.1} MB",
        rss_before as f64 / 1024.0,
        peak_during as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (peak_during.max(rss_after) as f64 - rss_before as f64) / 1024.0,
        peak_before as f64 / 1024.0,
        peak_after as f64 / 1024.0,
    );
    let _ = std::fs::remove_file(&dest);
    Ok(())
}
