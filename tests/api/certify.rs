//! The report PDF and the certified zip, checked with a real zip reader,
//! `pdftotext` and `kycdesk verify-zip`.

use crate::both_backends;
use crate::helpers::{adopt, call, integrator, owned_in, token};
use crate::helpers::{spawn_app, Backend, TestApp, AGENT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

both_backends!(certified_zip_is_complete_signed_and_tamper_evident);

fn kycdesk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kycdesk"))
}

pub async fn get_bytes(app: &TestApp, path: &str, tok: &str, accept: &str) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(app.url(path))
        .header("Authorization", format!("Bearer {tok}"))
        .header("Accept", accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    (s, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

pub fn verify_cli(file: &Path, key: Option<&str>) -> (bool, String) {
    let mut cmd = kycdesk();
    cmd.arg("verify-zip").arg(file);
    if let Some(k) = key {
        cmd.args(["--public-key", k]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn entries(file: &Path) -> Vec<(String, u64, zip::CompressionMethod)> {
    let f = std::fs::File::open(file).unwrap_or_else(|e| panic!("{e}"));
    let mut z = zip::ZipArchive::new(f).unwrap_or_else(|e| panic!("{e}"));
    (0..z.len())
        .map(|i| {
            let e = z.by_index(i).unwrap_or_else(|e| panic!("{e}"));
            (
                e.name().to_string(),
                e.data_start().unwrap_or(0),
                e.compression(),
            )
        })
        .collect()
}

pub fn read_entry(file: &Path, name: &str) -> Vec<u8> {
    let f = std::fs::File::open(file).unwrap_or_else(|e| panic!("{e}"));
    let mut z = zip::ZipArchive::new(f).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    z.by_name(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

async fn certified_zip_is_complete_signed_and_tamper_evident(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(30).await;
    let c = integrator(&app, "Zip Bank").await;
    adopt(&app, &c).await;
    let tok = token(&app, &c).await;
    let id = owned_in(&app, &c, "PENDING_VERIFICATION").await[0].clone();

    let (s, _) = get_bytes(&app, &format!("/api/zip/{id}"), &tok, "application/json").await;
    assert_eq!(s, 409, "no certified zip before the decision");

    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        "/mobbscan-agent/accept",
        &tok,
        Some(json!({"verificationId": id, "type": "MANUAL", "personalData": {"name": "Zoë"}})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, data) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{id}"),
        &tok,
        None,
    )
    .await;
    assert_eq!(data["status"], "VERIFIED");
    let number = data["document"]["documentNumber"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!number.is_empty());

    // The report was re-issued with the decision; pdfChecksum is its SHA-256.
    let (s, pdf) = get_bytes(
        &app,
        &format!("/mobbscan-agent/api/pdf/{id}"),
        &tok,
        "application/pdf",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        data["pdfChecksum"].as_str(),
        Some(hex::encode(Sha256::digest(&pdf)).as_str())
    );
    match crate::case::pdf_text(&pdf) {
        Some(text) => {
            assert!(
                text.contains("Zoë"),
                "the edited name is in the report: {text}"
            );
            assert!(text.contains(&number), "the document number: {text}");
            assert!(
                text.contains("VERIFIED by integrator:Zip Bank"),
                "the decision: {text}"
            );
        }
        None if crate::helpers::require_all() => panic!("pdftotext is required (poppler-utils)"),
        None => eprintln!("SKIPPED pdftotext check: poppler-utils not installed"),
    }

    let (s, zip_bytes) = get_bytes(&app, &format!("/api/zip/{id}"), &tok, "application/json").await;
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("case.zip");
    std::fs::write(&file, &zip_bytes).unwrap_or_else(|e| panic!("{e}"));

    let names: Vec<String> = entries(&file).into_iter().map(|e| e.0).collect();
    for want in [
        "process.json",
        "document.json",
        "decision.json",
        "audit.json",
        "report.pdf",
        "evidence/image/front.jpg",
        "evidence/image/selfie.jpg",
        "manifest.json",
        "manifest.sig",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // Originals byte-for-byte, media stored not deflated.
    let (_, front) = get_bytes(
        &app,
        &format!("/mobbscan-agent/{id}/image/front"),
        &tok,
        "image/jpeg",
    )
    .await;
    assert_eq!(read_entry(&file, "evidence/image/front.jpg"), front);
    assert_eq!(read_entry(&file, "report.pdf"), pdf);
    for (name, _, method) in entries(&file) {
        if name.starts_with("evidence/") || name == "report.pdf" {
            assert_eq!(method, zip::CompressionMethod::Stored, "{name}");
        }
    }
    let process: Value =
        serde_json::from_slice(&read_entry(&file, "process.json")).unwrap_or_default();
    assert_eq!(process["scanId"], id.as_str());
    let document: Value =
        serde_json::from_slice(&read_entry(&file, "document.json")).unwrap_or_default();
    assert_eq!(document["edits"][0]["field"], "name");
    assert_eq!(document["edits"][0]["newValue"], "Zoë");
    let decision: Value =
        serde_json::from_slice(&read_entry(&file, "decision.json")).unwrap_or_default();
    assert_eq!(decision["decisions"][0]["to"], "VERIFIED");
    let audit: Value = serde_json::from_slice(&read_entry(&file, "audit.json")).unwrap_or_default();
    let decided = audit
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["action"] == "case.decide")
        .cloned()
        .unwrap_or_default();
    assert_eq!(decided["detail"]["fields"], json!(["name"]), "{audit}");
    assert_eq!(decided["hash"].as_str().map(str::len), Some(64));
    let manifest: Value =
        serde_json::from_slice(&read_entry(&file, "manifest.json")).unwrap_or_default();
    assert_eq!(
        manifest["files"].as_array().map(Vec::len),
        Some(names.len() - 2)
    );

    // verify-zip, pinned to the instance key that `signing-key` prints.
    let out = kycdesk()
        .args(["signing-key", "--data-dir"])
        .arg(&app.data_dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(manifest["publicKey"], key.as_str());
    let (ok, verdict) = verify_cli(&file, Some(&key));
    assert!(ok, "{verdict}");
    assert!(
        verdict.starts_with("OK:") && verdict.contains(&id),
        "{verdict}"
    );
    let other = kycdesk::certify::signing::public_key_text(
        &ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key(),
    );
    let (ok, verdict) = verify_cli(&file, Some(&other));
    assert!(
        !ok,
        "a zip signed by another key must fail when a key is pinned: {verdict}"
    );

    // One flipped byte in any entry fails verification.
    for (name, start, _) in entries(&file) {
        if name == "manifest.sig" || name == "manifest.json" {
            continue;
        }
        let mut bad = zip_bytes.clone();
        bad[start as usize + 3] ^= 0x01;
        let bad_file = dir.path().join("bad.zip");
        std::fs::write(&bad_file, &bad).unwrap_or_else(|e| panic!("{e}"));
        let r = kycdesk::certify::zip::verify(&bad_file, None);
        assert!(r.is_err(), "flipping a byte of {name} went unnoticed");
    }
    let (ok, verdict) = verify_cli(&dir.path().join("bad.zip"), Some(&key));
    assert!(!ok && verdict.starts_with("INVALID:"), "{verdict}");

    // An edited manifest (claiming a different hash) fails the signature.
    let edited = rewrite_manifest(&file, dir.path(), |m| {
        m["files"][0]["sha256"] = json!("0".repeat(64));
    });
    let (ok, verdict) = verify_cli(&edited, Some(&key));
    assert!(!ok && verdict.contains("signature"), "{verdict}");

    // Swapped evidence, re-signed with an attacker's key named in the
    // manifest: never OK without a trusted key, INVALID with one.
    let forged = forge(&file, dir.path());
    let (code, verdict) = verify_exit(&forged, None);
    assert_eq!(code, Some(3), "{verdict}");
    assert!(
        !verdict.starts_with("OK") && verdict.contains("not checked against a trusted key"),
        "{verdict}"
    );
    let (code, verdict) = verify_exit(&forged, Some(&key));
    assert_eq!(code, Some(1), "{verdict}");
    assert!(verdict.starts_with("INVALID:"), "{verdict}");
    // The genuine zip without a key: intact, but its origin unchecked.
    let (code, verdict) = verify_exit(&file, None);
    assert_eq!(code, Some(3), "{verdict}");

    // Other tenants see nothing; the desk offers the same archive.
    let stranger = integrator(&app, "Stranger Bank").await;
    let stok = token(&app, &stranger).await;
    assert_eq!(
        get_bytes(&app, &format!("/api/zip/{id}"), &stok, "application/zip")
            .await
            .0,
        404
    );
    let desk = app.login(AGENT).await;
    let page = desk
        .get(&format!("/desk/cases/{id}"))
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        page.contains(&format!("/desk/cases/{id}/zip")),
        "the case page links the zip"
    );
    let r = desk.get(&format!("/desk/cases/{id}/zip")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/zip")
    );
    let desk_file = dir.path().join("desk.zip");
    std::fs::write(&desk_file, r.bytes().await.unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, verdict) = verify_cli(&desk_file, Some(&key));
    assert!(ok, "{verdict}");
    let downloads = app
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'case.zip.download' AND scan_id = $1",
            &id,
        )
        .await;
    assert_eq!(downloads, 2);
}

/// Copies a zip with its manifest changed by `edit` (signature untouched).
/// An attacker's copy: one evidence file swapped, the manifest updated to
/// match, signed with the attacker's own key, which the manifest now names.
fn forge(src: &Path, dir: &Path) -> std::path::PathBuf {
    use ed25519_dalek::Signer;
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let f = std::fs::File::open(src).unwrap_or_else(|e| panic!("{e}"));
    let mut z = zip::ZipArchive::new(f).unwrap_or_else(|e| panic!("{e}"));
    let mut entries = Vec::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap_or_else(|e| panic!("{e}"));
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
        entries.push((e.name().to_string(), bytes));
    }
    let swapped = b"someone else's face".to_vec();
    let target = entries
        .iter()
        .position(|(n, _)| n.starts_with("evidence/"))
        .unwrap_or_else(|| panic!("no evidence in the zip"));
    entries[target].1 = swapped.clone();
    let target_name = entries[target].0.clone();
    let (mi, _) = entries
        .iter()
        .enumerate()
        .find(|(_, (n, _))| n == "manifest.json")
        .unwrap_or_else(|| panic!("no manifest"));
    let mut m: Value = serde_json::from_slice(&entries[mi].1).unwrap_or_default();
    for f in m["files"].as_array_mut().into_iter().flatten() {
        if f["path"] == target_name.as_str() {
            f["size"] = json!(swapped.len());
            f["sha256"] = json!(hex::encode(Sha256::digest(&swapped)));
        }
    }
    m["publicKey"] = json!(kycdesk::certify::signing::public_key_text(
        &attacker.verifying_key()
    ));
    let manifest = serde_json::to_vec_pretty(&m).unwrap_or_default();
    let sig = attacker.sign(&manifest).to_bytes().to_vec();
    entries[mi].1 = manifest;
    for (n, b) in entries.iter_mut() {
        if n == "manifest.sig" {
            *b = sig.clone();
        }
    }
    let out_path = dir.join("forged.zip");
    let out = std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
    let mut w = zip::ZipWriter::new(out);
    for (name, bytes) in entries {
        w.start_file(
            name,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        w.write_all(&bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    w.finish().unwrap_or_else(|e| panic!("{e}"));
    out_path
}

fn verify_exit(file: &Path, key: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = kycdesk();
    cmd.arg("verify-zip").arg(file);
    if let Some(k) = key {
        cmd.args(["--public-key", k]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn rewrite_manifest(src: &Path, dir: &Path, edit: impl Fn(&mut Value)) -> std::path::PathBuf {
    let f = std::fs::File::open(src).unwrap_or_else(|e| panic!("{e}"));
    let mut z = zip::ZipArchive::new(f).unwrap_or_else(|e| panic!("{e}"));
    let out_path = dir.join("edited.zip");
    let out = std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
    let mut w = zip::ZipWriter::new(out);
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap_or_else(|e| panic!("{e}"));
        let name = e.name().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
        if name == "manifest.json" {
            let mut m: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            edit(&mut m);
            bytes = serde_json::to_vec_pretty(&m).unwrap_or_default();
        }
        w.start_file(
            name,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        w.write_all(&bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    w.finish().unwrap_or_else(|e| panic!("{e}"));
    out_path
}
