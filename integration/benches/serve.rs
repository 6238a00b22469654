//! Load test: `sluice serve` against the real Envoy 1.40, one worker each, on a direct-response route,
//! with and without the header-mutating reference filter, in alternating runs of `wrk`.
//! Run: `cargo bench -p sluice-integration --bench serve` (needs `wrk`: `apt-get install wrk`).
//! `BENCH_SECONDS` (default 5) and `BENCH_ROUNDS` (default 2) size it.

use std::process::Command;

use sluice_integration::envoy::{Envoy, EnvoyConfig};
use sluice_integration::reference;
use sluice_integration::sluice::{sluice_release_binary, SluiceServe};

struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn millis(s: &str) -> f64 {
    let (n, unit) = s.trim().split_at(s.trim().find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

fn wrk(port: u16, seconds: u64) -> Run {
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{seconds}s"), "--latency", &format!("http://127.0.0.1:{port}/bench")])
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()));
    Run {
        rps: find("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: find("50%").map(|v| millis(&v)).unwrap_or(f64::NAN),
        p99_ms: find("99%").map(|v| millis(&v)).unwrap_or(f64::NAN),
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let sluice = sluice_release_binary();
    let configs = [
        ("no filter", EnvoyConfig::http_without_filter().direct_response(200, "ok")),
        ("ref_headers filter", EnvoyConfig::http(reference("headers", "")).direct_response(200, "ok")),
    ];
    let mut results: Vec<(String, String, Vec<Run>)> = Vec::new();
    for (label, config) in &configs {
        let envoy = Envoy::start_quiet(config).expect("envoy starts");
        let serve = SluiceServe::start_quiet(config, &sluice).expect("sluice starts");
        let (mut e_runs, mut s_runs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            e_runs.push(wrk(envoy.port, seconds));
            s_runs.push(wrk(serve.port, seconds));
        }
        results.push(("Envoy 1.40".into(), label.to_string(), e_runs));
        results.push(("sluice serve".into(), label.to_string(), s_runs));
    }
    println!("| proxy | filter | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for (proxy, label, runs) in &results {
        let n = runs.len() as f64;
        let avg = |f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / n;
        println!("| {proxy} | {label} | {:.0} | {:.3} | {:.3} |", avg(|r| r.rps), avg(|r| r.p50_ms), avg(|r| r.p99_ms));
    }
}
