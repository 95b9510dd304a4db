//! Renders a comparison for people (text; HTML in [`crate::html`]), programs (JSON) and
//! CI systems (JUnit XML).
//!
//! Nothing here decides anything: whether A matches B was settled by
//! [`crate::metrics`], and this module only formats the answer. The text has no
//! colours, so that the CLI can add them when it writes to a terminal, and no clock,
//! so that the same report always renders the same way.

use std::fmt::Write;

use modelport_core::tensor::ShapeDisplay;
use modelport_core::{TargetInfo, TargetKind};
use serde::Serialize;

use crate::metrics::{Comparison, ELLIPSIS, OutputReport, RowPair, Status, percent};

/// A finished comparison of A (the candidate) with B (the reference).
///
/// Its serde form is the `--output json` interface of `modelport compare` and is
/// pinned by a test: the keys are `a`, `b`, `elapsed_ms`, then the fields of
/// [`Comparison`] (`passed`, `samples`, `atol`, `rtol`, `min_label_agreement`,
/// `outputs`, `worst`, `notes`). Optional fields are left out rather than `null`, and
/// non-finite numbers are the strings `"inf"`, `"-inf"` and `"nan"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub a: TargetInfo,
    pub b: TargetInfo,
    /// Wall-clock time of the whole comparison, both predictions included.
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub comparison: Comparison,
    /// What `render_html` draws (not part of the JSON interface).
    #[serde(skip)]
    pub plots: Vec<crate::plots::OutputPlot>,
}

impl CompareReport {
    /// Whether A matches B; the CLI's exit code follows it.
    pub fn passed(&self) -> bool {
        self.comparison.passed
    }

    /// The number of examples compared.
    pub fn samples(&self) -> usize {
        self.comparison.samples
    }
}

/// The terminal report: who A and B are, one table row per output, and on failure the
/// reasons and the worst examples.
pub fn render_text(report: &CompareReport) -> String {
    let c = &report.comparison;
    let mut out = String::new();
    let _ = writeln!(out, "A  {}", describe(&report.a));
    let _ = writeln!(out, "B  {}", describe(&report.b));
    let _ = writeln!(out, "{}", plural(c.samples, "sample"));

    if !c.outputs.is_empty() {
        let mut rows = vec![
            [
                "output", "dtype", "shape", "max abs", "mean abs", "max rel", "within", "labels",
                "result",
            ]
            .map(String::from)
            .to_vec(),
        ];
        rows.extend(c.outputs.iter().map(output_row));
        out.push('\n');
        out.push_str(&table(&rows, ""));
    }

    let failed: Vec<&OutputReport> = c.failed_outputs().collect();
    if !failed.is_empty() {
        out.push_str("\nfailed outputs\n");
        let rows: Vec<Vec<String>> = failed
            .iter()
            .map(|o| vec![o.name.clone(), o.reason.clone().unwrap_or_default()])
            .collect();
        out.push_str(&table(&rows, "  "));
    }

    if !c.passed && !c.worst.is_empty() {
        out.push_str("\nworst examples (score: error in units of the tolerance; above 1 is out of tolerance)\n");
        for example in &c.worst {
            let _ = writeln!(out, "  #{}  score {}", example.index, score(example.score));
            let mut rows = Vec::new();
            for (name, values) in &example.inputs {
                rows.push(vec!["input".into(), name.clone(), row_text(values, None)]);
            }
            for (name, pair) in &example.outputs {
                rows.push(vec![
                    "A".into(),
                    name.clone(),
                    row_text(&pair.a, pair.a_class.as_deref()),
                ]);
                rows.push(vec![
                    "B".into(),
                    name.clone(),
                    row_text(&pair.b, pair.b_class.as_deref()),
                ]);
            }
            out.push_str(&table(&rows, "    "));
        }
    }

    if !c.notes.is_empty() {
        out.push('\n');
        for note in &c.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }

    out.push('\n');
    out.push_str(&verdict(c));
    out.push('\n');
    out
}

