"""Builds the example models and test fixtures that modelport's tests and docs use.

Run from the repository root with the pinned versions of examples/requirements.txt:

    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/make_models.py

Everything is seeded, so a re-run with the same versions writes the same files.
Each example folder gets model.onnx, samples.json (the "instances" wire form) and
expected.json (onnxruntime's outputs for those samples, Open Inference Protocol
v2 form). The test fixtures under tests/fixtures/models are models that pin the
tract engine's known gaps.
"""

import json
import os
import pickle

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "models")
OPSET = {"": 17, "ai.onnx.ml": 3}
SAMPLES = 16


def save(model, path):
    """Writes an ONNX model with fixed producer metadata so that re-runs are byte-identical."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.producer_name = model.producer_name or "modelport-examples"
    model.doc_string = ""
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


def export(estimator, x, name):
    model = to_onnx(estimator, x[:1].astype(np.float32), target_opset=OPSET)
    model.graph.name = name
    return model


def dump_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def oip_tensor(name, value):
    """One Open Inference Protocol v2 tensor from onnxruntime's output value."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # ZipMap: a list of {label: probability}; modelport reads it as a probability matrix.
        keys = list(value[0].keys())
        value = np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
    value = np.asarray(value)
    kinds = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32",
             "bool": "BOOL", "uint8": "UINT8", "int8": "INT8"}
    if value.dtype.kind in "OUS":
        datatype, data = "BYTES", [str(v) for v in value.reshape(-1)]
    else:
        datatype, data = kinds[str(value.dtype)], value.reshape(-1).tolist()
    return {"name": name, "shape": list(value.shape), "datatype": datatype, "data": data}


def write_example(folder, model, x, extra_yaml=""):
    """model.onnx + samples.json + expected.json + modelport.yaml for one example."""
    path = os.path.join(folder, "model.onnx")
    save(model, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.ascontiguousarray(x, dtype=np.float32)
    outputs = sess.run(None, {inp.name: x})
    dump_json({"instances": x.tolist()}, os.path.join(folder, "samples.json"))
    dump_json(
        {
            "producer": f"onnxruntime {ort.__version__}",
            "outputs": [oip_tensor(o.name, v) for o, v in zip(sess.get_outputs(), outputs)],
        },
        os.path.join(folder, "expected.json"),
    )


def iris():
    x, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=0))
    pipe.fit(x, y)
    rng = np.random.default_rng(1)
    write_example(os.path.join(EXAMPLES, "iris"), export(pipe, x, "iris"), x[rng.choice(len(x), SAMPLES, replace=False)])


def forest():
    x, y = load_wine(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(x, y)
    rng = np.random.default_rng(2)
    write_example(os.path.join(EXAMPLES, "forest"), export(rf, x, "forest"), x[rng.choice(len(x), SAMPLES, replace=False)])


def mlp():
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=300, random_state=0).fit(x, y)
    model = to_onnx(clf, x[:1].astype(np.float32), target_opset=OPSET, options={id(clf): {"zipmap": False}})
    model.graph.name = "digits-mlp"
    rng = np.random.default_rng(3)
    write_example(os.path.join(EXAMPLES, "mlp"), model, x[rng.choice(len(x), SAMPLES, replace=False)])


def cnn_model(batch="N"):
    """A small convolutional network over 1x28x28 images with fixed random weights,
    taking `batch` images at a time ("N": any number), and the rng after the weights.

    It is not trained: it exists to exercise the convolution path of each engine
    and to give the benchmarks a CNN-shaped workload.
    """
    rng = np.random.default_rng(4)

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    inits = [
        w("c1.w", 8, 1, 3, 3), w("c1.b", 8),
        w("c2.w", 16, 8, 3, 3), w("c2.b", 16),
        w("fc.w", 16 * 7 * 7, 10), w("fc.b", 10),
        numpy_helper.from_array(np.array([-1, 16 * 7 * 7], dtype=np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "c1.w", "c1.b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "c2.w", "c2.b"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p2", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "fc.w"], ["mm"]),
        helper.make_node("Add", ["mm", "fc.b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelport-examples")
    model.ir_version = 8
    return model, rng


def cnn():
    model, rng = cnn_model()
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    write_example(os.path.join(EXAMPLES, "cnn"), model, x)


def fixtures():
    """Models that pin each tract gap, and files that modelport must refuse."""
    os.makedirs(FIXTURES, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    svm = SVC(probability=True, random_state=0).fit(x, y)
    write_example(os.path.join(FIXTURES, "svm"), export(svm, x, "svm"), x[::10])

    xd, yd = load_diabetes(return_X_y=True)
    rfr = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(xd, yd)
    write_example(os.path.join(FIXTURES, "forest-regressor"), export(rfr, xd, "forest-regressor"), xd[::40])

    xb, yb = load_breast_cancer(return_X_y=True)
    rfb = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(xb, yb)
    write_example(os.path.join(FIXTURES, "forest-binary"), export(rfb, xb, "forest-binary"), xb[::40])

    # The CNN exported for one image at a time (a fixed batch axis), as many
    # vision exports are.
    save(cnn_model(batch=1)[0], os.path.join(FIXTURES, "cnn-batch1", "model.onnx"))

    # A pickle that would run code on load, and broken ONNX files.
    with open(os.path.join(FIXTURES, "model.pkl"), "wb") as f:
        pickle.dump({"weights": [1.0, 2.0]}, f, protocol=4)
    iris_bytes = open(os.path.join(EXAMPLES, "iris", "model.onnx"), "rb").read()
    with open(os.path.join(FIXTURES, "truncated.onnx"), "wb") as f:
        f.write(iris_bytes[: len(iris_bytes) // 2])
    with open(os.path.join(FIXTURES, "random.onnx"), "wb") as f:
        f.write(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())


if __name__ == "__main__":
    iris()
    forest()
    mlp()
    cnn()
    fixtures()
    for root in (EXAMPLES, FIXTURES):
        for dirpath, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if name.endswith(".onnx"):
                    p = os.path.join(dirpath, name)
                    print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes")
