#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate_fuzz_targets::run("jws_token", data));
