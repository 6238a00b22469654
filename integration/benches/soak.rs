//! Soak: a bounded load through a filter with the proxy's memory sampled, Envoy beside sluice;
//! then FAIL_RELOAD churn: a VM that fails and is replaced over and over, memory sampled.
//! Run: `cargo bench -p sluice-integration --bench soak` (needs `wrk`: `apt-get install wrk`).
//! `SOAK_SECONDS` (default 60; 0 runs the churn alone) sizes the load, `CHURN_RELOADS` (default
//! 2000) the churn.
//!
//! Prints, for each proxy: requests, errors (non-2xx and socket errors as wrk counts them), the
//! resident set at the start and end, and its slope (least squares, KiB per minute); for the
//! churn: reloads done and the harness process's resident set slope (KiB per 1000 reloads).

use std::process::Command;
use std::time::{Duration, Instant};

use sluice_host::harness::{Harness, Request, Response};
use sluice_host::vm::FailurePolicy;
use sluice_integration::envoy::{Envoy, EnvoyConfig};
use sluice_integration::reference;
use sluice_integration::sluice::{sluice_release_binary, SluiceServe};
use sluice_integration::wasm::reference_filter;

/// A process's resident set, in KiB (`VmRSS` in `/proc/PID/status`).
fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Least-squares slope of `ys` over `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    cov / var
}

/// One wrk run of `seconds`: (requests, errors).
fn wrk(port: u16, seconds: u64) -> (u64, u64) {
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{seconds}s"), &format!("http://127.0.0.1:{port}/soak")])
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or(0);
    let non_2xx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|v| v.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    (requests, non_2xx + socket)
}

fn soak(name: &str, port: u16, pid: u32, seconds: u64) {
    let step = 5.min(seconds).max(1);
    let start = Instant::now();
    let (mut requests, mut errors) = (0, 0);
    let (mut xs, mut ys) = (vec![0.0], vec![rss_kib(pid)]);
    while start.elapsed() < Duration::from_secs(seconds) {
        let (r, e) = wrk(port, step);
        requests += r;
        errors += e;
        xs.push(start.elapsed().as_secs_f64() / 60.0);
        ys.push(rss_kib(pid));
    }
    println!("| {name} | {requests} | {errors} | {:.0} | {:.0} | {:+.0} |", ys[0], ys[ys.len() - 1], slope(&xs, &ys));
}

fn churn(reloads: usize) {
    let mut h = Harness::builder()
        .module_file(reference_filter("trap"))
        .failure_policy(FailurePolicy::FailReload)
        .build()
        .expect("the trap filter starts");
    let me = std::process::id();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..reloads {
        let failed = h.exchange(Request::get("/x").header("x-fault", "panic"), |_| Response::new(200)).unwrap();
        assert_eq!(failed.status(), Some(503));
        // Past the reload backoff: the next stream gets a fresh VM.
        h.advance_time(Duration::from_millis(1100)).unwrap();
        let ok = h.exchange(Request::get("/x"), |_| Response::new(200)).unwrap();
        assert_eq!(ok.status(), Some(200), "reload {i} serves again");
        if i % 100 == 0 {
            xs.push(i as f64 / 1000.0);
            ys.push(rss_kib(me));
        }
    }
    // The harness keeps every log line by design (a test reads them): their size, to tell it
    // apart from what the VMs' turnover itself leaves behind.
    let logs = h.logs();
    let kept: usize = logs.iter().map(|l| l.message.len() + l.plugin.len() + l.root_id.len() + l.vm_id.len()).sum();
    println!(
        "| FAIL_RELOAD churn (harness) | {reloads} reloads in {:.1} s | RSS {:.0} → {:.0} KiB | {:+.0} KiB per 1000 reloads | {} log lines kept, {:.0} KiB of text ({:.0} KiB per 1000 reloads) |",
        started.elapsed().as_secs_f64(),
        ys[0],
        ys[ys.len() - 1],
        slope(&xs, &ys),
        logs.len(),
        kept as f64 / 1024.0,
        kept as f64 / 1024.0 / (reloads as f64 / 1000.0)
    );
}

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let reloads: usize = std::env::var("CHURN_RELOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    if seconds == 0 {
        // The churn alone (no proxies, no release build).
        churn(reloads);
        return;
    }
    let sluice = sluice_release_binary();
    let config = EnvoyConfig::http(reference("headers", "")).direct_response(200, "ok");
    println!("| proxy | requests | errors | RSS start KiB | RSS end KiB | RSS slope KiB/min |");
    println!("|---|---|---|---|---|---|");
    {
        let envoy = Envoy::start_quiet(&config).expect("envoy starts");
        soak("Envoy 1.40", envoy.port, envoy.pid(), seconds);
    }
    {
        let serve = SluiceServe::start_quiet(&config, &sluice).expect("sluice starts");
        soak("sluice serve", serve.port, serve.pid(), seconds);
    }
    println!();
    churn(reloads);
}
