"""Clean-build benchmarks for bench/run: how long compiling modelport from a clone takes,
the crates already downloaded and nothing compiled (an empty target directory), one build at
a time on the whole machine. The alternative in every row is the README's first command's
build: every provider, in the workspace's release profile (thin LTO, 4 codegen units). The
rows: cargo's default release profile (no LTO, 16 codegen units) with every provider, then
with one provider and with none (the cargo features aws and gcp), in that same default
profile. The first row's build also writes cargo's --timings report, from which the cost of
each heavy dependency is summed."""

import json
import os
import re
import shutil
import subprocess
import time

import serving

ROOT = serving.ROOT

# cargo's own release defaults, overriding the workspace's profile from the command line.
CARGO_DEFAULT = ["--config", "profile.release.lto=false", "--config", "profile.release.codegen-units=16"]
# (what, cargo arguments after `cargo build --locked -p modelport-cli`)
VARIANTS = [
    ("every provider, cargo's default release profile (no LTO, 16 codegen units)", ["--release", *CARGO_DEFAULT]),
    ("aws and local only, no LTO, 16 codegen units",
     ["--release", *CARGO_DEFAULT, "--no-default-features", "--features", "aws"]),
    ("gcp and local only, no LTO, 16 codegen units",
     ["--release", *CARGO_DEFAULT, "--no-default-features", "--features", "gcp"]),
    ("local only, no LTO, 16 codegen units", ["--release", *CARGO_DEFAULT, "--no-default-features"]),
]
BASELINE = ("every provider, release profile (thin LTO, 4 codegen units)", ["--release"])

# Crate-name prefixes summed in the dependency breakdown, by what brings them in.
GROUPS = [
    ("AWS SDK and smithy (aws feature)", ("aws-", "aws_")),
    ("Google Cloud crates (gcp feature)", ("google-cloud-", "gax", "google_cloud")),
    ("tract (the pure-Rust engine)", ("tract-", "tract_")),
    ("modelport's own crates", ("modelport-", "modelport_")),
]


def clean_build(target, args, timings=False):
    shutil.rmtree(target, ignore_errors=True)
    cmd = ["cargo", "build", "--locked", "-p", "modelport-cli", *args] + (["--timings"] if timings else [])
    env = {k: v for k, v in os.environ.items() if k not in ("RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER")}
    env["CARGO_TARGET_DIR"] = target
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    size = None
    path = os.path.join(target, "release", "modelport")
    if os.path.exists(path):
        size = os.path.getsize(path)
    return seconds, size


def breakdown(target):
    """Seconds of compile units per group, from the --timings report's unit data."""
    reports = os.path.join(target, "cargo-timings")
    html = [f for f in os.listdir(reports) if f.startswith("cargo-timing-") and f.endswith(".html")]
    if not html:
        return None
    text = open(os.path.join(reports, sorted(html)[-1])).read()
    found = re.search(r"const UNIT_DATA = (\[.*?\]);\n", text, re.S)
    if not found:
        return None
    units = json.loads(found.group(1))
    total = sum(u["duration"] for u in units)
    groups = []
    for name, prefixes in GROUPS:
        seconds = sum(u["duration"] for u in units if u["name"].startswith(prefixes))
        groups.append({"group": name, "unit_seconds": round(seconds, 1), "share": round(seconds / total, 3)})
    slowest = sorted(units, key=lambda u: -u["duration"])[:8]
    return {"unit_seconds": round(total, 1), "groups": groups,
            "slowest": [{"crate": u["name"], "seconds": round(u["duration"], 1)} for u in slowest]}


def build(scratch, quick):
    """The clean-build rows; none in a quick run (each build takes minutes)."""
    if quick:
        return []
    subprocess.run(["cargo", "fetch", "--locked"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    target = os.path.join(scratch, "clean-build-target")
    rows = []
    base_seconds, base_size = clean_build(target, BASELINE[1])
    for i, (what, args) in enumerate(VARIANTS):
        seconds, size = clean_build(target, args, timings=i == 0)
        row = {
            "what": f"clean build of modelport, {what}",
            "modelport": "cargo build --locked -p modelport-cli " + " ".join(args),
            "alternative": BASELINE[0],
            "modelport_value": seconds / 60,
            "alternative_value": base_seconds / 60,
            "ratio": f"{seconds / base_seconds:.2f}",
            "goal": "-",
            "unit": "minutes",
            "binary_mb": round((size or 0) / 1e6, 1),
            "alternative_binary_mb": round((base_size or 0) / 1e6, 1),
            "command": f"rm -rf T && CARGO_TARGET_DIR=T cargo build --locked -p modelport-cli {' '.join(args)}  vs  "
                       f"rm -rf T && CARGO_TARGET_DIR=T cargo build --locked -p modelport-cli {' '.join(BASELINE[1])}",
        }
        if i == 0:
            row["breakdown"] = breakdown(target)
        rows.append(row)
    shutil.rmtree(target, ignore_errors=True)
    return rows


def lines(rows, date):
    if not rows:
        return []
    out = [
        "",
        "## Build",
        "",
        (f"From the run of {date}. " if date else "")
        + "Clean builds of the modelport binary, one after the other on the whole machine: the",
        "crates downloaded beforehand (`cargo fetch`), an empty target directory each time. The",
        f"alternative is the README's first command's build ({BASELINE[0]}); ratio = row /",
        "alternative (below 1.0: the row builds faster). The rows with one provider or none use",
        "cargo's default release profile, like the first row: compare them with it. One round",
        "each: a clean build takes minutes.",
        "",
        "| what | command | minutes | alternative minutes | ratio | binary MB | alternative binary MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['what']} | `{r['modelport']}` | {r['modelport_value']:.1f} | {r['alternative_value']:.1f} "
            f"| {r['ratio']}x | {r['binary_mb']} | {r['alternative_binary_mb']} |"
        )
    if len(rows) > 1:
        first = rows[0]["modelport_value"]
        out += ["", "Against every provider in the same profile (the first row): "
                + ", ".join(f"{r['what'].removeprefix('clean build of modelport, ').split(',')[0]} {r['modelport_value'] / first:.2f}x" for r in rows[1:])
                + "."]
    b = rows[0].get("breakdown")
    if b:
        out += ["", f"Where the first row's build goes (cargo --timings: seconds of compile units, "
                    f"which overlap on 2 cores; {b['unit_seconds']:.0f} s in all):", ""]
        for g in b["groups"]:
            out.append(f"- {g['group']}: {g['unit_seconds']:.0f} s ({g['share'] * 100:.0f} %)")
        out.append("- slowest units: " + ", ".join(f"{s['crate']} {s['seconds']:.0f} s" for s in b["slowest"]))
    out += ["", "Commands:", ""]
    for r in rows:
        out.append(f"- {r['what']}: `{r['command']}`")
    return out
