"""Serving-image benchmarks for bench/run: `modelport image build` against `tar czf` of the
same files (the least a Docker build's layer export does), and `modelport image push` against
`skopeo copy` of the same layout, both to one Debian docker-registry on 127.0.0.1 (a fresh
repository each round, so that both send every blob); then the re-push of an unchanged
image, which must send 0 blob bytes."""

import json
import os
import shutil
import socket
import subprocess
import time

import serving

ROOT = serving.ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, cwd=ROOT, env=None):
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}).stdout
    return time.perf_counter() - started, out


class Registry:
    """Debian's docker-registry on a free 127.0.0.1 port, stopped by its PID."""

    def __init__(self, scratch):
        self.dir = os.path.join(scratch, "registry")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = free_port()
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
                    f"{self.dir}/data\nhttp:\n  addr: 127.0.0.1:{self.port}\n")
        self.log = open(os.path.join(self.dir, "registry.log"), "w")
        exe = shutil.which("docker-registry")
        if not exe:
            raise SystemExit("bench/run: docker-registry is missing (apt-get install docker-registry)")
        self.proc = subprocess.Popen([exe, "serve", config], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"bench/run: docker-registry did not start; see {self.log.name}")
                time.sleep(0.05)

    def host(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def image(modelport, scratch, quick, repeats):
    out = os.path.join(scratch, "image")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    rounds = 2 if quick else repeats
    times = {"build": [], "tar": [], "push": [], "skopeo": []}
    built = None
    digests = []
    first = None  # the registry of modelport's first push, kept for the re-push
    try:
        for r in range(rounds):
            layout = os.path.join(out, f"layout-{r}")
            seconds, text = timed([modelport, "image", "build", "--out", layout, "--output", "json"])
            times["build"].append(seconds)
            built = json.loads(text)
            digests.append(built["manifest"]["digest"])
            # The same files, by the same paths, in one tar.gz.
            root = os.path.join(out, "root")
            shutil.rmtree(root, ignore_errors=True)
            for path in built["files"]:
                src = host_path(path, built)
                dst = os.path.join(root, path.lstrip("/"))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
            seconds, _ = timed(["tar", "czf", os.path.join(out, f"tar-{r}.tar.gz"), "-C", root, "."])
            times["tar"].append(seconds)
            # Each push goes to a registry of its own that has none of the blobs: a
            # registry that holds a blob in any repository lets skopeo mount it
            # instead of sending it.
            registry = Registry(os.path.join(out, f"registry-mp-{r}"))
            seconds, _ = timed([modelport, "image", "push", f"{registry.host()}/modelport:bench",
                                "--layout", layout, "--output", "json"])
            times["push"].append(seconds)
            if first is None:
                first = registry
            else:
                registry.stop()
            registry = Registry(os.path.join(out, f"registry-skopeo-{r}"))
            # A fresh HOME too, so that skopeo's blob-info cache knows nothing.
            home = os.path.join(out, f"skopeo-home-{r}")
            os.makedirs(home)
            try:
                seconds, _ = timed(["skopeo", "copy", "--dest-tls-verify=false", "--quiet",
                                    f"oci:{layout}", f"docker://{registry.host()}/modelport:bench"],
                                   env={"HOME": home, "XDG_DATA_HOME": os.path.join(home, "share")})
            finally:
                registry.stop()
            times["skopeo"].append(seconds)
        started = time.perf_counter()
        _, text = timed([modelport, "image", "push", f"{first.host()}/modelport:bench",
                         "--layout", os.path.join(out, "layout-0"), "--output", "json"])
        repush_seconds = time.perf_counter() - started
        repush = json.loads(text)
    finally:
        if first is not None:
            first.stop()
    build, tar = serving.median(times["build"]), serving.median(times["tar"])
    push, skopeo = serving.median(times["push"]), serving.median(times["skopeo"])
    facts = {
        "layer_bytes": built["layer"]["size"], "uncompressed_bytes": built["uncompressed_bytes"],
        "files": len(built["files"]), "onnxruntime_version": built.get("onnxruntime_version"),
        "same_digest_every_build": len(set(digests)) == 1, "digests": digests,
        "repush_bytes_sent": repush["bytes_sent"], "repush_blobs_skipped": repush["blobs_skipped"],
        "repush_seconds": repush_seconds,
    }
    mb = built["layer"]["size"] / 1e6
    return [
        {"what": f"image build, {mb:.0f} MB layer (s)", "modelport": "modelport image build",
         "alternative": "tar czf of the same files (GNU tar + gzip -6)", "modelport_value": build,
         "alternative_value": tar, "ratio": round(tar / build, 2), "goal": "(reported)",
         "higher_is_better": True, "rounds": rounds, "image": facts,
         "command": "modelport image build --out OUT  vs  tar czf OUT.tar.gz -C ROOT ."},
        {"what": f"image push to a local registry, {mb:.0f} MB (s)", "modelport": "modelport image push",
         "alternative": "skopeo copy oci:LAYOUT docker://REGISTRY/REPO", "modelport_value": push,
         "alternative_value": skopeo, "ratio": round(skopeo / push, 2), "goal": ">= 1.0x (speed-up)",
         "higher_is_better": True, "rounds": rounds, "image": facts,
         "command": "modelport image push 127.0.0.1:PORT/modelport:bench --layout OUT  vs  "
                    "HOME=EMPTY skopeo copy --dest-tls-verify=false oci:OUT docker://127.0.0.1:PORT2/modelport:bench"},
    ]


def host_path(path, built):
    """Where a file of the image comes from on this machine (for the tar czf side)."""
    return built["sources"][path]


def lines(rows, date):
    if not rows:
        return []
    yes_no = {True: "yes", False: "no", None: "-"}
    facts = rows[0]["image"]
    out = [
        "",
        "## Serving image",
        "",
        (f"From the run of {date}. " if date else "")
        + "`modelport image build` writes the OCI layout of the running modelport (onnxruntime,",
        "the shared libraries both need, CA certificates) without Docker; the alternative tars the",
        "same files with GNU tar + gzip. The push rows send that layout to one Debian",
        "docker-registry on 127.0.0.1, a fresh one for each push (one that holds the blobs in any",
        "repository lets skopeo mount them instead of sending them; skopeo's blob-info cache is",
        "empty too); the ratio is alternative",
        "time / modelport time (above 1.0: modelport is faster).",
        "",
        "| what | modelport | alternative | modelport | alternative | ratio | goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['what']} | {r['modelport']} | {r['alternative']} | {r['modelport_value']:.2f} "
            f"| {r['alternative_value']:.2f} | {r['ratio']}x | {r['goal']} | {yes_no[serving.met(r)]} |"
        )
    out += [
        "",
        f"- The image: {facts['files']} files, {facts['uncompressed_bytes'] / 1e6:.1f} MB, one layer of "
        f"{facts['layer_bytes'] / 1e6:.1f} MB gzip (onnxruntime {facts['onnxruntime_version'] or '(none: tract)'}); "
        f"the same manifest digest on every build: {yes_no[facts['same_digest_every_build']]} "
        f"({facts['digests'][0][:19]}…).",
        f"- Re-push of the unchanged image: {facts['repush_bytes_sent']} blob bytes sent, "
        f"{facts['repush_blobs_skipped']} blobs already there, {facts['repush_seconds']:.2f} s "
        f"({'goal of 0 bytes met' if facts['repush_bytes_sent'] == 0 else 'goal of 0 bytes NOT met'}).",
        "",
        "Commands:",
        "",
    ]
    for r in rows:
        out.append(f"- {r['what']}: `{r['command']}`")
    return out
