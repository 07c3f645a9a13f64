//! Receiving evidence: the request body is streamed to a temporary file in
//! the blob store (hashed on the way, cut off at the kind's size limit),
//! checked by `intake`, and only then staged for the transaction that
//! attaches it to move under its SHA-256 name. A refused, interrupted or
//! oversized upload leaves nothing behind.

use super::intake::{self, Accepted, EvidenceLimits, Kind, Refused};
use super::BlobStore;
use actix_web::web;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Evidence that passed the checks, staged in the blob store: the
/// transaction that attaches it places the bytes under their name
/// (`BlobStore::place`); dropped unattached, it leaves nothing behind.
#[derive(Debug)]
pub struct StoredEvidence {
    pub kind: Kind,
    pub sha256: String,
    pub size: i64,
    pub accepted: Accepted,
    pub blob: super::StagedBlob,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Removes the temporary file unless it was kept.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The request's declared `Content-Length`, if any: an upload declaring
/// more than its limit is refused before a byte is read.
pub fn declared_len(req: &actix_web::HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Streams a request body into the blob store, checking it on the way in.
/// `declared_len` (Content-Length) over the limit is refused before a byte
/// is read.
pub async fn receive(
    mut payload: web::Payload,
    declared_len: Option<u64>,
    kind: Kind,
    limits: &EvidenceLimits,
    blobs: &BlobStore,
) -> Result<StoredEvidence, UploadError> {
    let max = kind.max_bytes(limits);
    let too_large = || Refused::TooLarge {
        kind: kind.as_str(),
        limit_mb: max >> 20,
    };
    if declared_len.is_some_and(|n| n > max) {
        return Err(too_large().into());
    }
    let tmp = TempFile(Some(blobs.temp_path()));
    let path = tmp
        .0
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no temp path"))?;
    // Created synchronously: were this future dropped (the client hung up)
    // during an off-thread create, the file would appear after `TempFile`
    // had already cleaned up.
    let mut file =
        tokio::fs::File::from_std(std::fs::File::create(&path).map_err(anyhow::Error::from)?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let idle = std::time::Duration::from_millis(limits.upload_idle_ms);
    loop {
        let next = tokio::time::timeout(idle, payload.next())
            .await
            .map_err(|_| {
                UploadError::Interrupted(format!(
                    "nothing arrived for {} s",
                    limits.upload_idle_ms / 1000
                ))
            })?;
        let Some(chunk) = next else {
            break;
        };
        let chunk = chunk.map_err(|e| UploadError::Interrupted(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large().into());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(anyhow::Error::from)?;
    }
    file.sync_all().await.map_err(anyhow::Error::from)?;
    drop(file);
    let sha256 = hex::encode(hasher.finalize());
    finish(tmp, path, sha256, size, kind, limits).await
}

/// The same checks for evidence already in memory (base64 in JSON).
pub async fn store_bytes(
    bytes: Vec<u8>,
    kind: Kind,
    limits: &EvidenceLimits,
    blobs: &BlobStore,
) -> Result<StoredEvidence, UploadError> {
    let max = kind.max_bytes(limits);
    if bytes.len() as u64 > max {
        return Err(Refused::TooLarge {
            kind: kind.as_str(),
            limit_mb: max >> 20,
        }
        .into());
    }
    let tmp = TempFile(Some(blobs.temp_path()));
    let path = tmp
        .0
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no temp path"))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as u64;
    tokio::fs::write(&path, &bytes)
        .await
        .map_err(anyhow::Error::from)?;
    finish(tmp, path, sha256, size, kind, limits).await
}

async fn finish(
    mut tmp: TempFile,
    path: PathBuf,
    sha256: String,
    size: u64,
    kind: Kind,
    limits: &EvidenceLimits,
) -> Result<StoredEvidence, UploadError> {
    let limits = limits.clone();
    let check_path = path.clone();
    let accepted = tokio::task::spawn_blocking(move || match kind {
        Kind::Image => {
            let bytes =
                std::fs::read(&check_path).map_err(|e| Refused::Undecodable(e.to_string()))?;
            intake::check_image(&bytes, &limits)
        }
        Kind::Recording => intake::check_recording(&check_path, &limits),
    })
    .await
    .map_err(anyhow::Error::from)??;
    tmp.0 = None;
    Ok(StoredEvidence {
        kind,
        sha256: sha256.clone(),
        size: size as i64,
        accepted,
        blob: super::StagedBlob::from_temp(path, sha256),
    })
}
