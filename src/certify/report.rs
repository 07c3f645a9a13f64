//! The process report PDF: real text (Helvetica, WinAnsi) so that
//! `pdftotext` and search find the name and document number, plus the
//! document and selfie images embedded as they are (JPEG pass-through).

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};

pub struct ReportImage {
    pub label: String,
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

pub struct Report {
    pub title: String,
    /// (label, value) lines, in order.
    pub lines: Vec<(String, String)>,
    pub images: Vec<ReportImage>,
}

/// Latin-1 covers the accented names WinAnsi can show; anything else
/// becomes '?', never a broken PDF.
fn winansi(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let u = c as u32;
        match c {
            _ if (0x20..0x7f).contains(&u) || (0xa0..=0xff).contains(&u) => out.push(u as u8),
            '€' => out.push(0x80),
            '…' => out.push(0x85),
            '‘' => out.push(0x91),
            '’' => out.push(0x92),
            '“' => out.push(0x93),
            '”' => out.push(0x94),
            '–' => out.push(0x96),
            '—' => out.push(0x97),
            '≥' => out.extend_from_slice(b">="),
            '≤' => out.extend_from_slice(b"<="),
            _ => out.push(b'?'),
        }
    }
    out
}

/// One line of text on a page: (x, y, bold, size, bytes).
type Placed = (f32, f32, bool, f32, Vec<u8>);

/// Lays the title and (label, value) lines out over as many A4 pages as
/// they need; the first page keeps its bottom for the images.
fn layout(r: &Report, h: f32) -> Vec<Vec<Placed>> {
    let first_bottom = if r.images.is_empty() { 60.0 } else { 225.0 };
    let mut pages: Vec<Vec<Placed>> = vec![vec![(40.0, h - 50.0, true, 16.0, winansi(&r.title))]];
    let mut y = h - 80.0;
    let mut bottom = first_bottom;
    for (label, value) in &r.lines {
        // Long values (the MRZ) continue on the lines below.
        let value: String = value.replace('\n', " / ");
        let chunks: Vec<String> = value
            .chars()
            .collect::<Vec<_>>()
            .chunks(70)
            .map(|ch| ch.iter().collect())
            .collect();
        let rows = chunks.len().clamp(1, 4);
        if y - 12.0 * (rows as f32) < bottom {
            pages.push(Vec::new());
            y = h - 50.0;
            bottom = 60.0;
        }
        let Some(page) = pages.last_mut() else {
            break;
        };
        page.push((40.0, y, true, 9.0, winansi(label)));
        for chunk in chunks.iter().take(4) {
            page.push((190.0, y, false, 9.0, winansi(chunk)));
            y -= 12.0;
        }
        if chunks.is_empty() {
            y -= 12.0;
        }
    }
    pages
}

pub fn render(r: &Report) -> Vec<u8> {
    const W: f32 = 595.0;
    const H: f32 = 842.0;
    let pages = layout(r, H);
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let bold = Ref::new(4);
    // Per page: the page and its content stream; then the images.
    let page_ref = |i: usize| Ref::new(5 + 2 * i as i32);
    let content_ref = |i: usize| Ref::new(6 + 2 * i as i32);
    let first_image = 5 + 2 * pages.len() as i32;

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(page_ref))
        .count(pages.len() as i32);
    pdf.type1_font(font)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));

    // Images in a row along the bottom of the first page, scaled to fit.
    let gap = 12.0_f32;
    let natural: Vec<f32> = r
        .images
        .iter()
        .map(|img| (150.0 * img.width as f32 / img.height.max(1) as f32).min(250.0))
        .collect();
    let total: f32 = natural.iter().sum::<f32>() + gap * natural.len().saturating_sub(1) as f32;
    let scale = if total > W - 80.0 {
        (W - 80.0) / total
    } else {
        1.0
    };

    for (i, lines) in pages.iter().enumerate() {
        let mut p = pdf.page(page_ref(i));
        p.media_box(Rect::new(0.0, 0.0, W, H));
        p.parent(tree);
        p.contents(content_ref(i));
        let mut res = p.resources();
        res.fonts().pair(Name(b"F1"), font).pair(Name(b"F2"), bold);
        if i == 0 {
            let mut xo = res.x_objects();
            for k in 0..r.images.len() {
                let name = format!("Im{k}");
                xo.pair(Name(name.as_bytes()), Ref::new(first_image + k as i32));
            }
        }
        res.finish();
        p.finish();

        let mut c = Content::new();
        for (x, y, is_bold, size, text) in lines {
            c.begin_text();
            c.set_font(Name(if *is_bold { b"F2" } else { b"F1" }), *size);
            c.next_line(*x, *y);
            c.show(Str(text));
            c.end_text();
        }
        if i == 0 {
            let mut x = 40.0;
            for (k, w) in natural.iter().enumerate() {
                let (w, h) = (w * scale, 150.0 * scale);
                c.save_state();
                c.transform([w, 0.0, 0.0, h, x, 40.0]);
                let name = format!("Im{k}");
                c.x_object(Name(name.as_bytes()));
                c.restore_state();
                c.begin_text();
                c.set_font(Name(b"F1"), 8.0);
                c.next_line(x, 45.0 + h);
                c.show(Str(&winansi(&r.images[k].label)));
                c.end_text();
                x += w + gap;
            }
        }
        if pages.len() > 1 {
            c.begin_text();
            c.set_font(Name(b"F1"), 8.0);
            c.next_line(W - 90.0, 20.0);
            c.show(Str(format!("page {} of {}", i + 1, pages.len()).as_bytes()));
            c.end_text();
        }
        pdf.stream(content_ref(i), &c.finish());
    }
    for (k, img) in r.images.iter().enumerate() {
        let mut xo = pdf.image_xobject(Ref::new(first_image + k as i32), &img.jpeg);
        xo.filter(Filter::DctDecode);
        xo.width(img.width as i32);
        xo.height(img.height as i32);
        xo.color_space().device_rgb();
        xo.bits_per_component(8);
        xo.finish();
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_a_pdf_with_the_text_in_it() {
        let pdf = render(&Report {
            title: "Process report".into(),
            lines: vec![("Name".into(), "José Pérez".into())],
            images: vec![],
        });
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("Helvetica"));
        // é is 0xE9 in WinAnsi.
        // WinAnsi: é is 0xE9; pdf-writer writes such strings in hex.
        assert!(text.contains("<4A6F73E92050E972657A>"), "{text}");
    }

    #[test]
    fn long_reports_continue_on_more_pages() {
        let lines: Vec<(String, String)> = (0..120)
            .map(|i| (format!("Line {i}"), "value".to_string()))
            .collect();
        let pdf = render(&Report {
            title: "Long".into(),
            lines,
            images: vec![],
        });
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3"), "{text}");
    }
}
