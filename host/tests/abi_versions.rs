//! Modules of every ABI version and shape load and run: 0.1.0 (two-argument headers callback,
//! `proxy_get_configuration`, `proxy_continue_request`), WASI commands (`_start`), reactors with
//! `main`, Go-style imports (`poll_oneoff`, `sched_yield`) and Emscripten's helpers.

use sluice_host::harness::{Harness, Request, Response};
use sluice_host::runtime::{AbiVersion, Runtime, RuntimeConfig};
use sluice_host::stream::FilterStatus;

const V010: &str = r#"(module
  (import "env" "proxy_get_configuration" (func $cfg (param i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_request" (func $continue (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 16) "x-v010")
  (data (i32.const 32) "yes")
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n))) (local.get $p))
  (func (export "proxy_abi_version_0_1_0"))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $cfg (i32.const 100) (i32.const 104)))
    ;; log the configuration the host returned
    (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 32) (i32.const 3)))
    (i32.const 1))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (drop (call $continue))
    (i32.const 0)))"#;

#[test]
fn abi_0_1_0_module_runs() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    assert_eq!(rt.load(V010.as_bytes()).unwrap().info().abi, AbiVersion::V0_1_0);
    let mut h = Harness::builder().module_bytes(V010).plugin_config("old-style config").build().unwrap();
    assert_eq!(h.logs()[0].message, "old-style config");
    let mut s = h.http_stream();
    let st = s.request_headers([(":method", "POST"), (":path", "/")], false).unwrap();
    assert_eq!(st, FilterStatus::StopAllIterationAndWatermark);
    assert_eq!(s.current_request_headers().unwrap().get_str("x-v010"), Some("yes"));
    assert_eq!(s.request_body("b", true).unwrap(), FilterStatus::Buffered);
    // Nothing resumed it: the body callback never ran.
    assert!(!s.upstream_request().headers_forwarded);
}

const COMMAND: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "env" "emscripten_notify_memory_growth" (func $grow (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "started\n")
  (data (i32.const 0) "\10\00\00\00\08\00\00\00")
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
    (drop (call $poll (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64)))
    (drop (call $yield))
    (call $grow (i32.const 0))
    ;; no file is found (ENOENT, as Envoy answers)
    (if (i32.ne (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                  (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 64)) (i32.const 44))
      (then unreachable))
    ;; no directory is preopened: EBADF, the answer Go's wasip1 runtime needs to start
    (if (i32.ne (call $prestat (i32.const 3) (i32.const 64)) (i32.const 8))
      (then unreachable))))"#;

#[test]
fn wasi_command_with_go_and_emscripten_imports_starts() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let m = rt.load(COMMAND.as_bytes()).unwrap();
    assert_eq!((m.info().abi, m.info().start), (AbiVersion::V0_2_0, Some("_start")));
    let h = Harness::builder().module_bytes(COMMAND).build().unwrap();
    assert_eq!(h.logs()[0].message, "started");
    assert_eq!(h.logs()[0].level, sluice_host::abi::status::LogLevel::Info);
}

const REACTOR: &str = r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $main_ran (mut i32) (i32.const 0))
  (data (i32.const 16) "main ran")
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize"))
  (func (export "main") (param i32 i32) (result i32)
    ;; only logging is allowed while starting; a proxy call here would trap
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 8)))
    (i32.const 0)))"#;

#[test]
fn reactor_main_runs_after_initialize() {
    let h = Harness::builder().module_bytes(REACTOR).build().unwrap();
    assert_eq!(h.logs()[0].message, "main ran");
}

const PROXY_CALL_AT_START: &str = r#"(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize")
    (drop (call $get (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))))"#;

#[test]
fn proxy_calls_while_starting_fail_like_v8() {
    let err = Harness::builder().module_bytes(PROXY_CALL_AT_START).build().unwrap_err();
    assert!(err.to_string().contains("proxy_get_header_map_value called while the module was starting"), "{err}");
}

#[test]
fn a_wrong_callback_signature_is_a_load_error() {
    let bad = r#"(module (memory (export "memory") 1)
      (func (export "malloc") (param i32) (result i32) (i32.const 8))
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_tick") (param i64)))"#;
    let err = Harness::builder().module_bytes(bad).build().unwrap_err();
    assert!(err.to_string().contains("export `proxy_on_tick` has the wrong signature"), "{err}");
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let dir = std::env::temp_dir().join(format!("sluice-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = RuntimeConfig { cache_dir: Some(dir.clone()), ..Default::default() };
    Runtime::new(config.clone()).unwrap().load(REACTOR.as_bytes()).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "one compiled module");
    // A second runtime (a new process, in effect) loads the cached code and runs it.
    let rt = std::sync::Arc::new(Runtime::new(config).unwrap());
    let mut h = Harness::builder().runtime(rt).module_bytes(REACTOR).build().unwrap();
    assert_eq!(h.exchange(Request::get("/"), |_| Response::new(204)).unwrap().status(), Some(204));
    let _ = std::fs::remove_dir_all(&dir);
}
