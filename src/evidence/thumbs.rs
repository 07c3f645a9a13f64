//! Thumbnails for the desk, made once with the `image` crate and cached on
//! disk by the source blob's hash.

use super::BlobStore;
use std::path::{Path, PathBuf};

pub const THUMB_WIDTH: u32 = 480;
/// Refuse to decode anything larger: thumbnails are for evidence we stored,
/// but a limit keeps a bad blob from taking the server's memory.
const MAX_PIXELS: u64 = 40_000_000;

#[derive(Clone, Debug)]
pub struct Thumbnails {
    dir: PathBuf,
    blobs: BlobStore,
}

impl Thumbnails {
    pub fn open(data_dir: &Path, blobs: BlobStore) -> std::io::Result<Thumbnails> {
        let dir = data_dir.join("thumbs");
        std::fs::create_dir_all(&dir)?;
        Ok(Thumbnails { dir, blobs })
    }

    /// Forgets a blob's thumbnail (when its case is deleted).
    pub fn remove(&self, sha256: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("{sha256}-{THUMB_WIDTH}.jpg")));
    }

    /// The path of the JPEG thumbnail of a blob, made on first use. Blocking:
    /// call it from `spawn_blocking`.
    pub fn ensure(&self, sha256: &str) -> anyhow::Result<PathBuf> {
        let src = self
            .blobs
            .path_of(sha256)
            .ok_or_else(|| anyhow::anyhow!("bad blob name"))?;
        let out = self.dir.join(format!("{sha256}-{THUMB_WIDTH}.jpg"));
        if out.exists() {
            return Ok(out);
        }
        // Upright (EXIF orientation applied) and without metadata.
        let bytes = std::fs::read(&src)?;
        let (jpeg, _, _) = super::intake::derived_jpeg(&bytes, THUMB_WIDTH, MAX_PIXELS)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let tmp = self.dir.join(format!("{}.tmp", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, &jpeg)?;
        std::fs::rename(&tmp, &out)?;
        Ok(out)
    }
}
