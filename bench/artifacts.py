"""Artifact benchmarks for bench/run: `modelport package` against `tar czf` and Python's
tarfile (as the SageMaker SDK uses it) on a generated ~1 GB model, and modelport's S3
upload against `aws s3 cp` to the same moto server on 127.0.0.1."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import cold_start
import serving

ROOT = serving.ROOT
PY = sys.executable
VENV_BIN = os.path.dirname(PY)
BUCKET = "bench"
SIGNED = ("Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
          "SignedHeaders=host, Signature=0")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def timed(cmd, env=None):
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}).stdout
    return time.perf_counter() - started, out


def large_model(scratch, quick):
    """X[?, n] @ W[n, n] + b with random normal weights, so gzip finds nothing to squeeze:
    1.07 GB for n = 16384; 23 MB for n = 2400 (quick), still above the 16 MiB where the
    upload switches to multipart. Kept between runs; regenerated only when missing."""
    n = 2400 if quick else 16384
    folder = os.path.join(scratch, f"large-{n}")
    model = os.path.join(folder, "model.onnx")
    if not os.path.exists(model):
        os.makedirs(folder, exist_ok=True)
        cold_start.big_model(model + ".partial", n)
        os.replace(model + ".partial", model)
    return model


def package(modelport, scratch, quick, repeats):
    """Returns the rows and the path of a modelport artifact (for the upload row)."""
    model = large_model(scratch, quick)
    folder = os.path.dirname(model)
    out = os.path.join(scratch, "package")
    sides = {
        "modelport": lambda r: [modelport, "package", model, "--layout", "archive", "--out",
                                os.path.join(out, f"modelport-{r}"), "-q"],
        "tar": lambda r: ["tar", "czf", os.path.join(out, f"tar-{r}.tar.gz"), "-C", folder, "model.onnx"],
        "tarfile": lambda r: [PY, "bench/sagemaker_tar.py", os.path.join(out, f"tarfile-{r}.tar.gz"), model],
    }
    times = {side: [] for side in sides}
    rounds = 2 if quick else repeats  # two modelport outputs at least, for the re-run check
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for r in range(rounds):
        for side, cmd in sides.items():
            seconds, _ = timed(cmd(r))
            times[side].append(seconds)
    artifacts = [os.path.join(out, f"modelport-{r}", "model.tar.gz") for r in range(rounds)]
    digests = [sha256(a) for a in artifacts]
    identical = len(set(digests)) == 1
    sizes = {
        "model": os.path.getsize(model),
        "modelport": os.path.getsize(artifacts[0]),
        "tar": os.path.getsize(os.path.join(out, "tar-0.tar.gz")),
        "tarfile": os.path.getsize(os.path.join(out, "tarfile-0.tar.gz")),
    }
    mb = sizes["model"] / 1e6
    mp = serving.median(times["modelport"])
    rows = []
    for side, label, command in [
        ("tar", "tar czf (GNU tar + gzip -6)", "tar czf OUT.tar.gz -C DIR model.onnx"),
        ("tarfile", "Python tarfile \"w:gz\" (SageMaker SDK, gzip -9)",
         "python bench/sagemaker_tar.py OUT.tar.gz DIR/model.onnx"),
    ]:
        alt = serving.median(times[side])
        rows.append({
            "what": f"package a {mb:.0f} MB model (s)", "modelport": "modelport package",
            "alternative": label, "modelport_value": mp, "alternative_value": alt,
            "ratio": round(alt / mp, 2), "goal": ">= 2x (speed-up)", "higher_is_better": True,
            "rounds": rounds, "sizes": sizes,
            "byte_identical_rerun": identical, "rerun_sha256": digests,
            "command": f"modelport package DIR/model.onnx --layout archive --out OUT -q  vs  {command}",
        })
    return rows, (artifacts[-1], digests[-1])


def moto_env(scratch):
    return {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        # Neither side reads this machine's AWS profile.
        "AWS_CONFIG_FILE": os.path.join(scratch, "aws-config-none"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(scratch, "aws-credentials-none"),
    }


class Moto:
    """moto_server from the venv on a free 127.0.0.1 port, stopped by its PID."""

    def __init__(self):
        self.port = serving.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            if subprocess.run(["curl", "-sf", "-X", "PUT", f"{self.url}/{BUCKET}"], capture_output=True).returncode == 0:
                return
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("moto_server did not answer within 60 s")
            time.sleep(0.2)

    def delete(self, key):
        # moto keeps objects in memory: drop each copy once it is measured.
        # moto refuses an anonymous delete of some objects (403) but checks no signature.
        subprocess.run(["curl", "-sf", "-X", "DELETE", "-H", SIGNED, f"{self.url}/{BUCKET}/{key}"],
                       check=True, capture_output=True)

    def delete_prefix(self, prefix):
        listed = subprocess.run(["curl", "-sf", f"{self.url}/{BUCKET}?list-type=2&prefix={prefix}"],
                                check=True, capture_output=True, text=True).stdout
        for key in re.findall(r"<Key>([^<]*)</Key>", listed):
            self.delete(key)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def upload(upload_bin, artifact, scratch, quick, repeats):
    # The digest `modelport package` computed while it wrote the archive: `deploy` hands
    # it to the upload the same way, and never hashes the archive again.
    artifact, digest = artifact
    env = moto_env(scratch)
    moto = Moto()
    times = {"modelport": [], "aws": []}
    sent = []
    try:
        rounds = 1 if quick else repeats
        for r in range(rounds):
            key = f"modelport/{r}/model.tar.gz"
            seconds, out = timed([upload_bin, artifact, f"s3://{BUCKET}/{key}", "--endpoint-url", moto.url,
                                  "--sha256", digest], env)
            report = json.loads(out.strip().splitlines()[-1])
            times["modelport"].append(seconds)
            sent.append(report)
            if r < rounds - 1:
                moto.delete(key)
            aws_key = f"awscli/{r}/model.tar.gz"
            seconds, _ = timed([os.path.join(VENV_BIN, "aws"), "s3", "cp", artifact, f"s3://{BUCKET}/{aws_key}",
                                "--endpoint-url", moto.url, "--only-show-errors"], env)
            times["aws"].append(seconds)
            moto.delete(aws_key)
        # The same file to the same key again: the object is there with the same sha256.
        seconds, out = timed([upload_bin, artifact, f"s3://{BUCKET}/{key}", "--endpoint-url", moto.url,
                              "--sha256", digest], env)
        again = json.loads(out.strip().splitlines()[-1])
    finally:
        moto.stop()
    size = os.path.getsize(artifact)
    mp, alt = serving.median(times["modelport"]), serving.median(times["aws"])
    return [{
        "what": f"upload {size / 1e6:.0f} MB to the S3 emulator (moto) (s)",
        "modelport": "modelport's S3 upload (upload_artifact, via examples/upload)",
        "alternative": "aws s3 cp (awscli, default settings)",
        "modelport_value": mp, "alternative_value": alt,
        "ratio": round(alt / mp, 2), "goal": ">= 1.2x (speed-up)", "higher_is_better": True,
        "rounds": rounds, "bytes_sent": sent[0]["bytes_sent"], "parts": sent[0]["parts"],
        "modelport_hash_seconds": serving.median([s["hash_seconds"] for s in sent]),
        "reupload_bytes_sent": again["bytes_sent"], "reupload_seconds": seconds,
        "command": f"target/release/examples/upload model.tar.gz s3://{BUCKET}/KEY --endpoint-url http://127.0.0.1:PORT "
                   "--sha256 DIGEST  vs  "
                   f"aws s3 cp model.tar.gz s3://{BUCKET}/KEY --endpoint-url http://127.0.0.1:PORT --only-show-errors",
    }]
