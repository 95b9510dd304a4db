"""Large models for bench/run: a generated model whose weights are ONNX external data
(about 3 GB; 36 MB with --quick) taken to the S3 emulator as `modelport package --layout
dir` + modelport's upload of the directory, against `tar czf` + `aws s3 cp` of the same
files; the peak RSS of each modelport step; and `modelport serve`'s time to its first 200
on /ping against onnxruntime's own InferenceSession creation on the same files, in the
same run.

    python bench/large_model.py MODELPORT UPLOAD_BIN SCRATCH QUICK ROUNDS   (prints JSON rows)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from onnx import TensorProto, helper

import artifacts
import serving

ROOT = serving.ROOT
PY = sys.executable
GNU_TIME = "/usr/bin/time"


def external_model(scratch, quick):
    """X[?, n] @ W[n, n] with W (random normal float32, which gzip cannot shrink) in
    model.onnx.data, written in slices so the generator never holds it: 3.0 GB for
    n = 27386, 36 MB for n = 3000 (quick). Kept between runs."""
    n = 3000 if quick else 27386
    folder = os.path.join(scratch, f"external-{n}")
    model = os.path.join(folder, "model.onnx")
    if os.path.exists(model):
        return folder
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "model.onnx.data")
    rng = np.random.default_rng(0)
    with open(data + ".partial", "wb") as f:
        rows = max(1, (64 << 20) // (4 * n))
        for start in range(0, n, rows):
            f.write(rng.standard_normal((min(rows, n - start), n), dtype=np.float32).tobytes())
    os.replace(data + ".partial", data)
    w = TensorProto(name="W", dims=[n, n], data_type=TensorProto.FLOAT,
                    data_location=TensorProto.EXTERNAL)
    for k, v in [("location", "model.onnx.data"), ("offset", "0"), ("length", str(4 * n * n))]:
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "external",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", n])], [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with open(model + ".partial", "wb") as f:
        f.write(m.SerializeToString())
    os.replace(model + ".partial", model)
    return folder


def measured(cmd, env=None):
    """Seconds and peak RSS (MB) of a whole process, as GNU time reports it. (A child's
    rusage from Python counts the Python image it was forked from.)"""
    with tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        out = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name, *cmd], cwd=ROOT, check=True,
                             capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout
        seconds = time.perf_counter() - started
        return seconds, int(rss.read().split()[-1]) / 1024, out


def hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def serve_ready(modelport, model_dir):
    """Seconds from spawn to the first 200 on /ping, and the peak RSS then (MB)."""
    port = serving.free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([modelport, "serve", model_dir, "--port", str(port), "--engine", "onnxruntime",
                             "--workers", "1", "--threads", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        serving.wait_ready(f"http://127.0.0.1:{port}/ping", proc, timeout=600)
        return time.perf_counter() - started, hwm_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)


ORT_SESSION = """
import json, os, sys, time
import onnxruntime as ort
o = ort.SessionOptions()
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
o.intra_op_num_threads = 1
started = time.perf_counter()
ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
seconds = time.perf_counter() - started
rss = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0] / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss}))
"""


def large(modelport, upload_bin, scratch, quick, repeats):
    folder = external_model(scratch, quick)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in ("model.onnx", "model.onnx.data"))
    gb = size / 1e9
    size_text = f"{gb:.1f} GB" if gb >= 1 else f"{size / 1e6:.0f} MB"
    env = artifacts.moto_env(scratch)
    out = os.path.join(scratch, "large-out")
    rounds = 1 if quick else repeats
    times = {"modelport": [], "alternative": []}
    rss = {"package": [], "upload": []}
    moto = artifacts.Moto()
    try:
        for r in range(rounds):
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            package_s, package_rss, _ = measured(
                [modelport, "package", folder, "--layout", "dir", "--out", os.path.join(out, "mp"), "-q"])
            upload_s, upload_rss, _ = measured(
                [upload_bin, os.path.join(out, "mp", "model"), f"s3://{artifacts.BUCKET}/modelport/{r}/",
                 "--endpoint-url", moto.url], env)
            times["modelport"].append(package_s + upload_s)
            rss["package"].append(package_rss)
            rss["upload"].append(upload_rss)
            moto.delete_prefix(f"modelport/{r}/")
            tarball = os.path.join(out, "model.tar.gz")
            tar_s, _, _ = measured(["tar", "czf", tarball, "-C", folder, "model.onnx", "model.onnx.data"])
            cp_s, _, _ = measured([os.path.join(artifacts.VENV_BIN, "aws"), "s3", "cp", tarball,
                                   f"s3://{artifacts.BUCKET}/awscli/{r}/model.tar.gz",
                                   "--endpoint-url", moto.url, "--only-show-errors"], env)
            times["alternative"].append(tar_s + cp_s)
            moto.delete(f"awscli/{r}/model.tar.gz")
    finally:
        moto.stop()
    model_dir = os.path.join(out, "mp", "model")
    ready = [serve_ready(modelport, model_dir) for _ in range(rounds)]
    sessions = []
    for _ in range(rounds):
        _, _, text = measured([PY, "-c", ORT_SESSION, os.path.join(model_dir, "model.onnx")])
        sessions.append(json.loads(text.strip().splitlines()[-1]))
    shutil.rmtree(out, ignore_errors=True)
    median = serving.median
    mp, alt = median(times["modelport"]), median(times["alternative"])
    serve_s, serve_rss = median([r[0] for r in ready]), median([r[1] for r in ready])
    ort_s, ort_rss = median([s["seconds"] for s in sessions]), median([s["rss_mb"] for s in sessions])
    what = f"{size_text} model with external data"
    rows = [{
        "what": f"package + upload a {what} (s)",
        "modelport": "modelport package --layout dir + S3 upload of the directory",
        "alternative": "tar czf + aws s3 cp", "modelport_value": mp, "alternative_value": alt,
        "ratio": round(alt / mp, 2), "goal": ">= 2x (speed-up)", "higher_is_better": True, "rounds": rounds,
        "command": "modelport package DIR --layout dir --out OUT -q; upload OUT/model s3://bench/KEY/ "
                   "--endpoint-url URL  vs  tar czf OUT.tar.gz -C DIR model.onnx model.onnx.data; "
                   "aws s3 cp OUT.tar.gz s3://bench/KEY --endpoint-url URL",
    }, {
        "what": f"serve a {what}: time to first 200 on /ping (s)",
        "modelport": "modelport serve (onnxruntime, 1 worker, sha256 of every file first)",
        "alternative": "onnxruntime InferenceSession creation (Python, BASIC, 1 thread)",
        "modelport_value": serve_s, "alternative_value": ort_s,
        "ratio": round(serve_s / ort_s, 2), "goal": "<= 1.2x", "higher_is_better": False, "rounds": rounds,
        "command": "modelport serve OUT/model --engine onnxruntime --workers 1 --threads 1  vs  "
                   "python -c 'onnxruntime.InferenceSession(\"OUT/model/model.onnx\")'",
    }]
    for step, value in [("package", median(rss["package"])), ("upload", median(rss["upload"]))]:
        rows.append({
            "what": f"peak RSS of `{step}` for a {what} (MB)", "modelport": f"modelport {step}",
            "alternative": "the model's size", "modelport_value": value, "alternative_value": size / 1e6,
            "ratio": round(value / (size / 1e6), 3), "goal": "< 300 MB", "higher_is_better": False,
            "bound_mb": 300, "rounds": rounds,
            "command": "/usr/bin/time -f %M of the commands above",
        })
    rows.append({
        "what": f"peak RSS of `serve` at ready for a {what} (MB)",
        "modelport": "modelport serve (onnxruntime, 1 worker)",
        "alternative": "onnxruntime InferenceSession alone (Python)",
        "modelport_value": serve_rss, "alternative_value": ort_rss,
        "ratio": round(serve_rss / ort_rss, 2), "goal": "< 300 MB beyond the engine's own",
        "higher_is_better": False, "beyond_mb": 300, "rounds": rounds,
        "command": "VmHWM of each process once ready",
    })
    return rows


def met(row):
    if "bound_mb" in row:
        return row["modelport_value"] < row["bound_mb"]
    if "beyond_mb" in row:
        return row["modelport_value"] - row["alternative_value"] < row["beyond_mb"]
    return serving.met(row)


def lines(rows, date):
    if not rows:
        return []
    yes_no = {True: "yes", False: "no", None: "-"}
    out = ["", "## Large models", "",
           (f"From the run of {date}. " if date else "")
           + "The model is generated by the harness: one MatMul whose random normal float32 weights",
           "are ONNX external data (`model.onnx.data`). modelport packages it as a directory (no",
           "gzip) and uploads the files under a prefix, as `deploy` does for SageMaker's",
           "uncompressed model data; the alternative is the archive people make by hand. Both go",
           "to the same moto server on 127.0.0.1. Peak RSS is each process's maximum resident set.",
           "",
           "| what | modelport | alternative | modelport | alternative | ratio | goal | met |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['what']} | {r['modelport']} | {r['alternative']} | {r['modelport_value']:.2f} "
                   f"| {r['alternative_value']:.2f} | {r['ratio']}x | {r['goal']} | {yes_no[met(r)]} |")
    out += ["", "Commands:", ""]
    for r in rows:
        out.append(f"- {r['what']}: `{r['command']}`")
    return out


if __name__ == "__main__":
    modelport, upload_bin, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
    print(json.dumps(large(modelport, upload_bin, scratch, sys.argv[4] == "1", int(sys.argv[5])), indent=1))
