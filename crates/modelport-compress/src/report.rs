//! The text form of a [`CompressReport`](crate::CompressReport); it only formats.

use std::fmt::Write;

use modelport_core::units::human_bytes;

use crate::gate::GateReport;
use crate::{CompressReport, Sizes};

fn sizes(s: &Sizes) -> String {
    let ratio = if s.after == 0 {
        0.0
    } else {
        s.before as f64 / s.after as f64
    };
    format!(
        "{} → {} ({ratio:.2}× smaller)",
        human_bytes(s.before),
        human_bytes(s.after)
    )
}

fn float(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.is_infinite() => "inf".into(),
        Some(x) => format!("{x:.3e}"),
    }
}

/// The gate's table and verdict lines, shared by `compress` and a compressed deploy.
pub fn render_gate(gate: &GateReport, what: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{what} on {} samples:", gate.samples);
    let _ = writeln!(
        s,
        "  {:<24} {:>10} {:>10} {:>9} {:>10} {:>10}",
        "output", "max |err|", "mean |err|", "SQNR dB", "agreement", "NaN/Inf"
    );
    for o in &gate.outputs {
        if let Some(m) = &o.mismatch {
            let _ = writeln!(s, "  {:<24} {m}", o.name);
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<24} {:>10} {:>10} {:>9} {:>10} {:>10}",
            o.name,
            float(o.max_abs_err),
            float(o.mean_abs_err),
            o.sqnr_db.map_or("-".into(), |d| if d.is_infinite() {
                "inf".into()
            } else {
                format!("{d:.1}")
            }),
            o.agreement
                .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
            o.non_finite
        );
    }
    if let Some(a) = &gate.accuracy {
        let _ = writeln!(
            s,
            "  accuracy on the labels ({}): {:.2}% → {:.2}% (drop {:.2} points)",
            a.output,
            a.original * 100.0,
            a.candidate * 100.0,
            a.drop * 100.0
        );
    }
    for g in &gate.goals {
        let _ = writeln!(
            s,
            "  {} {}: {}",
            if g.passed { "ok  " } else { "FAIL" },
            g.goal,
            g.detail
        );
    }
    let non_finite: usize = gate.outputs.iter().map(|o| o.non_finite).sum();
    if non_finite > 0 {
        let _ = writeln!(
            s,
            "  FAIL no NaN or infinity: {non_finite} values are where the original's are finite"
        );
    }
    s
}

/// `modelport compress`'s report for people.
pub fn render_text(r: &CompressReport) -> String {
    let mut s = String::new();
    let how = method(&r.settings);
    let _ = writeln!(s, "compressed {} ({how})", r.model.display());
    let _ = writeln!(s, "  file:     {}", sizes(&r.file));
    let _ = writeln!(s, "  weights:  {}", sizes(&r.weights));
    if let Some(a) = &r.artifact {
        let _ = writeln!(s, "  artifact: {} (model.tar.gz)", sizes(a));
    }
    let t = &r.transform;
    if let Some(f) = &t.fp16 {
        let kept: Vec<String> = f
            .float32_nodes
            .iter()
            .map(|(op, n)| format!("{op}×{n}"))
            .collect();
        let _ = writeln!(
            s,
            "  fp16: {} nodes in half precision, {} weights converted, {} Casts added{}",
            f.half_nodes,
            f.converted_weights,
            f.casts,
            if kept.is_empty() {
                String::new()
            } else {
                format!("; kept float32: {}", kept.join(", "))
            }
        );
        if f.clamped > 0 || f.flushed_to_zero > 0 {
            let _ = writeln!(
                s,
                "        {} weights clamped to ±65504, {} flushed to 0",
                f.clamped, f.flushed_to_zero
            );
        }
    }
    if let Some(q) = &t.int8 {
        let _ = writeln!(
            s,
            "  int8: {} weights in eight bits, {} nodes compute in integers",
            q.quantized_weights, q.integer_nodes
        );
        for (node, why) in &q.skipped {
            let _ = writeln!(s, "        {node} kept float32 ({why})");
        }
    }
    if let Some(p) = &t.prune {
        let _ = writeln!(
            s,
            "  prune: {} weights, zeros {:.1}% → {:.1}%",
            p.weights,
            100.0 * p.zeros_before as f64 / p.elements.max(1) as f64,
            100.0 * p.zeros_after as f64 / p.elements.max(1) as f64
        );
    }
    if !r.excluded.is_empty() {
        let list: Vec<String> = r
            .excluded
            .iter()
            .map(|e| format!("{} ({}, {})", e.node, e.op_type, e.by))
            .collect();
        let _ = writeln!(s, "  left as they were: {}", list.join(", "));
    }
    if let Some(a) = &r.auto {
        let _ = writeln!(s, "  auto: {a}");
    }
    for e in &r.engines {
        let ms = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2} ms"));
        let _ = write!(
            s,
            "  {} {}: {} → {} for the evaluation set",
            e.engine,
            e.version.as_deref().unwrap_or(""),
            ms(e.latency_ms_before),
            ms(e.latency_ms_after)
        );
        match &e.error {
            Some(err) => {
                let _ = writeln!(s, " ({err})");
            }
            None => s.push('\n'),
        }
    }
    s.push_str(&render_gate(
        &r.gate,
        &format!("gate ({}, {})", r.engine, r.eval),
    ));
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if r.gate.passed {
        let files: Vec<String> = r.written.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(s, "PASS: wrote {}", files.join(", "));
    } else {
        let _ = writeln!(
            s,
            "FAIL: the compressed model misses the goal; {} was not written",
            r.out.display()
        );
    }
    s
}

/// `int8 per channel + 50% pruned`: the settings in a few words.
pub fn method(s: &crate::Settings) -> String {
    let channel = if s.per_channel { " per channel" } else { "" };
    match (s.to, s.prune) {
        (Some(m), Some(p)) => format!("{m}{channel} + {:.0}% pruned", p * 100.0),
        (Some(m), None) => format!("{m}{channel}"),
        (None, Some(p)) => format!("{:.0}% pruned", p * 100.0),
        (None, None) => "nothing".into(),
    }
}

/// One line for `plan`: the method, the sizes and the gate's verdict.
pub fn render_summary(r: &CompressReport) -> String {
    let how = method(&r.settings);
    let agreement = r
        .gate
        .outputs
        .iter()
        .filter_map(|o| o.agreement)
        .min_by(f64::total_cmp)
        .map(|a| format!(", agreement {:.2}%", a * 100.0))
        .unwrap_or_default();
    let accuracy = r
        .gate
        .accuracy
        .as_ref()
        .map(|a| {
            format!(
                ", accuracy {:.2}% → {:.2}%",
                a.original * 100.0,
                a.candidate * 100.0
            )
        })
        .unwrap_or_default();
    format!(
        "{how}: file {}, weights {}; gate {} on {} samples{agreement}{accuracy}",
        sizes(&r.file),
        sizes(&r.weights),
        if r.gate.passed { "PASS" } else { "FAIL" },
        r.gate.samples
    )
}
