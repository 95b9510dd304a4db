//! libFuzzer entry for `modelport_fuzz::inputs_csv`; the target and its invariants live there.
#![no_main]

/// Without a sanitizer libFuzzer cannot see single allocations, only the RSS, which
/// a large zeroed allocation never raises: the heap itself is capped instead, and an
/// input that needs more aborts as a finding.
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> =
    cap::Cap::new(std::alloc::System, modelport_fuzz::HEAP_LIMIT_BYTES);

libfuzzer_sys::fuzz_target!(|data: &[u8]| modelport_fuzz::inputs_csv(data));
