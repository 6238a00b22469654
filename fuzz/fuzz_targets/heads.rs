#![no_main]
//! Random client bytes through the HTTP/1 request-head scanner, in-process (see `checks::heads`).
#[path = "../src/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::heads(data));
