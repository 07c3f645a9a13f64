//! Checks every piece of evidence passes before it is stored, whichever way
//! it arrives (hosted page, capture-engine API): size limits per kind, the
//! media type decided from the bytes (never the name or the client's
//! header), images decoded within pixel and allocation limits, recordings
//! accepted as WebM or MP4 only when their container structure checks out.
//! Originals are kept byte-for-byte; derived images (thumbnails, the report)
//! get their EXIF orientation applied and carry no metadata.

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Operator-configurable limits.
#[derive(Debug, Clone)]
pub struct EvidenceLimits {
    pub image_max_bytes: u64,
    pub recording_max_bytes: u64,
    /// Width × height above which an image is refused before decoding.
    pub max_pixels: u64,
    /// The shorter side below which a document or selfie is too small to review.
    pub min_side: u32,
    /// An upload that sends nothing for this long is abandoned (and its
    /// temporary file removed): a stalled or vanished client cannot hold one open.
    pub upload_idle_ms: u64,
}

impl Default for EvidenceLimits {
    fn default() -> Self {
        EvidenceLimits {
            image_max_bytes: 15 << 20,
            recording_max_bytes: 200 << 20,
            max_pixels: 40_000_000,
            min_side: 240,
            upload_idle_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Recording,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "image" => Some(Kind::Image),
            "recording" => Some(Kind::Recording),
            _ => None,
        }
    }
    pub fn max_bytes(self, l: &EvidenceLimits) -> u64 {
        match self {
            Kind::Image => l.image_max_bytes,
            Kind::Recording => l.recording_max_bytes,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Recording => "recording",
        }
    }
}

/// Why evidence was refused, in words an applicant or integrator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than the {limit_mb} MB allowed for {kind}s")]
    TooLarge { kind: &'static str, limit_mb: u64 },
    #[error("{0}")]
    WrongType(String),
    #[error("the image is {w}×{h} pixels; at most {max_mp} megapixels are accepted")]
    TooManyPixels { w: u32, h: u32, max_mp: u64 },
    #[error("the image is {w}×{h} pixels; its shorter side must be at least {min} pixels")]
    TooSmall { w: u32, h: u32, min: u32 },
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("the file holds more than one format (data after the end of the image); refused")]
    Polyglot,
    #[error("the recording's container is damaged: {0}")]
    BadContainer(String),
}

/// What passed: the media type decided from the bytes, and image size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub media_type: &'static str,
    pub dimensions: Option<(u32, u32)>,
}

/// The image formats accepted, by magic number.
fn sniff_image(head: &[u8]) -> Option<ImageFormat> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else {
        None
    }
}

/// What a file looks like, for error messages.
fn describe(head: &[u8]) -> &'static str {
    if head.starts_with(b"%PDF") {
        "a PDF"
    } else if head.starts_with(b"PK\x03\x04") {
        "a zip archive"
    } else if head.starts_with(b"GIF8") {
        "a GIF"
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "a WebP image"
    } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        || (head.len() >= 8 && &head[4..8] == b"ftyp")
    {
        "a video"
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) || head.starts_with(b"\x89PNG") {
        "an image"
    } else if head.iter().take(512).all(|b| b.is_ascii()) {
        "text"
    } else {
        "an unknown format"
    }
}

fn image_limits(max_pixels: u64) -> image::Limits {
    let mut l = image::Limits::default();
    // RGBA8 of the largest accepted image, plus decoder working space. No
    // width or height limit: those would refuse a 50000 × 50000 header as
    // "undecodable" before the pixel count below can say what is wrong.
    l.max_alloc = Some(max_pixels * 4 + (64 << 20));
    l.max_image_width = None;
    l.max_image_height = None;
    l
}

/// Pixel memory all image decodes together may hold at once. A 150 KB PNG
/// can declare 40 megapixels (120 MB decoded): without a shared budget, a
/// few uploads at once multiply that. A decode waits until its share is
/// free; one larger than the whole budget takes all of it, alone.
pub const DECODE_BUDGET_BYTES: u64 = 256 << 20;

