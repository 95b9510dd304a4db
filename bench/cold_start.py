"""Cold start for bench/run: from process start to the first 200 on /ping, for a ~100 MB
model, `modelport serve` (on an unpacked artifact, so every file's sha256 is checked
while the engine loads) on each engine, against onnxruntime's own session creation on
the same file (Python `InferenceSession`, timed around the constructor alone, in a
fresh process each round) and against the FastAPI + uvicorn + onnxruntime server.

    python bench/cold_start.py MODELPORT ROUNDS
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import serving

ROOT = serving.ROOT


def big_model(path, n=5000):
    """X[?, n] @ W[n, n] + b: n*n f32 weights, 100 MB for n = 5000."""
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(n, dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "b"], ["Y"])],
        "big",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", n])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def first_200(cmd, port, env=None):
    """Milliseconds from the process start to the first 200 on /ping, asked every 2 ms
    (the shared helper's 50 ms steps would add up to 50 ms to a start of a few hundred)."""
    import urllib.request
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 120
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                    if r.status == 200:
                        return (time.perf_counter() - started) * 1000
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError(f"{cmd[0]} was not ready within 120 s")
    finally:
        proc.terminate()
        proc.wait(30)


def session_ms(model):
    """onnxruntime's session creation alone, in a fresh process (cold like a server's)."""
    out = subprocess.run([sys.executable, "-c", serving.ORT_SESSION, model], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"] * 1000


def phases(modelport, unpacked):
    """Where one start's time goes, from `modelport serve -vv`'s log: milliseconds since
    the load began at which each step ended."""
    import re
    port = serving.free_port()
    proc = subprocess.Popen([modelport, "serve", unpacked, "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--threads", "1", "--engine", "onnxruntime", "-vv"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        serving.wait_ready(f"http://127.0.0.1:{port}/ping", proc, timeout=120)
    finally:
        proc.terminate()
        log = proc.communicate(timeout=30)[1]
    found = {}
    for key, pattern in [("hashed", r"model files hashed in (\d+) ms"), ("read", r"model read in (\d+) ms"),
                         ("sessions", r"sessions loaded in (\d+) ms"), ("ready", r"ready in (\d+) ms")]:
        m = re.search(pattern, log)
        found[key] = int(m.group(1)) if m else None
    return found


def main():
    modelport, rounds = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "big.onnx")
        big_model(model)
        subprocess.run([modelport, "package", model, "--out", tmp], check=True, capture_output=True)
        unpacked = os.path.join(tmp, "unpacked")
        os.makedirs(unpacked)
        subprocess.run(["tar", "xzf", os.path.join(tmp, "model.tar.gz"), "-C", unpacked], check=True)
        mp, tr, se, fa = [], [], [], []
        for _ in range(rounds):
            for engine, times in (("onnxruntime", mp), ("tract", tr)):
                port = serving.free_port()
                times.append(first_200([modelport, "serve", unpacked, "--host", "127.0.0.1", "--port", str(port),
                                        "--workers", "1", "--threads", "1", "--engine", engine, "-q"], port))
            se.append(session_ms(os.path.join(unpacked, "big.onnx")))
            port = serving.free_port()
            fa.append(first_200([sys.executable, "-m", "uvicorn", "--app-dir", "bench", "fastapi_server:app",
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                 "--log-level", "warning"], port, {"MODEL": model}))
        size = os.path.getsize(model)
        steps = phases(modelport, unpacked)
    print(json.dumps({"modelport_ms": serving.median(mp), "tract_ms": serving.median(tr),
                      "session_ms": serving.median(se), "fastapi_ms": serving.median(fa), "model_bytes": size,
                      "phases_ms": steps}))


if __name__ == "__main__":
    main()
