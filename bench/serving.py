"""Serving benchmarks for bench/run: `modelport serve` against FastAPI + uvicorn +
onnxruntime under wrk, and `modelport compare` against a hand-written loop."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
MODEL = "examples/iris/model.onnx"


# onnxruntime's own session creation on argv[1] (BASIC, 1 thread), timed around the
# constructor alone; prints {"seconds", "rss_mb"}. bench/cold_start.py and bench/large_model.py's
# baseline.
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


class Server:
    def __init__(self, cmd, port, env=None):
        self.port = port
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(f"http://127.0.0.1:{port}/ping", self.proc)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def modelport_server(modelport, max_batch_rows=64):
    port = free_port()
    return Server([modelport, "serve", MODEL, "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                   "--engine", "onnxruntime", "--max-batch-rows", str(max_batch_rows), "-q"], port)


def fastapi_server():
    port = free_port()
    return Server([PY, "-m", "uvicorn", "--app-dir", "bench", "fastapi_server:app", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "2", "--log-level", "warning"], port, {"MODEL": MODEL})


def wrk(port, seconds, script="bench/post.lua", threads=2, connections=16, path="/invocations", env=None):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script,
           f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} errors:\n{out}")
    return rps, float(p99.group(1)) * scale


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def iris_answer(modelport):
    """The bytes `modelport serve` answers to bench/post.lua's body, for the bare server."""
    import urllib.request
    body = re.search(r"wrk.body = '(.*)'", open(os.path.join(ROOT, "bench/post.lua")).read()).group(1)
    server = modelport_server(modelport)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            return r.read()
    finally:
        server.stop()


def echo_server(echo, answer_file):
    port = free_port()
    return Server([echo, str(port), answer_file, "2"], port)


def serving(modelport, quick, repeats, echo):
    import tempfile
    seconds = 3 if quick else 10
    mp_rps, mp_p99, fa_rps, fa_p99, single_rps, echo_rps = [], [], [], [], [], []
    answer = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
    answer.write(iris_answer(modelport))
    answer.close()
    for _ in range(1 if quick else repeats):
        for kind in ["modelport", "fastapi", "unmerged", "echo"]:
            server = {"modelport": lambda: modelport_server(modelport), "fastapi": fastapi_server,
                      "unmerged": lambda: modelport_server(modelport, 1),
                      "echo": lambda: echo_server(echo, answer.name)}[kind]()
            try:
                rps, p99 = wrk(server.port, seconds)
            finally:
                server.stop()
            if kind == "modelport":
                mp_rps.append(rps)
                mp_p99.append(p99)
            elif kind == "fastapi":
                fa_rps.append(rps)
                fa_p99.append(p99)
            elif kind == "echo":
                echo_rps.append(rps)
            else:
                single_rps.append(rps)
    os.unlink(answer.name)
    wrk_cmd = f"wrk -t2 -c16 -d{seconds}s --latency -s bench/post.lua http://127.0.0.1:PORT/invocations"
    rows = [
        {"what": "serve throughput, iris, batch 1 (req/s)", "modelport": "modelport serve, 2 workers",
         "alternative": "FastAPI + uvicorn (2 workers) + onnxruntime",
         "modelport_value": median(mp_rps), "alternative_value": median(fa_rps),
         "ratio": round(median(mp_rps) / median(fa_rps), 2), "goal": ">= 20x", "higher_is_better": True,
         "command": f"{wrk_cmd}  against  modelport serve {MODEL} --workers 2 --engine onnxruntime  vs  "
                    f"MODEL={MODEL} uvicorn --app-dir bench fastapi_server:app --workers 2"},
        {"what": "serve p99 latency, iris, batch 1 (ms)", "modelport": "modelport serve, 2 workers",
         "alternative": "FastAPI + uvicorn (2 workers) + onnxruntime",
         "modelport_value": median(mp_p99), "alternative_value": median(fa_p99),
         "ratio": round(median(mp_p99) / median(fa_p99), 3), "goal": "<= 0.1x", "higher_is_better": False,
         "command": "(same runs as the row above)"},
        {"what": "serve throughput, merging queued requests (req/s)", "modelport": "--max-batch-rows 64 (default)",
         "alternative": "modelport serve --max-batch-rows 1 (no merging)",
         "modelport_value": median(mp_rps), "alternative_value": median(single_rps),
         "ratio": round(median(mp_rps) / median(single_rps), 2), "goal": "(reported)", "higher_is_better": True,
         "command": f"{wrk_cmd}  against  modelport serve {MODEL} --workers 2 --max-batch-rows 64  vs  --max-batch-rows 1"},
        {"what": "serve throughput against HTTP alone, iris, batch 1 (req/s)", "modelport": "modelport serve, 2 workers",
         "alternative": "bare hyper server (2 threads) answering modelport's response bytes",
         "modelport_value": median(mp_rps), "alternative_value": median(echo_rps),
         "ratio": round(median(mp_rps) / median(echo_rps), 2), "goal": ">= 0.7x", "higher_is_better": True,
         "command": f"{wrk_cmd}  against  modelport serve {MODEL} --workers 2  vs  "
                    "target/release/examples/echo PORT ANSWER.json 2"},
    ]
    return rows


