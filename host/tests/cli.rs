//! `sluice check` on every reference filter, and its one-line errors on broken input.

use std::path::Path;
use std::process::Command;

#[path = "../../integration/src/wasm.rs"]
#[allow(dead_code)]
mod wasm;

const REFERENCE: &[&str] =
    &["headers", "body", "local-reply", "properties", "shared", "metrics", "timers", "callout", "trap", "grpc", "tcp"];

fn check(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).arg("check").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tmp(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("sluice-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn every_reference_filter_checks_out() {
    let period = tmp("period", b"100");
    for name in REFERENCE {
        let module = wasm::reference_filter(name);
        let mut args = vec![module.as_os_str()];
        if *name == "timers" {
            args.extend([std::ffi::OsStr::new("--plugin-config"), period.as_os_str()]);
        }
        let (ok, stdout, stderr) = check(&args);
        assert!(ok, "{name}: {stderr}\n{stdout}");
        assert!(stdout.contains("abi        proxy-wasm 0.2.1"), "{stdout}");
        assert!(stdout.contains("env.proxy_log"), "{stdout}");
        assert!(stdout.contains("configure  ok"), "{stdout}");
        assert!(!stdout.contains("MISSING"), "{stdout}");
    }
}

fn fails_with(module: &Path, extra: &[&str], expected: &str) {
    let mut args = vec![module.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (ok, _, stderr) = check(&args);
    assert!(!ok, "should fail: {}", module.display());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{stderr}");
}

#[test]
fn broken_input_gives_one_clear_line() {
    fails_with(
        &tmp("text.wasm", b"hello"),
        &[],
        "not a WebAssembly module (it does not start with the \\0asm magic number)",
    );
    fails_with(&tmp("empty.wasm", b""), &[], "the file is empty");
    fails_with(&tmp("cut.wasm", b"\0asm\x01\0\0\0\x01\x05"), &[], "the module does not compile");
    fails_with(Path::new("/nonexistent/x.wasm"), &[], "cannot read the module /nonexistent/x.wasm");
    let no_marker = tmp(
        "nomarker.wat",
        br#"(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) i32.const 8))"#,
    );
    fails_with(&no_marker, &[], "exports no ABI version marker");
    let missing = tmp(
        "missing.wat",
        br#"(module (import "env" "proxy_teleport" (func)) (memory (export "memory") 1)
           (func (export "malloc") (param i32) (result i32) i32.const 8) (func (export "proxy_abi_version_0_2_1")))"#,
    );
    fails_with(&missing, &[], "env.proxy_teleport");
    let trap = tmp(
        "trap.wat",
        br#"(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) i32.const 8)
           (func (export "proxy_abi_version_0_2_1"))
           (func (export "proxy_on_configure") (param i32 i32) (result i32) unreachable))"#,
    );
    fails_with(&trap, &[], "proxy_on_configure failed: wasm trap: wasm `unreachable` instruction executed");
    let timers = wasm::reference_filter("timers");
    fails_with(&timers, &[], "proxy_on_configure returned false");
    fails_with(&timers, &["--plugin-config", "/nonexistent/cfg"], "cannot read the plugin configuration");
}

fn serve_yaml(module: &Path, config: &str) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: http
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - {{ name: all, domains: ["*"], routes: [ {{ match: {{ prefix: "/" }}, direct_response: {{ status: 200 }} }} ] }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: timers
                configuration: {{ "@type": type.googleapis.com/google.protobuf.StringValue, value: '{config}' }}
                vm_config: {{ runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: {} }} }} }}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
tracing: {{}}
"#,
        module.display()
    )
}

#[test]
fn serve_validate_checks_the_config_and_starts_each_plugin() {
    let timers = wasm::reference_filter("timers");
    let good = tmp("good.yaml", serve_yaml(&timers, "100").as_bytes());
    let out =
        Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--validate", "-c"]).arg(&good).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("configuration OK: 1 listener(s), 0 cluster(s), 1 plugin(s) started and configured"),
        "{stdout}"
    );
    // One log line in Envoy's format, component `config`.
    assert!(
        stderr.lines().any(|l| l.contains("[warning][config]") && l.contains("(top level).tracing: ignored")),
        "{stderr}"
    );
    // The plugin rejects its configuration: the whole configuration fails, as in Envoy.
    let bad = tmp("bad.yaml", serve_yaml(&timers, "soon").as_bytes());
    let out =
        Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--validate", "-c"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("plugin `timers` (listener `http`) failed to start"), "{stderr}");
    assert!(stderr.contains("proxy_on_configure returned false"), "{stderr}");
}

#[test]
fn serve_refuses_a_broken_module_with_a_clear_error() {
    let garbage = tmp("garbage.wasm", b"definitely not wasm");
    let yaml = tmp("broken.yaml", serve_yaml(&garbage, "").as_bytes());
    // Not --validate: serving must not start on a module that cannot load.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "-c"]).arg(&yaml).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(error[0].contains("plugin `timers` (listener `http`)"), "{stderr}");
    assert!(error[0].contains("not a WebAssembly module"), "{stderr}");
}
