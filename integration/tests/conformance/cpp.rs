//! The C++ SDK's examples, built with both toolchains Envoy's users build with (Emscripten and
//! clang for wasm32-wasi, from Debian's packages), on a bootstrap of ours (the SDK ships none):
//! the same requests in Envoy and in sluice must get the same answers and guest log lines.

use std::path::Path;
use std::time::Duration;

use sluice_integration::proxy;
use sluice_integration::proxy_log::guest_messages;
use sluice_integration::thirdparty::{self, Sdk, Toolchain, CPP_EXAMPLES};
use sluice_integration::wasm::workspace_root;
use sluice_integration::{last_lines, Upstream};

use crate::sdk_examples::{get, play, Example, Req};

/// One listener on port 10000 whose only filter before the router is the module (root id empty,
/// as the examples register their root context), proxying to one upstream; an admin listener.
pub fn bootstrap(module: &Path) -> String {
    bootstrap_failing(module, "UNSPECIFIED")
}

/// [`bootstrap`] with the plugin's `failure_policy`.
fn bootstrap_failing(module: &Path, failure_policy: &str) -> String {
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 0.0.0.0, port_value: 9901 }} }}
static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 0.0.0.0, port_value: 10000 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: backend }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: cpp_example
                failure_policy: {failure_policy}
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{module}" }} }}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: backend
    connect_timeout: 1s
    type: STRICT_DNS
    load_assignment:
      cluster_name: backend
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: backend, port_value: 80 }} }} }} }}] }}]
"#,
        module = module.display()
    )
}

/// The project's own C++ probe ([`libc_probe.cc`](probes/libc_probe.cc)), built with `toolchain`,
/// under `failure_policy`: requests that make the guest grow its memory by 40 MiB, make WASI file
/// calls, call `exit(3)` (WASI's `proc_exit`) and `abort()`, with plain ones before, between and
/// after.
/// Envoy and sluice must give the same answers and the same guest lines, and log the WASI calls
/// alike (`proc_exit` at trace level, as the host's line, not the guest's).
pub fn libc_probe(toolchain: Toolchain, failure_policy: &str) -> Result<(), String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/probes/libc_probe.cc");
    let module = thirdparty::cpp_module(toolchain, &source).map_err(|e| format!("{e:#}"))?;
    let upstream = Upstream::start().map_err(|e| e.to_string())?;
    let plain = || get(10000, "/");
    let requests = [
        plain(),
        Req { headers: &[("x-grow", "40")], ..plain() },
        Req { headers: &[("x-fd", "seek")], ..plain() },
        Req { headers: &[("x-fd", "close")], ..plain() },
        Req { headers: &[("x-exit", "3")], ..plain() },
        plain(),
        Req { headers: &[("x-abort", "1")], ..plain() },
        plain(),
    ];
    let original = bootstrap_failing(&module, failure_policy);
    let seen = proxy::in_both(&original, upstream.port, &workspace_root(), |_, p| {
        let answers: Vec<String> = requests.iter().map(|r| play(p, r)).collect();
        let log = p.log();
        let exits: Vec<String> = log.lines().filter_map(host_wasi_line).collect();
        (answers, guest_messages(&log), exits, log)
    });
    let (envoy, sluice) = (&seen[0], &seen[1]);
    let mut problems = Vec::new();
    if envoy.0 != sluice.0 {
        problems.push(format!("answers differ:\n--- envoy ---\n{:#?}\n--- sluice ---\n{:#?}", envoy.0, sluice.0));
    }
    if envoy.1 != sluice.1 {
        problems.push(format!("guest logs differ:\n--- envoy ---\n{:#?}\n--- sluice ---\n{:#?}", envoy.1, sluice.1));
    }
    if envoy.2 != sluice.2 {
        problems.push(format!(
            "the host's WASI lines differ:\n--- envoy ---\n{:#?}\n--- sluice ---\n{:#?}",
            envoy.2, sluice.2
        ));
    }
    if !envoy.2.iter().any(|l| l == "trace wasm wasi_unstable proc_exit") {
        problems.push(format!("Envoy logged no proc_exit line at trace level: {:#?}", envoy.2));
    }
    if !envoy.1.iter().any(|m| m.contains("grew by # MiB")) {
        problems.push("Envoy's guest never grew its memory: the probe did not run".into());
    }
    if !envoy.1.iter().any(|m| m.contains("exiting with #")) {
        problems.push("Envoy's guest never reached exit(3): the probe did not run".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- envoy log ---\n{}\n--- sluice log ---\n{}",
            problems.join("\n"),
            last_lines(&envoy.3, 40),
            last_lines(&sluice.3, 40)
        ))
    }
}

/// A line the host logs about a WASI call it only pretends to serve, as `LEVEL COMPONENT
/// MESSAGE`: the time, thread and source location (which differ between the proxies) left out.
fn host_wasi_line(line: &str) -> Option<String> {
    let (head, message) = line.rsplit_once("] ")?;
    if !message.starts_with("wasi_unstable ") {
        return None;
    }
    // `[time][thread][level][component] [source:line`
    let fields: Vec<&str> = head.split(['[', ']']).filter(|f| !f.trim().is_empty()).collect();
    Some(format!("{} {} {message}", fields.get(2)?, fields.get(3)?))
}

/// Each example with each toolchain, and the requests that exercise it: headers both ways (the
/// response's rewritten), a request body, a response body overwritten; ticks run for 1.5 s.
pub fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    for toolchain in Toolchain::ALL {
        for name in CPP_EXAMPLES {
            let requests = vec![
                Req { headers: &[("x-probe", "one"), ("user-agent", "probe/1")], ..get(10000, "/anything") },
                Req { method: "POST", body: b"a request body", ..get(10000, "/echo") },
                get(10000, "/status/404"),
            ];
            let must_log: &[&str] = match name {
                "http_wasm_example" => &[
                    "onStart",
                    "onConfigure",
                    "onTick",
                    "onCreate #",
                    "x-probe -> one",
                    "onRequestBody a request body",
                    "onLog #",
                    "onDelete #",
                ],
                _ => &["onStart without protobuf"],
            };
            out.push(Example {
                sdk: Sdk::Cpp(toolchain),
                name,
                requests,
                settle: Duration::from_millis(1500),
                must_log,
            });
        }
    }
    out
}
