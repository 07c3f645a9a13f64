//! Drawing for generated demo evidence: ID cards with a photo area, printed
//! fields and an MRZ, and selfies. Text uses the public-domain 8×8 font.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

pub fn fill(img: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, c: Rgb<u8>) {
    for y in y0..(y0 + h).min(img.height()) {
        for x in x0..(x0 + w).min(img.width()) {
            img.put_pixel(x, y, c);
        }
    }
}

pub fn ellipse(img: &mut RgbImage, cx: f32, cy: f32, rx: f32, ry: f32, c: Rgb<u8>) {
    let (x0, x1) = (
        (cx - rx).max(0.0) as u32,
        ((cx + rx) as u32).min(img.width()),
    );
    let (y0, y1) = (
        (cy - ry).max(0.0) as u32,
        ((cy + ry) as u32).min(img.height()),
    );
    for y in y0..y1 {
        for x in x0..x1 {
            let dx = (x as f32 - cx) / rx;
            let dy = (y as f32 - cy) / ry;
            if dx * dx + dy * dy <= 1.0 {
                img.put_pixel(x, y, c);
            }
        }
    }
}

/// Draws text at (x, y) with each font pixel scaled to `s`×`s`.
pub fn text(img: &mut RgbImage, x: u32, y: u32, s: u32, t: &str, c: Rgb<u8>) {
    let mut cx = x;
    for ch in t.chars() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::LATIN_FONTS.get(ch))
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    fill(img, cx + col * s, y + row as u32 * s, s, s, c);
                }
            }
        }
        cx += 8 * s;
    }
}

fn vertical_gradient(img: &mut RgbImage, top: [u8; 3], bottom: [u8; 3]) {
    let h = img.height().max(1);
    for y in 0..img.height() {
        let t = y as f32 / h as f32;
        let mix = |a: u8, b: u8| (a as f32 * (1.0 - t) + b as f32 * t) as u8;
        let c = Rgb([
            mix(top[0], bottom[0]),
            mix(top[1], bottom[1]),
            mix(top[2], bottom[2]),
        ]);
        for x in 0..img.width() {
            img.put_pixel(x, y, c);
        }
    }
}

/// A face: head, hair, eyes, mouth and shoulders, in the person's colours.
pub fn face(
    img: &mut RgbImage,
    cx: f32,
    cy: f32,
    scale: f32,
    skin: Rgb<u8>,
    hair: Rgb<u8>,
    shirt: Rgb<u8>,
) {
    ellipse(
        img,
        cx,
        cy + 1.55 * scale,
        1.25 * scale,
        0.75 * scale,
        shirt,
    );
    fill(
        img,
        (cx - 0.25 * scale) as u32,
        (cy + 0.6 * scale) as u32,
        (0.5 * scale) as u32,
        (0.5 * scale) as u32,
        skin,
    );
    ellipse(img, cx, cy - 0.2 * scale, 0.72 * scale, 0.72 * scale, hair);
    ellipse(img, cx, cy, 0.62 * scale, 0.8 * scale, skin);
    let eye = Rgb([40, 40, 50]);
    for side in [-1.0, 1.0] {
        let x = cx + side * 0.25 * scale;
        ellipse(img, x, cy - 0.1 * scale, 0.08 * scale, 0.05 * scale, eye);
    }
    ellipse(
        img,
        cx,
        cy + 0.4 * scale,
        0.2 * scale,
        0.05 * scale,
        Rgb([150, 60, 60]),
    );
}

pub struct CardText<'a> {
    pub header: &'a str,
    pub subtitle: &'a str,
    pub fields: &'a [(&'a str, String)],
    pub mrz: Option<&'a str>,
}

/// An ID-1 sized card (85.6 × 54 mm at 10 px/mm).
pub fn card(t: &CardText<'_>, tint: [u8; 3], skin: Rgb<u8>, hair: Rgb<u8>) -> RgbImage {
    let mut img = RgbImage::new(856, 540);
    vertical_gradient(&mut img, [236, 240, 245], tint);
    fill(&mut img, 0, 0, 856, 70, Rgb([20, 45, 95]));
    text(&mut img, 24, 14, 3, t.header, Rgb([255, 255, 255]));
    text(&mut img, 24, 46, 2, t.subtitle, Rgb([200, 215, 240]));
    // Photo area.
    fill(&mut img, 24, 96, 230, 290, Rgb([205, 212, 220]));
    face(&mut img, 139.0, 215.0, 95.0, skin, hair, Rgb([60, 70, 90]));
    fill(&mut img, 24, 386, 230, 2, Rgb([120, 130, 140]));
    let mut y = 96;
    for (label, value) in t.fields {
        text(&mut img, 280, y, 1, label, Rgb([90, 100, 115]));
        text(&mut img, 280, y + 11, 2, value, Rgb([15, 20, 30]));
        y += 34;
    }
    if let Some(mrz) = t.mrz {
        fill(
            &mut img,
            0,
            540 - 24 * mrz.lines().count() as u32 - 20,
            856,
            200,
            Rgb([250, 250, 250]),
        );
        let mut y = 540 - 24 * mrz.lines().count() as u32 - 10;
        for line in mrz.lines() {
            text(&mut img, 20, y, 2, line, Rgb([10, 10, 10]));
            y += 24;
        }
    }
    img
}

pub fn selfie(skin: Rgb<u8>, hair: Rgb<u8>, shirt: Rgb<u8>, bg: [u8; 3]) -> RgbImage {
    let mut img = RgbImage::new(480, 640);
    vertical_gradient(&mut img, bg, [bg[0] / 2, bg[1] / 2, bg[2] / 2]);
    face(&mut img, 240.0, 300.0, 150.0, skin, hair, shirt);
    img
}
