//! The same official-SDK filter built for `wasm32-wasip1` (allocator `proxy_on_memory_allocate`, WASI
//! imports) and for `wasm32-unknown-unknown` (allocator `malloc`, no WASI) behaves the same.

use sluice_host::harness::{Harness, Request};
use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_integration::upstream::respond_to;
use sluice_integration::wasm::{reference_filter, reference_filter_unknown_unknown};
use sluice_integration::Observed;

#[test]
fn both_targets_give_the_same_answer() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let wasi = rt.load_file(reference_filter("headers")).unwrap();
    let bare = rt.load_file(reference_filter_unknown_unknown("headers")).unwrap();
    assert_eq!(wasi.info().allocator, "proxy_on_memory_allocate");
    assert_eq!(bare.info().allocator, "malloc");
    assert!(bare.info().imports.iter().all(|i| i.module == "env"), "no WASI imports");
    let req = Request::get("/t").header("x-echo-in", "same").header("x-remove-me", "1");
    let mut answers = Vec::new();
    for path in [reference_filter("headers"), reference_filter_unknown_unknown("headers")] {
        let mut h = Harness::builder().module_file(path).build().unwrap();
        answers.push(Observed::from(&h.exchange(req.clone(), respond_to).unwrap()));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].headers.contains(&("x-echo-out".into(), "same".into())));
}
