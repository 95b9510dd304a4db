//! The model signatures requests and CSV files are decoded against, and the
//! NaN-aware batch equality the round-trip invariants use.
//!
//! Real signatures come from the committed example models, read once per process,
//! so that the targets decode against exactly what a server of those models would;
//! two made-up ones add what no example has (every dtype in one model, and dynamic
//! dimensions past the batch axis).

use std::path::Path;
use std::sync::OnceLock;

use modelport_core::{Batch, DType, Dim, Signature, TensorSpec};
use modelport_runtime::ModelInfo;

/// The example models whose signatures the targets use: one f32 matrix input
/// (iris, with ZipMap outputs), an MLP, an image input of fixed row shape (cnn), a
/// string input (text-classifier) and several named inputs of mixed types (a
/// scikit-learn column transformer).
const MODELS: &[&str] = &[
    "examples/iris/model.onnx",
    "examples/mlp/model.onnx",
    "examples/cnn/model.onnx",
    "examples/text-classifier/model.onnx",
    "tests/fixtures/survey/column-transformer-mixed/model.onnx",
];

/// Every signature a request is tried against.
pub(crate) fn all() -> &'static [Signature] {
    static ALL: OnceLock<Vec<Signature>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut all: Vec<Signature> = MODELS
            .iter()
            .map(|m| {
                ModelInfo::from_path(&root.join(m))
                    .unwrap_or_else(|e| panic!("{m}: {e}"))
                    .signature
            })
            .collect();
        all.push(every_dtype());
        all.push(dynamic_rows());
        all
    })
}

fn batch_axis() -> Dim {
    Dim::Dynamic(Some("N".into()))
}

/// One input of each dtype, so that every typed decoder is reached.
fn every_dtype() -> Signature {
    let inputs = DType::ALL
        .iter()
        .map(|&d| TensorSpec::new(d.name(), d, vec![batch_axis(), Dim::Fixed(2)]))
        .collect();
    Signature {
        inputs,
        outputs: vec![TensorSpec::new("y", DType::F32, vec![batch_axis()])],
    }
}

/// An image-like input whose every dimension is dynamic, as exported detectors have.
fn dynamic_rows() -> Signature {
    Signature {
        inputs: vec![TensorSpec::new(
            "pixels",
            DType::U8,
            vec![
                batch_axis(),
                Dim::Dynamic(None),
                Dim::Dynamic(Some("w".into())),
                Dim::Fixed(3),
            ],
        )],
        outputs: vec![TensorSpec::new(
            "boxes",
            DType::F64,
            vec![batch_axis(), Dim::Dynamic(None), Dim::Fixed(4)],
        )],
    }
}

/// Whether two batches hold the same names, dtypes, shapes and elements, NaN
/// equal to NaN (a NaN travels as `"NaN"` and comes back as a NaN).
pub(crate) fn same(a: &Batch, b: &Batch) -> bool {
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|(x, y)| {
            let (s, t) = (&x.tensor, &y.tensor);
            x.name == y.name
                && s.shape() == t.shape()
                && s.dtype() == t.dtype()
                && (0..s.len()).all(|i| match (s.data().get_f64(i), t.data().get_f64(i)) {
                    (Some(p), Some(q)) => p == q || (p.is_nan() && q.is_nan()),
                    _ => s.data().display_at(i) == t.data().display_at(i),
                })
        })
}
