//! libFuzzer entry for `modelport_fuzz::onnx_model`; the target and its invariants live there.
#![no_main]

/// Without a sanitizer libFuzzer cannot see single allocations, only the RSS, which
/// a large zeroed allocation never raises: the heap itself is capped instead, and an
/// input that needs more aborts as a finding.
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> =
    cap::Cap::new(std::alloc::System, modelport_fuzz::HEAP_LIMIT_BYTES);

libfuzzer_sys::fuzz_target!(|data: &[u8]| modelport_fuzz::onnx_model(data));

// Half the turns change one field of the decoded model (see `mutate_onnx`), the
// other half are libFuzzer's byte mutations.
libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    if seed % 2 == 0
        && let Some(bytes) = modelport_fuzz::mutate_onnx(&data[..size], seed)
        && bytes.len() <= max_size
    {
        data[..bytes.len()].copy_from_slice(&bytes);
        return bytes.len();
    }
    libfuzzer_sys::fuzzer_mutate(data, size, max_size)
});
