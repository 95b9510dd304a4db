"""Builds the example models and test fixtures that modelport's tests and docs use.

Run from the repository root with the pinned versions of examples/requirements.txt:

    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/make_models.py

Everything is seeded, so a re-run with the same versions writes the same files.
Each example folder gets model.onnx, samples.json (the "instances" wire form) and
expected.json (onnxruntime's outputs for those samples, Open Inference Protocol
v2 form). The two trained torch examples (digits-cnn, text-classifier) exist for
`modelport compress` and also get eval.json, labelled held-out rows; the run ends
with a table of their accuracy under each compression. The test fixtures under
tests/fixtures/models are models that pin the tract engine's known gaps.
"""

import io
import json
import os
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer, OneHotEncoder, StandardScaler
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


def finite_json(obj):
    """JSON has no NaN or infinity: modelport's wire form sends them as strings."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return "NaN" if np.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def dump_json(obj, path):
    with open(path, "w") as f:
        json.dump(finite_json(obj), f, indent=1, allow_nan=False)
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


def write_example(folder, model, x, extra_yaml="", dtype=np.float32):
    """model.onnx + samples.json + expected.json + modelport.yaml for one example."""
    path = os.path.join(folder, "model.onnx")
    save(model, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.ascontiguousarray(x, dtype=dtype)
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


# ---------------------------------------------------------------------------
# Trained torch examples for `modelport compress`: digits-cnn and text-classifier.

EVAL_ROWS = 250


def torch_setup(seed):
    """Seeds torch and pins it to one thread and deterministic kernels, so re-runs match."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return torch


def torch_to_onnx(module, example, input_name, name):
    """Exports `module` in eval mode with the TorchScript exporter (opset 17, a dynamic
    batch axis). Eval mode plus constant folding folds every BatchNorm into the Conv
    before it, as deployed exports of such networks are."""
    import torch

    module.eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(
            module, (example,), f, dynamo=False, do_constant_folding=True, opset_version=17,
            input_names=[input_name], output_names=["probabilities"],
            dynamic_axes={input_name: {0: "N"}, "probabilities": {0: "N"}},
        )
    model = onnx.load_from_string(f.getvalue())
    model.graph.name = name
    model.producer_name = "modelport-examples"
    model.producer_version = ""
    for node in model.graph.node:
        node.doc_string = ""
    tidy_initializer_names(model)
    return model


def tidy_initializer_names(model):
    """Names the exporter's folded initializers (`onnx::Conv_74`, `onnx::MatMul_145`) after
    the module that reads them (`dw1.weight`, `layers.0.q.weight`), and drops the `0.`
    that wrapping the network with its Softmax put in front of the others."""
    readers = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, k))
    renames = {}
    for init in model.graph.initializer:
        if init.name.startswith("onnx::") and len(readers.get(init.name, [])) == 1:
            node, k = readers[init.name][0]
            scope = ".".join(node.name.strip("/").split("/")[1:-1])
            renames[init.name] = f"{scope}.{'bias' if k == 2 else 'weight'}"
        elif init.name.startswith("0."):
            renames[init.name] = init.name[2:]
    assert len(set(renames.values())) == len(renames), renames
    for init in model.graph.initializer:
        init.name = renames.get(init.name, init.name)
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            node.input[k] = renames.get(name, name)


