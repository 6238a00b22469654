//! Criterion benchmarks of the host's hot paths. Run: `cargo bench -p sluice-host --bench host`.
//!
//! - `instance_ready`: a fresh isolated instance ready to serve (instantiate, `_initialize`, root
//!   context, `on_vm_start`, `on_configure`), pooling allocator with copy-on-write memory images.
//! - `http_stream`: one whole HTTP exchange through a header-mutating filter (official SDK),
//!   driven through the core as `sluice serve` drives it; `harness_exchange`: the same through the
//!   test harness (`Harness::exchange`, which also keeps every log line).
//! - `hostcall/get_header_map_value`: one header read, measured as a loop of 1000 inside the guest.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_host::chain::HttpChain;
use sluice_host::harness::{Harness, Request, Response};
use sluice_host::plugin_vm::{Direction, Forwarded, PluginId, PluginVm, DEFAULT_BUFFER_LIMIT};
use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_host::state::SharedState;
use sluice_host::stream::{HeaderMap, StreamInfo};
use sluice_host::vm::{NoQueues, PluginInfo, ProxyEnv, RealClock, TracingLogSink, Vm, VmOptions};
use wasmtime::Val;

#[path = "../../integration/src/wasm.rs"]
#[allow(dead_code)]
mod wasm;

fn instance_ready(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig { pooling_instances: Some(64), ..Default::default() }).unwrap();
    let module = runtime.load_file(wasm::reference_filter("headers")).unwrap();
    let env = Arc::new(ProxyEnv::new(Arc::new(SharedState::default()), Arc::new(TracingLogSink), RealClock::shared()));
    let plugin = PluginInfo { name: "bench".into(), ..Default::default() };
    c.bench_function("instantiate_only", |b| {
        b.iter(|| Vm::new(&runtime, module.clone(), VmOptions::default(), env.clone(), Arc::new(NoQueues)).unwrap())
    });
    c.bench_function("instance_ready", |b| {
        b.iter(|| {
            let mut vm =
                Vm::new(&runtime, module.clone(), VmOptions::default(), env.clone(), Arc::new(NoQueues)).unwrap();
            vm.start_plugin(plugin.clone()).unwrap();
            vm
        })
    });
}

/// One exchange driven through the core as `sluice serve` drives it, a chain of one filter: open,
/// request headers, what went upstream, response headers, what went to the client (on_log,
/// on_done, on_delete), close.
fn http_stream(c: &mut Criterion) {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let module = runtime.load_file(wasm::reference_filter("headers")).unwrap();
    let env = Arc::new(ProxyEnv::new(Arc::new(SharedState::default()), Arc::new(TracingLogSink), RealClock::shared()));
    let plugin = PluginInfo { name: "bench".into(), ..Default::default() };
    let mut vms = vec![PluginVm::start(&runtime, module, env, plugin, VmOptions::default()).unwrap()];
    let request = HeaderMap::from_pairs([
        (":authority", "example.com"),
        (":path", "/bench"),
        (":method", "GET"),
        (":scheme", "http"),
        ("x-echo-in", "hi"),
        ("x-replaced", "old"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "00000000-0000-4000-8000-000000000001"),
    ]);
    let response = HeaderMap::from_pairs([(":status", "200"), ("content-length", "0"), ("x-upstream-remove", "1")]);
    let info = StreamInfo {
        source: Some(([127, 0, 0, 1], 40000).into()),
        destination: Some(([127, 0, 0, 1], 10000).into()),
        protocol: Some("HTTP/1.1".into()),
        connection_id: 1,
        ..Default::default()
    };
    c.bench_function("http_stream", |b| {
        b.iter(|| {
            let mut chain = HttpChain::open(&mut vms, [(0, PluginId::FIRST)], &info, DEFAULT_BUFFER_LIMIT);
            let whole =
                |h: &HeaderMap| Forwarded { headers: Some(h.clone()), end_of_stream: true, ..Default::default() };
            chain.push(&mut vms, Direction::Request, whole(&request));
            let up = chain.pull(&mut vms, Direction::Request);
            chain.push(&mut vms, Direction::Response, whole(&response));
            let down = chain.pull(&mut vms, Direction::Response);
            chain.close(&mut vms);
            assert!(up.end_of_stream && down.end_of_stream && chain.is_complete());
            vms[0].take_effects()
        })
    });
    let mut h = Harness::builder().module_file(wasm::reference_filter("headers")).build().unwrap();
    let req = Request::get("/bench").header("x-echo-in", "hi").header("x-replaced", "old");
    c.bench_function("harness_exchange", |b| {
        b.iter(|| h.exchange(req.clone(), |_| Response::new(200).header("x-upstream-remove", "1")).unwrap())
    });
}

/// A guest that reads one request header `n` times into a fixed buffer.
const HEADER_LOOP: &str = r#"(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "x-key")
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))
  (func (export "read_n") (param $n i32) (result i32)
    (local $s i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $s (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 64) (i32.const 68)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $s)))"#;

fn hostcall(c: &mut Criterion) {
    let mut h = Harness::builder().module_bytes(HEADER_LOOP).build().unwrap();
    let mut s = h.http_stream();
    s.request_headers([(":method", "GET"), (":path", "/"), ("x-key", "a-typical-header-value")], true).unwrap();
    let ctx = s.context_id().unwrap();
    let mut g = c.benchmark_group("hostcall");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("get_header_map_value", |b| {
        b.iter(|| {
            let r = h.vm().invoke("read_n", ctx, &[Val::I32(1000)]).unwrap();
            assert_eq!(r[0].unwrap_i32(), 0);
        })
    });
    g.finish();
}

criterion_group!(benches, instance_ready, http_stream, hostcall);
criterion_main!(benches);
