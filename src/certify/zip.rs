//! The certified zip (SPEC section 5): the process JSON, the document with
//! its edit history, the decision, notes, the case's audit entries, every
//! original image and recording byte-for-byte, the report PDF, and
//! `manifest.json` (path, size, SHA-256 of every other entry) signed with
//! the instance's Ed25519 key in `manifest.sig` (the raw 64-byte signature
//! over the exact manifest bytes).
//!
//! Media are stored, not deflated, and the archive is written as a stream
//! (data descriptors, no seeking) into a bounded channel, so memory does not
//! grow with recording size.

use crate::domain::rfc3339_ms;
use crate::store::processes::{self as rows, ProcessRow};
use crate::store::Db;
use actix_web::HttpResponse;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub const FORMAT: &str = "kycdesk-certified-zip/1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub scan_id: String,
    pub created_at: String,
    /// The key that signed `manifest.sig`, base64. Verifiers should pin the
    /// instance's key (`kycdesk signing-key`) rather than trust this field.
    pub public_key: String,
    pub files: Vec<ManifestFile>,
}

enum Source {
    Bytes(Vec<u8>),
    Blob(PathBuf),
}

struct Entry {
    path: String,
    source: Source,
    /// Media go in as they are: deflating JPEG or WebM gains nothing and
    /// would make the stream CPU-bound.
    stored: bool,
}

/// Everything that goes into one certified zip, ready to stream.
pub struct Package {
    pub scan_id: String,
    entries: Vec<Entry>,
    manifest: Vec<u8>,
    signature: Vec<u8>,
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/webm" => "webm",
        "video/mp4" => "mp4",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

fn pretty(v: &serde_json::Value) -> anyhow::Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(v)?;
    out.push(b'\n');
    Ok(out)
}

/// Why a certified zip was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Only final cases are certified (409 on every channel).
    #[error("the certified zip is issued once the case is final; it is {0}")]
    NotFinal(crate::domain::State),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What issuing needs from the instance.
pub struct Issuer<'a> {
    pub db: &'a Db,
    pub blobs: &'a crate::evidence::BlobStore,
    pub signing_key: &'a SigningKey,
    /// The public URL the process JSON's links are made from.
    pub public_url: &'a str,
}

/// Issues the certified zip of a final case, for any channel (API or desk):
/// checks the case is final, assembles and signs the package, and records
/// the download in the audit log.
pub async fn issue(
    issuer: &Issuer<'_>,
    p: &ProcessRow,
    actor: &str,
    client_addr: &str,
) -> Result<Package, IssueError> {
    let st = p.state().map_err(|e| IssueError::Internal(e.into()))?;
    if !st.is_final() {
        return Err(IssueError::NotFinal(st));
    }
    let pkg = assemble(issuer, p).await?;
    crate::audit::record_now(
        issuer.db,
        crate::audit::Event {
            actor,
            action: "case.zip.download",
            scan_id: Some(&p.scan_id),
            client_addr,
            detail: json!({}),
        },
    )
    .await
    .map_err(anyhow::Error::from)?;
    Ok(pkg)
}

