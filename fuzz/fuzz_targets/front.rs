#![no_main]
//! Random client bytes through a running `sluice serve` (see `src/front.rs`). Needs the binary
//! and a module: `SLUICE_BIN` (default `../target/debug/sluice`) and `SLUICE_FRONT_MODULE`
//! (default the reference `hello` filter under `../target/reference-filters/`).
#[path = "../src/front.rs"]
mod front;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

fn front() -> &'static Mutex<front::Front> {
    static FRONT: OnceLock<Mutex<front::Front>> = OnceLock::new();
    FRONT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let env = |k: &str, default: &str| std::env::var(k).map(PathBuf::from).unwrap_or_else(|_| root.join(default));
        let binary = env("SLUICE_BIN", "target/debug/sluice");
        let module = env("SLUICE_FRONT_MODULE", "target/reference-filters/wasm32-wasip1/release/ref_hello.wasm");
        let dir = std::env::temp_dir().join(format!("sluice-fuzz-front-{}", std::process::id()));
        Mutex::new(front::Front::start(&binary, &module, &dir))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| front().lock().unwrap().check(data));
