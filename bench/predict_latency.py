"""Python onnxruntime's latency on the same model, batch, thread count and samples
as modelport's `latency` example, for bench/run. Prints one JSON line."""

import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    model, batch, iters, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    # The same optimization level as modelport's onnxruntime engine (exact reference results).
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feeds = {}
    rng = np.random.default_rng(0)
    for inp in sess.get_inputs():
        shape = [batch if i == 0 or not isinstance(d, int) else d for i, d in enumerate(inp.shape)]
        feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    for _ in range(max(3, -(-iters // 10))):
        sess.run(None, feeds)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    print(json.dumps({"engine": f"python onnxruntime {ort.__version__}",
                      "median_us": round(times[len(times) // 2], 2),
                      "p90_us": round(times[len(times) * 9 // 10], 2)}))


if __name__ == "__main__":
    main()
