//! Server-rendered SVG charts for the dashboard: no script, no web font,
//! nothing fetched. Readable without colour: the two series of a stacked
//! bar differ by pattern (solid / hatched) as well as by colour, every
//! bar has its number in a <title>, and each chart has a text summary for
//! screen readers; the page also shows the same figures as tables.

use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Defines the hatch pattern once per chart (ids are per chart so two
/// charts on a page do not collide).
fn hatch(id: &str) -> String {
    format!(
        "<defs><pattern id=\"{id}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fde8e6\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#b3261e\" stroke-width=\"3\"/></pattern></defs>"
    )
}

/// A round step for the value axis: 1, 2 or 5 × 10^k, so ticks read well.
fn nice_max(max: i64) -> i64 {
    let mut step = 1;
    while step * 10 < max.max(1) {
        step *= 10;
    }
    for m in [1, 2, 5, 10] {
        if step * m >= max.max(1) {
            return step * m;
        }
    }
    step * 10
}

/// One day's (or band's) bar of a stacked chart: solid for the first
/// series, hatched for the second.
pub struct Stack {
    pub label: String,
    pub a: i64,
    pub b: i64,
}

/// Vertical stacked bars, e.g. decisions per day (accepted / rejected).
pub fn stacked_bars(id: &str, title: &str, names: (&str, &str), bars: &[Stack]) -> String {
    let (w, h, left, bottom, top) = (760.0, 220.0, 44.0, 28.0, 10.0);
    let max = nice_max(bars.iter().map(|s| s.a + s.b).max().unwrap_or(0));
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - top;
    let slot = plot_w / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let total_a: i64 = bars.iter().map(|s| s.a).sum();
    let total_b: i64 = bars.iter().map(|s| s.b).sum();
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"{id}-t\">\
         <title id=\"{id}-t\">{}: {} {total_a}, {} {total_b} over {} bars</title>{}",
        esc(title),
        esc(names.0),
        esc(names.1),
        bars.len(),
        hatch(&format!("{id}-hatch"))
    );
    // Gridlines and the value axis at 0, half and max.
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let v = (max as f64 * frac).round() as i64;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{v}</text>",
            w - 8.0,
            left - 4.0,
            y + 4.0
        );
    }
    let label_every = (bars.len() / 10).max(1);
    for (i, s) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let ha = plot_h * s.a as f64 / max as f64;
        let hb = plot_h * s.b as f64 / max as f64;
        let base = top + plot_h;
        let _ = write!(
            svg,
            "<g><title>{}: {} {}, {} {}</title>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{ha:.1}\" class=\"series-a\"/>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{hb:.1}\" fill=\"url(#{id}-hatch)\" class=\"series-b\"/></g>",
            esc(&s.label),
            esc(names.0),
            s.a,
            esc(names.1),
            s.b,
            base - ha,
            base - ha - hb,
        );
        if i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                h - 10.0,
                esc(&s.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The legend of a stacked chart, with the same solid / hatched swatches.
pub fn legend(id: &str, names: (&str, &str)) -> String {
    format!(
        "<p class=\"legend\"><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><rect width=\"14\" height=\"14\" class=\"series-a\"/></svg> {} \
         <svg width=\"14\" height=\"14\" aria-hidden=\"true\">{}<rect width=\"14\" height=\"14\" fill=\"url(#{id}-lh)\"/></svg> {}</p>",
        esc(names.0),
        hatch(&format!("{id}-lh")),
        esc(names.1)
    )
}

/// Horizontal bars with their label and number written out, e.g. the
/// rejection reasons or the backlog by age.
pub fn hbars(id: &str, title: &str, items: &[(String, i64)]) -> String {
    let row = 24.0;
    let (w, label_w) = (760.0, 260.0);
    let h = row * items.len().max(1) as f64 + 6.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    let summary: Vec<String> = items.iter().map(|(l, n)| format!("{l} {n}")).collect();
    let _ = write!(
        svg,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"{id}-t\">\
         <title id=\"{id}-t\">{}: {}</title>",
        esc(title),
        esc(&summary.join(", "))
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = 3.0 + row * i as f64;
        let bw = (w - label_w - 70.0) * *n as f64 / max as f64;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" class=\"series-a\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"value\">{n}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(label),
            y + 3.0,
            row - 8.0,
            label_w + bw + 6.0,
            y + 15.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_scale_to_a_round_maximum() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(480), 500);
        let svg = hbars(
            "r",
            "Reasons",
            &[("<script>".into(), 3), ("Blurry".into(), 1)],
        );
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains("Reasons: &lt;script&gt; 3, Blurry 1"));
        let bars = stacked_bars(
            "d",
            "Decisions",
            ("accepted", "rejected"),
            &[Stack {
                label: "1 Dec".into(),
                a: 4,
                b: 2,
            }],
        );
        assert!(bars.contains("<title>1 Dec: accepted 4, rejected 2</title>"));
        assert!(bars.contains("url(#d-hatch)"));
    }
}