def train_classifier(torch, net, x, y, epochs, batch, seed, make_opt, scheduler=None):
    """Minibatch cross-entropy training with a seeded shuffle."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    opt = make_opt(net)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = scheduler(opt, steps) if scheduler else None
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched:
                sched.step()
    net.eval()


def write_eval(folder, x, y):
    """eval.json: held-out rows and their true labels, for `modelport compress --eval`."""
    dump_json({"instances": x.tolist(), "labels": [int(v) for v in y]}, os.path.join(folder, "eval.json"))


def digits_cnn():
    """A MobileNet-style CNN trained on sklearn's 8x8 digits (1797 images, bundled with
    scikit-learn), input `image` [N, 1, 8, 8] scaled to 0..1, output `probabilities` [N, 10].

    conv3x3(1->64) / depthwise3x3(64) / pointwise(64->64) / depthwise3x3(64, stride 2) /
    pointwise(64->128) / depthwise3x3(128) / pointwise(128->128), each followed by
    BatchNorm and ReLU, then flatten (128*4*4) -> fc 256 -> ReLU -> fc 10 -> Softmax.
    Trained the way MobileNets are: SGD with momentum at a high learning rate (0.2,
    cosine decay, no warm-up), no weight decay on BatchNorm or the depthwise filters.

    Why per-tensor int8 breaks it and per-channel int8 does not: at that learning rate
    ReLU channels die (they never fire again, so they get no gradient); here 2 of the 64
    stem channels, 2 of pw1's and 2 of pw2's, each read by a depthwise filter (and many of
    pw3's and fc1's, which only feed dense layers). The depthwise filter that reads a dead
    channel sees only zeros; its
    BatchNorm's running variance decays to ~0, and folding BatchNorm into the convolution
    multiplies that filter by gamma / sqrt(var + eps) ~ 1/sqrt(1e-5) ~ 316. In float
    those weights are harmless (they multiply zeros), but the folded depthwise tensor's
    largest weight is now 400-4000x its median, so one per-tensor int8 scale rounds the
    live filters to zero or a level or two: per-tensor int8 of dw1 or dw2 alone takes
    accuracy to chance. A scale per output channel is unaffected. This is the failure
    Sheng et al. 2018 ("A Quantization-Friendly Separable Convolution for MobileNets")
    and Krishnamoorthi 2018 describe for MobileNet. Which channels die depends on the
    run, so the generator ends by printing the folded per-channel weight ranges and the
    accuracy under each compression, to show that it held.
    """
    torch = torch_setup(7)
    nn = torch.nn
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)

    layers = []

    def block(name, cin, cout, k=3, stride=1, groups=1):
        layers.append((name, nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)))
        layers.extend([(f"{name}_bn", nn.BatchNorm2d(cout)), (f"{name}_relu", nn.ReLU())])

    block("stem", 1, 64)
    block("dw1", 64, 64, groups=64)
    block("pw1", 64, 64, k=1)
    block("dw2", 64, 64, stride=2, groups=64)
    block("pw2", 64, 128, k=1)
    block("dw3", 128, 128, groups=128)
    block("pw3", 128, 128, k=1)
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(128 * 4 * 4, 256)), ("fc1_relu", nn.ReLU()),
               ("dropout", nn.Dropout(0.3)), ("fc2", nn.Linear(256, 10))]
    net = nn.Sequential(OrderedDict(layers))

    def make_opt(net):
        dense = [m.weight for m in net if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(m, "groups", 1) == 1]
        rest = [p for p in net.parameters() if all(p is not d for d in dense)]
        return torch.optim.SGD([{"params": dense, "weight_decay": 4e-5}, {"params": rest, "weight_decay": 0.0}],
                               lr=0.2, momentum=0.9)

    train_classifier(torch, net, xtr, ytr, epochs=40, batch=64, seed=7, make_opt=make_opt,
                     scheduler=lambda opt, steps: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps))
    model = torch_to_onnx(nn.Sequential(net, nn.Softmax(dim=-1)), torch.from_numpy(xte[:1]), "image", "digits-cnn")
    folder = os.path.join(EXAMPLES, "digits-cnn")
    write_example(folder, model, xte[:SAMPLES])
    write_eval(folder, xte[:EVAL_ROWS], yte[:EVAL_ROWS])
    return folder, xte, yte


NEGATIONS = ("not", "never", "hardly", "barely")
INTENSIFIERS = ("very", "really", "truly", "quite", "so", "rather", "extremely", "pretty")
POSITIVE = (
    "good", "great", "excellent", "wonderful", "amazing", "fantastic", "superb", "brilliant",
    "delightful", "enjoyable", "lovely", "charming", "moving", "fun", "funny", "clever",
    "beautiful", "impressive", "gripping", "touching", "fresh", "smart", "solid", "strong",
    "memorable", "powerful", "stunning", "perfect", "satisfying", "entertaining", "heartfelt",
    "inventive", "engaging", "thrilling", "witty", "elegant", "vivid", "rich", "warm", "sharp",
)
NEGATIVE = (
    "bad", "terrible", "awful", "boring", "dull", "poor", "horrible", "weak", "bland",
    "tedious", "messy", "clumsy", "lifeless", "forgettable", "painful", "silly", "shallow",
    "flat", "predictable", "tiresome", "annoying", "confusing", "lazy", "stale", "cheap",
    "pointless", "awkward", "disappointing", "sloppy", "uneven", "hollow", "overlong",
    "plodding", "grating", "muddled", "crude", "limp", "joyless", "unfunny", "dreary",
)
FUNCTION_WORDS = (
    "the", "a", "this", "that", "it", "was", "is", "and", "but", "i", "we", "thought",
    "found", "felt", "seemed", "overall", "honestly", "film", "movie", "plot", "acting",
    "story", "ending", "script", "cast", "music", "pacing", "dialogue", "show", "book",
)
FILLER_WORDS = 1400


def text_vocab():
    """Token ids: 0 is padding, then the words above, then neutral filler words w0000..w1399
    (names, places, topics: words that carry no sentiment)."""
    words = ["<pad>"] + list(NEGATIONS) + list(INTENSIFIERS) + list(POSITIVE) + list(NEGATIVE)
    words += list(FUNCTION_WORDS) + [f"w{i:04d}" for i in range(FILLER_WORDS)]
    return {w: i for i, w in enumerate(words)}


def text_dataset(n, rng, vocab, length=32):
    """Seeded synthetic reviews: neutral filler around one or two sentiment clauses.

    A clause is `[subject] was [negation] [intensifier] ADJECTIVE`, its polarity the
    adjective's, flipped by a negation. Two clauses are joined by `and` (same polarity)
    or `but` (opposite; the second clause decides). Label 1 is positive.
    """
    filler = [vocab[f"w{i:04d}"] for i in range(FILLER_WORDS)]
    subjects = ["film", "movie", "plot", "acting", "story", "ending", "script", "cast", "music",
                "pacing", "dialogue", "show", "book", "it"]
    openers = [["i", "thought"], ["i", "found"], ["we", "felt"], ["honestly"], ["overall"], []]

    def clause(polarity):
        negated = rng.random() < 0.4
        adj_positive = (polarity > 0) != negated
        words = [str(rng.choice(["the", "this", "that"])), str(rng.choice(subjects)),
                 str(rng.choice(["was", "is", "seemed"]))]
        if negated:
            words.append(str(rng.choice(NEGATIONS)))
        if rng.random() < 0.4:
            words.append(str(rng.choice(INTENSIFIERS)))
        words.append(str(rng.choice(POSITIVE if adj_positive else NEGATIVE)))
        return [vocab[w] for w in words]

    x = np.zeros((n, length), dtype=np.int64)
    y = np.zeros(n, dtype=np.int64)
    for r in range(n):
        label = int(rng.integers(2))
        polarity = 1 if label else -1
        if rng.random() < 0.5:
            body = clause(polarity)
        elif rng.random() < 0.5:
            body = clause(polarity) + [vocab["and"]] + clause(polarity)
        else:
            body = clause(-polarity) + [vocab["but"]] + clause(polarity)
        body = [vocab[w] for w in openers[int(rng.integers(len(openers)))]] + body
        room = length - len(body)
        before = [int(t) for t in rng.choice(filler, int(rng.integers(0, min(room, 6) + 1)))]
        after = [int(t) for t in rng.choice(filler, int(rng.integers(0, min(room - len(before), 6) + 1)))]
        tokens = before + body + after
        x[r, :len(tokens)] = tokens
        y[r] = label
    return x, y


def text_classifier():
    """A small transformer encoder classifying the synthetic reviews of text_dataset:
    input `tokens` int64 [N, 32] (0 = padding), output `probabilities` [N, 2].

    token embedding (1523 x 128) + sinusoidal positional embedding (32 x 128), two
    pre-norm encoder layers (LayerNorm, 4-head self-attention with padding masked out,
    LayerNorm, feed-forward 128 -> 512 -> 128 with ReLU), a final LayerNorm, mean pooling
    over the non-padding positions, a linear head and Softmax. Written out with plain
    tensor operations (no nn.MultiheadAttention fast path), so the export uses standard
    ONNX operators only (Gather, MatMul, Add, Mul, Softmax, LayerNormalization, Reshape,
    Transpose, ReduceSum, Gemm, ...). Learned absolute positions (tiny initial values)
    left it a bag of words at ~81%: it never bound a negation to the next adjective;
    fixed sinusoidal positions make "the token before" easy to attend to.
    """
    torch = torch_setup(11)
    nn = torch.nn
    vocab = text_vocab()
    rng = np.random.default_rng(11)
    x, y = text_dataset(22000, rng, vocab)
    xtr, xte, ytr, yte = x[:20000], x[20000:], y[:20000], y[20000:]
    d, heads, ff, length = 128, 4, 512, x.shape[1]

    class EncoderLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.drop = nn.Dropout(0.1)

        def forward(self, h, mask):
            def split(t):
                return t.reshape(-1, length, heads, d // heads).transpose(1, 2)

            a = self.ln1(h)
            q, k, v = split(self.q(a)), split(self.k(a)), split(self.v(a))
            scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / (d // heads) ** 0.5) + mask
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(-1, length, d)
            h = h + self.drop(self.o(ctx))
            return h + self.drop(self.ff2(torch.relu(self.ff1(self.ln2(h)))))

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(len(vocab), d)
            pos = torch.arange(length, dtype=torch.float32)[:, None]
            freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-np.log(10000.0) / d))
            table = torch.zeros(length, d)
            table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
            self.register_buffer("pos", table[None])
            self.layers = nn.ModuleList([EncoderLayer(), EncoderLayer()])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, 2)

        def forward(self, tokens):
            keep = (tokens != 0).to(torch.float32)
            mask = ((1.0 - keep) * -1e4).reshape(-1, 1, 1, length)
            h = self.embed(tokens) + self.pos
            for layer in self.layers:
                h = layer(h, mask)
            h = self.norm(h)
            pooled = (h * keep.unsqueeze(-1)).sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp(min=1.0)
            return self.head(pooled)

    net = Classifier()

    def warmup_then_linear(opt, steps):
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * max(0.0, 1 - s / steps))

    train_classifier(torch, net, xtr, ytr, epochs=4, batch=64, seed=11,
                     make_opt=lambda net: torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01),
                     scheduler=warmup_then_linear)
    model = torch_to_onnx(nn.Sequential(net, nn.Softmax(dim=-1)), torch.from_numpy(xte[:1]), "tokens", "text-classifier")
    folder = os.path.join(EXAMPLES, "text-classifier")
    write_example(folder, model, xte[:SAMPLES], dtype=np.int64)
    write_eval(folder, xte[:EVAL_ROWS], yte[:EVAL_ROWS])
    return folder, xte, yte


# The measurements behind the compression table: what `modelport compress` does, in numpy.

def weight_initializers(model, tables=True):
    """(initializer name, per-channel axis) of every weight: Conv [M, C, kh, kw] per output
    channel (axis 0), MatMul [K, N] per output column (axis 1), Gemm per output (axis 0 with
    transB=1, else 1), and with `tables` Gather's embedding table [V, D] per row (axis 0)."""
    inits = {i.name for i in model.graph.initializer}
    found = {}
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv" and node.input[1] in inits:
            found.setdefault(node.input[1], 0)
        elif node.op_type == "MatMul" and node.input[1] in inits:
            found.setdefault(node.input[1], 1)
        elif node.op_type == "Gemm" and node.input[1] in inits:
            found.setdefault(node.input[1], 0 if attrs.get("transB", 0) else 1)
        elif tables and node.op_type == "Gather" and node.input[0] in inits:
            found.setdefault(node.input[0], 0)
    return found


