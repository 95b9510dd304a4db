//! The JSON bodies that cross the wire: requests a server decodes (every contract's
//! predict route) and responses `compare` decodes from a live endpoint.
//!
//! Each target starts from the raw body bytes and parses them with the same
//! `serde_json` the server uses, then follows the server's predict path: decode,
//! refuse an empty batch, check against the signature (`modelport-serve`'s
//! `routes.rs`), then encode the answer in the request's form.

use std::path::Path;

use modelport_core::codec::{self, WireForm};
use modelport_core::{Batch, Signature, TensorSpec};
use serde_json::Value;

use crate::signatures::{all, same};

/// The body as the server parses it; `None` when it is not JSON (a 400 there).
fn parse(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// What the server's `check_batch` lets through to the engine.
fn serves(signature: &Signature, batch: &Batch) -> bool {
    matches!(batch.batch_size(), Ok(n) if n > 0) && signature.check_inputs(batch).is_ok()
}

/// `value` written out and parsed back as bytes, as it goes over the wire.
fn wire(value: &Value) -> Value {
    let bytes = serde_json::to_vec(value).expect("a JSON value always serializes");
    serde_json::from_slice(&bytes).expect("serde_json reads what it writes")
}

/// The routes that take `{"instances"}`, a bare array or `{"inputs"}`: SageMaker's
/// `/invocations`, Vertex AI's predict route and TF-Serving's `:predict`; and a
/// `--input` or samples file read by `predict` and `compare` (`decode_json`).
///
/// Invariants, for every signature: `decode_json` agrees with `decode_request`; a
/// row-form body decodes to exactly the model's inputs, each of its dtype; a batch
/// the server would run re-encodes in the request's form (and as predictions) to
/// JSON that decodes to the same tensors.
pub fn request_instances(data: &[u8]) {
    // The server's fast reader must take only what the general decoder takes, and
    // decode it the same (down to the sign of zero, hence Debug).
    for signature in all() {
        if let Some(fast) = codec::decode_instances_fast(data, &signature.inputs) {
            let body = parse(data).expect("the fast reader took a body that is not JSON");
            let (general, form) = codec::decode_request(&body, &signature.inputs)
                .expect("the fast reader took a body the general decoder refuses");
            assert_eq!(form, WireForm::Instances);
            assert_eq!(format!("{fast:?}"), format!("{general:?}"));
        }
    }
    let Some(body) = parse(data) else { return };
    for signature in all() {
        let decoded = codec::decode_request(&body, &signature.inputs);
        let from_file =
            modelport_verify::inputs::decode_json(&body, Path::new("x.json"), signature);
        assert_eq!(
            decoded.is_ok(),
            from_file.is_ok(),
            "decode_json and decode_request disagree"
        );
        let Ok((batch, form)) = decoded else { continue };
        if form == WireForm::Instances {
            assert_typed_like(&batch, &signature.inputs);
        }
        if !serves(signature, &batch) {
            continue;
        }
        let encoded = match form {
            WireForm::Instances => codec::encode_instances(&batch),
            WireForm::Oip => codec::encode_oip_request(&batch),
        }
        .expect("a batch that passed the signature check encodes");
        let (back, back_form) = codec::decode_request(&wire(&encoded), &signature.inputs)
            .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e}\n{encoded}"));
        assert_eq!(form, back_form, "the wire form changed on the round trip");
        assert!(
            same(&batch, &back),
            "round trip changed the batch: {encoded}"
        );
        predictions_round_trip(&batch, &signature.inputs);
    }
}

