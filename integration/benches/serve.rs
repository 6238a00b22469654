//! Load test: `sluice serve` against the real Envoy 1.40, one worker each, with and without the
//! header-mutating reference filter, in alternating runs of `wrk`: on a direct-response route, and
//! routed to a local nginx upstream (both proxies to the same nginx, in the same run).
//! Run: `cargo bench -p sluice-integration --bench serve` (needs `wrk` and `nginx`:
//! `apt-get install wrk nginx-light`). `BENCH_SECONDS` (default 5) and `BENCH_ROUNDS` (default 2)
//! size it. `BENCH_BASELINE=/path/to/an/older/sluice` measures that binary too, in the same
//! rounds, as "sluice baseline" (an A/B of a change, with Envoy beside both).

use std::process::Command;

use sluice_integration::envoy::{Envoy, EnvoyConfig};
use sluice_integration::reference;
use sluice_integration::sluice::{sluice_release_binary, SluiceServe};

struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The proxy's CPU time (user + system) per request, in µs.
    cpu_us: f64,
}

/// A process's CPU time so far (user + system), in µs.
fn cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    // Linux reports these in USER_HZ, 100 per second.
    ticks * 10_000.0
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

fn wrk(port: u16, pid: u32, seconds: u64) -> Run {
    let cpu_before = cpu_us(pid);
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{seconds}s"), "--latency", &format!("http://127.0.0.1:{port}/bench")])
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let cpu = cpu_us(pid) - cpu_before;
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()));
    let requests: f64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or(f64::NAN);
    Run {
        cpu_us: cpu / requests,
        rps: find("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: find("50%").map(|v| millis(&v)).unwrap_or(f64::NAN),
        p99_ms: find("99%").map(|v| millis(&v)).unwrap_or(f64::NAN),
    }
}

/// A local nginx answering `200 ok` to everything, one worker, no logs. Killed on drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start() -> Nginx {
        let port = sluice_integration::ports::free_port();
        let dir = std::env::temp_dir().join(format!("sluice-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1; daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               keepalive_requests 1000000;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\"; }} }} }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &dir.display().to_string(), "-c", &dir.join("nginx.conf").display().to_string()])
            .spawn()
            .expect("nginx is installed (apt-get install nginx-light)");
        // Owned at once: a panic below still kills it.
        let nginx = Nginx { child, port, _dir: dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("nginx did not start on {port}");
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let sluice = sluice_release_binary();
    let baseline = std::env::var_os("BENCH_BASELINE").map(std::path::PathBuf::from);
    let nginx = Nginx::start();
    let configs = [
        ("direct, no filter", EnvoyConfig::http_without_filter().direct_response(200, "ok")),
        ("direct, ref_headers", EnvoyConfig::http(reference("headers", "")).direct_response(200, "ok")),
        ("nginx, no filter", EnvoyConfig::http_without_filter().cluster("upstream", nginx.port)),
        ("nginx, ref_headers", EnvoyConfig::http(reference("headers", "")).cluster("upstream", nginx.port)),
    ];
    let mut results: Vec<(String, String, Vec<Run>)> = Vec::new();
    for (label, config) in &configs {
        let envoy = Envoy::start_quiet(config).expect("envoy starts");
        let serve = SluiceServe::start_quiet(config, &sluice).expect("sluice starts");
        let base = baseline.as_ref().map(|b| SluiceServe::start_quiet(config, b).expect("the baseline starts"));
        let (mut e_runs, mut s_runs, mut b_runs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            e_runs.push(wrk(envoy.port, envoy.pid(), seconds));
            s_runs.push(wrk(serve.port, serve.pid(), seconds));
            if let Some(b) = &base {
                b_runs.push(wrk(b.port, b.pid(), seconds));
            }
        }
        results.push(("Envoy 1.40".into(), label.to_string(), e_runs));
        results.push(("sluice serve".into(), label.to_string(), s_runs));
        if base.is_some() {
            results.push(("sluice baseline".into(), label.to_string(), b_runs));
        }
    }
    let proxies: &[&str] = if baseline.is_some() {
        &["Envoy 1.40", "sluice serve", "sluice baseline"]
    } else {
        &["Envoy 1.40", "sluice serve"]
    };
    println!("| proxy | route, filter | requests/s | p50 ms | p99 ms | proxy CPU µs/request |");
    println!("|---|---|---|---|---|---|");
    let mean = |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    for (proxy, label, runs) in &results {
        let (rps, p50, p99) = (mean(runs, |r| r.rps), mean(runs, |r| r.p50_ms), mean(runs, |r| r.p99_ms));
        let cpu = mean(runs, |r| r.cpu_us);
        println!("| {proxy} | {label} | {rps:.0} | {p50:.3} | {p99:.3} | {cpu:.1} |");
    }
    // What the filter costs a request: 1/rps with it − 1/rps without it (one worker each), and
    // the same in the proxy's own CPU time (steadier on a shared machine).
    println!();
    println!("| route | proxy | filter cost µs/request (1/rps) | filter cost, proxy CPU µs/request | requests/s ÷ Envoy's | p99 ÷ Envoy's |");
    println!("|---|---|---|---|---|---|");
    for route in ["direct", "nginx"] {
        let find = |proxy: &str, filter: &str| {
            let label = format!("{route}, {filter}");
            &results.iter().find(|(p, l, _)| p == proxy && *l == label).expect("measured").2
        };
        let envoy_with = find("Envoy 1.40", "ref_headers");
        for &proxy in proxies {
            let (with, without) = (find(proxy, "ref_headers"), find(proxy, "no filter"));
            let cost = 1e6 / mean(with, |r| r.rps) - 1e6 / mean(without, |r| r.rps);
            let cpu_cost = mean(with, |r| r.cpu_us) - mean(without, |r| r.cpu_us);
            let rps_ratio = mean(with, |r| r.rps) / mean(envoy_with, |r| r.rps);
            let p99_ratio = mean(with, |r| r.p99_ms) / mean(envoy_with, |r| r.p99_ms);
            println!("| {route} | {proxy} | {cost:.1} | {cpu_cost:.1} | {rps_ratio:.2} | {p99_ratio:.2} |");
        }
    }
}
