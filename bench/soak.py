"""Soak `modelport serve` under saturating load and record what held.

Called by bench/soak: MODELPORT [--minutes N] [--slice S] [--out FILE]. Starts the
server on the mlp example, then runs wrk (bench/soak.lua: good and bad requests,
large batches) in back-to-back slices for the whole duration, sampling the server's
resident memory and open file descriptors between slices. Writes the figures as
JSON and prints a Markdown summary; exits 1 when a goal is missed (any 5xx or
transport error, RSS growth of 10 % or more from the first slice to the last, any
file-descriptor growth).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from serving import free_port, wait_ready

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid, wait=3.0):
    """The open fds once the connections of the slice that just ended are closed:
    sampled until the count stops falling (at most `wait` seconds)."""
    last = fds(pid)
    deadline = time.time() + wait
    while time.time() < deadline:
        time.sleep(0.2)
        now = fds(pid)
        if now >= last:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modelport")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--slice", type=int, default=30, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "soak.json"))
    args = ap.parse_args()

    port = free_port()
    model = os.path.join(ROOT, "examples", "mlp", "model.onnx")
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"modelport-soak-{port}.log"), "w")
    server = subprocess.Popen(
        [args.modelport, "serve", model, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    slices = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/ping", server)
        engine = urllib.request.urlopen(f"{base}/ping").headers.get("x-modelport-engine", "?")
        start = time.time()
        total = args.minutes * 60
        samples = [{"t_s": 0.0, "rss_kib": rss_kib(server.pid), "fds": fds(server.pid)}]
        # A last slice shorter than 5 s would say little: the run ends a few
        # seconds early instead.
        while total - (time.time() - start) >= 5:
            seconds = int(min(args.slice, total - (time.time() - start)))
            out = subprocess.run(
                [
                    "wrk",
                    f"-t{args.threads}",
                    f"-c{args.connections}",
                    f"-d{seconds}s",
                    "--timeout",
                    "30s",
                    "-s",
                    os.path.join(ROOT, "bench", "soak.lua"),
                    base,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            m = re.search(r"^SOAK (\{.*\})$", out.stdout, re.M)
            if not m:
                raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
            s = json.loads(m.group(1))
            s["t_s"] = round(time.time() - start, 1)
            s["fds"] = settled_fds(server.pid)
            s["rss_kib"] = rss_kib(server.pid)
            slices.append(s)
            samples.append({"t_s": s["t_s"], "rss_kib": s["rss_kib"], "fds": s["fds"]})
            print(
                f"  {s['t_s']:7.1f} s  {s['requests']:8d} requests  p99 {s['p99_us'] / 1000:7.1f} ms"
                f"  rss {s['rss_kib'] / 1024:6.1f} MiB  fds {s['fds']}  {s['statuses']}",
                file=sys.stderr,
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    statuses = {}
    for s in slices:
        for k, v in s["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    requests = sum(s["requests"] for s in slices)
    errors = {k: sum(s["errors"][k] for s in slices) for k in slices[0]["errors"]}
    fivexx = sum(v for k, v in statuses.items() if int(k) >= 500)
    # Growth is measured from the end of the first slice (warm: pools and caches
    # filled) to the end of the last.
    rss_first, rss_last = slices[0]["rss_kib"], slices[-1]["rss_kib"]
    fd_first, fd_last = slices[0]["fds"], slices[-1]["fds"]
    growth = (rss_last - rss_first) / rss_first
    result = {
        "command": f"bench/soak --minutes {args.minutes:g}",
        "model": "examples/mlp/model.onnx",
        "engine": engine,
        "minutes": args.minutes,
        "connections": args.connections,
        "wrk_threads": args.threads,
        "requests": requests,
        "requests_per_s": round(requests / (args.minutes * 60), 1),
        "statuses": dict(sorted(statuses.items())),
        "transport_errors": errors,
        "unexpected_5xx": fivexx,
        "rss_kib": {"start": samples[0]["rss_kib"], "after_first_slice": rss_first, "end": rss_last},
        "rss_growth": round(growth, 4),
        "fds": {"start": samples[0]["fds"], "after_first_slice": fd_first, "end": fd_last},
        "p99_ms_by_slice": [round(s["p99_us"] / 1000, 2) for s in slices],
        "p50_ms_by_slice": [round(s["p50_us"] / 1000, 2) for s in slices],
        "slices": slices,
        "goals": {
            "no_unexpected_5xx": fivexx == 0 and sum(errors.values()) == 0,
            "rss_growth_under_10_percent": growth < 0.10,
            "no_fd_growth": fd_last <= fd_first,
        },
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    p99 = result["p99_ms_by_slice"]
    print(f"| requests | {requests} ({result['requests_per_s']}/s) |")
    print(f"| statuses | {result['statuses']} |")
    print(f"| 5xx and transport errors | {fivexx}, {errors} |")
    print(f"| p99 by {args.slice} s slice | min {min(p99)} ms, max {max(p99)} ms |")
    print(f"| RSS | {samples[0]['rss_kib'] / 1024:.1f} MiB at start, {rss_first / 1024:.1f} MiB after the first slice, {rss_last / 1024:.1f} MiB at the end ({growth:+.1%}) |")
    print(f"| open fds | {samples[0]['fds']} at start, {fd_first} after the first slice, {fd_last} at the end |")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
