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
import re
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


def measured(cmd, env=None, cwd=ROOT):
    """Seconds and peak RSS (MB) of a whole process, as GNU time reports it. (A child's
    rusage from Python counts the Python image it was forked from.)"""
    with tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        out = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name, *cmd], cwd=cwd, check=True,
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


def model_size(folder):
    """The generated model's bytes, and `3.0 GB model with external data`."""
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in ("model.onnx", "model.onnx.data"))
    gb = size / 1e9
    size_text = f"{gb:.1f} GB" if gb >= 1 else f"{size / 1e6:.0f} MB"
    return size, f"{size_text} model with external data"


def large(modelport, upload_bin, scratch, quick, repeats):
    folder = external_model(scratch, quick)
    size, what = model_size(folder)
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
        _, _, text = measured([PY, "-c", serving.ORT_SESSION, os.path.join(model_dir, "model.onnx")])
        sessions.append(json.loads(text.strip().splitlines()[-1]))
    shutil.rmtree(out, ignore_errors=True)
    median = serving.median
    mp, alt = median(times["modelport"]), median(times["alternative"])
    serve_s, serve_rss = median([r[0] for r in ready]), median([r[1] for r in ready])
    ort_s, ort_rss = median([s["seconds"] for s in sessions]), median([s["rss_mb"] for s in sessions])
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
        "modelport": "modelport serve (onnxruntime, 1 worker, sha256 of every file while the engine loads)",
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


FLOW_SPEC = """name: large
model:
  path: {model}
  layout: {layout}
provider:
  aws:
    region: us-east-1
    bucket: modelport-dev
    prefix: large
    role_arn: arn:aws:iam::123456789012:role/SageMakerExecution
    image_uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0
    deploy_timeout_s: 3600
compute:
  instance_type: ml.m5.4xlarge
serving:
  env:
    # One session of 3 GB per server; the deploy's reference session is another.
    MODELPORT_WORKERS: "1"
verify:
  count: 8
"""


class FakeCloud:
    """`fakecloud` (moto and the strict SageMaker fake, endpoints served by `server`),
    stopped by its PID; `env` is what it prints to export."""

    def __init__(self, fakecloud, server, scratch):
        self.log = open(os.path.join(scratch, "fakecloud.log"), "w")
        self.proc = subprocess.Popen([fakecloud, "--server", server], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.env, self.moto = {}, None
        for line in self.proc.stdout:
            if line.startswith("export "):
                key, value = line[len("export "):].strip().split("=", 1)
                self.env[key] = value
            elif line.startswith("# moto itself: "):
                self.moto = line.split(": ", 1)[1].split(";")[0].strip()
                break
        if "MODELPORT_AWS_ENDPOINT_URL" not in self.env or not self.moto:
            self.stop()
            raise RuntimeError("fakecloud did not print its environment (see fakecloud.log)")

    def keys(self, prefix):
        listed = subprocess.run(["curl", "-sf", f"{self.moto}/modelport-dev?list-type=2&prefix={prefix}"],
                                check=True, capture_output=True, text=True).stdout
        return re.findall(r"<Key>([^<]*)</Key>", listed)

    def endpoints(self, env):
        out = subprocess.run([os.path.join(artifacts.VENV_BIN, "aws"), "sagemaker", "list-endpoints",
                              "--endpoint-url", self.env["MODELPORT_AWS_ENDPOINT_URL"], "--output", "json"],
                             check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout
        return [e["EndpointName"] for e in json.loads(out)["Endpoints"]]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def flows(modelport, fakecloud, scratch, quick):
    """The generated model through `deploy` (which compares the endpoint with the
    packaged model), `compare` and `destroy --purge` on the local provider and on AWS
    (fakecloud: moto and the SageMaker fake, whose endpoint runs the same `modelport
    serve`), in both layouts; the deploy's time and peak RSS, and what was left."""
    folder = external_model(scratch, quick)
    _, what = model_size(folder)
    project = os.path.join(scratch, "large-flows")
    shutil.rmtree(project, ignore_errors=True)
    os.makedirs(project)
    spec = os.path.join(project, "modelport.yaml")
    cloud = FakeCloud(fakecloud, modelport, scratch)
    env = {**artifacts.moto_env(scratch), **cloud.env}
    rows = []
    try:
        for provider in ("local", "aws"):
            for layout in ("archive", "dir"):
                with open(spec, "w") as f:
                    f.write(FLOW_SPEC.format(model=os.path.join(folder, "model.onnx"), layout=layout))
                seconds, rss, out = measured([modelport, "deploy", "--provider", provider, "-f", spec,
                                              "--yes", "--output", "json"], env, cwd=project)
                passed = json.loads(out)["passed"]
                subprocess.run([modelport, "compare", "large", "--count", "8"], cwd=project, check=True,
                               capture_output=True, env={**os.environ, **env})
                subprocess.run([modelport, "destroy", "large", "--purge"], cwd=project, check=True,
                               capture_output=True, env={**os.environ, **env})
                # The lock file stays: another process may hold it.
                state = os.path.join(project, ".modelport", "state")
                left = [f for f in (os.listdir(state) if os.path.isdir(state) else []) if f.endswith(".json")]
                if provider == "aws":
                    left += cloud.keys("large/") + cloud.endpoints(env)
                rows.append({"provider": provider, "layout": layout, "what": what, "deploy_s": seconds,
                             "deploy_rss_mb": rss, "passed": passed, "left": left,
                             "command": f"modelport deploy --provider {provider} -f modelport.yaml --yes "
                                        f"(model.layout: {layout}); modelport compare large; "
                                        "modelport destroy large --purge"})
    finally:
        cloud.stop()
        shutil.rmtree(project, ignore_errors=True)
    return rows


def flow_lines(rows):
    if not rows:
        return []
    out = ["", f"Whole flows of the same {rows[0]['what']}: `deploy` (which compares the endpoint with the "
           "packaged model before it takes traffic), `compare` and `destroy --purge`, on the local provider "
           "and on AWS against `fakecloud` (moto and the SageMaker fake; the endpoint runs the same "
           "`modelport serve`). Peak RSS is the `deploy` process's (it holds the local reference session; "
           "the server is another process). \"left\" counts state records, S3 objects and endpoints after "
           "`destroy`.",
           "",
           "| provider | layout | deploy (s) | deploy peak RSS (MB) | comparison passed | left after destroy |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['provider']} | {r['layout']} | {r['deploy_s']:.1f} | {r['deploy_rss_mb']:.0f} "
                   f"| {'yes' if r['passed'] else 'no'} | {len(r['left'])} |")
    out += ["", "Commands:", ""]
    for r in rows:
        out.append(f"- {r['provider']}, {r['layout']}: `{r['command']}`")
    return out


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
