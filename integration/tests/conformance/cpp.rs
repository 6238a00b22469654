//! The C++ SDK's examples, built with both toolchains Envoy's users build with (Emscripten and
//! clang for wasm32-wasi, from Debian's packages), on a bootstrap of ours (the SDK ships none):
//! the same requests in Envoy and in sluice must get the same answers and guest log lines.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use sluice_integration::envoy::WasmFilter;
use sluice_integration::proxy;
use sluice_integration::proxy_log::guest_messages;
use sluice_integration::thirdparty::{self, Sdk, Toolchain, CPP_EXAMPLES};
use sluice_integration::wasm::workspace_root;
use sluice_integration::{last_lines, EnvoyConfig, Upstream};

use crate::sdk_examples::{get, play, Example, Req};

/// The port the bootstrap's listener has before it is made to run on loopback.
const LISTENER: u16 = 0;

/// One HTTP listener whose only filter before the router is the module (root id empty, as the
/// examples register their root context), proxying to one cluster.
pub fn bootstrap(module: &Path) -> String {
    bootstrap_failing(module, "UNSPECIFIED")
}

/// [`bootstrap`] with the plugin's `failure_policy`.
fn bootstrap_failing(module: &Path, failure_policy: &str) -> String {
    let plugin = WasmFilter {
        wasm: module.to_path_buf(),
        name: "cpp_example".into(),
        failure_policy: Some(failure_policy.into()),
        ..WasmFilter::default()
    };
    // The cluster's port is any: the loopback rewrite sends it to the test's upstream.
    EnvoyConfig::http(plugin).cluster("upstream", 1).render()
}

/// A probe of the project's own (`probes/NAME.cc`), built with `toolchain`, run under
/// `failure_policy` in Envoy and in sluice with the same `requests`: the same answers, the same
/// guest lines and the same host lines about WASI calls; and Envoy's guest log holds each of
/// `must_log`, so that agreeing on nothing cannot pass.
fn probe(
    name: &str,
    toolchain: Toolchain,
    failure_policy: &str,
    requests: &[Req],
    must_log: &[&str],
) -> Result<(BTreeSet<String>, Vec<String>), String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/conformance/probes/{name}.cc"));
    let module = thirdparty::cpp_module(toolchain, &source).map_err(|e| format!("{e:#}"))?;
    let upstream = Upstream::start().map_err(|e| e.to_string())?;
    let original = bootstrap_failing(&module, failure_policy);
    let seen = proxy::in_both(&original, upstream.port, &workspace_root(), |_, p| {
        let answers: Vec<String> = requests.iter().map(|r| play(p, r)).collect();
        // Envoy writes the last stream's `on_log` lines after the client saw its answer.
        std::thread::sleep(Duration::from_millis(300));
        let log = p.log();
        let wasi: Vec<String> = log.lines().filter_map(host_wasi_line).collect();
        (answers, guest_messages(&log), wasi, log)
    });
    let (envoy, sluice) = (&seen[0], &seen[1]);
    let mut problems = Vec::new();
    if envoy.0 != sluice.0 {
        problems.push(format!("answers differ:\n--- envoy ---\n{:#?}\n--- sluice ---\n{:#?}", envoy.0, sluice.0));
    }
    if envoy.1 != sluice.1 {
        let only_envoy: Vec<_> = envoy.1.difference(&sluice.1).collect();
        let only_sluice: Vec<_> = sluice.1.difference(&envoy.1).collect();
        problems.push(format!("guest logs differ:\nonly in envoy: {only_envoy:#?}\nonly in sluice: {only_sluice:#?}"));
    }
    if envoy.2 != sluice.2 {
        problems.push(format!(
            "the host's WASI lines differ:\n--- envoy ---\n{:#?}\n--- sluice ---\n{:#?}",
            envoy.2, sluice.2
        ));
    }
    for wanted in must_log {
        if !envoy.1.iter().any(|m| m.contains(wanted)) {
            problems.push(format!("Envoy's guest log lacks {wanted:?}: the probe did not run as meant"));
        }
    }
    if problems.is_empty() {
        Ok((envoy.1.clone(), envoy.2.clone()))
    } else {
        Err(format!(
            "{}\n--- envoy log ---\n{}\n--- sluice log ---\n{}",
            problems.join("\n"),
            last_lines(&envoy.3, 40),
            last_lines(&sluice.3, 40)
        ))
    }
}

/// [`libc_probe.cc`](probes/libc_probe.cc) under `failure_policy`: requests that make the guest
/// grow its memory by 40 MiB, make WASI file calls, call `exit(3)` (WASI's `proc_exit`) and
/// `abort()`, with plain ones before, between and after. The WASI calls are logged alike
/// (`proc_exit` at trace level, as the host's line, not the guest's).
pub fn libc_probe(toolchain: Toolchain, failure_policy: &str) -> Result<(), String> {
    let plain = || get(LISTENER, "/");
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
    let (_, wasi) = probe("libc_probe", toolchain, failure_policy, &requests, &["grew by # MiB", "exiting with #"])?;
    if !wasi.iter().any(|l| l == "trace wasm wasi_unstable proc_exit") {
        return Err(format!("Envoy logged no proc_exit line at trace level: {wasi:#?}"));
    }
    Ok(())
}

/// [`api_probe.cc`](probes/api_probe.cc): the C++ SDK's API as filters call it (properties,
/// headers, shared data and queues, metrics, buffers, a callout to a missing cluster, a local
/// reply), every result logged by the guest, on a GET, a POST with a body and a request answered
/// locally.
pub fn api_probe(toolchain: Toolchain) -> Result<(), String> {
    let requests = [
        Req {
            headers: &[("x-probe", "one"), ("user-agent", "probe/1"), ("referer", "http://r/")],
            ..get(LISTENER, "/anything?a=b")
        },
        Req { method: "POST", body: b"a request body", headers: &[("x-probe", "two")], ..get(LISTENER, "/echo") },
        Req { headers: &[("x-local", "1")], ..get(LISTENER, "/local") },
    ];
    let must_log = [
        "property request.path: # bytes [/anything?a=b]",
        "read the counter: ",
        "local reply: ",
        "request body is [a request body]",
    ];
    probe("api_probe", toolchain, "UNSPECIFIED", &requests, &must_log).map(|_| ())
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
                Req { headers: &[("x-probe", "one"), ("user-agent", "probe/1")], ..get(LISTENER, "/anything") },
                Req { method: "POST", body: b"a request body", ..get(LISTENER, "/echo") },
                get(LISTENER, "/status/404"),
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