/// The budget, counted in MiB. Decodes run on blocking threads, so a plain
/// mutex and condition variable is the right tool for waiting.
struct DecodeBudget {
    free: std::sync::Mutex<u32>,
    freed: std::sync::Condvar,
}

static BUDGET: DecodeBudget = DecodeBudget {
    free: std::sync::Mutex::new((DECODE_BUDGET_BYTES >> 20) as u32),
    freed: std::sync::Condvar::new(),
};

/// A share of the decode budget, given back when dropped.
struct DecodeMemory(u32);

impl Drop for DecodeMemory {
    fn drop(&mut self) {
        let mut free = BUDGET.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += self.0;
        BUDGET.freed.notify_all();
    }
}

/// Waits until `bytes` of the decode budget are free and takes them.
fn reserve_decode_memory(bytes: u64) -> DecodeMemory {
    let whole = (DECODE_BUDGET_BYTES >> 20) as u32;
    let mib = (bytes.div_ceil(1 << 20).min(u64::from(whole)) as u32).max(1);
    let mut free = BUDGET.free.lock().unwrap_or_else(|p| p.into_inner());
    while *free < mib {
        free = BUDGET.freed.wait(free).unwrap_or_else(|p| p.into_inner());
    }
    *free -= mib;
    DecodeMemory(mib)
}

/// Signatures of other formats that have no business inside a photo.
const FOREIGN: [&[u8]; 6] = [
    b"%PDF-",
    b"PK\x03\x04",
    b"<script",
    b"<html",
    b"<?php",
    b"<svg",
];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The image must end where its format says it ends: trailing data is how
/// polyglots (an image that is also a zip, a PDF, a script) are made.
fn ends_cleanly(bytes: &[u8], f: ImageFormat) -> bool {
    let mut end = bytes.len();
    // Some cameras pad with a few zero bytes after the end marker.
    while end > 0 && bytes[end - 1] == 0 && bytes.len() - end < 64 {
        end -= 1;
    }
    let b = &bytes[..end];
    match f {
        ImageFormat::Jpeg => b.ends_with(&[0xFF, 0xD9]),
        ImageFormat::Png => {
            b.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82])
        }
        _ => true,
    }
}

/// Checks an image fully in memory (images are at most `image_max_bytes`).
pub fn check_image(bytes: &[u8], l: &EvidenceLimits) -> Result<Accepted, Refused> {
    if bytes.is_empty() {
        return Err(Refused::Empty);
    }
    if bytes.len() as u64 > l.image_max_bytes {
        return Err(Refused::TooLarge {
            kind: "image",
            limit_mb: l.image_max_bytes >> 20,
        });
    }
    let Some(format) = sniff_image(bytes) else {
        return Err(Refused::WrongType(format!(
            "the file is {}, not a JPEG or PNG image",
            describe(bytes)
        )));
    };
    if !ends_cleanly(bytes, format) {
        return Err(if FOREIGN.iter().any(|sig| contains(bytes, sig)) {
            Refused::Polyglot
        } else {
            Refused::Undecodable("the file is truncated or has data after the image".into())
        });
    }
    if FOREIGN.iter().any(|sig| contains(bytes, sig)) {
        return Err(Refused::Polyglot);
    }
    let (img, memory) = decode(bytes, format, l.max_pixels)?;
    let (w, h) = (img.width(), img.height());
    drop(img);
    drop(memory);
    if w.min(h) < l.min_side {
        return Err(Refused::TooSmall {
            w,
            h,
            min: l.min_side,
        });
    }
    Ok(Accepted {
        media_type: match format {
            ImageFormat::Png => "image/png",
            _ => "image/jpeg",
        },
        dimensions: Some((w, h)),
    })
}

