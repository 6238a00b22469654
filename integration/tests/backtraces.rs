//! A filter that panics three calls deep: the harness's error and `sluice serve`'s log show the
//! guest's frames by name with file and line (the harness builds the crate with line tables), as
//! Envoy's log shows its "in-VM backtrace".

use std::path::PathBuf;

use sluice_host::harness::{build_crate, Harness, Request, Response};
use sluice_integration::client::send;
use sluice_integration::envoy::{Envoy, EnvoyConfig, WasmFilter};
use sluice_integration::sluice::SluiceServe;
use sluice_integration::upstream::Upstream;
use sluice_integration::wasm::{ensure_target, workspace_root};

fn crate_dir() -> PathBuf {
    workspace_root().join("sdk/test-filters/deep-panic")
}

/// The line of `src/lib.rs` a frame of function `f` is at: the `panic!` for the innermost, the
/// call to the next function for the others.
fn line_of(needle: &str) -> usize {
    let source = std::fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    source.lines().position(|l| l.contains(needle)).expect("the line is in the source") + 1
}

/// The frames a report lists, in order, for the three functions, each with its file and line.
fn assert_frames(report: &str) {
    assert!(report.contains("Proxy-Wasm plugin in-VM backtrace:"), "{report}");
    let lib = crate_dir().join("src/lib.rs").display().to_string();
    let expected = [
        ("sdk_deep_panic::check_inner", line_of("panic!(\"deep trouble")),
        ("sdk_deep_panic::check_middle", line_of("check_inner(value) * 2")),
        ("sdk_deep_panic::check_outer", line_of("check_middle(value) + 1")),
    ];
    let mut from = 0;
    for (function, line) in expected {
        let at = report[from..].find(function).unwrap_or_else(|| panic!("{function} after byte {from}:\n{report}"));
        let frame = &report[from + at..];
        let next_line = frame.lines().nth(1).unwrap_or_default();
        assert!(next_line.trim_start().starts_with(&format!("at {lib}:{line}:")), "{function}: {next_line}\n{report}");
        from += at + function.len();
    }
}

#[test]
fn the_harness_error_names_the_frames_with_file_and_line() {
    ensure_target("wasm32-wasip1").unwrap();
    let mut h = Harness::builder().module_crate(crate_dir()).build().unwrap_or_else(|e| panic!("{e}"));
    let ex = h.exchange(Request::get("/").header("x-panic", "now"), |_| Response::new(200)).unwrap();
    assert_eq!(ex.status(), Some(503), "the stream fails closed");
    let failure = &h.vm_failures()[0];
    assert!(failure.to_string().contains("deep trouble: x-panic is \"now\""), "the panic message: {failure}");
    assert!(failure.frames.iter().any(|f| f.function.as_deref() == Some("sdk_deep_panic::check_inner")), "{failure:?}");
    assert_frames(&failure.backtrace().to_string());
}

#[test]
fn sluice_serve_logs_the_frames_where_envoy_logs_its_backtrace() {
    ensure_target("wasm32-wasip1").unwrap();
    let filter = WasmFilter::named(build_crate(crate_dir()).unwrap_or_else(|e| panic!("{e}")), "deep");
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::http(filter).cluster("upstream", upstream.port);
    let envoy = Envoy::start(&config).unwrap();
    let sluice = SluiceServe::start(&config).unwrap();
    for port in [envoy.port, sluice.port] {
        assert_eq!(send(port, "GET", "/", &[("x-panic", "now")], b"").unwrap().status(), 503);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let envoy_log = envoy.log();
    assert!(envoy_log.contains("Proxy-Wasm plugin in-VM backtrace:"), "Envoy's heading:\n{envoy_log}");
    assert_frames(&sluice.log());
}