/// Gathers a process's records and evidence and signs the manifest.
async fn assemble(issuer: &Issuer<'_>, p: &ProcessRow) -> anyhow::Result<Package> {
    let db = issuer.db.read();
    let id = &p.scan_id;
    let evidence = rows::evidence_for(db, id).await?;
    let edits = rows::field_edits_for(db, id).await?;
    let decisions = rows::decisions_for(db, id).await?;
    let notes = rows::notes_for(db, id).await?;
    let audit = crate::store::audit::all_for_case(db, id).await?;
    let retakes = crate::store::retakes::all_for(db, id).await?;
    let proposals = crate::store::proposals::all_for(db, id).await?;
    let replaced = crate::store::retakes::replaced_for(db, id).await?;
    let base = issuer.public_url.trim_end_matches('/');

    let mut entries = vec![
        Entry {
            path: "process.json".into(),
            source: Source::Bytes(pretty(&crate::certify::process_json::render(
                p, &evidence, base,
            )?)?),
            stored: false,
        },
        Entry {
            path: "document.json".into(),
            source: Source::Bytes(pretty(&json!({
                "document": p.document()?,
                "edits": edits.iter().map(|e| json!({
                    "field": e.field, "originalValue": e.original_value, "oldValue": e.old_value,
                    "newValue": e.new_value, "actor": e.actor, "reason": e.reason, "at": rfc3339_ms(e.at),
                })).collect::<Vec<_>>(),
            }))?),
            stored: false,
        },
        Entry {
            path: "decision.json".into(),
            source: Source::Bytes(pretty(&json!({
                "state": p.state,
                "verificationResult": p.verification_result,
                "agent": p.agent,
                "rejectionReason": p.rejection_reason,
                "comment": p.comment,
                "verificationTime": p.verification_time.map(rfc3339_ms),
                "decisions": decisions.iter().map(|d| json!({
                    "decision": d.decision, "from": d.from_state, "to": d.to_state, "actor": d.actor,
                    "reason": d.reason, "comment": d.comment, "at": rfc3339_ms(d.at),
                })).collect::<Vec<_>>(),
                // Four eyes: who proposed, who confirmed or overturned, why.
                "fourEyes": proposals.iter().map(|o| json!({
                    "proposedDecision": o.decision, "reason": o.reason, "comment": o.comment,
                    "rule": o.rule, "proposedBy": o.proposed_by, "proposedAt": rfc3339_ms(o.proposed_at),
                    "outcome": o.outcome, "reviewedBy": o.reviewed_by,
                    "reviewedAt": o.reviewed_at.map(rfc3339_ms), "reviewReason": o.review_reason,
                })).collect::<Vec<_>>(),
            }))?),
            stored: false,
        },
        Entry {
            path: "retakes.json".into(),
            source: Source::Bytes(pretty(&json!(retakes
                .iter()
                .map(|r| json!({
                    "id": r.id,
                    "steps": r.steps.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "reason": r.reason, "message": r.message, "language": r.lang,
                    "fromState": r.from_state, "requestedBy": r.requested_by,
                    "requestedAt": rfc3339_ms(r.requested_at), "expiresAt": rfc3339_ms(r.expires_at),
                    "resubmittedAt": r.resubmitted_at.map(rfc3339_ms),
                    "replaced": replaced.iter().filter(|x| x.retake_id == r.id).map(|x| json!({
                        "kind": x.evidence.kind, "type": x.evidence.evidence_type,
                        "sha256": x.evidence.sha256, "size": x.evidence.size,
                        "uploadedAt": rfc3339_ms(x.evidence.created_at),
                        "replacedAt": rfc3339_ms(x.replaced_at),
                    })).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()))?),
            stored: false,
        },
        Entry {
            path: "notes.json".into(),
            source: Source::Bytes(pretty(&json!(notes
                .iter()
                .map(|n| json!({"author": n.author, "body": n.body, "at": rfc3339_ms(n.at)}))
                .collect::<Vec<_>>()))?),
            stored: false,
        },
        Entry {
            path: "audit.json".into(),
            source: Source::Bytes(pretty(&json!(audit
                .iter()
                .map(|a| json!({
                    "seq": a.seq, "at": rfc3339_ms(a.at), "actor": a.actor, "action": a.action,
                    "scanId": a.scan_id, "clientAddr": a.client_addr,
                    "detail": serde_json::from_str::<serde_json::Value>(&a.detail).unwrap_or(serde_json::Value::Null),
                    "prevHash": a.prev_hash, "hash": a.hash,
                }))
                .collect::<Vec<_>>()))?),
            stored: false,
        },
    ];
    let mut files = Vec::new();
    for e in &entries {
        if let Source::Bytes(b) = &e.source {
            files.push(ManifestFile {
                path: e.path.clone(),
                size: b.len() as u64,
                sha256: hex::encode(Sha256::digest(b)),
            });
        }
    }
    let mut taken = HashSet::new();
    // Current evidence first, then what retakes replaced (under
    // evidence/replaced/, oldest first, numbered when one slot was retaken
    // more than once).
    let all = evidence
        .iter()
        .map(|e| (e, false))
        .chain(replaced.iter().map(|r| (&r.evidence, true)));
    for (e, old) in all {
        let dir = if old { "evidence/replaced" } else { "evidence" };
        let mut path = if e.kind == "pdf" && e.evidence_type == "report" && !old {
            "report.pdf".to_string()
        } else {
            format!(
                "{dir}/{}/{}.{}",
                e.kind,
                e.evidence_type,
                extension(&e.media_type)
            )
        };
        let mut n = 2;
        while !taken.insert(path.clone()) {
            path = format!(
                "{dir}/{}/{}-{n}.{}",
                e.kind,
                e.evidence_type,
                extension(&e.media_type)
            );
            n += 1;
        }
        let blob = issuer
            .blobs
            .path_of(&e.sha256)
            .ok_or_else(|| anyhow::anyhow!("evidence {} has a bad blob name", e.id))?;
        // The blob's name is its SHA-256; the size comes from the file so a
        // truncated blob shows up as a mismatch, not as a short read.
        let size = std::fs::metadata(&blob)
            .map_err(|err| {
                anyhow::anyhow!("evidence {} is missing from the blob store: {err}", e.id)
            })?
            .len();
        files.push(ManifestFile {
            path: path.clone(),
            size,
            sha256: e.sha256.clone(),
        });
        entries.push(Entry {
            path,
            source: Source::Blob(blob),
            stored: true,
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        scan_id: id.clone(),
        created_at: rfc3339_ms(crate::domain::now_ms()),
        public_key: super::signing::public_key_text(&issuer.signing_key.verifying_key()),
        files,
    };
    let manifest = pretty(&serde_json::to_value(&manifest)?)?;
    let signature = sign(issuer.signing_key, &manifest);
    Ok(Package {
        scan_id: id.clone(),
        entries,
        manifest,
        signature,
    })
}

pub fn sign(key: &SigningKey, manifest: &[u8]) -> Vec<u8> {
    key.sign(manifest).to_bytes().to_vec()
}

impl Package {
    /// Writes the archive to `w`, which need not seek.
    pub fn write_to<W: Write>(&self, w: W) -> anyhow::Result<W> {
        let mut z = zip::ZipWriter::new_stream(w);
        use chrono::{Datelike, Timelike};
        let now = chrono::Utc::now();
        let when = zip::DateTime::from_date_and_time(
            now.year() as u16,
            now.month() as u8,
            now.day() as u8,
            now.hour() as u8,
            now.minute() as u8,
            now.second() as u8,
        )
        .unwrap_or_default();
        for e in &self.entries {
            let mut opts = SimpleFileOptions::default()
                .last_modified_time(when)
                .unix_permissions(0o644);
            opts = if e.stored {
                opts.compression_method(CompressionMethod::Stored)
            } else {
                opts.compression_method(CompressionMethod::Deflated)
            };
            match &e.source {
                Source::Bytes(b) => {
                    z.start_file(
                        e.path.as_str(),
                        opts.large_file(b.len() as u64 >= u32::MAX as u64),
                    )?;
                    z.write_all(b)?;
                }
                Source::Blob(p) => {
                    let mut f = std::fs::File::open(p)?;
                    let large = f.metadata()?.len() >= u32::MAX as u64;
                    z.start_file(e.path.as_str(), opts.large_file(large))?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = f.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        z.write_all(&buf[..n])?;
                    }
                }
            }
        }
        let opts = SimpleFileOptions::default()
            .last_modified_time(when)
            .compression_method(CompressionMethod::Stored);
        z.start_file(MANIFEST, opts)?;
        z.write_all(&self.manifest)?;
        z.start_file(SIGNATURE, opts)?;
        z.write_all(&self.signature)?;
        Ok(z.finish()?.into_inner())
    }

    pub fn file_name(&self) -> String {
        format!("kycdesk-{}.zip", self.scan_id)
    }

    /// Streams the archive: a blocking task writes it into a channel of
    /// 64 KiB chunks holding at most 8 of them, and the response body reads
    /// from that channel.
    pub fn into_response(self) -> HttpResponse {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
        let name = self.file_name();
        tokio::task::spawn_blocking(move || {
            let sink = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            match self.write_to(sink) {
                Ok(mut sink) => {
                    let _ = sink.flush();
                }
                Err(e) => {
                    tracing::error!(scan_id = %self.scan_id, error = %e, "certified zip stream failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        });
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        HttpResponse::Ok()
            .content_type("application/zip")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}\""),
            ))
            .insert_header(("Cache-Control", "no-store"))
            .streaming(body)
    }
}

const CHUNK: usize = 64 * 1024;

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // Blocks while the client is slower than the disk: that is the
        // back-pressure that bounds memory.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A certified zip that checked out.
#[derive(Debug)]
pub struct Verified {
    pub scan_id: String,
    pub files: usize,
    pub bytes: u64,
    pub public_key: String,
    pub pinned: bool,
}

/// Checks a certified zip offline: the signature over `manifest.json`
/// (against `pinned` when given, else the key the manifest names), then
/// every entry's size and SHA-256 against the manifest, and that the zip has
/// exactly the manifest's entries.
pub fn verify(path: &std::path::Path, pinned: Option<&VerifyingKey>) -> Result<Verified, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("not a readable zip: {e}"))?;
    let manifest_bytes = read_small(&mut z, MANIFEST, 64 << 20)?;
    let sig_bytes = read_small(&mut z, SIGNATURE, 1024)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("{MANIFEST} is not a valid manifest: {e}"))?;
    if manifest.format != FORMAT {
        return Err(format!("unknown manifest format '{}'", manifest.format));
    }
    let embedded = super::signing::parse_public_key(&manifest.public_key)
        .map_err(|e| format!("the manifest's publicKey is unusable: {e}"))?;
    let key = match pinned {
        Some(k) if k != &embedded => {
            return Err(format!(
                "signed by key {}, not by the expected key {}",
                manifest.public_key,
                super::signing::public_key_text(k)
            ))
        }
        Some(k) => *k,
        None => embedded,
    };
    let sig: [u8; 64] = sig_bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("{SIGNATURE} must hold a 64-byte Ed25519 signature"))?;
    key.verify(&manifest_bytes, &Signature::from_bytes(&sig))
        .map_err(|_| format!("the signature in {SIGNATURE} does not match {MANIFEST}"))?;

    let mut listed: BTreeMap<&str, &ManifestFile> = BTreeMap::new();
    for f in &manifest.files {
        if listed.insert(f.path.as_str(), f).is_some() {
            return Err(format!("the manifest lists {} twice", f.path));
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for i in 0..z.len() {
        let mut entry = z
            .by_index(i)
            .map_err(|e| format!("entry #{i} cannot be read: {e}"))?;
        let name = entry.name().to_string();
        if name == MANIFEST || name == SIGNATURE {
            if !seen.insert(name.clone()) {
                return Err(format!("the zip holds {name} twice"));
            }
            continue;
        }
        let Some(want) = listed.get(name.as_str()) else {
            return Err(format!("{name} is in the zip but not in the manifest"));
        };
        if !seen.insert(name.clone()) {
            return Err(format!("the zip holds {name} twice"));
        }
        let mut h = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("{name} is corrupt: {e}"))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            h.update(&buf[..n]);
        }
        if size != want.size {
            return Err(format!(
                "{name} has {size} bytes; the manifest says {}",
                want.size
            ));
        }
        if hex::encode(h.finalize()) != want.sha256 {
            return Err(format!("{name} does not match its SHA-256 in the manifest"));
        }
        total += size;
    }
    if let Some(missing) = listed.keys().find(|p| !seen.contains(**p)) {
        return Err(format!("{missing} is in the manifest but not in the zip"));
    }
    Ok(Verified {
        scan_id: manifest.scan_id,
        files: listed.len(),
        bytes: total,
        public_key: manifest.public_key,
        pinned: pinned.is_some(),
    })
}

fn read_small(
    z: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let entry = z
        .by_name(name)
        .map_err(|_| format!("the zip has no {name}: not a certified zip"))?;
    let mut out = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{name} is corrupt: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("{name} is larger than {limit} bytes"));
    }
    Ok(out)
}

/// The one-line verdict `kycdesk verify-zip` prints.
pub fn verdict_line(v: &Verified) -> String {
    if v.pinned {
        format!(
            "OK: certified zip for process {} — {} files, {} bytes, signature valid (trusted key {})",
            v.scan_id, v.files, v.bytes, v.public_key
        )
    } else {
        format!(
            "NOT TRUSTED: certified zip for process {} — {} files, {} bytes consistent with the key its own manifest names ({}); \
             signature not checked against a trusted key: anyone can re-sign a changed zip with their own key. \
             Pass --public-key with the instance's key (kycdesk signing-key)",
            v.scan_id, v.files, v.bytes, v.public_key
        )
    }
}