/// The last line: PASS or FAIL with the sample count and the default tolerances.
pub(crate) fn verdict(c: &Comparison) -> String {
    let skipped = c.outputs.len() - c.checked_outputs().count();
    let mut tolerances = format!("atol {}, rtol {}", tolerance(c.atol), tolerance(c.rtol));
    if skipped > 0 {
        let _ = write!(tolerances, "; {} skipped", plural(skipped, "output"));
    }
    let samples = plural(c.samples, "sample");
    let failed = c.failed_outputs().count();
    if let Some(u) = &c.unchecked {
        return format!(
            "INCOMPLETE  {} of {} compared ({tolerances}), {failed} of {} differ; {} could not be: {} stopped answering",
            c.samples,
            plural(u.total, "sample"),
            plural(c.checked_outputs().count(), "output"),
            u.samples,
            u.target
        );
    }
    if c.passed {
        format!("PASS  A matches B on {samples} ({tolerances})")
    } else if failed > 0 {
        format!(
            "FAIL  {failed} of {} differ between A and B on {samples} ({tolerances})",
            plural(c.checked_outputs().count(), "output")
        )
    } else {
        "FAIL  nothing was compared (see the notes above)".to_string()
    }
}

/// One table row for an output.
pub(crate) fn output_row(o: &OutputReport) -> Vec<String> {
    let dash = || "-".to_string();
    let stats = o.stats.as_ref();
    let agreement = match (&o.labels, stats.and_then(|s| s.argmax_agreement)) {
        (Some(labels), _) => percent(labels.agreement),
        (None, Some(argmax)) => percent(argmax),
        (None, None) => dash(),
    };
    vec![
        o.name.clone(),
        o.dtype.name().to_string(),
        ShapeDisplay(&o.shape).to_string(),
        stats.map_or_else(dash, |s| scientific(s.max_abs_err)),
        stats.map_or_else(dash, |s| scientific(s.mean_abs_err)),
        stats.map_or_else(dash, |s| scientific(s.max_rel_err)),
        stats.map_or_else(dash, |s| percent(s.within_fraction)),
        agreement,
        match o.status {
            Status::Passed => "pass",
            Status::Failed => "FAIL",
            Status::Skipped => "skip",
        }
        .to_string(),
    ]
}

/// A target in one line: what it is, where it is, and what answered.
pub(crate) fn describe(t: &TargetInfo) -> String {
    let mut text = match t.kind {
        TargetKind::Model => format!("model {} (local)", t.label),
        TargetKind::Deployment => format!("endpoint {} ({})", t.label, t.location),
        TargetKind::Url if t.label == t.location => format!("url {}", t.location),
        TargetKind::Url => format!("url {} ({})", t.label, t.location),
    };
    let served = &t.served_by;
    let digest = served.digest.as_deref().map(short_digest);
    for part in [
        served.engine.as_deref(),
        served.engine_version.as_deref(),
        digest.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        text.push(' ');
        text.push_str(part);
    }
    if let Some(image) = &served.image {
        text.push_str(" image ");
        text.push_str(image);
    }
    text
}

/// `sha256:0123456789abcdef…` from a full digest; short digests stay whole.
fn short_digest(digest: &str) -> String {
    const KEEP: usize = 12;
    let (prefix, hex) = digest.split_once(':').unwrap_or(("", digest));
    if hex.chars().count() <= KEEP {
        return digest.to_string();
    }
    let head: String = hex.chars().take(KEEP).collect();
    if prefix.is_empty() {
        format!("{head}{ELLIPSIS}")
    } else {
        format!("{prefix}:{head}{ELLIPSIS}")
    }
}

/// An error in compact scientific notation (`2.4e-7`); exact zero is `0`.
fn scientific(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x:.1e}")
    }
}

/// A tolerance as written in modelport.yaml (`1e-5`).
fn tolerance(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x:e}")
    }
}

/// A worst-example score: two decimals in the usual range, scientific outside it.
pub(crate) fn score(x: f64) -> String {
    if x.is_infinite() {
        "inf".to_string()
    } else if (0.01..1000.0).contains(&x) {
        format!("{x:.2}")
    } else {
        format!("{x:.1e}")
    }
}

