"""The alternative to `modelport serve` in bench/run: FastAPI + uvicorn + onnxruntime doing
the same inference on the same route and body (SageMaker's /ping and /invocations).

    MODEL=examples/iris/model.onnx uvicorn --app-dir bench fastapi_server:app --port 8081 --workers 2
"""

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
session = ort.InferenceSession(os.environ["MODEL"], options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output_names = [o.name for o in session.get_outputs()]
app = FastAPI()


@app.get("/ping")
def ping():
    return {"status": "ready"}


@app.post("/invocations")
async def invocations(request: Request):
    body = await request.json()
    x = np.asarray(body["instances"], dtype=np.float32)
    outputs = session.run(None, {input_name: x})
    predictions = []
    for i in range(len(x)):
        row = {}
        for name, value in zip(output_names, outputs):
            v = value[i]
            if isinstance(v, dict):  # ZipMap: {class: probability}
                row[name] = [float(v[k]) for k in sorted(v)]
            elif isinstance(v, np.ndarray):
                row[name] = v.tolist()
            else:
                row[name] = v.item() if hasattr(v, "item") else v
        predictions.append(row)
    return {"predictions": predictions}