/// The Open Inference Protocol route `/v2/models/NAME/infer` (`{"inputs"}` only).
///
/// Invariants: a tensor the model declares decodes with the model's dtype; any
/// decoded batch re-encodes as an OIP request that decodes to the same tensors; a
/// batch the server would run encodes as an OIP response that `compare` reads back
/// unchanged.
pub fn request_oip(data: &[u8]) {
    let Some(body) = parse(data) else { return };
    let untyped = codec::decode_oip_request(&body, None);
    for signature in all() {
        let Ok(batch) = codec::decode_oip_request(&body, Some(&signature.inputs)) else {
            continue;
        };
        assert!(
            untyped.is_ok(),
            "a body that decodes with a signature must decode without one"
        );
        for t in batch.iter() {
            if let Some(spec) = signature.input(&t.name) {
                assert_eq!(t.tensor.dtype(), spec.dtype, "`{}` kept its dtype", t.name);
            }
        }
        let encoded = codec::encode_oip_request(&batch).expect("an OIP batch encodes");
        let back = codec::decode_oip_request(&wire(&encoded), Some(&signature.inputs))
            .unwrap_or_else(|e| panic!("re-encoded OIP request does not decode: {e}\n{encoded}"));
        assert!(
            same(&batch, &back),
            "OIP round trip changed the batch: {encoded}"
        );
        if serves(signature, &batch) {
            let response = codec::encode_oip_response("model", &batch).expect("encodes");
            let read = codec::decode_oip_response(&wire(&response))
                .unwrap_or_else(|e| panic!("OIP response does not decode: {e}\n{response}"));
            assert!(same(&batch, &read), "OIP response round trip: {response}");
        }
    }
}

/// A live endpoint's answer, as `compare` reads it: `{"predictions"}` typed by the
/// model's outputs and untyped, and `{"outputs"}` of the Open Inference Protocol.
///
/// Invariants: typed predictions decode to exactly the declared outputs, each of
/// its dtype; predictions of at least one row re-encode to JSON that decodes the
/// same way.
pub fn response_predictions(data: &[u8]) {
    // `compare`'s fast reader agrees with the general decoder (see request_instances).
    for signature in all() {
        if let Some(fast) = codec::decode_predictions_fast(data, &signature.outputs) {
            let body = parse(data).expect("the fast reader took a body that is not JSON");
            let general = codec::decode_predictions(&body, Some(&signature.outputs))
                .expect("the fast reader took a body the general decoder refuses");
            assert_eq!(format!("{fast:?}"), format!("{general:?}"));
        }
    }
    let Some(body) = parse(data) else { return };
    if let Ok(batch) = codec::decode_predictions(&body, None)
        && matches!(batch.batch_size(), Ok(n) if n > 0)
    {
        let encoded = codec::encode_predictions(&batch).expect("decoded predictions encode");
        assert_eq!(
            codec::encode_predictions_bytes(&batch).expect("decoded predictions encode"),
            serde_json::to_vec(&encoded).expect("a JSON value always serializes"),
            "the server's direct writer and the general encoder disagree"
        );
        codec::decode_predictions(&wire(&encoded), None)
            .unwrap_or_else(|e| panic!("re-encoded predictions do not decode: {e}\n{encoded}"));
    }
    if let Ok(batch) = codec::decode_oip_response(&body) {
        let encoded = codec::encode_oip_response("m", &batch).expect("an OIP batch encodes");
        let back = codec::decode_oip_response(&wire(&encoded))
            .unwrap_or_else(|e| panic!("re-encoded OIP response does not decode: {e}"));
        assert!(same(&batch, &back), "OIP response round trip: {encoded}");
    }
    for signature in all() {
        let Ok(batch) = codec::decode_predictions(&body, Some(&signature.outputs)) else {
            continue;
        };
        assert_typed_like(&batch, &signature.outputs);
        if matches!(batch.batch_size(), Ok(n) if n > 0) {
            predictions_round_trip(&batch, &signature.outputs);
        }
    }
}

/// A batch decoded in row form against `specs` holds exactly those tensors, in
/// their order, each of its declared dtype.
fn assert_typed_like(batch: &Batch, specs: &[TensorSpec]) {
    assert!(
        batch
            .iter()
            .map(|t| (t.name.as_str(), t.tensor.dtype()))
            .eq(specs.iter().map(|s| (s.name.as_str(), s.dtype))),
        "a row-form decode did not give the declared tensors and dtypes"
    );
}

/// `batch` as `{"predictions"}` decodes back to itself when typed by `specs`.
fn predictions_round_trip(batch: &Batch, specs: &[TensorSpec]) {
    let encoded = codec::encode_predictions(batch).expect("a batch of rows encodes");
    let back = codec::decode_predictions(&wire(&encoded), Some(specs))
        .unwrap_or_else(|e| panic!("re-encoded predictions do not decode: {e}\n{encoded}"));
    assert!(same(batch, &back), "predictions round trip: {encoded}");
}