/// Decodes within limits, the dimensions checked from the header before any
/// pixel memory is allocated, and applies the EXIF orientation.
/// The image comes with its share of the decode budget: hold it for as long
/// as the pixels (or copies of them) live.
fn decode(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> Result<(DynamicImage, DecodeMemory), Refused> {
    let undecodable = |e: image::ImageError| Refused::Undecodable(e.to_string());
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    reader.limits(image_limits(max_pixels));
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(Refused::TooManyPixels {
            w,
            h,
            max_mp: max_pixels / 1_000_000,
        });
    }
    let orientation = decoder.orientation().map_err(undecodable)?;
    // The pixels, plus a second copy while a rotation is applied.
    let memory = reserve_decode_memory(decoder.total_bytes().saturating_mul(2));
    let mut img = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    img.apply_orientation(orientation);
    Ok((img, memory))
}

/// A derived image of stored evidence: upright (EXIF orientation applied),
/// within `max_side`, and without metadata (re-encoded from pixels).
pub fn derived_jpeg(
    bytes: &[u8],
    max_side: u32,
    max_pixels: u64,
) -> Result<(Vec<u8>, u32, u32), Refused> {
    let format =
        sniff_image(bytes).ok_or_else(|| Refused::WrongType("not a JPEG or PNG image".into()))?;
    let (img, _memory) = decode(bytes, format, max_pixels)?;
    let img = if img.width().max(img.height()) > max_side {
        img.thumbnail(max_side, max_side)
    } else {
        img
    };
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&rgb)
        .map_err(|e| Refused::Undecodable(e.to_string()))?;
    Ok((out, rgb.width(), rgb.height()))
}

/// Checks a recording on disk: WebM (EBML with DocType `webm` and a
/// Segment) or MP4 (ISO BMFF: `ftyp` first, top-level boxes that add up to
/// the file, a `moov`). Reads headers only; size never matters for memory.
pub fn check_recording(path: &Path, l: &EvidenceLimits) -> Result<Accepted, Refused> {
    let mut f = std::fs::File::open(path).map_err(|e| Refused::BadContainer(e.to_string()))?;
    let len = f
        .metadata()
        .map_err(|e| Refused::BadContainer(e.to_string()))?
        .len();
    if len == 0 {
        return Err(Refused::Empty);
    }
    if len > l.recording_max_bytes {
        return Err(Refused::TooLarge {
            kind: "recording",
            limit_mb: l.recording_max_bytes >> 20,
        });
    }
    let mut head = vec![0u8; 4096.min(len as usize)];
    f.read_exact(&mut head)
        .map_err(|e| Refused::BadContainer(e.to_string()))?;
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        check_webm(&head, len)?;
        Ok(Accepted {
            media_type: "video/webm",
            dimensions: None,
        })
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        check_mp4(&mut f, len)?;
        Ok(Accepted {
            media_type: "video/mp4",
            dimensions: None,
        })
    } else {
        Err(Refused::WrongType(format!(
            "the file is {}, not a WebM or MP4 recording",
            describe(&head)
        )))
    }
}

/// An EBML variable-length integer at `b[i..]`: (value, length).
fn vint(b: &[u8], i: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *b.get(i)?;
    let n = first.leading_zeros() as usize + 1;
    if n > 8 || i + n > b.len() {
        return None;
    }
    let mut v = if keep_marker {
        first as u64
    } else {
        (first as u64) & (0xFF >> n)
    };
    for k in 1..n {
        v = (v << 8) | b[i + k] as u64;
    }
    Some((v, n))
}

