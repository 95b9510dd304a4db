//! `compare --report FILE`: one self-contained HTML page, opened in a real browser
//! (Debian's chromium, headless) to check what a reader sees: the verdict and every
//! plot drawn at its size with its marks.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Project, Run};

fn chromium() -> &'static str {
    let found = Command::new("chromium").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "chromium is not installed; this test renders the report in it: `apt-get install chromium` (.ci/run installs it)"
    );
    "chromium"
}

/// The page as chromium renders it: the DOM after its scripts ran, and a screenshot.
fn render(page: &Path, dir: &Path) -> (String, u64) {
    let profile = dir.join("chromium-profile");
    let url = format!("file://{}", page.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--window-size=1400,3000",
    ];
    let dom = Command::new(chromium())
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot = dir.join("report.png");
    let png = Command::new(chromium())
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        png.status.success(),
        "{}",
        String::from_utf8_lossy(&png.stderr)
    );
    (
        String::from_utf8(dom.stdout).unwrap(),
        std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0),
    )
}

/// What the page's own script measured in the browser.
fn layout(dom: &str) -> serde_json::Value {
    let start = dom.find("<pre id=\"layout\">").expect("no layout element") + 17;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_report_renders_in_a_browser_with_its_plots_and_verdict() {
    let project = Project::new();
    let root = common::root();
    let iris = root.join("examples/iris/model.onnx");
    let samples = root.join("examples/iris/samples.json");

    // Two engines on one model: PASS, every plot drawn.
    let pass = project.path().join("pass.html");
    Run(project
        .cmd(&[
            "compare",
            iris.to_str().unwrap(),
            iris.to_str().unwrap(),
            "--engine-a",
            "tract",
            "--engine-b",
            "onnxruntime",
            "--samples",
            samples.to_str().unwrap(),
            "--report",
            pass.to_str().unwrap(),
        ])
        .output()
        .unwrap())
    .expect(0);
    let html = std::fs::read_to_string(&pass).unwrap();
    // Self-contained: nothing to fetch.
    for fetch in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(fetch), "{fetch} in the report");
    }
    let (dom, png) = render(&pass, project.path());
    let seen = layout(&dom);
    assert_eq!(seen["verdict"], "PASS", "{seen}");
    assert!(seen["verdict_height"].as_u64().unwrap() > 10, "{seen}");
    let plots = seen["plots"].as_array().unwrap();
    // output_probability: values, residuals, absolute and relative errors.
    let kinds: Vec<&str> = plots.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["scatter", "residuals", "histogram", "histogram"],
        "{seen}"
    );
    for p in plots {
        assert!(p["width"].as_u64().unwrap() >= 400, "{p}");
        assert!(p["height"].as_u64().unwrap() >= 280, "{p}");
        assert!(p["marks"].as_u64().unwrap() > 0, "{p}");
    }
    // 16 samples × 3 probabilities, all drawn.
    assert_eq!(plots[0]["marks"], 48, "{seen}");
    assert!(
        dom.contains("onnxruntime") && dom.contains("tract"),
        "engines named"
    );
    assert!(png > 20_000, "screenshot of {png} bytes");

    // Another model on the same inputs: FAIL, the label pairs and worst examples shown.
    let svm = root.join("tests/fixtures/models/svm/model.onnx");
    let fail = project.path().join("fail.html");
    Run(project
        .cmd(&[
            "compare",
            svm.to_str().unwrap(),
            iris.to_str().unwrap(),
            "--samples",
            samples.to_str().unwrap(),
            "--report",
            fail.to_str().unwrap(),
        ])
        .output()
        .unwrap())
    .expect(3);
    let (dom, _) = render(&fail, project.path());
    let seen = layout(&dom);
    assert_eq!(seen["verdict"], "FAIL", "{seen}");
    assert!(dom.contains("class=\"confusion\""), "no label table");
    assert!(dom.contains("id=\"worst\""), "no worst examples");
    assert!(
        dom.contains("circle class=\"out\""),
        "no point out of tolerance"
    );
    let plots = seen["plots"].as_array().unwrap();
    assert!(
        plots.iter().all(|p| p["marks"].as_u64().unwrap() > 0),
        "{seen}"
    );
}

/// 100 000 samples are summarised, not drawn point by point.
#[test]
fn a_large_comparison_gives_a_small_report() {
    let project = Project::new();
    let iris = common::root().join("examples/iris/model.onnx");
    let page = project.path().join("big.html");
    Run(project
        .cmd(&[
            "compare",
            iris.to_str().unwrap(),
            iris.to_str().unwrap(),
            "--engine-a",
            "tract",
            "--engine-b",
            "onnxruntime",
            "--count",
            "100000",
            "--report",
            page.to_str().unwrap(),
        ])
        .output()
        .unwrap())
    .expect(0);
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(size < 2_000_000, "{size} bytes");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("of 300000 elements drawn"),
        "the caption says what was drawn"
    );
}