def map_weights(model, fn, tables=True):
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = weight_initializers(out, tables)
    for init in out.graph.initializer:
        if init.name in weights:
            w = numpy_helper.to_array(init)
            if w.ndim >= 2:
                init.CopyFrom(numpy_helper.from_array(fn(w, weights[init.name]).astype(np.float32), init.name))
    return out


def int8_dequantized(model, per_channel):
    """Symmetric int8 (zero point 0, scale max|w|/127) per tensor or per channel, back in float32."""
    def q(w, axis):
        if per_channel:
            scale = np.abs(w).max(axis=tuple(a for a in range(w.ndim) if a != axis), keepdims=True) / 127.0
        else:
            scale = np.abs(w).max() / 127.0
        scale = np.where(scale == 0, 1.0, scale)
        return np.clip(np.round(w / scale), -127, 127) * scale
    return map_weights(model, q)


def pruned(model, sparsity):
    """Magnitude pruning per tensor: the `sparsity` share of weights smallest in |w| set to 0.
    Embedding tables are left whole, as `modelport compress --prune` does (a zeroed entry
    of a row is a changed token, not a removed connection)."""
    def p(w, _axis):
        flat = w.reshape(-1).copy()
        flat[np.argsort(np.abs(flat), kind="stable")[: int(sparsity * flat.size)]] = 0.0
        return flat.reshape(w.shape)
    return map_weights(model, p, tables=False)