/// A row preview: a single value bare, several in brackets, with the argmax's class.
pub(crate) fn row_text(values: &[String], class: Option<&str>) -> String {
    let mut text = match values {
        [] => "-".to_string(),
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    if let Some(class) = class {
        let _ = write!(text, " (class {class})");
    }
    text
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Left-aligned columns two spaces apart, each line prefixed by `indent`; the last
/// column is not padded, so no line ends in spaces.
fn table(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The report as JUnit XML: one test suite, one test case per output.
///
/// A comparison that failed without a failing output (no samples, no output in common)
/// gets a failing test case of its own named `comparison`, because a suite with no
/// failing case would read as green in CI.
pub fn render_junit(report: &CompareReport) -> String {
    let c = &report.comparison;
    let failed = c.failed_outputs().count();
    let skipped = c.outputs.len() - c.checked_outputs().count();
    let whole_failed = !c.passed && failed == 0;
    let tests = c.outputs.len() + usize::from(whole_failed);
    let failures = failed + usize::from(whole_failed);
    let time = format!("{:.3}", report.elapsed_ms as f64 / 1000.0);
    let counts = format!(
        r#"tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}" time="{time}""#
    );

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, r#"<testsuites name="modelport" {counts}>"#);
    let _ = writeln!(out, r#"  <testsuite name="modelport compare" {counts}>"#);
    out.push_str("    <properties>\n");
    let mut properties = target_properties("a", &report.a);
    properties.extend(target_properties("b", &report.b));
    properties.extend([
        ("samples".to_string(), c.samples.to_string()),
        ("atol".to_string(), tolerance(c.atol)),
        ("rtol".to_string(), tolerance(c.rtol)),
        (
            "min_label_agreement".to_string(),
            c.min_label_agreement.to_string(),
        ),
    ]);
    for (name, value) in &properties {
        let _ = writeln!(
            out,
            r#"      <property name="{}" value="{}"/>"#,
            escape_attribute(name),
            escape_attribute(value)
        );
    }
    out.push_str("    </properties>\n");

    for o in &c.outputs {
        let open = format!(
            r#"    <testcase classname="modelport.compare" name="{}""#,
            escape_attribute(&o.name)
        );
        match o.status {
            Status::Passed => {
                let _ = writeln!(out, "{open}/>");
            }
            Status::Skipped => {
                let _ = writeln!(out, "{open}>\n      <skipped/>\n    </testcase>");
            }
            Status::Failed => {
                let _ = writeln!(
                    out,
                    "{open}>\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
                    escape_attribute(o.reason.as_deref().unwrap_or("failed")),
                    escape_text(&failure_details(o, c))
                );
            }
        }
    }
    if whole_failed {
        let message = if c.notes.is_empty() {
            "nothing was compared".to_string()
        } else {
            c.notes.join("; ")
        };
        let _ = writeln!(
            out,
            "    <testcase classname=\"modelport.compare\" name=\"comparison\">\n      <failure message=\"{}\" type=\"nothing-compared\"/>\n    </testcase>",
            escape_attribute(&message)
        );
    }
    if !c.notes.is_empty() {
        let _ = writeln!(
            out,
            "    <system-out>{}</system-out>",
            escape_text(&c.notes.join("\n"))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `a.label`, `a.kind`, ... for one target; unknown engine facts are left out.
fn target_properties(side: &str, t: &TargetInfo) -> Vec<(String, String)> {
    let kind = match t.kind {
        TargetKind::Model => "model",
        TargetKind::Deployment => "deployment",
        TargetKind::Url => "url",
    };
    let s = &t.served_by;
    [
        ("label", Some(t.label.as_str())),
        ("kind", Some(kind)),
        ("location", Some(t.location.as_str())),
        ("engine", s.engine.as_deref()),
        ("engine_version", s.engine_version.as_deref()),
        ("digest", s.digest.as_deref()),
        ("image", s.image.as_deref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((format!("{side}.{key}"), value?.to_string())))
    .collect()
}

/// The body of a failed test case: the output's numbers and its worst examples.
fn failure_details(o: &OutputReport, c: &Comparison) -> String {
    let mut text = format!(
        "{}\ndtype {}, shape {}, atol {}, rtol {}\n",
        o.reason.as_deref().unwrap_or("failed"),
        o.dtype,
        ShapeDisplay(&o.shape),
        tolerance(o.atol),
        tolerance(o.rtol)
    );
    if let Some(s) = &o.stats {
        let _ = writeln!(
            text,
            "max abs {}, mean abs {}, max rel {}, within {}, NaN mismatches {}, inf mismatches {}",
            scientific(s.max_abs_err),
            scientific(s.mean_abs_err),
            scientific(s.max_rel_err),
            percent(s.within_fraction),
            s.nan_mismatches,
            s.inf_mismatches
        );
    }
    if let Some(l) = &o.labels {
        let _ = writeln!(
            text,
            "{} of {} rows differ, agreement {}, required {}",
            l.mismatched_rows,
            l.rows,
            percent(l.agreement),
            percent(l.min_agreement)
        );
    }
    for example in &c.worst {
        let Some((_, pair)) = example.outputs.iter().find(|(name, _)| *name == o.name) else {
            continue;
        };
        // Only the examples where this output visibly differs, or may differ beyond the
        // preview, belong in its failure.
        let truncated = pair.a.last().is_some_and(|v| v == ELLIPSIS);
        if pair.a == pair.b && !truncated {
            continue;
        }
        let RowPair {
            a,
            b,
            a_class,
            b_class,
        } = pair;
        let _ = writeln!(
            text,
            "#{} score {}: A {} B {}",
            example.index,
            score(example.score),
            row_text(a, a_class.as_deref()),
            row_text(b, b_class.as_deref())
        );
    }
    text
}

/// Escapes text content; characters XML 1.0 cannot hold at all become U+FFFD.
pub(crate) fn escape_text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value; line breaks and tabs become character references so
/// that parsers do not fold them into spaces.
fn escape_attribute(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\r' | '\t' if attribute => {
                let _ = write!(out, "&#{};", u32::from(ch));
            }
            '\n' | '\r' | '\t' => out.push(ch),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use modelport_core::spec::{OutputTolerance, VerifySpec};
    use modelport_core::{Batch, ClassLabels, DType, Dim, ServedBy, Tensor, TensorSpec};

    use super::*;
    use crate::metrics::compare;

    fn target(label: &str, kind: TargetKind, location: &str, served_by: ServedBy) -> TargetInfo {
        TargetInfo {
            label: label.into(),
            kind,
            location: location.into(),
            served_by,
        }
    }

    fn onnxruntime(digest: Option<&str>) -> ServedBy {
        ServedBy {
            engine: Some("onnxruntime".into()),
            engine_version: Some("1.32.0".into()),
            digest: digest.map(String::from),
            revision: None,
            image: None,
        }
    }

    fn batch(tensors: Vec<(&str, Tensor)>) -> Batch {
        let mut batch = Batch::new();
        for (name, t) in tensors {
            batch.insert(name, t).unwrap();
        }
        batch
    }

    /// An iris-like classifier on four examples: a label and three class probabilities.
    ///
    /// `broken` makes A disagree on example 2 (another label, probabilities off by
    /// 1e-3) and return an output B does not have.
    fn iris(broken: bool, verify: &VerifySpec) -> CompareReport {
        let inputs = batch(vec![(
            "x",
            Tensor::new(
                vec![4, 4],
                vec![
                    5.1f32, 3.5, 1.4, 0.2, 6.2, 2.9, 4.3, 1.3, 7.7, 3.0, 6.1, 2.3, 5.0, 3.4, 1.5,
                    0.2,
                ],
            )
            .unwrap(),
        )]);
        let probabilities = vec![
            0.97f32, 0.02, 0.01, 0.05, 0.9, 0.05, 0.01, 0.3, 0.69, 0.96, 0.03, 0.01,
        ];
        let b = batch(vec![
            ("label", Tensor::new(vec![4], vec![0i64, 1, 2, 0]).unwrap()),
            (
                "probabilities",
                Tensor::new(vec![4, 3], probabilities.clone()).unwrap(),
            ),
        ]);
        let mut a_probabilities = probabilities;
        a_probabilities[0] += 2.4e-7;
        let mut a_labels = vec![0i64, 1, 2, 0];
        if broken {
            a_labels[2] = 1;
            a_probabilities[7] += 0.4;
            a_probabilities[8] -= 0.4;
            a_probabilities[4] += 1e-3;
        }
        let mut a = batch(vec![
            ("label", Tensor::new(vec![4], a_labels).unwrap()),
            (
                "probabilities",
                Tensor::new(vec![4, 3], a_probabilities).unwrap(),
            ),
        ]);
        if broken {
            a.insert("debug", Tensor::new(vec![4], vec![0u8; 4]).unwrap())
                .unwrap();
        }
        let mut spec = TensorSpec::new(
            "probabilities",
            DType::F32,
            vec![Dim::Dynamic(Some("N".into())), Dim::Fixed(3)],
        );
        spec.class_labels = Some(ClassLabels::String(vec![
            "setosa".into(),
            "versicolor".into(),
            "virginica".into(),
        ]));
        CompareReport {
            a: target(
                "iris",
                TargetKind::Deployment,
                "http://127.0.0.1:40123/invocations",
                onnxruntime(Some(
                    "sha256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
                )),
            ),
            b: target(
                "examples/iris/model.onnx",
                TargetKind::Model,
                "/work/examples/iris/model.onnx",
                onnxruntime(None),
            ),
            elapsed_ms: 1234,
            comparison: compare(&a, &b, &inputs, &[spec], verify, 5),
            plots: crate::plots::plots(&a, &b, verify),
        }
    }

    #[test]
    fn text_when_passing() {
        let report = iris(false, &VerifySpec::default());
        assert!(report.passed());
        insta::assert_snapshot!("text_pass", render_text(&report));
    }

    #[test]
    fn text_when_failing() {
        let mut verify = VerifySpec::default();
        verify.outputs.insert(
            "ignored".into(),
            OutputTolerance {
                skip: true,
                ..OutputTolerance::default()
            },
        );
        let report = iris(true, &verify);
        assert!(!report.passed());
        insta::assert_snapshot!("text_fail", render_text(&report));
    }

    #[test]
    fn text_when_nothing_was_compared() {
        let mut report = iris(false, &VerifySpec::default());
        report.comparison = compare(
            &Batch::new(),
            &Batch::new(),
            &Batch::new(),
            &[],
            &VerifySpec::default(),
            5,
        );
        insta::assert_snapshot!("text_nothing", render_text(&report));
    }

    /// The JSON is the `--output json` interface: its keys must not change by accident.
    #[test]
    fn json_interface() {
        let report = iris(true, &VerifySpec::default());
        let json = serde_json::to_value(&report).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "a",
                "b",
                "elapsed_ms",
                "passed",
                "samples",
                "atol",
                "rtol",
                "min_label_agreement",
                "outputs",
                "worst",
                "notes"
            ]
        );
        insta::assert_json_snapshot!("json_fail", report);
    }

    #[test]
    fn junit() {
        insta::assert_snapshot!(
            "junit_fail",
            render_junit(&iris(true, &VerifySpec::default()))
        );
        let passing = render_junit(&iris(false, &VerifySpec::default()));
        assert!(passing.contains(r#"tests="2" failures="0" errors="0" skipped="0" time="1.234""#));
        assert!(!passing.contains("<failure"));
    }

    #[test]
    fn junit_fails_when_nothing_was_compared() {
        let mut report = iris(false, &VerifySpec::default());
        report.comparison = compare(
            &Batch::new(),
            &Batch::new(),
            &Batch::new(),
            &[],
            &VerifySpec::default(),
            5,
        );
        let xml = render_junit(&report);
        assert!(xml.contains(r#"tests="1" failures="1""#), "{xml}");
        assert!(xml.contains(r#"<testcase classname="modelport.compare" name="comparison">"#));
    }

    #[test]
    fn xml_escaping() {
        let check = |input: &str, text: &str, attribute: &str| {
            assert_eq!(escape_text(input), text, "text of {input:?}");
            assert_eq!(escape_attribute(input), attribute, "attribute of {input:?}");
        };
        check("plain", "plain", "plain");
        check(
            r#"a & b < c > d "e" 'f'"#,
            "a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;",
            "a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;",
        );
        check("]]>", "]]&gt;", "]]&gt;");
        check("one\ntwo\tthree", "one\ntwo\tthree", "one&#10;two&#9;three");
        check("bell\u{7}", "bell\u{FFFD}", "bell\u{FFFD}");
        check("ünïcødé …", "ünïcødé …", "ünïcødé …");

        // Names and labels that reach the XML are escaped wherever they appear.
        let mut report = iris(true, &VerifySpec::default());
        report.a.label = r#"<a & "b">"#.into();
        report.comparison.outputs[0].name = "p<&>'".into();
        let xml = render_junit(&report);
        assert!(
            xml.contains(r#"<property name="a.label" value="&lt;a &amp; &quot;b&quot;&gt;"/>"#)
        );
        assert!(xml.contains(r#"name="p&lt;&amp;&gt;&apos;""#));
        assert!(!xml.contains("<a &"));
    }

    #[test]
    fn digests_are_shortened() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab…"
        );
        assert_eq!(short_digest("sha256:0123"), "sha256:0123");
        assert_eq!(short_digest("0123456789abcdef0123"), "0123456789ab…");
    }

    #[test]
    fn number_formats() {
        assert_eq!(scientific(2.4e-7), "2.4e-7");
        assert_eq!(scientific(0.0), "0");
        assert_eq!(scientific(f64::INFINITY), "inf");
        assert_eq!(tolerance(1e-5), "1e-5");
        assert_eq!(tolerance(0.0), "0");
        assert_eq!(score(12.345), "12.35");
        assert_eq!(score(123456.0), "1.2e5");
        assert_eq!(score(f64::INFINITY), "inf");
    }
}