def compare(modelport, quick):
    count = 1000 if quick else 10000
    server = modelport_server(modelport)
    url = f"http://127.0.0.1:{server.port}/invocations"
    try:
        started = time.perf_counter()
        subprocess.run([modelport, "compare", url, MODEL, "--count", str(count), "--engine-b", "onnxruntime",
                        "--output", "json"], cwd=ROOT, check=True, capture_output=True)
        mp = time.perf_counter() - started
        loop = json.loads(subprocess.run([PY, "bench/compare_loop.py", url, MODEL, str(count)], cwd=ROOT,
                                         check=True, capture_output=True, text=True).stdout)
    finally:
        server.stop()
    return [{
        "what": f"compare {count} samples against a local endpoint (s)", "modelport": "modelport compare",
        "alternative": "sequential one-request-per-sample loop in Python",
        "modelport_value": mp, "alternative_value": loop["seconds"],
        "ratio": round(loop["seconds"] / mp, 1), "goal": ">= 20x (speed-up)", "higher_is_better": True,
        "command": f"modelport compare http://127.0.0.1:PORT/invocations {MODEL} --count {count} --engine-b onnxruntime  vs  "
                   f"python bench/compare_loop.py http://127.0.0.1:PORT/invocations {MODEL} {count}",
    }]