def ort_dynamic(path, per_channel):
    """onnxruntime's own int8-dynamic quantization, for reference (it keeps Conv weights
    per tensor even with per_channel=True)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "model.onnx")
        quantize_dynamic(path, out, per_channel=per_channel, weight_type=QuantType.QInt8)
        return onnx.load(out)


def compression_report(name, folder, x, y):
    """Accuracy on the whole test split and label agreement with the float model for each
    compression; printed, not stored."""
    from onnxconverter_common import float16

    path = os.path.join(folder, "model.onnx")
    base = onnx.load(path)
    variants = [
        ("float32", base),
        ("int8 per-tensor", int8_dequantized(base, per_channel=False)),
        ("int8 per-channel", int8_dequantized(base, per_channel=True)),
        ("pruned 0.5", pruned(base, 0.5)),
        ("pruned 0.9", pruned(base, 0.9)),
        # Cast stays in float32: the converter retypes a Cast's output to float16 but keeps
        # its `to` attribute, which onnxruntime rejects (the text model casts its mask).
        ("fp16", float16.convert_float_to_float16(
            base, keep_io_types=True, op_block_list=float16.DEFAULT_OP_BLOCK_LIST + ["Cast"])),
        ("ort dynamic", ort_dynamic(path, per_channel=False)),
        ("ort dynamic pc", ort_dynamic(path, per_channel=True)),
    ]
    inp = base.graph.input[0].name
    ref = None
    print(f"{name}: {len(y)} test rows (eval.json holds the first {EVAL_ROWS})")
    for label, model in variants:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        pred = sess.run(None, {inp: x})[0].argmax(axis=1)
        ref = pred if ref is None else ref
        ev = pred[:EVAL_ROWS]
        print(f"  {label:17s} accuracy {np.mean(pred == y):.4f}  agreement {np.mean(pred == ref):.4f}"
              f"  (eval.json: accuracy {np.mean(ev == y[:EVAL_ROWS]):.4f}, agreement {np.mean(ev == ref[:EVAL_ROWS]):.4f})")
    for node in base.graph.node:
        if node.op_type == "Conv":
            w = numpy_helper.to_array(next(i for i in base.graph.initializer if i.name == node.input[1]))
            r = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
            print(f"  {node.name:16s} {str(list(w.shape)):16s} per-channel max|w|: "
                  f"median {np.median(r):.3g}, max {r.max():.3g} ({r.max() / np.median(r):.0f}x)")


def mlp_zipmap():
    """The digits MLP exported with skl2onnx's default ZipMap output (a list of
    {label: probability} maps): weights in initializers and a sequence-of-maps output,
    which `modelport compress` must write back intact."""
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=300, random_state=0).fit(x, y)
    model = to_onnx(clf, x[:1].astype(np.float32), target_opset=OPSET)
    model.graph.name = "digits-mlp-zipmap"
    rng = np.random.default_rng(3)
    write_example(os.path.join(FIXTURES, "mlp-zipmap"), model, x[rng.choice(len(x), SAMPLES, replace=False)])


def fixtures():
    """Models that pin each tract gap, and files that modelport must refuse."""
    os.makedirs(FIXTURES, exist_ok=True)
    mlp_zipmap()
    x, y = load_iris(return_X_y=True)
    svm = SVC(probability=True, random_state=0).fit(x, y)
    write_example(os.path.join(FIXTURES, "svm"), export(svm, x, "svm"), x[::10])

    xd, yd = load_diabetes(return_X_y=True)
    rfr = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(xd, yd)
    write_example(os.path.join(FIXTURES, "forest-regressor"), export(rfr, xd, "forest-regressor"), xd[::40])

    xb, yb = load_breast_cancer(return_X_y=True)
    rfb = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(xb, yb)
    write_example(os.path.join(FIXTURES, "forest-binary"), export(rfb, xb, "forest-binary"), xb[::40])

    # Det is a standard operator tract lacks: the pinned gap, with iris's inputs so that
    # it can replace iris in an update (each example's four values as a 2x2 matrix).
    det = helper.make_graph(
        [
            helper.make_node("Reshape", ["X", "shape"], ["M"]),
            helper.make_node("Det", ["M"], ["determinant"]),
        ],
        "det",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("determinant", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(np.array([-1, 2, 2], dtype=np.int64), "shape")],
    )
    det_model = helper.make_model(det, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    write_example(os.path.join(FIXTURES, "det"), det_model, x[::10])

    # A ColumnTransformer pipeline: ArrayFeatureExtractor, Imputer, Scaler, Binarizer,
    # OneHotEncoder, LinearClassifier, with NaN in a tenth of the values.
    xp = x.copy()
    xp[np.random.default_rng(3).random(xp.shape) < 0.1] = np.nan
    cat = np.floor(np.nan_to_num(xp[:, 0])).reshape(-1, 1)
    xp = np.hstack([xp, cat]).astype(np.float32)
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), [0, 1, 2]),
        ("bin", make_pipeline(SimpleImputer(strategy="median"), Binarizer(threshold=1.0)), [3]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [4]),
    ])
    pipe = make_pipeline(ct, LogisticRegression(max_iter=1000)).fit(xp, y)
    write_example(os.path.join(FIXTURES, "pipeline"), export(pipe, xp, "pipeline"), xp[::10])

    # LabelEncoder (float keys, a default) and FeatureVectorizer, by hand.
    g = helper.make_graph(
        [
            helper.make_node("LabelEncoder", ["X"], ["codes"], domain="ai.onnx.ml",
                             keys_floats=[1.0, 2.0, 3.0], values_int64s=[10, 20, 30], default_int64=-1),
            helper.make_node("Cast", ["codes"], ["codes_f"], to=TensorProto.FLOAT),
            helper.make_node("FeatureVectorizer", ["X", "codes_f"], ["features"], domain="ai.onnx.ml",
                             inputdimensions=[2, 2]),
        ],
        "encoders",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
    )
    encoders = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)], ir_version=8)
    xe = np.array([[1, 2], [3, 4], [2, 2], [0.5, 3], [3, 1]], dtype=np.float32)
    write_example(os.path.join(FIXTURES, "encoders"), encoders, xe)

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
    trained = [("digits-cnn", *digits_cnn()), ("text-classifier", *text_classifier())]
    fixtures()
    for root in (EXAMPLES, FIXTURES):
        for dirpath, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if name.endswith(".onnx"):
                    p = os.path.join(dirpath, name)
                    print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes")
    for args in trained:
        compression_report(*args)
