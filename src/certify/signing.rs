//! The instance's Ed25519 key that signs certified zips. Generated once, on
//! first use, and kept in the data dir (`signing-key.ed25519`, the 32-byte
//! seed in hex, readable by the owner only).

use anyhow::Context;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "signing-key.ed25519";

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Loads the key, creating it if the data dir has none. Creation writes a
/// temporary file and links it into place, so two processes starting at
/// once end up with the same key.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = key_path(data_dir);
    if !path.exists() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let tmp = data_dir.join(format!(".{KEY_FILE}.{}", uuid::Uuid::new_v4().simple()));
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(hex::encode(key.to_bytes()).as_bytes())?;
            f.sync_all()?;
        }
        // hard_link fails if another process won the race; theirs stays.
        let _ = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
    }
    load(&path)
}

pub fn load(path: &Path) -> anyhow::Result<SigningKey> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    let bytes: [u8; 32] = hex::decode(raw.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} is not a 32-byte hex Ed25519 seed", path.display()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// How the public key is printed and embedded: standard base64 of the 32 bytes.
pub fn public_key_text(k: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(k.as_bytes())
}

/// Reads a public key given as base64 or hex of its 32 bytes.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, String> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(s).map_err(|e| e.to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| format!("'{s}' is neither base64 nor hex"))?
    };
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an Ed25519 public key has 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_reloaded() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = load_or_create(dir.path())?;
        let b = load_or_create(dir.path())?;
        assert_eq!(a.to_bytes(), b.to_bytes());
        let text = public_key_text(&a.verifying_key());
        assert_eq!(parse_public_key(&text), Ok(a.verifying_key()));
        let hexed = hex::encode(a.verifying_key().as_bytes());
        assert_eq!(parse_public_key(&hexed), Ok(a.verifying_key()));
        assert!(parse_public_key("AAAA").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path()))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
        }
        Ok(())
    }
}