fn check_webm(head: &[u8], len: u64) -> Result<(), Refused> {
    let bad = |m: &str| Refused::BadContainer(m.to_string());
    let (_, id_len) = vint(head, 0, true).ok_or_else(|| bad("no EBML header"))?;
    let (size, size_len) = vint(head, id_len, false).ok_or_else(|| bad("bad EBML header size"))?;
    let body_start = id_len + size_len;
    let body_end = body_start
        .checked_add(usize::try_from(size).map_err(|_| bad("EBML header too large"))?)
        .filter(|e| *e <= head.len())
        .ok_or_else(|| bad("EBML header larger than the file's start"))?;
    // Walk the header's children looking for DocType (0x4282).
    let mut i = body_start;
    let mut doctype = None;
    while i < body_end {
        let (id, il) = vint(head, i, true).ok_or_else(|| bad("bad element id"))?;
        let (sz, sl) = vint(head, i + il, false).ok_or_else(|| bad("bad element size"))?;
        let start = i + il + sl;
        let end = start
            .checked_add(sz as usize)
            .filter(|e| *e <= body_end)
            .ok_or_else(|| bad("element overruns the EBML header"))?;
        if id == 0x4282 {
            doctype = Some(&head[start..end]);
        }
        i = end;
    }
    match doctype {
        Some(b"webm") => {}
        Some(other) => {
            return Err(Refused::WrongType(format!(
                "a Matroska file of type '{}', not WebM",
                String::from_utf8_lossy(other)
            )))
        }
        None => return Err(bad("the EBML header has no DocType")),
    }
    // Then the Segment (0x18538067).
    let (id, il) =
        vint(head, body_end, true).ok_or_else(|| bad("nothing after the EBML header"))?;
    if id != 0x1853_8067 {
        return Err(bad("no Segment after the EBML header"));
    }
    let (seg_size, sl) = vint(head, body_end + il, false).ok_or_else(|| bad("bad Segment size"))?;
    let unknown = seg_size == (1u64 << (7 * sl)) - 1;
    let seg_end = (body_end + il + sl) as u64 + seg_size;
    if !unknown && seg_end > len {
        return Err(bad(
            "the file is shorter than its Segment (truncated upload?)",
        ));
    }
    Ok(())
}