def batch_bodies(model, rows, folder):
    """Request bodies of `rows` examples for `model`'s one input, in three forms:
    {"instances"} JSON, the OIP binary data extension (asking for binary outputs) and
    .npy; returns {form: (path, content type, JSON length or "")}."""
    import numpy as np
    import onnx
    graph = onnx.load(os.path.join(ROOT, model), load_external_data=False).graph
    (inp,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    shape = [rows] + [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    os.makedirs(folder, exist_ok=True)
    bodies = {}
    path = os.path.join(folder, "instances.json")
    with open(path, "w") as f:
        json.dump({"instances": x.tolist()}, f)
    bodies["json"] = (path, "application/json", "")
    head = json.dumps({"inputs": [{"name": inp.name, "shape": shape, "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    path = os.path.join(folder, "oip.bin")
    with open(path, "wb") as f:
        f.write(head + x.astype("<f4").tobytes())
    bodies["oip-binary"] = (path, "application/octet-stream", str(len(head)))
    return bodies


def overhead(modelport, latency_bin, quick):
    """Rows per second through one worker over HTTP, 64 rows per request, against the
    same engine and thread count running in-process: iris, mlp and cnn with JSON bodies
    against the fastest JSON decode measured by examples/latency plus the inference, and
    mlp and cnn with binary ones (the OIP binary tensor data extension) against the
    inference alone."""
    import tempfile
    seconds = 3 if quick else 10
    iters = 300 if quick else 2000
    rows = []
    cases = [("iris", MODEL, ["json"]), ("mlp", "examples/mlp/model.onnx", ["json", "oip-binary"]),
             ("cnn", "examples/cnn/model.onnx", ["json", "oip-binary"])]
    with tempfile.TemporaryDirectory() as folder:
        for name, model, forms in cases:
            bodies = batch_bodies(model, 64, os.path.join(folder, name))
            served = {form: [] for form in forms}
            local = {form: [] for form in forms}
            decoders = []
            for _ in range(1 if quick else 3):
                port = free_port()
                server = Server([modelport, "serve", model, "--host", "127.0.0.1", "--port", str(port), "--workers",
                                 "1", "--threads", "1", "--engine", "onnxruntime", "--max-batch-rows", "64", "-q"], port)
                try:
                    for form in forms:
                        body, kind, json_len = bodies[form]
                        path = "/v2/models/model/infer" if form == "oip-binary" else "/invocations"
                        rps, _ = wrk(port, seconds, "bench/post_file.lua", threads=1, connections=2, path=path,
                                     env={"WRK_BODY": body, "WRK_CONTENT_TYPE": kind, "WRK_JSON_LENGTH": json_len})
                        served[form].append(rps * 64)
                finally:
                    server.stop()
                for form in forms:
                    extra = [bodies["json"][0]] if form == "json" else []
                    out = subprocess.run([latency_bin, model, "onnxruntime", "64", str(iters), "1", *extra], cwd=ROOT,
                                         check=True, capture_output=True, text=True).stdout
                    line = json.loads(out.strip().splitlines()[-1])
                    local[form].append(64 / line["median_us"] * 1e6)
                    if form == "json":
                        decoders.append(line)
            for form in forms:
                binary = form == "oip-binary"
                body = ("OIP binary tensor data, in and out" if binary else "JSON {\"instances\"}")
                if binary:
                    alternative = "in-process inference (same engine, 1 thread)"
                else:
                    d = decoders[len(decoders) // 2]
                    alternative = (f"in-process JSON decode of the same body by the fastest reader measured "
                                   f"({d['decoder']}; serde_json visitor into Vec<f32> "
                                   f"{d['serde_json_decode_us']:.0f} µs, modelport's reader "
                                   f"{d['modelport_decode_us']:.0f} µs) + inference (same engine, 1 thread)")
                rows.append({
                    "what": f"serving overhead, {name}, batch 64, {'binary' if binary else 'JSON'} bodies (rows/s)",
                    "modelport": f"modelport serve, 1 worker, 64 rows per request, {body}",
                    "alternative": alternative,
                    "modelport_value": median(served[form]), "alternative_value": median(local[form]),
                    "ratio": round(median(served[form]) / median(local[form]), 2),
                    "goal": "(reported)" if name == "iris" else ">= 0.8x", "higher_is_better": True,
                    "command": f"wrk -t1 -c2 -d{seconds}s -s bench/post_file.lua (WRK_BODY = 64 rows as {body}) "
                               f"http://127.0.0.1:PORT/...  against  "
                               f"modelport serve {model} --workers 1 --threads 1 --max-batch-rows 64  vs  "
                               f"target/release/examples/latency {model} onnxruntime 64 {iters} 1"
                               + (" BODY.json" if not binary else ""),
                })
    return rows


def cold_start(modelport, quick):
    out = json.loads(subprocess.run([PY, "bench/cold_start.py", modelport, "1" if quick else "5"], cwd=ROOT,
                                    check=True, capture_output=True, text=True).stdout)
    mb = out["model_bytes"] / 1e6
    what = f"cold start to the first 200 on /ping, {mb:.0f} MB model (ms)"
    command = "python bench/cold_start.py target/release/modelport 5"
    session = "onnxruntime InferenceSession creation alone (Python, BASIC, 1 thread)"
    serve = "modelport serve --engine {} (every file's sha256 checked while it loads)"
    row = lambda modelport_name, value, alternative, alt_value, goal, absolute=False: {
        "what": what, "modelport": modelport_name, "alternative": alternative,
        "modelport_value": value, "alternative_value": alt_value,
        "ratio": round(value / alt_value, 2), "goal": goal, "absolute": absolute,
        "higher_is_better": False, "command": command, "phases_ms": out["phases_ms"],
    }
    return [
        row(serve.format("onnxruntime"), out["modelport_ms"], session, out["session_ms"], "<= 1.15x"),
        row(serve.format("tract"), out["tract_ms"], session, out["session_ms"], "< 300 ms", absolute=True),
        row(serve.format("onnxruntime"), out["modelport_ms"], "FastAPI + uvicorn + onnxruntime",
            out["fastapi_ms"], "(reported)"),
    ]


def met(row):
    if row.get("absolute"):
        return row["modelport_value"] < float(re.search(r"[\d.]+", row["goal"]).group(0))
    number = re.search(r"[\d.]+", row["goal"])
    if not number:
        return None
    goal = float(number.group(0))
    return row["ratio"] >= goal if row["higher_is_better"] else row["ratio"] <= goal
