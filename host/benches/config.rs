//! What reading a bootstrap against Envoy's API schema costs: decoding the embedded descriptor set
//! (once per configuration load; let go afterwards) and reading each of the SDK examples' own `envoy.yaml` (every time).
//! Run: `cargo bench -p sluice-host --bench config` (needs `../shared/thirdparty/` beside the
//! workspace).

use std::time::{Duration, Instant};

#[path = "support/rss.rs"]
mod rss;
use rss::rss_kib;

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/thirdparty");
    let mut files: Vec<_> = ["proxy-wasm-go-sdk/examples", "proxy-wasm-rust-sdk-examples"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten().flatten())
        .map(|e| e.path().join("envoy.yaml"))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        eprintln!("no envoy.yaml under {}", root.display());
        std::process::exit(1);
    }
    let texts: Vec<String> = files.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect();
    let rss_before = rss_kib();
    let first = Instant::now();
    let schema = sluice_host::config::hold_schema();
    let first = first.elapsed();
    let rss_held = rss_kib();
    let mut per_file = Vec::new();
    for (path, text) in files.iter().zip(&texts) {
        let runs = 50;
        let start = Instant::now();
        let mut ok = true;
        for _ in 0..runs {
            ok &= sluice_host::config::canonical(text).is_ok();
        }
        let each = start.elapsed() / runs;
        let name =
            path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        per_file.push((name, each, ok, text.len()));
    }
    println!(
        "decoding Envoy's schema: {:.1} ms, resident memory while held: +{} KiB",
        first.as_secs_f64() * 1e3,
        rss_held.saturating_sub(rss_before)
    );
    println!("{:<28} {:>8} {:>10}  accepted", "example", "bytes", "per read");
    for (name, each, ok, len) in &per_file {
        println!("{name:<28} {len:>8} {:>8.1} µs  {ok}", each.as_secs_f64() * 1e6);
    }
    let total: Duration = per_file.iter().map(|(_, d, _, _)| *d).sum();
    println!(
        "mean per bootstrap: {:.1} µs over {} files",
        total.as_secs_f64() * 1e6 / per_file.len() as f64,
        per_file.len()
    );
    drop(schema);
    println!("resident memory once the schema is let go: +{} KiB over the start", rss_kib().saturating_sub(rss_before));
}