fn check_mp4(f: &mut std::fs::File, len: u64) -> Result<(), Refused> {
    let bad = |m: String| Refused::BadContainer(m);
    let mut pos = 0u64;
    let mut seen_moov = false;
    let mut first = true;
    let mut boxes = 0;
    while pos < len {
        boxes += 1;
        if boxes > 10_000 {
            return Err(bad("too many top-level boxes".into()));
        }
        f.seek(SeekFrom::Start(pos))
            .map_err(|e| bad(e.to_string()))?;
        let mut hdr = [0u8; 16];
        let n = f.read(&mut hdr).map_err(|e| bad(e.to_string()))?;
        if n < 8 {
            return Err(bad(format!("a box header is cut short at byte {pos}")));
        }
        let size32 = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as u64;
        let kind = &hdr[4..8];
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(bad(format!(
                "garbage where a box should start at byte {pos}"
            )));
        }
        let size = match size32 {
            0 => len - pos,
            1 if n >= 16 => u64::from_be_bytes([
                hdr[8], hdr[9], hdr[10], hdr[11], hdr[12], hdr[13], hdr[14], hdr[15],
            ]),
            1 => return Err(bad("a 64-bit box size is cut short".into())),
            s => s,
        };
        if size < 8 || pos + size > len {
            return Err(bad(format!(
                "the '{}' box at byte {pos} claims {size} bytes; the file ends first (truncated upload?)",
                String::from_utf8_lossy(kind)
            )));
        }
        if first {
            if kind != b"ftyp" {
                return Err(bad("an MP4 file starts with 'ftyp'".into()));
            }
            if &hdr[8..12] == b"qt  " {
                return Err(Refused::WrongType("a QuickTime movie, not MP4".into()));
            }
            first = false;
        }
        if kind == b"moov" {
            seen_moov = true;
        }
        pos += size;
    }
    if !seen_moov {
        return Err(bad("no 'moov' box: the recording has no index".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 120, 40]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode_image(&img)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{e}"));
        out.into_inner()
    }

    #[test]
    fn good_images_pass_with_their_real_type() {
        let l = EvidenceLimits::default();
        let a = check_image(&jpeg(640, 480), &l).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.media_type, "image/jpeg");
        assert_eq!(a.dimensions, Some((640, 480)));
        assert_eq!(
            check_image(&png(400, 300), &l).map(|a| a.media_type),
            Ok("image/png")
        );
    }

    #[test]
    fn bad_images_are_refused_with_reasons() {
        let l = EvidenceLimits::default();
        assert_eq!(check_image(b"", &l), Err(Refused::Empty));
        assert!(
            matches!(check_image(b"%PDF-1.7 hello", &l), Err(Refused::WrongType(m)) if m.contains("PDF"))
        );
        let good = jpeg(640, 480);
        let truncated = &good[..good.len() / 2];
        assert!(matches!(
            check_image(truncated, &l),
            Err(Refused::Undecodable(_))
        ));
        let mut polyglot = good.clone();
        polyglot.extend_from_slice(b"PK\x03\x04 a zip appended to a photo");
        assert_eq!(check_image(&polyglot, &l), Err(Refused::Polyglot));
        assert!(matches!(
            check_image(&jpeg(200, 100), &l),
            Err(Refused::TooSmall { .. })
        ));
        let small = EvidenceLimits {
            image_max_bytes: 100,
            ..Default::default()
        };
        assert!(matches!(
            check_image(&good, &small),
            Err(Refused::TooLarge { .. })
        ));
    }

    #[test]
    fn a_huge_dimension_png_is_refused_before_decoding() {
        // A valid 1×1 PNG whose header claims 20,000 × 20,000 pixels: the
        // refusal must come from the header, with no 1.6 GB allocation.
        let mut p = png(1, 1);
        p[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        p[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        // Fix the IHDR CRC so the decoder reads the header.
        let crc = crc32(&p[12..29]);
        p[29..33].copy_from_slice(&crc.to_be_bytes());
        let r = check_image(&p, &EvidenceLimits::default());
        assert!(
            matches!(
                r,
                Err(Refused::TooManyPixels {
                    w: 20_000,
                    h: 20_000,
                    ..
                })
            ),
            "{r:?}"
        );
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

    #[test]
    fn recordings_must_have_a_sound_container() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let l = EvidenceLimits::default();
        let write = |name: &str, b: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, b).unwrap_or_else(|e| panic!("{e}"));
            p
        };
        // Minimal WebM: EBML header with DocType "webm", then an empty Segment.
        let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        webm.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x80]);
        assert_eq!(
            check_recording(&write("a.webm", &webm), &l).map(|a| a.media_type),
            Ok("video/webm")
        );
        let mut mkv = webm.clone();
        mkv[8..12].copy_from_slice(b"mkv!");
        assert!(check_recording(&write("b.webm", &mkv), &l).is_err());
        // Minimal MP4: ftyp + moov.
        let mut mp4 = Vec::new();
        mp4.extend_from_slice(&16u32.to_be_bytes());
        mp4.extend_from_slice(b"ftypisom\0\0\0\0");
        mp4.extend_from_slice(&8u32.to_be_bytes());
        mp4.extend_from_slice(b"moov");
        assert_eq!(
            check_recording(&write("c.mp4", &mp4), &l).map(|a| a.media_type),
            Ok("video/mp4")
        );
        let truncated = &mp4[..20];
        assert!(matches!(
            check_recording(&write("d.mp4", truncated), &l),
            Err(Refused::BadContainer(_))
        ));
        assert!(matches!(
            check_recording(&write("e.bin", b"hello world"), &l),
            Err(Refused::WrongType(_))
        ));
        assert_eq!(check_recording(&write("f", b""), &l), Err(Refused::Empty));
        let real = crate::assets::DemoAssets::get("recording.webm")
            .map(|f| f.data.to_vec())
            .unwrap_or_default();
        assert_eq!(
            check_recording(&write("g.webm", &real), &l).map(|a| a.media_type),
            Ok("video/webm")
        );
    }
}
