//! The sweep as an SVG: a precision/recall panel per rule, the configured setting boxed and the
//! recommended one ringed.

use std::fmt::Write as _;

use super::{RuleSweep, Sweep, SweepPoint};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One precision/recall panel: `series` are (label, points in loose-to-strict order).
fn panel(
    svg: &mut String,
    x0: f64,
    title: &str,
    series: &[(String, Vec<&SweepPoint>)],
    rule: &RuleSweep,
    min_p: f64,
) {
    let (w, h, top) = (380.0, 340.0, 50.0);
    let left = x0 + 60.0;
    let px = |r: f64| left + r.clamp(0.0, 1.0) * w;
    let py = |p: f64| top + (1.0 - p.clamp(0.0, 1.0)) * h;
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="30" font-size="15" font-weight="bold">{}</text>"#,
        left,
        esc(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{w}" height="{h}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{top:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            px(v),
            px(v),
            top + h,
            py(v),
            left + w,
            py(v)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{v:.1}</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{v:.1}</text>"#,
            px(v),
            top + h + 14.0,
            left - 4.0,
            py(v) + 3.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">recall</text><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">precision</text>"#,
        left + w / 2.0,
        top + h + 32.0,
        x0 + 18.0,
        top + h / 2.0,
        x0 + 18.0,
        top + h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#666" text-anchor="end">precision floor {min_p:.2}</text>"##,
        py(min_p),
        left + w,
        py(min_p),
        left + w - 4.0,
        py(min_p) - 4.0
    );
    for (si, (label, pts)) in series.iter().enumerate() {
        let c = COLOURS[si % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.recall), py(p.precision)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5" opacity="0.8"/>"#,
            path.join(" ")
        );
        for p in pts {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{} {}: precision {:.3}, recall {:.3}</title></circle>"#,
                px(p.recall),
                py(p.precision),
                esc(label),
                esc(&format!(
                    "t={:.2} K={}/{} grace={:.1}",
                    p.setting.no_helmet_threshold,
                    p.setting.min_votes,
                    p.setting.window,
                    p.setting.grace_s
                )),
                p.precision,
                p.recall
            );
            if p.configured {
                let _ = writeln!(
                    svg,
                    r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="none" stroke="#000" stroke-width="1.5"><title>configured</title></rect>"##,
                    px(p.recall) - 5.0,
                    py(p.precision) - 5.0
                );
            }
        }
        let ly = top + h + 50.0 + 14.0 * si as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{left:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            left + 20.0,
            left + 26.0,
            ly + 4.0,
            esc(label)
        );
    }
    if let Some(best) = rule.best() {
        let (rx, ry) = (px(best.recall), py(best.precision));
        let _ = writeln!(
            svg,
            r##"<circle cx="{rx:.1}" cy="{ry:.1}" r="9" fill="none" stroke="#e00" stroke-width="2.5"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#e00" text-anchor="end">recommended: {}</text>"##,
            rx.max(left + 200.0) - 12.0,
            (ry + 22.0).min(top + h - 6.0),
            esc(&rule.describe(best))
        );
    }
}

impl Sweep {
    /// The precision/recall plot: the helmet rule (a series per vote count K) beside the red-light rule.
    pub fn svg(&self) -> String {
        let helmet = &self.helmet;
        let red = &self.red_light;
        let window = helmet.points.first().map(|p| p.setting.window).unwrap_or(0);
        let series_h: Vec<(String, Vec<&SweepPoint>)> = (1..=window)
            .map(|k| {
                (
                    format!("K = {k} of {window} votes, threshold 0.10 to 0.90"),
                    helmet
                        .points
                        .iter()
                        .filter(|p| p.setting.min_votes == k)
                        .collect(),
                )
            })
            .collect();
        let series_r = vec![(
            "grace 0 to 1.5 s".to_string(),
            red.points.iter().collect::<Vec<_>>(),
        )];
        let height = 50.0 + 340.0 + 60.0 + 14.0 * window.max(1) as f64 + 20.0;
        let mut s = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height:.0}" viewBox="0 0 960 {height:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
        );
        panel(
            &mut s,
            0.0,
            "helmet rule: precision / recall",
            &series_h,
            helmet,
            self.min_precision,
        );
        panel(
            &mut s,
            480.0,
            "red-light rule: precision / recall",
            &series_r,
            red,
            self.min_precision,
        );
        let _ = writeln!(
            s,
            r##"<text x="60" y="{:.1}" font-size="10" fill="#555">square: configured setting; red ring: {}</text>"##,
            height - 6.0,
            esc(Sweep::RULE)
        );
        s.push_str("</svg>\n");
        s
    }
}
