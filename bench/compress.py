"""Compression benchmarks for bench/run: `modelport compress` (fp16, int8 weight-only and
int8-dynamic, per tensor and per channel) against onnxruntime's quantize_dynamic and
quantize_static and onnxconverter-common's float16 converter, on the same models in the same
run. Every file is measured the same way, by Python onnxruntime: size, accuracy on the
example's eval.json, argmax agreement with the float32 model, latency; modelport's rows also
carry the gate's verdict, checked against the accuracy measured here.

    python bench/compress.py TOOL MODEL OUT [EVAL]    makes one Python tool's file (the
                                                      harness runs each in a process of its own)
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
THREADS = 1
# The goal, for the gate and for the check here: at most one point of accuracy lost and at
# least 99 % of the rows with the float32 model's argmax.
GATE_GOALS = ["agreement=1%", "accuracy=0.01"]
LOOSE_GOAL = ["agreement=100%"]
MAX_DROP = 0.01
MIN_AGREEMENT = 0.99

# (key, setting, modelport's arguments, the pair it is compared in); then the Python tools'
# (key = the tool's name in tool_main, setting, pair).
MODELPORT = [
    ("mp-int8", "int8 per tensor (weight-only)", ["--to", "int8"], None),
    ("mp-int8-pc", "int8 per channel (weight-only)", ["--to", "int8", "--per-channel"], "int8 per channel"),
    ("mp-dyn", "int8-dynamic per tensor", ["--to", "int8-dynamic"], "int8-dynamic per tensor"),
    ("mp-dyn-pc", "int8-dynamic per channel", ["--to", "int8-dynamic", "--per-channel"], "int8-dynamic per channel"),
    ("mp-fp16", "fp16", ["--to", "fp16"], "fp16"),
]
PYTHON = [
    ("quantize_static", "quantize_static QDQ, QInt8 weights, QUInt8 activations, per_channel=True",
     "int8 per channel"),
    ("quantize_dynamic", "quantize_dynamic QInt8, per_channel=False", "int8-dynamic per tensor"),
    ("quantize_dynamic_per_channel", "quantize_dynamic QInt8, per_channel=True", "int8-dynamic per channel"),
    ("float16", "convert_float_to_float16(keep_io_types=True)", "fp16"),
]
# Only when onnxruntime refuses the plain float16 call's model.
FLOAT16_BLOCK_CAST = ("float16_block_cast",
                      "convert_float_to_float16(keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + [\"Cast\"])",
                      "fp16")
QUICK_KEYS = {"mp-int8-pc", "mp-fp16", "quantize_static", "float16", "float16_block_cast"}
PAIRS = ["int8-dynamic per tensor", "int8-dynamic per channel", "int8 per channel", "fp16"]
ORDER = ["mp-int8", "mp-int8-pc", "quantize_static", "mp-dyn", "quantize_dynamic", "mp-dyn-pc",
         "quantize_dynamic_per_channel", "mp-fp16", "float16", "float16_block_cast"]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def model_bytes(path):
    """The model file and every external data file it names."""
    import onnx

    total = os.path.getsize(path)
    model = onnx.load(path, load_external_data=False)
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    files = set()
    for t in tensors:
        for entry in t.external_data:
            if entry.key == "location":
                files.add(os.path.join(os.path.dirname(path), entry.value))
    return total + sum(os.path.getsize(f) for f in files)


def session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def read_eval(path, sess):
    import numpy as np

    with open(path) as f:
        data = json.load(f)
    inp = sess.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}[inp.type]
    return {inp.name: np.asarray(data["instances"], dtype=dtype)}, np.asarray(data["labels"])


def first_line(text, path=None):
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    line = lines[0] if lines else "(no message)"
    # onnxruntime names the file by its absolute path: the file's name is enough.
    return line.replace(path, os.path.basename(path)) if path else line


def ort_dylib():
    if os.environ.get("ORT_DYLIB_PATH"):
        return os.environ["ORT_DYLIB_PATH"]
    import onnxruntime

    found = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")))
    return os.path.realpath(found[-1]) if found else ""


def run_modelport(modelport, src, eval_path, args, out):
    """Runs the gate with the goal; when it is missed, once more with a loose goal so that
    the file exists to be measured. Returns the row's modelport fields."""
    env = {**os.environ, "ORT_DYLIB_PATH": ort_dylib()}
    base = [modelport, "compress", src, *args, "--eval", eval_path, "--engine", "onnxruntime",
            "--no-measure", "--output", "json", "--out", out]
    started = time.perf_counter()
    p = subprocess.run(base + [x for g in GATE_GOALS for x in ("--max-degradation", g)],
                       cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    fields = {"exit": p.returncode, "seconds": round(seconds, 3)}
    if p.returncode not in (0, 3):
        fields["error"] = f"modelport exited {p.returncode}: {first_line(p.stderr or p.stdout)}"
        return fields
    try:
        report = json.loads(p.stdout)
        gate = report["gate"]
    except (ValueError, KeyError) as e:
        fields["error"] = f"modelport exited {p.returncode} without a JSON report with a gate: {first_line(e)}"
        return fields
    fields["gate"] = {
        "passed": gate["passed"], "samples": gate.get("samples"), "accuracy": gate.get("accuracy"),
        "agreement": [o.get("agreement") for o in gate.get("outputs", [])],
        "goals": gate.get("goals", []), "written": report.get("written", []), "file": report.get("file"),
    }
    fields["written_by_gate"] = os.path.exists(out)
    if p.returncode == 0 and not os.path.exists(out):
        fields["error"] = "the gate passed but wrote no file"
    if p.returncode == 3:
        if os.path.exists(out):
            fields["error"] = "the gate missed its goal but wrote the file"
            return fields
        loose = subprocess.run(base + [x for g in LOOSE_GOAL for x in ("--max-degradation", g)],
                               cwd=ROOT, capture_output=True, text=True, env=env)
        fields["loose_exit"] = loose.returncode
        if loose.returncode != 0 or not os.path.exists(out):
            fields["error"] = (f"missed the goal; the rerun with {LOOSE_GOAL[0]} exited {loose.returncode}: "
                               f"{first_line(loose.stderr or loose.stdout)}")
    return fields


def run_python_tool(tool, src, out, eval_path):
    started = time.perf_counter()
    p = subprocess.run([PY, os.path.join(ROOT, "bench", "compress.py"), tool, src, out, eval_path],
                       cwd=ROOT, capture_output=True, text=True)
    fields = {"exit": p.returncode, "seconds": round(time.perf_counter() - started, 3)}
    if p.returncode != 0 or not os.path.exists(out):
        last = [line for line in (p.stderr or p.stdout).splitlines() if line.strip()][-1:] or ["(no message)"]
        fields["error"] = f"{tool} failed: {last[0].strip()}"
    return fields


def versions():
    import onnxconverter_common
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnxconverter-common": onnxconverter_common.__version__}


def compress(modelport, scratch, quick, repeats):
    out_dir = os.path.join(scratch, "compress")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    rounds = 1 if quick else repeats
    iters = 3 if quick else 10
    names = ["digits-cnn"] if quick else ["digits-cnn", "text-classifier"]
    v = versions()
    rows = []
    for name in names:
        src = os.path.join("examples", name, "model.onnx")
        eval_path = os.path.join("examples", name, "eval.json")
        reference = session(os.path.join(ROOT, src))
        feeds, labels = read_eval(os.path.join(ROOT, eval_path), reference)
        n = len(labels)
        ref_pred = reference.run(None, feeds)[0].argmax(axis=1)
        ref_correct = int((ref_pred == labels).sum())
        candidates = [{"model": name, "key": "float32", "tool": "(original)", "setting": "float32",
                       "pair": None, "path": os.path.join(ROOT, src),
                       "command": f"examples/{name}/model.onnx"}]
        for key, setting, args, pair in MODELPORT:
            if quick and key not in QUICK_KEYS:
                continue
            out = os.path.join(out_dir, f"{name}.{key}.onnx")
            row = {"model": name, "key": key, "tool": "modelport", "setting": setting, "pair": pair, "path": out,
                   "command": " ".join(["modelport compress", src, *args, "--eval", eval_path,
                                        "--engine onnxruntime --no-measure --output json",
                                        *[f"--max-degradation {g}" for g in GATE_GOALS], "--out OUT"])}
            row.update(run_modelport(modelport, src, eval_path, args, out))
            candidates.append(row)
        for key, setting, pair in PYTHON:
            if quick and key not in QUICK_KEYS:
                continue
            out = os.path.join(out_dir, f"{name}.{key}.onnx")
            tool = ("onnxconverter-common " + v["onnxconverter-common"] if key.startswith("float16")
                    else "onnxruntime.quantization " + v["onnxruntime"])
            row = {"model": name, "key": key, "tool": tool, "setting": setting, "pair": pair, "path": out,
                   "command": f"python bench/compress.py {key} {src} OUT {eval_path}"}
            row.update(run_python_tool(key, src, out, eval_path))
            candidates.append(row)
            if key == "float16" and "error" not in row:
                try:
                    session(out)
                except Exception as e:  # onnxruntime refuses the model: measure the blocked variant too
                    row["error"] = f"onnxruntime refuses the model: {first_line(e, out)}"
                    key, setting, pair = FLOAT16_BLOCK_CAST
                    out = os.path.join(out_dir, f"{name}.{key}.onnx")
                    extra = {"model": name, "key": key, "tool": tool, "setting": setting, "pair": pair,
                             "path": out, "command": f"python bench/compress.py {key} {src} OUT {eval_path}"}
                    extra.update(run_python_tool(key, src, out, eval_path))
                    candidates.append(extra)
        # Accuracy and agreement, then the latency of every file that runs, interleaved.
        sessions = {}
        for c in candidates:
            if os.path.exists(c["path"]):
                c["bytes"] = model_bytes(c["path"])
            if "error" in c:
                continue
            try:
                sess = session(c["path"])
                pred = sess.run(None, feeds)[0].argmax(axis=1)
            except Exception as e:
                c["error"] = f"onnxruntime refuses the model: {first_line(e, c['path'])}"
                continue
            sessions[c["key"]] = sess
            correct = int((pred == labels).sum())
            agree = int((pred == ref_pred).sum())
            c.update({"rows": n, "correct": correct, "agree": agree, "accuracy": correct / n,
                      "agreement": agree / n, "drop": (ref_correct - correct) / n,
                      # Integers, so that 1 point of 250 rows is not lost to rounding.
                      "over_goal": (ref_correct - correct) * 100 > n * round(MAX_DROP * 100)
                      or agree * 100 < n * round(MIN_AGREEMENT * 100)})
        times = {k: [] for k in sessions}
        keys = list(sessions)
        for r in range(rounds):
            for k in keys[r % len(keys):] + keys[:r % len(keys)]:
                sess = sessions[k]
                for _ in range(2):
                    sess.run(None, feeds)
                ts = []
                for _ in range(iters):
                    t = time.perf_counter()
                    sess.run(None, feeds)
                    ts.append((time.perf_counter() - t) * 1e3)
                times[k].append(median(ts))
        for c in candidates:
            if c["key"] in times:
                c["latency_ms"] = round(median(times[c["key"]]), 3)
                c["latency_rounds_ms"] = [round(t, 3) for t in times[c["key"]]]
            c["path"] = os.path.relpath(c["path"], ROOT)
            c["rounds"], c["iters"] = rounds, iters
        order = ["float32"] + ORDER
        candidates.sort(key=lambda c: order.index(c["key"]))
        rows += candidates
    return rows


def gate_cell(r):
    if r["tool"] != "modelport":
        return "-"
    if r.get("exit") == 0:
        return "pass"
    if r.get("exit") == 3:
        return "FAIL"
    return "error"


def pair_lines(rows):
    """One line per model and comparable pair: is modelport's file no larger and no less accurate?"""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for pair in PAIRS:
            mp = [r for r in rows if r["model"] == model and r["pair"] == pair and r["tool"] == "modelport"]
            py = [r for r in rows if r["model"] == model and r["pair"] == pair and r["tool"] != "modelport"]
            if not mp or not py:
                continue
            mp = mp[0]
            usable = [r for r in py if "correct" in r]
            kind = " (different methods: weight-only int8 with float32 arithmetic vs static QDQ with calibrated activations)" \
                if pair == "int8 per channel" else ""
            if "correct" not in mp:
                out.append(f"- {model}, {pair}: modelport {mp['setting']} vs {py[0]['setting']}{kind}: "
                           f"modelport produced nothing to measure ({mp.get('error')}) — met: no")
                continue
            if not usable:
                out.append(f"- {model}, {pair}: modelport {mp['setting']} vs {py[0]['setting']}{kind}: "
                           f"{mp['bytes']:,} bytes, {mp['accuracy'] * 100:.1f} %; the Python tool's model does not run "
                           f"({py[0].get('error')}) — met: yes")
                continue
            alt = usable[0]
            note = ""
            if alt is not py[0]:
                note = (" (onnxruntime refuses the plain call's model, see the table; compared with "
                        + ("the op_block_list + Cast row)" if alt["key"] == "float16_block_cast" else "the next row)"))
            smaller = mp["bytes"] <= alt["bytes"]
            accurate = mp["correct"] >= alt["correct"]
            out.append(
                f"- {model}, {pair}: modelport {mp['setting']} vs {alt['setting']}{kind}{note}: "
                f"{mp['bytes']:,} vs {alt['bytes']:,} bytes, accuracy {mp['accuracy'] * 100:.1f} % vs "
                f"{alt['accuracy'] * 100:.1f} %; no larger: {'yes' if smaller else 'NO'}, no less accurate: "
                f"{'yes' if accurate else 'NO'} — met: {'yes' if smaller and accurate else 'no'}")
    return out


def lines(rows, date):
    if not rows:
        return []
    first = rows[0]
    out = [
        "",
        "## Compression",
        "",
        (f"From the run of {date}. " if date else "")
        + "`modelport compress` against the Python tools people use instead, on the same models",
        "(examples/digits-cnn, examples/text-classifier) in the same run. Every file, whoever made it,",
        "is measured the same way, by Python onnxruntime (1 intra-op thread, graph optimization level",
        "BASIC): size (the model file and any external data), accuracy on the example's eval.json",
        f"({first.get('rows', 250)} labelled rows), argmax agreement with the float32 model, the drop in",
        "accuracy points, and latency: the median over rounds (each the median of "
        f"{first['iters']} runs of the whole",
        f"eval batch; {first['rounds']} rounds, the files of one model interleaved). The compressed files do not depend",
        "on modelport's build profile (a debug build writes the same bytes), and every latency is",
        "onnxruntime's Python session, not modelport's.",
        "",
        "The goal: at most 1 point of accuracy lost and at least 99 % agreement. modelport runs its",
        f"gate with it (`--engine onnxruntime {' '.join('--max-degradation ' + g for g in GATE_GOALS)}`); a missed",
        "goal (exit 3, nothing written) is rerun with `--max-degradation agreement=100%` so that the",
        "file can be measured. \"gate\" is modelport's verdict; \"drop > goal\" is computed here from",
        "the measured accuracy and agreement, independently of the gate.",
        "",
        "| model | tool | setting | bytes | vs float32 | accuracy | agreement | drop (points) | latency ms | gate | drop > goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {r["model"]: r for r in rows if r["key"] == "float32"}
    for r in rows:
        size = f"{r['bytes']:,}" if "bytes" in r else "-"
        ratio = f"{base[r['model']]['bytes'] / r['bytes']:.2f}x smaller" if "bytes" in r and r["key"] != "float32" else "-"
        if "correct" in r:
            measured = (f"{r['accuracy'] * 100:.1f} % | {r['agreement'] * 100:.1f} % | {r['drop'] * 100:.1f} "
                        f"| {r['latency_ms']:.2f} | {gate_cell(r)} | {'yes' if r['over_goal'] else 'no'}"
                        if r["key"] != "float32" else
                        f"{r['accuracy'] * 100:.1f} % | - | - | {r['latency_ms']:.2f} | - | -")
        else:
            measured = f"{r.get('error', 'not measured')} | | | | {gate_cell(r)} | -"
        out.append(f"| {r['model']} | {r['tool']} | {r['setting']} | {size} | {ratio} | {measured} |")
    mp = [r for r in rows if r["tool"] == "modelport" and "correct" in r and r.get("exit") in (0, 3)]
    over = [r for r in mp if r["over_goal"]]
    within = [r for r in mp if not r["over_goal"]]
    missed = [r for r in over if r["exit"] != 3]
    false_alarms = [r for r in within if r["exit"] == 3]

    def names(rs):
        return ", ".join(f"{r['model']} {r['setting']}" for r in rs)

    out += [
        "",
        f"- The gate catches every setting whose drop exceeds the goal: "
        f"{'yes' if not missed and not false_alarms else 'NO'} — of the {len(mp)} modelport settings, "
        + (f"{len(over)} exceed the goal ({names(over)}) and the gate failed {len(over) - len(missed)} of them"
           if over else "none exceeds the goal")
        + f"; it failed {len(false_alarms)} of the {len(within)} within the goal"
        + (f"; passed although over the goal: {names(missed)}" if missed else "")
        + (f"; failed although within the goal: {names(false_alarms)}" if false_alarms else "") + ".",
    ]
    disagree = [r for r in mp if (r.get("gate") or {}).get("accuracy")
                and round(r["gate"]["accuracy"]["candidate"] * r["rows"]) != r["correct"]]
    if mp:
        out.append(f"- The gate's own accuracy (modelport's onnxruntime engine) equals the one measured here on "
                   f"{len(mp) - len(disagree)} of {len(mp)} settings"
                   + "".join(f"; {r['model']} {r['setting']}: gate {r['gate']['accuracy']['candidate'] * 100:.1f} %"
                             f" vs {r['accuracy'] * 100:.1f} %" for r in disagree) + ".")
    out += ["", "Goal: modelport's file is no larger and no less accurate than the Python tool's at the same",
            "setting.", ""]
    out += pair_lines(rows)
    out += ["", "Commands (OUT is the file written):", ""]
    seen = set()
    for r in rows:
        if r["key"] == "float32" or r["key"] in seen:
            continue
        seen.add(r["key"])
        command = r["command"].replace(f"examples/{r['model']}/", "examples/MODEL/")
        out.append(f"- {r['tool'].split(' ')[0]} {r['setting']}: `{command}`")
    return out


def tool_main(tool, src, out, eval_path):
    """One Python tool, as a user would call it; exits non-zero with its error."""
    import onnx

    if tool.startswith("float16"):
        from onnxconverter_common import float16

        model = onnx.load(src)
        if tool == "float16":
            half = float16.convert_float_to_float16(model, keep_io_types=True)
        else:
            half = float16.convert_float_to_float16(
                model, keep_io_types=True, op_block_list=float16.DEFAULT_OP_BLOCK_LIST + ["Cast"])
        onnx.save(half, out)
        return
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    if tool in ("quantize_dynamic", "quantize_dynamic_per_channel"):
        quantize_dynamic(src, out, weight_type=QuantType.QInt8, per_channel=tool.endswith("per_channel"))
        return
    if tool != "quantize_static":
        raise SystemExit(f"unknown tool {tool}")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reference = session(src)
    feeds, _ = read_eval(eval_path, reference)
    (name, x), = feeds.items()

    class Reader(CalibrationDataReader):
        """The eval inputs, one row at a time."""

        def __init__(self):
            self.rows = iter([{name: x[i:i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.rows, None)

    pre = out + ".pre.onnx"
    try:
        quant_pre_process(src, pre)
    except Exception as e:  # quantize the model as it is
        print(f"quant_pre_process failed ({first_line(e)}); quantizing the model as it is", file=sys.stderr)
        pre = src
    try:
        quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, per_channel=True)
    finally:
        if pre != src:
            os.remove(pre)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    tool_main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
