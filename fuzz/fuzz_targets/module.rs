#![no_main]
#[path = "../src/checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::module(data));
