//! Deterministic sample inputs generated from a signature, for when the user has none.
//!
//! The generator is a fixed SplitMix64 stream, so a seed gives the same samples on
//! every machine and every modelport version that keeps this algorithm.

use modelport_core::{Batch, DType, Dim, Signature, Tensor, TensorData};

/// SplitMix64: tiny, fast, and stable forever (unlike a library RNG's stream).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `count` examples for every input of `signature`.
///
/// The batch dimension (the first) takes `count`, also when the model fixes it (the
/// predictors then run the rows in batches of that size); other dynamic dimensions
/// take 1. Floats are standard normal, integers uniform in 0..10, booleans fair
/// coins, strings `s0`..`s9`.
pub fn generate(signature: &Signature, count: usize, seed: u64) -> modelport_core::Result<Batch> {
    let mut rng = SplitMix64::new(seed);
    let mut batch = Batch::new();
    for spec in &signature.inputs {
        let shape: Vec<usize> = spec
            .shape
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                _ if axis == 0 => count,
                Dim::Fixed(n) => *n,
                Dim::Dynamic(_) => 1,
            })
            .collect();
        let n: usize = shape.iter().product();
        let data = match spec.dtype {
            DType::F32 => TensorData::F32((0..n).map(|_| rng.next_normal() as f32).collect()),
            DType::F64 => TensorData::F64((0..n).map(|_| rng.next_normal()).collect()),
            DType::I64 => TensorData::I64((0..n).map(|_| (rng.next_u64() % 10) as i64).collect()),
            DType::I32 => TensorData::I32((0..n).map(|_| (rng.next_u64() % 10) as i32).collect()),
            DType::I8 => TensorData::I8((0..n).map(|_| (rng.next_u64() % 10) as i8).collect()),
            DType::U8 => TensorData::U8((0..n).map(|_| (rng.next_u64() % 10) as u8).collect()),
            DType::Bool => TensorData::Bool((0..n).map(|_| rng.next_u64() & 1 == 1).collect()),
            DType::String => TensorData::String(
                (0..n)
                    .map(|_| format!("s{}", rng.next_u64() % 10))
                    .collect(),
            ),
        };
        batch.insert(spec.name.clone(), Tensor::new(shape, data)?)?;
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelport_core::TensorSpec;

    #[test]
    fn same_seed_same_samples() {
        let sig = Signature {
            inputs: vec![TensorSpec::new(
                "x",
                DType::F32,
                vec![Dim::Dynamic(None), Dim::Fixed(3)],
            )],
            outputs: vec![],
        };
        let a = generate(&sig, 5, 7).unwrap();
        assert_eq!(a, generate(&sig, 5, 7).unwrap());
        assert_ne!(a, generate(&sig, 5, 8).unwrap());
        assert_eq!(a.get("x").unwrap().shape(), &[5, 3]);
    }

    #[test]
    fn a_fixed_batch_axis_takes_the_count_too() {
        let sig = Signature {
            inputs: vec![TensorSpec::new(
                "image",
                DType::F32,
                vec![Dim::Fixed(1), Dim::Fixed(2), Dim::Dynamic(None)],
            )],
            outputs: vec![],
        };
        assert_eq!(sig.fixed_batch(), Some(1));
        let b = generate(&sig, 16, 0).unwrap();
        assert_eq!(b.get("image").unwrap().shape(), &[16, 2, 1]);
    }

    #[test]
    fn stream_is_pinned() {
        // SplitMix64's published first output for seed 0; changing it changes every user's samples.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
