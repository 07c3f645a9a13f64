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

pub fn render(r: &Report) -> Vec<u8> {
    const W: f32 = 595.0;
    const H: f32 = 842.0;
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let page = Ref::new(3);
    let font = Ref::new(4);
    let bold = Ref::new(5);
    let content_id = Ref::new(6);
    let first_image = 7;

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, W, H));
    p.parent(tree);
    p.contents(content_id);
    let mut res = p.resources();
    res.fonts().pair(Name(b"F1"), font).pair(Name(b"F2"), bold);
    {
        let mut xo = res.x_objects();
        for i in 0..r.images.len() {
            let name = format!("Im{i}");
            xo.pair(Name(name.as_bytes()), Ref::new(first_image + i as i32));
        }
    }
    res.finish();
    p.finish();
    pdf.type1_font(font)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));

    let mut c = Content::new();
    c.begin_text();
    c.set_font(Name(b"F2"), 16.0);
    c.next_line(40.0, H - 50.0);
    c.show(Str(&winansi(&r.title)));
    c.end_text();
    let mut y = H - 80.0;
    for (label, value) in &r.lines {
        if y < 60.0 {
            break;
        }
        c.begin_text();
        c.set_font(Name(b"F2"), 9.0);
        c.next_line(40.0, y);
        c.show(Str(&winansi(label)));
        c.end_text();
        // Long values (the MRZ) continue on the lines below.
        let value: String = value.replace('\n', " / ");
        let chunks: Vec<String> = value
            .chars()
            .collect::<Vec<_>>()
            .chunks(70)
            .map(|ch| ch.iter().collect())
            .collect();
        for chunk in chunks.iter().take(3) {
            c.begin_text();
            c.set_font(Name(b"F1"), 9.0);
            c.next_line(190.0, y);
            c.show(Str(&winansi(chunk)));
            c.end_text();
            y -= 12.0;
        }
        if chunks.is_empty() {
            y -= 12.0;
        }
    }
    // Images in a row along the bottom of the page.
    let mut x = 40.0;
    for (i, img) in r.images.iter().enumerate() {
        let h = 150.0_f32;
        let w = h * img.width as f32 / img.height.max(1) as f32;
        let w = w.min(250.0);
        c.save_state();
        c.transform([w, 0.0, 0.0, h, x, 40.0]);
        let name = format!("Im{i}");
        c.x_object(Name(name.as_bytes()));
        c.restore_state();
        c.begin_text();
        c.set_font(Name(b"F1"), 8.0);
        c.next_line(x, 195.0);
        c.show(Str(&winansi(&img.label)));
        c.end_text();
        x += w + 12.0;
    }
    pdf.stream(content_id, &c.finish());
    for (i, img) in r.images.iter().enumerate() {
        let mut xo = pdf.image_xobject(Ref::new(first_image + i as i32), &img.jpeg);
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
}
