//! Faults stay inside the sandbox: a panic, an endless loop or a memory bomb fails that VM the way
//! Envoy does (per failure policy), with a clear reason, and nothing else is affected.

use std::time::{Duration, Instant};

use sluice_host::harness::{Harness, Request, Response};
use sluice_host::vm::FailurePolicy;
use sluice_host::{Error, Fault};
use sluice_integration::wasm::reference_filter;

fn trap_filter() -> sluice_host::harness::HarnessBuilder {
    Harness::builder().module_file(reference_filter("trap"))
}

fn get(fault: Option<&str>) -> Request {
    let r = Request::get("/x");
    match fault {
        Some(f) => r.header("x-fault", f),
        None => r,
    }
}

fn ok(_: &sluice_host::harness::Message) -> Response {
    Response::new(200).body("fine")
}

#[test]
fn a_panic_fails_the_stream_with_503_and_says_why() {
    let mut h = trap_filter().build().unwrap();
    let ex = h.exchange(get(Some("panic")), ok).unwrap();
    assert_eq!(ex.status(), Some(503));
    assert_eq!(ex.local_reply.unwrap().details, "wasm_fail_stream");
    let why = &h.vm_failures()[0];
    assert_eq!(why.function, "proxy_on_request_headers");
    let Fault::Trap { code, logged, .. } = &why.fault else { panic!("a trap: {why:?}") };
    assert!(code.is_some(), "a Rust panic aborts with a wasm trap: {why:?}");
    assert!(logged.as_deref().unwrap_or_default().contains("boom: the filter panicked on purpose"), "{why}");
    assert!(why.to_string().contains("boom: the filter panicked on purpose"), "the panic message is reported: {why}");
    // Fail closed: later streams are refused without calling the guest.
    assert_eq!(h.exchange(get(None), ok).unwrap().status(), Some(503));
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline() {
    let mut h = trap_filter().callback_deadline(Duration::from_millis(100)).build().unwrap();
    let started = Instant::now();
    let ex = h.exchange(get(Some("loop")), ok).unwrap();
    assert_eq!(ex.status(), Some(503));
    assert!(started.elapsed() < Duration::from_secs(5), "stopped promptly: {:?}", started.elapsed());
    assert_eq!(h.vm_failures()[0].fault, Fault::Deadline { deadline_ms: 100 });
    let why = h.vm_failures()[0].to_string();
    assert!(why.contains("ran longer than the 100 ms callback deadline"), "{why}");
}

#[test]
fn a_memory_bomb_is_stopped_by_the_cap() {
    let mut h = trap_filter().memory_limit(64 << 20).build().unwrap();
    let ex = h.exchange(get(Some("oom")), ok).unwrap();
    assert_eq!(ex.status(), Some(503));
    assert_eq!(h.vm_failures()[0].fault, Fault::MemoryLimit { limit_mib: 64 });
    assert!(h.vm_failures()[0].to_string().contains("past the 64 MiB limit"), "{}", h.vm_failures()[0]);
}

#[test]
fn fail_open_skips_the_filter_after_the_failure() {
    let mut h = trap_filter().failure_policy(FailurePolicy::FailOpen).build().unwrap();
    // Envoy 1.40 still answers 503 for the stream that trapped.
    assert_eq!(h.exchange(get(Some("panic")), ok).unwrap().status(), Some(503));
    let ex = h.exchange(get(None), ok).unwrap();
    assert_eq!(ex.status(), Some(200));
    assert!(ex.upstream_request.unwrap().headers.get("x-trap-ok").is_none(), "the filter no longer runs");
}

#[test]
fn legacy_fail_open_lets_even_the_failing_stream_through() {
    let mut h = trap_filter().failure_policy(FailurePolicy::LegacyFailOpen).build().unwrap();
    assert_eq!(h.exchange(get(Some("panic")), ok).unwrap().status(), Some(200));
}

#[test]
fn fail_reload_rebuilds_the_vm_after_the_backoff() {
    let stats = sluice_host::vm::VmStats::default();
    let mut h = trap_filter().failure_policy(FailurePolicy::FailReload).vm_stats(stats.clone()).build().unwrap();
    assert_eq!(h.exchange(get(Some("panic")), ok).unwrap().status(), Some(503));
    assert_eq!(h.exchange(get(None), ok).unwrap().status(), Some(503), "still backing off");
    h.advance_time(Duration::from_millis(1100)).unwrap();
    let ex = h.exchange(get(None), ok).unwrap();
    assert_eq!(ex.status(), Some(200));
    assert_eq!(ex.upstream_request.unwrap().headers.get_str("x-trap-ok"), Some("yes"), "a fresh VM runs the filter");
    // What `wasm.*` stats show: two VMs made, one alive; one reload started, one stream turned
    // away during the backoff. `vm_reload` itself stays 0, as in Envoy 1.40
    // (`serve.rs::reloads_of_a_shared_vm_count_under_each_plugin_alike`).
    let n = |c: &std::sync::Arc<std::sync::atomic::AtomicU64>| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((n(&stats.created), n(&stats.active)), (2, 1));
    assert_eq!((n(&stats.reload), n(&stats.reload_success), n(&stats.reload_failure)), (0, 1, 0));
    assert_eq!(n(&stats.reload_backoff), 1);
    drop(h);
    assert_eq!(n(&stats.active), 0, "a dropped harness leaves no VM counted");
}

#[test]
fn other_vms_keep_working_after_one_fails() {
    let mut bad = trap_filter().build().unwrap();
    let mut good = trap_filter().build().unwrap();
    bad.exchange(get(Some("panic")), ok).unwrap();
    let ex = good.exchange(get(None), ok).unwrap();
    assert_eq!(ex.status(), Some(200));
}

#[test]
fn broken_modules_and_configs_give_clear_errors() {
    let err = Harness::builder().module_bytes(b"\0asm\x01\0\0\0\xff".to_vec()).build().unwrap_err();
    assert!(matches!(err, Error::Compile { .. }), "{err}");
    let cause = std::error::Error::source(&err).map(|c| c.to_string()).unwrap_or_default();
    assert!(!cause.is_empty(), "wasmtime's reason is kept as the source");
    let err = Harness::builder().module_bytes(b"not wasm at all".to_vec()).build().unwrap_err();
    assert!(err.to_string().starts_with("not a WebAssembly module"), "{err}");
    let no_marker =
        r#"(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) i32.const 8))"#;
    let err = Harness::builder().module_bytes(no_marker).build().unwrap_err();
    assert!(matches!(err, Error::NoAbiVersion), "{err}");
    let no_alloc = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))"#;
    let err = Harness::builder().module_bytes(no_alloc).build().unwrap_err();
    assert!(matches!(err, Error::NoAllocator), "{err}");
    let err = Harness::builder().module_file(reference_filter("timers")).plugin_config("soon").build().unwrap_err();
    assert!(matches!(err, Error::ConfigureFailed { .. }), "{err}");
}
