//! The comparison as one self-contained HTML file (`compare --report`, `deploy
//! --report`): inline SVG and CSS, no fetches, so it opens offline and can be kept
//! as a CI artifact. Per float output a scatter of A against B with the tolerance
//! band, the same as residuals (A − B) where the band is visible at any scale, and
//! histograms of absolute and relative errors; per label output the pairs A and B
//! gave; the worst examples with their inputs; who A and B were. Large runs are
//! summarised by [`crate::plots`], not drawn point by point.

use std::fmt::Write;

use crate::metrics::Status;
use crate::plots::{FloatPlot, HIGHEST_DECADE, Histogram, LOWEST_DECADE, LabelPlot, PlotKind};
use crate::report::{CompareReport, describe, output_row, row_text, score, verdict};

const W: f64 = 420.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 42.0;

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#1d2125}
h1{font-size:28px;margin:0 0 4px}h1.pass{color:#1a7f37}h1.fail{color:#cf222e}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status-pass{color:#1a7f37}.status-FAIL{color:#cf222e;font-weight:600}.status-skip{color:#6e7781}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{color:#57606a;font-size:12px;max-width:420px}
svg.plot{background:#fff;border:1px solid #d0d7de}svg text{font-size:11px;fill:#57606a}
.band{fill:#2da44e;fill-opacity:.18;stroke:none}.diag{stroke:#8c959f;stroke-dasharray:4 3}
circle.in{fill:#0969da;fill-opacity:.55}circle.out{fill:#cf222e}
rect.bar{fill:#0969da}rect.bar.bad{fill:#cf222e}line.mark{stroke:#2da44e;stroke-width:2}
.axis{stroke:#8c959f}code,.mono{font-family:ui-monospace,monospace;font-size:12px}
td.diff{background:#ffebe9}pre#layout{display:none}";

/// The report as a complete HTML document.
pub fn render_html(report: &CompareReport) -> String {
    let c = &report.comparison;
    let verdict_line = verdict(c);
    let (word, class) = if c.passed {
        ("PASS", "pass")
    } else {
        ("FAIL", "fail")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"modelport {}\">\
         <title>{word}: {} vs {}</title><style>{STYLE}</style></head><body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&report.a.label),
        esc(&report.b.label),
    );
    let _ = writeln!(
        out,
        "<header><h1 id=\"verdict\" class=\"{class}\">{word}</h1><p id=\"summary\">{}</p></header>",
        esc(verdict_line
            .trim_start_matches("PASS")
            .trim_start_matches("FAIL")
            .trim())
    );

    // Who answered, and how they were held to each other.
    out.push_str("<h2>A and B</h2><table id=\"meta\">");
    for (side, t) in [("A", &report.a), ("B", &report.b)] {
        let s = &t.served_by;
        let _ = write!(
            out,
            "<tr><th>{side}</th><td>{}</td></tr>",
            esc(&describe(t))
        );
        for (key, value) in [
            ("engine", s.engine.as_deref()),
            ("engine version", s.engine_version.as_deref()),
            ("digest", s.digest.as_deref()),
            ("revision", s.revision.as_deref()),
            ("image", s.image.as_deref()),
        ] {
            if let Some(v) = value {
                let _ = write!(
                    out,
                    "<tr><td class=\"mono\">{side} {key}</td><td class=\"mono\">{}</td></tr>",
                    esc(v)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "<tr><th>samples</th><td>{}</td></tr><tr><th>tolerances</th><td>atol {}, rtol {} \
         (|A − B| ≤ atol + rtol·|B|); labels agree on at least {}</td></tr>\
         <tr><th>time</th><td>{} ms, both predictions included</td></tr></table>",
        c.samples,
        c.atol,
        c.rtol,
        crate::metrics::percent(c.min_label_agreement),
        report.elapsed_ms
    );

    // The same table as the terminal's.
    out.push_str("<h2>Outputs</h2><table id=\"outputs\"><tr>");
    for h in [
        "output", "dtype", "shape", "max abs", "mean abs", "max rel", "within", "labels", "result",
        "reason",
    ] {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr>");
    for o in &c.outputs {
        let row = output_row(o);
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = match i {
                3..=7 => " class=\"num\"".to_string(),
                8 => format!(" class=\"status-{}\"", esc(cell)),
                _ => String::new(),
            };
            let _ = write!(out, "<td{class}>{}</td>", esc(cell));
        }
        let _ = write!(
            out,
            "<td>{}</td></tr>",
            esc(o.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");

    for (i, plot) in report.plots.iter().enumerate() {
        let status = c
            .outputs
            .iter()
            .find(|o| o.name == plot.name)
            .map(|o| match o.status {
                Status::Passed => "pass",
                Status::Failed => "FAIL",
                Status::Skipped => "skip",
            })
            .unwrap_or("");
        let _ = write!(
            out,
            "<section class=\"output\" id=\"output-{i}\"><h2>{} <span class=\"status-{status}\">{status}</span></h2>",
            esc(&plot.name)
        );
        match &plot.kind {
            PlotKind::Float(p) => float_section(&mut out, i, p),
            PlotKind::Labels(l) => label_section(&mut out, l),
        }
        out.push_str("</section>\n");
    }

    if !c.worst.is_empty() {
        out.push_str(
            "<h2>Worst examples</h2><p>Score: the error in units of the tolerance; above 1 is out of tolerance.</p>\
             <table id=\"worst\"><tr><th>sample</th><th>score</th><th></th><th>name</th><th>values</th></tr>",
        );
        for example in &c.worst {
            let rows = example.inputs.len() + 2 * example.outputs.len();
            let bad = if example.score > 1.0 {
                " class=\"diff\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr><td rowspan=\"{rows}\">#{}</td><td rowspan=\"{rows}\"{bad}>{}</td>",
                example.index,
                esc(&score(example.score))
            );
            let mut first = true;
            let mut cell = |out: &mut String, side: &str, name: &str, text: String| {
                if !first {
                    out.push_str("<tr>");
                }
                first = false;
                let _ = write!(
                    out,
                    "<td>{side}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                    esc(name),
                    esc(&text)
                );
            };
            for (name, values) in &example.inputs {
                cell(&mut out, "input", name, row_text(values, None));
            }
            for (name, pair) in &example.outputs {
                cell(
                    &mut out,
                    "A",
                    name,
                    row_text(&pair.a, pair.a_class.as_deref()),
                );
                cell(
                    &mut out,
                    "B",
                    name,
                    row_text(&pair.b, pair.b_class.as_deref()),
                );
            }
        }
        out.push_str("</table>\n");
    }
    if !c.notes.is_empty() {
        out.push_str("<h2>Notes</h2><ul id=\"notes\">");
        for note in &c.notes {
            let _ = write!(out, "<li>{}</li>", esc(note));
        }
        out.push_str("</ul>\n");
    }
    let _ = write!(
        out,
        "<footer><p class=\"mono\">{}</p></footer>",
        esc(&verdict_line)
    );
    // Written by the browser when it renders the page: each plot's drawn size and
    // marks, so that a headless browser's DOM shows what a reader would see.
    out.push_str(
        "<pre id=\"layout\"></pre><script>(function(){var r=[];\
         document.querySelectorAll('svg.plot').forEach(function(s){var b=s.getBoundingClientRect();\
         r.push({id:s.id,kind:s.getAttribute('data-kind'),width:Math.round(b.width),height:Math.round(b.height),\
         marks:s.querySelectorAll('circle,rect.bar').length})});var v=document.getElementById('verdict');\
         document.getElementById('layout').textContent=JSON.stringify({verdict:v.textContent,\
         verdict_height:Math.round(v.getBoundingClientRect().height),plots:r});})();</script>",
    );
    out.push_str("</body></html>\n");
    out
}

fn float_section(out: &mut String, i: usize, p: &FloatPlot) {
    out.push_str("<div class=\"plots\">");
    let drawn = p.points.len();
    let caption = if drawn < p.elements {
        format!(
            "{drawn} of {} elements drawn: evenly spaced, plus those out of tolerance{}",
            p.elements,
            if p.outliers_not_drawn > 0 {
                format!(
                    " ({} more out of tolerance not drawn)",
                    p.outliers_not_drawn
                )
            } else {
                String::new()
            }
        )
    } else {
        format!("all {} elements", p.elements)
    };
    figure(
        out,
        &scatter(i, p, false),
        &format!("A (y) against B (x); the green band is the tolerance. {caption}."),
    );
    figure(
        out,
        &scatter(i, p, true),
        "A − B against B; the band is ±(atol + rtol·|B|), at the scale of the errors.",
    );
    figure(
        out,
        &histogram(&format!("abs-{i}"), &p.abs_errors, Some(p.atol)),
        "|A − B| per element, by decade (log scale); green line: atol.",
    );
    figure(
        out,
        &histogram(&format!("rel-{i}"), &p.rel_errors, Some(p.rtol)),
        "|A − B| / |B| per element, by decade (log scale); green line: rtol.",
    );
    out.push_str("</div>");
}

fn figure(out: &mut String, svg: &str, caption: &str) {
    let _ = write!(
        out,
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        esc(caption)
    );
}

/// Values (A against B) or residuals (A − B against B), with the tolerance band.
fn scatter(i: usize, p: &FloatPlot, residuals: bool) -> String {
    let tol = |x: f64| p.atol + p.rtol * x.abs();
    let y_of = |pt: &crate::plots::Point| if residuals { pt.a - pt.b } else { pt.a };
    let (mut xlo, mut xhi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut ylo, mut yhi) = (f64::INFINITY, f64::NEG_INFINITY);
    for pt in &p.points {
        xlo = xlo.min(pt.b);
        xhi = xhi.max(pt.b);
        let y = y_of(pt);
        ylo = ylo.min(y);
        yhi = yhi.max(y);
    }
    if p.points.is_empty() {
        (xlo, xhi, ylo, yhi) = (0.0, 1.0, 0.0, 1.0);
    }
    if residuals {
        // Symmetric around 0, wide enough for the band at both ends.
        let m = ylo
            .abs()
            .max(yhi.abs())
            .max(tol(xlo))
            .max(tol(xhi))
            .max(f64::MIN_POSITIVE);
        (ylo, yhi) = (-m * 1.1, m * 1.1);
    } else {
        ylo = ylo.min(xlo);
        yhi = yhi.max(xhi);
        xlo = ylo;
        xhi = yhi;
    }
    let pad = |lo: f64, hi: f64| {
        let span = hi - lo;
        if span > 0.0 && span.is_finite() {
            (lo - span * 0.04, hi + span * 0.04)
        } else {
            (lo - 0.5 - lo.abs() * 0.1, hi + 0.5 + hi.abs() * 0.1)
        }
    };
    let (xlo, xhi) = pad(xlo, xhi);
    let (ylo, yhi) = if residuals { (ylo, yhi) } else { pad(ylo, yhi) };
    let px = |x: f64| LEFT + (x - xlo) / (xhi - xlo) * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - (y - ylo) / (yhi - ylo)) * (H - TOP - BOTTOM);
    let id = format!("{}-{i}", if residuals { "residuals" } else { "scatter" });
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"plot\" id=\"{id}\" data-kind=\"{}\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <defs><clipPath id=\"clip-{id}\"><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/></clipPath></defs>",
        if residuals { "residuals" } else { "scatter" },
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    // The band: 64 segments of the tolerance around the diagonal (or around 0).
    let centre = |x: f64| if residuals { 0.0 } else { x };
    let mut upper = Vec::new();
    let mut lower = Vec::new();
    for k in 0..=64 {
        let x = xlo + (xhi - xlo) * k as f64 / 64.0;
        upper.push(format!("{:.1},{:.1}", px(x), py(centre(x) + tol(x))));
        lower.push(format!("{:.1},{:.1}", px(x), py(centre(x) - tol(x))));
    }
    lower.reverse();
    let _ = write!(
        s,
        "<g clip-path=\"url(#clip-{id})\"><polygon class=\"band\" points=\"{} {}\"/>\
         <line class=\"diag\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        upper.join(" "),
        lower.join(" "),
        px(xlo),
        py(centre(xlo)),
        px(xhi),
        py(centre(xhi))
    );
    for pt in &p.points {
        let _ = write!(
            s,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\"><title>sample #{}: A {} B {}</title></circle>",
            if pt.within { "in" } else { "out" },
            px(pt.b),
            py(y_of(pt)),
            if pt.within { 2 } else { 3 },
            pt.row,
            pt.a,
            pt.b
        );
    }
    s.push_str("</g>");
    axes(
        &mut s,
        (xlo, xhi),
        (ylo, yhi),
        "B (reference)",
        if residuals { "A − B" } else { "A" },
        &px,
        &py,
    );
    s.push_str("</svg>");
    s
}

#[allow(clippy::too_many_arguments)]
fn axes(
    s: &mut String,
    (xlo, xhi): (f64, f64),
    (ylo, yhi): (f64, f64),
    xlabel: &str,
    ylabel: &str,
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    let _ = write!(
        s,
        "<rect class=\"axis\" fill=\"none\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    for k in 0..=4 {
        let x = xlo + (xhi - xlo) * k as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            px(x),
            H - BOTTOM + 14.0,
            tick(x)
        );
        let y = ylo + (yhi - ylo) * k as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            py(y) + 4.0,
            tick(y)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {:.1})\">{}</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        esc(xlabel),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        esc(ylabel)
    );
}

/// Bars per decade, log-scaled counts; `mark` is drawn where that value falls.
fn histogram(id: &str, h: &Histogram, mark: Option<f64>) -> String {
    let mut bars: Vec<(String, usize, bool)> = vec![("0".into(), h.zero, false)];
    bars.push((format!("<1e{LOWEST_DECADE}"), h.below, false));
    for (k, n) in h.decades.iter().enumerate() {
        bars.push((format!("1e{}", LOWEST_DECADE + k as i32), *n, false));
    }
    bars.push((format!("≥1e{}", HIGHEST_DECADE + 1), h.above, true));
    bars.push(("NaN/inf".into(), h.non_finite, true));
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / bars.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"plot\" id=\"{id}\" data-kind=\"histogram\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (k, (label, n, bad)) in bars.iter().enumerate() {
        let x = LEFT + bw * k as f64;
        if *n > 0 {
            let bh = ((*n as f64 + 1.0).log10() / (max + 1.0).log10()) * plot_h;
            let _ = write!(
                s,
                "<rect class=\"bar{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}: {n}</title></rect>",
                if *bad { " bad" } else { "" },
                x + 1.0,
                TOP + plot_h - bh,
                (bw - 2.0).max(1.0),
                bh,
                esc(label)
            );
        }
        if k % 3 == 0 || k + 2 >= bars.len() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" transform=\"rotate(-45 {:.1} {:.1})\">{}</text>",
                x + bw / 2.0,
                H - BOTTOM + 12.0,
                x + bw / 2.0,
                H - BOTTOM + 12.0,
                esc(label)
            );
        }
    }
    // Where the tolerance falls on the decade axis.
    if let Some(m) = mark.filter(|m| *m > 0.0 && m.is_finite()) {
        let pos = (m.log10() - LOWEST_DECADE as f64)
            .clamp(-1.0, (HIGHEST_DECADE - LOWEST_DECADE + 1) as f64);
        let x = LEFT + bw * (2.0 + pos);
        let _ = write!(
            s,
            "<line class=\"mark\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
            TOP + plot_h
        );
    }
    let _ = write!(
        s,
        "<rect class=\"axis\" fill=\"none\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text></svg>",
        LEFT - 4.0,
        TOP + 10.0,
        max as usize,
        LEFT - 4.0,
        TOP + plot_h
    );
    s
}

/// The pairs of labels, as a table of A's label by B's (the most frequent pairs).
fn label_section(out: &mut String, l: &LabelPlot) {
    let mut a_labels: Vec<&str> = Vec::new();
    let mut b_labels: Vec<&str> = Vec::new();
    for (a, b, _) in &l.pairs {
        if !a_labels.contains(&a.as_str()) {
            a_labels.push(a);
        }
        if !b_labels.contains(&b.as_str()) {
            b_labels.push(b);
        }
    }
    a_labels.sort();
    b_labels.sort();
    let agree: usize = l.pairs.iter().filter(|p| p.0 == p.1).map(|p| p.2).sum();
    let _ = write!(
        out,
        "<p>{} of {} elements have the same label on both sides. Rows: A's label; columns: B's.</p>\
         <table class=\"confusion\"><tr><th>A \\ B</th>",
        agree, l.elements
    );
    for b in &b_labels {
        let _ = write!(out, "<th class=\"mono\">{}</th>", esc(b));
    }
    out.push_str("</tr>");
    for a in &a_labels {
        let _ = write!(out, "<tr><th class=\"mono\">{}</th>", esc(a));
        for b in &b_labels {
            let n = l
                .pairs
                .iter()
                .find(|p| p.0 == *a && p.1 == *b)
                .map_or(0, |p| p.2);
            let class = if n > 0 && a != b { " diff" } else { "" };
            if n > 0 {
                let _ = write!(out, "<td class=\"num{class}\">{n}</td>");
            } else {
                out.push_str("<td></td>");
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if l.other > 0 {
        let _ = write!(
            out,
            "<p>{} more elements in rarer pairs are not shown.</p>",
            l.other
        );
    }
}

/// A tick label: plain for ordinary magnitudes, else scientific.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&a) {
        let text = format!("{v:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.2e}")
    }
}

/// Text for HTML: `&`, `<`, `>` and quotes escaped (as JUnit's XML text is; HTML
/// takes `&apos;` too), control characters replaced.
fn esc(s: &str) -> String {
    crate::report::escape_text(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }

    #[test]
    fn ticks_read_as_numbers() {
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(1.5e-7), "1.50e-7");
        assert_eq!(tick(0.0), "0");
    }
}
