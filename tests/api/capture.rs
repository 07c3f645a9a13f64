//! The capture-engine API and the evidence checks behind it: real images
//! and recordings pass; polyglots, lying types, pixel bombs, truncated and
//! empty files and a 1 GB upload are refused with a clear error and leave
//! nothing stored.

use crate::both_backends;
use crate::helpers::{call, integrator, token};
use crate::helpers::{spawn_app, Backend, TestApp, AGENT};
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::io::{Read, Write};

both_backends!(capture_engine_attaches_checked_evidence_and_submits);

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        // Top half red, bottom half blue: orientation is visible.
        if y < h / 2 {
            image::Rgb([220, 30, 30])
        } else {
            image::Rgb([30, 30, 220 - (x % 2) as u8])
        }
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

/// The same JPEG with an EXIF block saying "rotate 90° clockwise to view".
fn with_exif_orientation_6(j: &[u8]) -> Vec<u8> {
    let mut exif = vec![0xFF, 0xE1, 0x00, 0x22];
    exif.extend_from_slice(b"Exif\0\0MM\0\x2A\0\0\0\x08");
    exif.extend_from_slice(&[
        0x00, 0x01, 0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00, 0x06, 0, 0,
    ]);
    exif.extend_from_slice(&[0, 0, 0, 0]);
    let mut out = j[..2].to_vec();
    out.extend_from_slice(&exif);
    out.extend_from_slice(&j[2..]);
    out
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([90, 140, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    out.into_inner()
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A real 1×1 PNG whose header claims `side` × `side` pixels.
fn pixel_bomb(side: u32) -> Vec<u8> {
    let mut p = png(1, 1);
    p[16..20].copy_from_slice(&side.to_be_bytes());
    p[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

async fn upload(
    app: &TestApp,
    tok: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url(path))
        .header("Authorization", format!("Bearer {tok}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Sends headers declaring `declared` bytes (or chunked when None), then
/// `send` bytes, over a raw connection; returns the status line.
fn raw_upload(app: &TestApp, path: &str, tok: &str, declared: Option<u64>, send: usize) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("{e}"));
    let length = match declared {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".into(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nContent-Type: image/jpeg\r\n{length}Connection: close\r\n\r\n"
    );
    let _ = s.write_all(head.as_bytes());
    let block = vec![0xFFu8; 1 << 20];
    let mut sent = 0;
    while sent < send {
        let r = if declared.is_some() {
            s.write_all(&block)
        } else {
            s.write_all(format!("{:x}\r\n", block.len()).as_bytes())
                .and_then(|_| s.write_all(&block))
                .and_then(|_| s.write_all(b"\r\n"))
        };
        if r.is_err() {
            break; // the server closed the connection: it refused the rest
        }
        sent += block.len();
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.lines().next().unwrap_or_default().to_string()
}

/// Declares `declared` bytes, sends `send` of them, and hangs up.
fn interrupted_upload(app: &TestApp, path: &str, tok: &str, declared: u64, send: usize) {
    let addr = app.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nContent-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n"
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(&vec![0xFFu8; send]);
    let _ = s.shutdown(std::net::Shutdown::Both);
}

async fn evidence_count(app: &TestApp, id: &str) -> i64 {
    app.scalar_i64("SELECT COUNT(*) FROM evidence WHERE scan_id = $1", id)
        .await
}

fn temp_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.data_dir.join("blobs").join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn capture_engine_attaches_checked_evidence_and_submits(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed(3).await;
    let c = integrator(&app, "Capture Bank").await;
    let tok = token(&app, &c).await;
    let (s, created) = call(
        &app,
        reqwest::Method::POST,
        "/onboarding",
        &tok,
        Some(json!({"docType": "Passport", "countryId": "ESP"})),
    )
    .await;
    assert_eq!(s, 200);
    let id = created["scanId"].as_str().unwrap_or_default().to_string();
    let base = format!("/api/capture/{id}");

    // A photo taken sideways (EXIF orientation 6), sent with a lying type.
    let (s, v) = upload(
        &app,
        &tok,
        &format!("{base}/image/front"),
        "image/png",
        with_exif_orientation_6(&jpeg(800, 400)),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["mediaType"], "image/jpeg",
        "the type comes from the bytes"
    );
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(400), Some(800)),
        "upright size"
    );
    let (s, v) = upload(
        &app,
        &tok,
        &format!("{base}/image/selfie"),
        "application/octet-stream",
        png(480, 640),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["mediaType"], "image/png");
    assert_eq!(evidence_count(&app, &id).await, 2);
    assert_eq!(
        app.process_field(&id, "state").await.as_deref(),
        Some("IN_PROGRESS")
    );
    // A retake replaces the selfie, and the old bytes leave the blob store.
    let first_selfie = v["sha256"].as_str().unwrap_or_default().to_string();
    let (s, v) = upload(
        &app,
        &tok,
        &format!("{base}/image/selfie"),
        "image/png",
        png(500, 640),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(evidence_count(&app, &id).await, 2);
    let old_blob = app.state.blobs.path_of(&first_selfie).unwrap_or_default();
    assert!(
        !first_selfie.is_empty() && !old_blob.exists(),
        "the replaced selfie's blob is gone"
    );
    // Refused after the checks (a bad slot name): the stored bytes go too.
    let (s, v) = upload(
        &app,
        &tok,
        &format!("{base}/image/bad%20slot"),
        "image/jpeg",
        jpeg(640, 480),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(jpeg(640, 480)));
    assert!(
        !app.state.blobs.path_of(&sha).unwrap_or_default().exists(),
        "no orphan blob"
    );

    // Each bad file is refused with a clear error and nothing is stored.
    let good = jpeg(800, 600);
    let mut polyglot = good.clone();
    polyglot.extend_from_slice(b"PK\x03\x04\x14\x00 a zip archive hiding in a photo");
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    for (what, ct, body, status, says) in [
        (
            "polyglot",
            "image/jpeg",
            polyglot,
            422,
            "more than one format",
        ),
        (
            "lying extension",
            "image/jpeg",
            b"%PDF-1.7\n1 0 obj <<>> endobj\n".to_vec(),
            415,
            "PDF",
        ),
        (
            "huge dimensions",
            "image/png",
            pixel_bomb(30_000),
            422,
            "megapixels",
        ),
        (
            "dimensions past any decoder limit",
            "image/png",
            pixel_bomb(50_000),
            422,
            "megapixels",
        ),
        ("truncated JPEG", "image/jpeg", truncated, 422, "truncated"),
        ("zero bytes", "image/jpeg", Vec::new(), 422, "empty"),
        (
            "too small",
            "image/jpeg",
            jpeg(120, 90),
            422,
            "shorter side",
        ),
    ] {
        let (s, v) = upload(&app, &tok, &format!("{base}/image/back"), ct, body).await;
        assert_eq!(s, status, "{what}: {v}");
        assert!(
            v["description"].as_str().is_some_and(|d| d.contains(says)),
            "{what}: {v}"
        );
        assert_eq!(
            evidence_count(&app, &id).await,
            2,
            "{what} stored something"
        );
    }
    // Every refused request above was answered after its handler finished:
    // its temporary file is gone.
    assert_eq!(
        temp_files(&app),
        0,
        "a refused upload left a temporary file"
    );
    // A 1 GB upload: refused from its Content-Length before a byte is read.
    let line = raw_upload(
        &app,
        &format!("{base}/image/back"),
        &tok,
        Some(1 << 30),
        2 << 20,
    );
    assert!(line.contains(" 413 "), "declared 1 GB: {line}");
    assert_eq!(temp_files(&app), 0);
    // Without a length, cut off at the limit; and a client that hangs up
    // mid-upload. Neither becomes evidence. When the server learns of a
    // vanished client depends on the connection, so a stray temporary file
    // is possible for a while: uploads idle for `upload_idle_ms` are
    // abandoned, and the store sweeps old temporary files.
    let line = raw_upload(&app, &format!("{base}/image/back"), &tok, None, 40 << 20);
    assert!(
        line.is_empty() || line.contains(" 413 "),
        "chunked past the limit: {line}"
    );
    interrupted_upload(&app, &format!("{base}/image/back"), &tok, 5 << 20, 1 << 20);
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert_eq!(evidence_count(&app, &id).await, 2);
    app.state.blobs.sweep_temp(std::time::Duration::ZERO);
    assert_eq!(temp_files(&app), 0, "the sweep removes what is left");

    // Recordings: a real WebM passes (and raises VIDEO_AVAILABLE); a
    // truncated MP4 and a text file do not.
    let webm = kycdesk::assets::DemoAssets::get("recording.webm")
        .map(|f| f.data.to_vec())
        .unwrap_or_default();
    let (s, v) = upload(
        &app,
        &tok,
        &format!("{base}/recording/video"),
        "video/mp4",
        webm.clone(),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["mediaType"], "video/webm");
    let mut mp4 = 24u32.to_be_bytes().to_vec();
    mp4.extend_from_slice(b"ftypisom\0\0\0\0isommp41");
    mp4.extend_from_slice(&5000u32.to_be_bytes());
    mp4.extend_from_slice(b"mdat only the start of the data");
    let (s, v) = upload(
        &app,
        &tok,
        &format!("{base}/recording/other"),
        "video/mp4",
        mp4,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = upload(
        &app,
        &tok,
        &format!("{base}/recording/other"),
        "video/webm",
        b"just text".to_vec(),
    )
    .await;
    assert_eq!(s, 415);
    assert_eq!(evidence_count(&app, &id).await, 3);
    assert_eq!(
        app.scalar_i64(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'evidence.add' AND scan_id = $1",
            &id
        )
        .await,
        4,
        "front, selfie, its retake, the video"
    );

    // Extracted data: kycdesk reads the MRZ itself and fills what is missing.
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
    let mrz = kycdesk::demo::mrz::td3(&kycdesk::demo::mrz::Holder {
        issuer: "ESP",
        number: "PAB123456",
        birth: d(1990, 3, 14),
        sex: "F",
        expiry: d(2031, 3, 13),
        nationality: "ESP",
        surnames: &["GARCIA", "LOPEZ"],
        given: "MARIA JOSE",
    });
    let (s, docv) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/document"),
        &tok,
        Some(json!({
            "document": {"name": "María José", "dateOfBirth": "1990-03-14"},
            "mrz": mrz,
            "facialMatchingScore": 0.93,
            "facialLivenessScore": 0.88,
        })),
    )
    .await;
    assert_eq!(s, 200, "{docv}");
    assert_eq!(docv["documentNumber"], "PAB123456");
    assert_eq!(docv["surname"], "GARCIA LOPEZ");
    assert_eq!(docv["name"], "María José", "printed fields win");
    assert_eq!(docv["dateOfExpiry"], "2031-03-13");
    assert_eq!(docv["documentType"], "Passport");
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/document"),
        &tok,
        Some(json!({"document": {"shoeSize": "42"}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/document"),
        &tok,
        Some(json!({"facialMatchingScore": 7})),
    )
    .await;
    assert_eq!(s, 400);
    // The published 500-character limit holds for the value as sent: one
    // letter padded with 500 no-break spaces is refused, not trimmed and
    // taken (schemathesis found this on PostgreSQL).
    let padded = format!("x{}", "\u{a0}".repeat(500));
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/document"),
        &tok,
        Some(json!({"document": {"city": padded}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/document"),
        &tok,
        Some(json!({"mrz": format!("P{}", " ".repeat(200))})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, docv) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/document"),
        &tok,
        Some(json!({"document": {"city": "  Sevilla  "}})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(docv["city"], "Sevilla", "within the limit, stored trimmed");

    // Other tenants cannot touch it.
    let other = integrator(&app, "Other Bank").await;
    let otok = token(&app, &other).await;
    let (s, _) = upload(
        &app,
        &otok,
        &format!("{base}/image/front"),
        "image/jpeg",
        good.clone(),
    )
    .await;
    assert_eq!(s, 404);

    // Submit: validations, report, state, webhook; then it is closed.
    let (s, v) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/submit"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "PENDING_VERIFICATION");
    let (s, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("{base}/submit"),
        &tok,
        None,
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = upload(
        &app,
        &tok,
        &format!("{base}/image/front"),
        "image/jpeg",
        good,
    )
    .await;
    assert_eq!(s, 409, "no evidence after submission");
    let (_, data) = call(
        &app,
        reqwest::Method::GET,
        &format!("/mobbscan-agent/getVerificationProcessData/{id}"),
        &tok,
        None,
    )
    .await;
    for (check, want) in [
        ("mrzCheckDigits", "pass"),
        ("mrzMatchesDocument", "pass"),
        ("imagesPresent", "pass"),
        ("facialMatchingScore", "pass"),
        ("applicantOfAge", "pass"),
    ] {
        assert_eq!(
            data["validations"][check]["result"], want,
            "{check}: {}",
            data["validations"]
        );
    }
    assert!(data["validations"]["imagesPresent"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("400×800")));
    assert_eq!(data["pdfChecksum"].as_str().map(str::len), Some(64));
    assert_eq!(data["recordings"].as_array().map(Vec::len), Some(1));

    // The desk's derived image is upright (taller than wide) and carries no EXIF.
    let front_id: String = sqlx::query_scalar(
        "SELECT id FROM evidence WHERE scan_id = $1 AND evidence_type = 'front'",
    )
    .bind(&id)
    .fetch_one(app.state.db.read())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let desk = app.login(AGENT).await;
    let r = desk
        .get(&format!("/desk/cases/{id}/evidence/{front_id}/thumb"))
        .await;
    assert_eq!(r.status(), 200);
    let thumb = r.bytes().await.unwrap_or_default().to_vec();
    assert!(!thumb.windows(4).any(|w| w == b"Exif"), "metadata stripped");
    let img = image::load_from_memory(&thumb)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_rgb8();
    assert!(
        img.height() > img.width(),
        "upright: {}×{}",
        img.width(),
        img.height()
    );
    // Rotated 90° clockwise, the red top half is now on the right.
    let right = img.get_pixel(img.width() - 5, img.height() / 2);
    let left = img.get_pixel(4, img.height() / 2);
    assert!(
        right[0] > 150 && left[2] > 150,
        "right {right:?} left {left:?}"
    );
    // The original is kept byte-for-byte (EXIF and all).
    let r = desk
        .get(&format!("/desk/cases/{id}/evidence/{front_id}"))
        .await;
    let original = r.bytes().await.unwrap_or_default().to_vec();
    assert_eq!(original, with_exif_orientation_6(&jpeg(800, 400)));
}
