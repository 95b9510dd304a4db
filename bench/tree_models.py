"""Writes the tree-ensemble models of the latency table (bench/models/), seeded.

    python bench/tree_models.py    # with the pins of examples/requirements.txt

- forest-100x8: RandomForestClassifier, 100 trees of depth <= 8, 3 classes, 20 features.
- gbm-100x6: GradientBoostingClassifier (binary), 100 trees of depth <= 6, 20 features:
  one score per leaf, summed, through a logistic, as the boosters export.
Both are exported with skl2onnx (zipmap off) and run unchanged by both engines.
"""

import os

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def save(model, name):
    os.makedirs(os.path.join(OUT, name), exist_ok=True)
    model.graph.name = name
    model.doc_string = ""
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    print(f"{os.path.relpath(path)}: {os.path.getsize(path)} bytes")


def main():
    x, y = make_classification(n_samples=4000, n_features=20, n_informative=12, n_classes=3, random_state=0)
    x = x.astype(np.float32)
    rf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(x, y)
    save(to_onnx(rf, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(rf): {"zipmap": False}}), "forest-100x8")
    xb, yb = make_classification(n_samples=4000, n_features=20, n_informative=12, random_state=1)
    xb = xb.astype(np.float32)
    gb = GradientBoostingClassifier(n_estimators=100, max_depth=6, random_state=0).fit(xb, yb)
    save(to_onnx(gb, xb[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(gb): {"zipmap": False}}), "gbm-100x6")


if __name__ == "__main__":
    main()
