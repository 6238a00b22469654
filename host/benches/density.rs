//! Density: how many live, configured instances fit in one process, and their resident memory.
//! Run: `cargo bench -p sluice-host --bench density` (`DENSITY_N` sets the count, default 10000).

use std::sync::Arc;
use std::time::Instant;

use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_host::state::SharedState;
use sluice_host::vm::{NoQueues, PluginInfo, ProxyEnv, RealClock, TracingLogSink, Vm, VmOptions};

#[path = "../../integration/src/wasm.rs"]
#[allow(dead_code)]
mod wasm;

#[path = "support/rss.rs"]
mod rss;
use rss::rss_kib;

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let n: u32 = std::env::var("DENSITY_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let runtime = Runtime::new(RuntimeConfig { pooling_instances: Some(n), ..Default::default() }).expect("runtime");
    let module = runtime.load_file(wasm::reference_filter("headers")).expect("module");
    let env = Arc::new(ProxyEnv::new(Arc::new(SharedState::default()), Arc::new(TracingLogSink), RealClock::shared()));
    let plugin = PluginInfo { name: "density".into(), ..Default::default() };
    let before = rss_kib();
    let start = Instant::now();
    let mut vms = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut vm = Vm::new(&runtime, module.clone(), VmOptions::default(), env.clone(), Arc::new(NoQueues))
            .unwrap_or_else(|e| panic!("instance {i}: {e}"));
        vm.start_plugin(plugin.clone()).unwrap_or_else(|e| panic!("instance {i}: {e}"));
        vms.push(vm);
    }
    let elapsed = start.elapsed();
    let after = rss_kib();
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "density: {n} live configured instances of ref_headers.wasm ({} bytes of wasm)",
        std::fs::metadata(wasm::reference_filter("headers")).map(|m| m.len()).unwrap_or(0)
    );
    println!("  created in {:.2} s ({:.1} us each)", elapsed.as_secs_f64(), elapsed.as_secs_f64() * 1e6 / n as f64);
    println!(
        "  resident memory: {} MiB before, {} MiB after, {:.1} KiB per instance",
        before / 1024,
        after / 1024,
        per
    );
    drop(vms);
}
