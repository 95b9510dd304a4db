"""The alternative to `modelport compare` in bench/run: what people write by hand, a
sequential loop sending one request per sample and checking each answer against local
onnxruntime with numpy.isclose.

    python bench/compare_loop.py URL MODEL COUNT
"""

import http.client
import json
import sys
import time
import urllib.parse

import numpy as np
import onnxruntime as ort


def main():
    url, model, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count, 4)).astype(np.float32)
    parsed = urllib.parse.urlparse(url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    mismatches = 0
    for row in x:
        conn.request("POST", parsed.path, json.dumps({"instances": [row.tolist()]}),
                     {"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())["predictions"][0]
        label, probs = session.run(None, {input_name: row[None, :]})
        local = [probs[0][k] for k in sorted(probs[0])]
        if answer["output_label"] != int(label[0]) or not np.allclose(answer["output_probability"], local, atol=1e-5, rtol=1e-4):
            mismatches += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "samples": count, "mismatches": mismatches}))


if __name__ == "__main__":
    main()
