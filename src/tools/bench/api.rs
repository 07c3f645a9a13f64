//! `kycdesk bench --api-seconds S` and `--zip-mb M`: the integrator API
//! pages (token and process data, loaded by `drive`) and certified-zip
//! streaming (MB/s and the process's memory growth while a zip with a
//! large recording streams).

use super::{drive, Page};
use crate::domain::now_ms;
use crate::review::Actor;
use crate::state::AppState;
use crate::store::processes as rows;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::time::Instant;

/// The bench integrator's id, API key and secret.
pub type Credentials = (String, String, String);

/// Gives the first bench integrator API credentials. Called once, before
/// the server starts: the secret is rotated from the bench's own database
/// handle, which the server sees as another app server's change (its
/// cached integrator row would refuse new tokens for up to a second).
pub async fn credentials(state: &AppState) -> anyhow::Result<Credentials> {
    let id = crate::store::bench_samples::integrator_with_pending(&state.db)
        .await
        .context("no process to read")?;
    let r = crate::accounts::integrators::rotate_secret(&state.db, &id, "bench", "local").await?;
    Ok((id, r.api_key, r.api_secret))
}

/// The integrator API pages: the token endpoint and
/// getVerificationProcessData over random processes of one integrator.
pub async fn pages(state: &AppState, base: &str, creds: &Credentials) -> anyhow::Result<Vec<Page>> {
    let (integrator, key, secret) = creds;
    let body = serde_json::json!({"api_key": key, "api_secret": secret});
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/auth/token"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access token")?
        .to_string();
    let ids = crate::store::bench_samples::ids_of_integrator(&state.db, integrator, 5000).await?;
    anyhow::ensure!(!ids.is_empty(), "the bench integrator has no processes");
    // Decisions consume their cases: each pending case is accepted once
    // (the page ends early if they run out), and it runs last, so the
    // reads above see the data as loaded.
    let pending =
        crate::store::bench_samples::pending_of_integrator(&state.db, integrator, 100_000).await?;
    let mut pages = vec![
        Page::post("POST /auth/token", format!("{base}/auth/token"), body),
        Page::get(
            "GET getVerificationProcessData",
            ids.iter()
                .map(|id| format!("{base}/mobbscan-agent/getVerificationProcessData/{id}"))
                .collect(),
        )
        .with_bearer(&token),
    ];
    if pending.is_empty() {
        println!("POST accept: the bench integrator has no case in review; skipped");
    } else {
        pages.push(
            Page::post_each(
                "POST accept (a decision)",
                format!("{base}/mobbscan-agent/accept"),
                pending
                    .iter()
                    .map(|id| serde_json::json!({ "verificationId": id }))
                    .collect(),
            )
            .with_bearer(&token),
        );
    }
    Ok(pages)
}

/// Builds a final process with an `mb`-megabyte recording, then downloads
/// its certified zip once, discarding the bytes as they arrive.
pub async fn zip_stream(
    state: &AppState,
    base: &str,
    mb: u64,
    pid: u32,
    creds: &Credentials,
) -> anyhow::Result<()> {
    let (integrator, key, secret) = creds;
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
    // The bytes are the same for the same size, so an earlier run's
    // recording is this one's (content-addressed): kept, never deleted,
    // since every bench case that holds it must keep answering its zip.
    if dest.exists() {
        std::fs::remove_file(&tmp)?;
    } else {
        std::fs::rename(&tmp, &dest)?;
    }

    let scan_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let shard = state.db.counter_shard();
    let mut tx = state.db.begin().await?;
    rows::insert_many(
        &mut tx,
        &[rows::NewProcess {
            country_id: Some("ESP".into()),
            doc_type: Some("Passport".into()),
            ..rows::NewProcess::created(scan_id.clone(), integrator.clone(), now)
        }],
        shard.id(),
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
    let case = crate::review::load_for_decision(&state.db, &scan_id).await?;
    crate::review::decide(
        &state.db,
        &state.settings,
        &state.blobs,
        case,
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
    let rss_before = drive::rss_kb(pid, "VmRSS:");
    let peak_before = drive::rss_kb(pid, "VmHWM:");
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
            peak_during = peak_during.max(drive::rss_kb(pid, "VmRSS:"));
        }
    }
    let took = started.elapsed().as_secs_f64();
    let rss_after = drive::rss_kb(pid, "VmRSS:");
    let peak_after = drive::rss_kb(pid, "VmHWM:");
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
    println!("  the recording (sha256 {sha}) stays with case {scan_id}: its zip keeps answering");
    Ok(())
}
