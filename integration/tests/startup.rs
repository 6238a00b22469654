//! A plugin that refuses its configuration after taking its time (600 ms of `on_configure`) fails
//! the start in Envoy and in `sluice serve` alike, with the same exit code: nothing is served. (How
//! the server's threads report such a failure, at any time, is pinned in
//! `host/proxy/src/server/readiness.rs`.)

use std::path::Path;
use std::time::Duration;

use sluice_integration::envoy::WasmFilter;
use sluice_integration::proxy::{self, Which};
use sluice_integration::wasm::workspace_root;
use sluice_integration::EnvoyConfig;

/// A module whose `on_configure` spins on WASI's monotonic clock for `ms`, then refuses.
fn late_refusal(ms: u64) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (local $start i64)
    (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0)))
    (local.set $start (i64.load (i32.const 0)))
    (block $done
      (loop $spin
        (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0)))
        (br_if $done (i64.gt_u (i64.sub (i64.load (i32.const 0)) (local.get $start)) (i64.const {ns})))
        (br $spin)))
    (i32.const 0)))"#,
        ns = ms * 1_000_000
    ))
    .expect("the module's text")
}

#[test]
fn a_plugin_that_refuses_its_configuration_late_fails_the_start_in_both() {
    let dir = workspace_root().join("target/startup-test");
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join("late_refusal.wasm");
    std::fs::write(&module, late_refusal(600)).unwrap();
    let yaml = EnvoyConfig::http(WasmFilter::named(module, "late")).direct_response(200, "").render();
    let mut seen = Vec::new();
    for which in [Which::Envoy, Which::Sluice] {
        let config = proxy::loopback(&yaml, 1).unwrap();
        let (code, log) = proxy::run_to_exit(which.clone(), &config, Path::new("."), Duration::from_secs(30)).unwrap();
        seen.push((which, code, log));
    }
    // Each exits before it is ready (what `run_to_exit` reports as exit code 1, with the status).
    let (envoy, sluice) = (&seen[0], &seen[1]);
    for (which, code, log) in &seen {
        assert_eq!(*code, Some(1), "{which:?} refuses the start:\n{log}");
        assert!(log.contains("exited with exit status: 1 before it was ready"), "{which:?} exits with 1:\n{log}");
    }
    assert!(envoy.2.contains("late") && sluice.2.contains("late"), "both name the plugin:\n{}\n{}", envoy.2, sluice.2);
}

/// `--admin-address-path`: once the admin listens, both write its address (`IP:PORT`, nothing
/// else) to the file, so that a tool finds an admin bound to port 0; the address answers.
#[test]
fn the_admin_address_is_written_where_the_command_line_says() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let yaml = EnvoyConfig::http_without_filter().direct_response(200, "").render()
        + "admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n";
    for (who, binary) in [("Envoy", sluice_integration::envoy::envoy_binary()), ("sluice", proxy::sluice_as_envoy())] {
        let dir = workspace_root().join("target/startup-test").join(format!("admin-path-{who}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("admin"));
        std::fs::write(dir.join("envoy.yaml"), &yaml).unwrap();
        let mut child = Command::new(&binary)
            .arg("-c")
            .arg(dir.join("envoy.yaml"))
            .args(["--concurrency", "1", "--disable-hot-restart", "-l", "error", "--admin-address-path"])
            .arg(dir.join("admin"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The file appears once the admin listens: wait for it, as a tool would.
        let deadline = Instant::now() + Duration::from_secs(30);
        let written = loop {
            match std::fs::read_to_string(dir.join("admin")) {
                Ok(text) if !text.is_empty() => break Some(text),
                _ if Instant::now() > deadline => break None,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let ready = written
            .as_ref()
            .and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok())
            .map(|port| sluice_integration::client::get(port, "/ready").map(|r| r.status()).unwrap_or_default());
        let _ = child.kill();
        let _ = child.wait();
        let written = written.unwrap_or_else(|| panic!("{who} wrote no admin address"));
        assert!(written.starts_with("127.0.0.1:") && !written.contains('\n'), "{who}: {written:?}");
        assert_eq!(ready, Some(200), "{who}: /ready at the written address");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `--hot-restart-version`: Envoy prints the hot-restart protocol's version and exits, or
/// `disabled` when hot restart is off, as it always is in sluice; tools that compare the versions
/// of two binaries before a hot restart get an answer instead of a proxy that starts serving.
#[test]
fn the_hot_restart_version_is_answered_and_the_process_exits() {
    use std::process::Command;
    let envoy = Command::new(sluice_integration::envoy::envoy_binary())
        .args(["--hot-restart-version", "--disable-hot-restart"])
        .output()
        .unwrap();
    let sluice = Command::new(proxy::sluice_as_envoy()).args(["--hot-restart-version"]).output().unwrap();
    let said =
        |o: &std::process::Output| (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned(), o.stdout.len());
    assert_eq!(said(&envoy), (Some(0), "disabled".to_string(), 0), "Envoy");
    assert_eq!(said(&sluice), said(&envoy), "sluice, Envoy");
}
