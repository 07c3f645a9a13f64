//! Evidence bytes: a content-addressed blob store under the data dir and the
//! thumbnails derived from images.

pub mod intake;
pub mod thumbs;
pub mod upload;

use crate::store::processes::EvidenceRow;
use crate::store::{Backend, Db, Tx};

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Blobs live at `blobs/ab/abcdef…` named by their SHA-256, so identical
/// evidence is stored once and a blob can be checked against its name.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(data_dir: &Path) -> std::io::Result<BlobStore> {
        let root = data_dir.join("blobs");
        std::fs::create_dir_all(root.join("tmp"))?;
        let store = BlobStore { root };
        store.sweep_temp(std::time::Duration::from_secs(3600));
        Ok(store)
    }

    /// Removes temporary upload files older than `age`: what a crash in
    /// the middle of an upload leaves behind.
    pub fn sweep_temp(&self, age: std::time::Duration) {
        let Ok(dir) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in dir.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > age);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Stores bytes and returns their SHA-256. The write goes to a temporary
    /// file renamed into place, so a crash never leaves a half-written blob
    /// under a valid name.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let dest = self.root.join(&sha[..2]).join(&sha);
        if dest.exists() {
            return Ok(sha);
        }
        std::fs::create_dir_all(self.root.join(&sha[..2]))?;
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &dest)?;
        Ok(sha)
    }

    /// A fresh path in the store's temp dir (same filesystem, so placing
    /// a staged blob is a rename).
    pub fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().to_string())
    }

    /// Writes bytes to a temp file, to be placed under their name by the
    /// transaction that refers to them (see `StagedBlob`).
    pub fn stage(&self, bytes: &[u8]) -> std::io::Result<StagedBlob> {
        let staged = StagedBlob {
            tmp: Some(self.temp_path()),
            sha256: hex::encode(Sha256::digest(bytes)),
        };
        if let Some(path) = &staged.tmp {
            let mut f = std::fs::File::create(path)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        Ok(staged)
    }

    /// Inside `tx`, which must already hold (or be about to insert) the row
    /// that refers to the blob: takes the blob's lock and moves the staged
    /// bytes under their name. A concurrent `forget` of the same bytes holds
    /// the same lock from its in-use check to its unlink, so it either
    /// finished first (the file is gone and is written anew here) or runs
    /// after this commit and sees the row. An identical blob already stored
    /// wins (same bytes) and the temp file goes.
    pub async fn place(
        &self,
        db: &Db,
        tx: &mut Tx,
        mut staged: StagedBlob,
    ) -> Result<(), sqlx::Error> {
        db.lock_blob(tx, &staged.sha256).await?;
        let dest = self
            .path_of(&staged.sha256)
            .ok_or_else(|| sqlx::Error::Protocol(format!("bad blob name {}", staged.sha256)))?;
        let Some(tmp) = staged.tmp.take() else {
            return Ok(());
        };
        let moved = (|| {
            if dest.exists() {
                return std::fs::remove_file(&tmp);
            }
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(&tmp, &dest)
        })();
        if moved.is_err() {
            staged.tmp = Some(tmp);
        }
        moved.map_err(sqlx::Error::Io)
    }

    pub fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let p = self.path_of(sha256).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad blob name")
        })?;
        std::fs::read(p)
    }
}

/// Checked bytes in a temp file of the blob store, not yet under their
/// name: nothing can refer to them yet, so dropping one (a refused upload, a
/// decision that lost its race) removes the file and leaves nothing behind.
#[derive(Debug)]
pub struct StagedBlob {
    tmp: Option<PathBuf>,
    pub sha256: String,
}

impl StagedBlob {
    /// A temp file already written and hashed (a streamed upload).
    pub fn from_temp(tmp: PathBuf, sha256: String) -> StagedBlob {
        StagedBlob {
            tmp: Some(tmp),
            sha256,
        }
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if let Some(p) = self.tmp.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Deletes a blob (and its thumbnail) once no evidence row refers to it. The
/// in-use check and the unlink happen under the blob's lock (see
/// `BlobStore::place`), so bytes another process is adopting at that moment
/// are never lost. Best effort: a blob left behind is only wasted disk.
#[tracing::instrument(skip(db, blobs, thumbs))]
pub async fn forget(db: &Db, blobs: &BlobStore, thumbs: Option<&thumbs::Thumbnails>, sha256: &str) {
    if let Err(e) = forget_locked(db, blobs, thumbs, sha256).await {
        tracing::warn!(error = %e, "an unreferenced blob was kept");
    }
}

async fn forget_locked(
    db: &Db,
    blobs: &BlobStore,
    thumbs: Option<&thumbs::Thumbnails>,
    sha256: &str,
) -> Result<(), sqlx::Error> {
    let Some(path) = blobs.path_of(sha256) else {
        return Ok(());
    };
    let unlink = || {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(sqlx::Error::Io(e)),
        }
        if let Some(t) = thumbs {
            t.remove(sha256);
        }
        Ok(())
    };
    match db.backend {
        // The single writer connection, held from the check to the
        // unlink: `place` runs inside a writer transaction, so none can
        // come between them. One round trip to the writer instead of
        // three (a deferred BEGIN and its COMMIT added nothing: a read
        // takes no write lock). Every final decision on a case with a
        // report pays this.
        Backend::Sqlite => {
            let mut conn = db.write().hold().await?;
            if !crate::store::processes::blob_in_use(&mut conn, sha256).await? {
                unlink()?;
            }
            Ok(())
        }
        Backend::Postgres => {
            let mut tx = db.begin().await?;
            db.lock_blob(&mut tx, sha256).await?;
            if !crate::store::processes::blob_in_use(&mut tx, sha256).await? {
                unlink()?;
            }
            tx.commit().await
        }
    }
}

/// Audits an evidence download. A player seeking through a recording sends
/// many range requests; only the one that starts at byte 0 (or a plain GET)
/// counts as a download.
pub async fn audit_download(
    db: &crate::store::Db,
    actor: &str,
    client_addr: &str,
    e: &EvidenceRow,
    req: &actix_web::HttpRequest,
) -> Result<(), sqlx::Error> {
    let range = req
        .headers()
        .get(actix_web::http::header::RANGE)
        .and_then(|v| v.to_str().ok());
    if range.is_some_and(|r| !r.starts_with("bytes=0-")) {
        return Ok(());
    }
    crate::audit::record_now(
        db,
        crate::audit::Event {
            actor,
            action: "evidence.download",
            scan_id: Some(&e.scan_id),
            client_addr,
            detail: serde_json::json!({"kind": e.kind, "type": e.evidence_type, "sha256": e.sha256}),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_content() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = BlobStore::open(dir.path())?;
        let sha = store.put(b"hello")?;
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.get(&sha)?, b"hello");
        assert_eq!(store.put(b"hello")?, sha);
        assert!(store.path_of("../etc/passwd").is_none());
        Ok(())
    }
}
