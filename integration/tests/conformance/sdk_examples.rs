//! The official SDKs' examples, each from its own `envoy.yaml` (only addresses and module paths
//! rewritten), in the real Envoy 1.40 and in `sluice` started through a link named `envoy` with the
//! command line tools pass (`--base-id N --concurrency 1 -l info --component-log-level wasm:trace`):
//! the requests each example's README describes get the same answers, and the guest logs the same
//! lines (numbers masked: times and random values differ). With `SLUICE_CASES_HOST='myhost -c
//! {config}'` the same examples run against another host instead of sluice (the cases kit).

use std::collections::BTreeSet;
use std::time::Duration;

use sluice_integration::client::{self, Raw};
use sluice_integration::proxy::{self, Proxy, Which};
use sluice_integration::proxy_log::{access_log_lines, guest_messages};
use sluice_integration::thirdparty::{self, Sdk};
use sluice_integration::Upstream;

/// One request of an example's README.
pub struct Req {
    /// The listener's port as the example's `envoy.yaml` has it.
    pub port: u16,
    pub method: &'static str,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static [u8],
    /// The answer is random (the `*_auth_random` examples): only the status must be one of these.
    pub random: Option<&'static [u16]>,
    /// Bytes sent on a plain TCP connection (network filters) instead of an HTTP request; the
    /// answer is everything read until the proxy closes.
    pub tcp: Option<&'static [u8]>,
    /// A unary gRPC call to this path (h2c) instead of an HTTP/1.1 request.
    pub grpc: Option<&'static str>,
    /// The client's own address (a loopback IP other than 127.0.0.1), for TCP exchanges.
    pub from: Option<&'static str>,
    /// Half-close after sending (TCP exchanges whose upstream answers until the end of the
    /// stream). Not for an HTTP server behind tcp_proxy: Envoy's connection manager takes a
    /// half-close for a close and may drop the request.
    pub half_close: bool,
}

/// A GET of `path` on the listener the config has on `port`.
pub const fn get(port: u16, path: &'static str) -> Req {
    Req {
        port,
        method: "GET",
        path,
        headers: &[],
        body: b"",
        random: None,
        tcp: None,
        grpc: None,
        from: None,
        half_close: false,
    }
}

/// Sends `bytes` (from `from`, if given), half-closes if asked and reads until the peer closes; `date:` lines (the clock)
/// are left out.
fn tcp_exchange(port: u16, bytes: &[u8], from: Option<&str>, half_close: bool) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = proxy::connect_from(from.unwrap_or("127.0.0.1"), port) else {
        return "no answer: connect".into();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        return format!("no answer: {e}");
    }
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub struct Example {
    /// Which SDK it comes from.
    pub sdk: Sdk,
    /// Its folder in the SDK.
    pub name: &'static str,
    pub requests: Vec<Req>,
    /// How long to let timers run before the logs are compared.
    pub settle: Duration,
    /// Guest messages Envoy's log must have (masked as compared), so that agreeing on nothing
    /// cannot pass.
    pub must_log: &'static [&'static str],
}

impl Example {
    /// The bootstrap it runs on: its own `envoy.yaml`, or for C++ (whose SDK ships none) ours.
    fn config(&self) -> String {
        match self.sdk {
            Sdk::Cpp(toolchain) => {
                crate::cpp::bootstrap(&thirdparty::built(Sdk::Cpp(toolchain)).join(format!("{}.wasm", self.name)))
            }
            sdk => thirdparty::original_config(sdk, self.name),
        }
    }
}

/// The examples and the requests their READMEs describe.
pub fn examples() -> Vec<Example> {
    let ex = |sdk, name, requests| Example { sdk, name, requests, settle: Duration::from_millis(300), must_log: &[] };
    let random = |port, path| Req { random: Some(&[200, 403]), ..get(port, path) };
    let put = |headers| Req { method: "PUT", body: b"[initial body]", headers, ..get(18000, "/") };
    let mut all = vec![
        Example { settle: Duration::from_millis(1500), ..ex(Sdk::Go, "helloworld", vec![get(18000, "/")]) },
        ex(Sdk::Go, "http_auth_random", (0..4).map(|_| random(18000, "/uuid")).collect()),
        ex(
            Sdk::Go,
            "http_body",
            vec![
                put(&[("buffer-operation", "prepend")]),
                put(&[("buffer-operation", "append")]),
                put(&[("buffer-operation", "replace")]),
                put(&[("buffer-operation", "prepend"), ("buffer-replace-at", "response")]),
                put(&[("buffer-operation", "append"), ("buffer-replace-at", "response")]),
                put(&[("buffer-operation", "replace"), ("buffer-replace-at", "response")]),
            ],
        ),
        ex(
            Sdk::Go,
            "http_body_chunk",
            vec![
                Req { method: "POST", body: b"no pattern here", ..get(18000, "/anything") },
                Req { method: "POST", body: b"a body with the pattern inside", ..get(18000, "/anything") },
            ],
        ),
        ex(
            Sdk::Go,
            "http_headers",
            vec![get(18000, "/"), Req { headers: &[("user-agent", "curl/8")], ..get(18000, "/") }],
        ),
        ex(Sdk::Go, "http_routing", (0..4).map(|_| Req { random: Some(&[200]), ..get(18000, "/") }).collect()),
        ex(
            Sdk::Go,
            "json_validation",
            vec![
                Req {
                    method: "POST",
                    headers: &[("content-type", "application/json")],
                    body: br#"{"id": "xxx", "token": "xxx"}"#,
                    ..get(18000, "/")
                },
                Req {
                    method: "POST",
                    headers: &[("content-type", "application/json")],
                    body: br#""required_keys_missing""#,
                    ..get(18000, "/")
                },
            ],
        ),
        ex(Sdk::Go, "metrics", vec![Req { headers: &[("my-custom-header", "foo")], ..get(18000, "/") }]),
        ex(Sdk::Go, "multiple_dispatches", vec![Req { method: "HEAD", ..get(18000, "/") }]),
        ex(Sdk::Go, "postpone_requests", vec![get(18000, "/")]),
        ex(
            Sdk::Go,
            "network",
            vec![Req {
                tcp: Some(b"GET /uuid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
                ..get(18000, "/")
            }],
        ),
        ex(
            Sdk::Go,
            "properties",
            vec![get(18000, "/one"), Req { headers: &[("cookie", "value")], ..get(18000, "/one") }, get(18000, "/two")],
        ),
        ex(Sdk::Go, "shared_data", vec![get(18000, "/"), get(18000, "/")]),
        ex(Sdk::Go, "shared_queue", vec![get(18000, "/"), get(18001, "/")]),
        Example { settle: Duration::from_millis(1500), ..ex(Sdk::Go, "dispatch_call_on_tick", vec![]) },
        Example { settle: Duration::from_millis(1500), ..ex(Sdk::Go, "foreign_call_on_tick", vec![]) },
        ex(Sdk::Go, "vm_plugin_configuration", vec![get(18000, "/")]),
        Example { settle: Duration::from_millis(1500), ..ex(Sdk::Rust, "hello_world", vec![]) },
        ex(Sdk::Rust, "http_auth_random", (0..4).map(|_| random(10000, "/headers")).collect()),
        ex(
            Sdk::Rust,
            "grpc_auth_random",
            vec![get(10000, "/"), Req { grpc: Some("/hello.HelloService/SayHello"), ..get(10000, "/") }],
        ),
        ex(Sdk::Rust, "http_body", vec![get(10000, "/hello"), get(10000, "/secret")]),
        ex(Sdk::Rust, "http_config", vec![Req { method: "HEAD", ..get(10000, "/hello") }]),
        ex(Sdk::Rust, "http_headers", vec![get(10000, "/hello")]),
        // Routed by the client's address (filter state `envoy.tcp_proxy.cluster`): even last byte to
        // egress-router1 (an HTTP upstream here), odd to egress-router2 (a TCP echo here).
        Example {
            settle: Duration::from_millis(1500),
            ..ex(
                Sdk::Rust,
                "envoy_tcp_routing",
                ["127.0.0.2", "127.0.0.1", "127.0.0.4"]
                    .into_iter()
                    .map(|from| Req {
                        tcp: Some(b"GET /ip HTTP/1.1\r\nHost: httpbin.org\r\nConnection: close\r\n\r\n"),
                        from: Some(from),
                        half_close: true,
                        ..get(10000, "/")
                    })
                    .collect(),
            )
        },
    ];
    all.extend(crate::cpp::examples());
    all
}

/// What a client sees, less what differs from run to run.
fn seen(r: &Raw, random: bool) -> String {
    const VOLATILE: &[&str] = &["date", "x-request-id", "x-envoy-upstream-service-time"];
    let mut out = format!("{}\n", r.status());
    if random {
        return out;
    }
    let mut headers: Vec<_> = r.headers.iter().filter(|(k, _)| !VOLATILE.contains(&k.as_str())).collect();
    headers.sort();
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let present: BTreeSet<&str> =
        r.headers.iter().map(|(k, _)| k.as_str()).filter(|k| VOLATILE.contains(k) && *k != "date").collect();
    out.push_str(&format!("(present: {present:?})\n\n{}", String::from_utf8_lossy(&r.body)));
    out
}

/// Sends `r` to `p`; what the client saw, less what differs from run to run.
pub fn play(p: &Proxy, r: &Req) -> String {
    let port = p.ports.get(&r.port).copied().unwrap_or_else(|| panic!("the example has no listener on {}", r.port));
    if let Some(bytes) = r.tcp {
        return tcp_exchange(port, bytes, r.from, r.half_close);
    }
    if let Some(path) = r.grpc {
        return match sluice_integration::grpc_client::unary(port, path, b"") {
            Ok(reply) => format!("{reply:?}"),
            Err(e) => format!("no answer: {e:#}"),
        };
    }
    match client::send(port, r.method, r.path, r.headers, r.body) {
        Ok(raw) => {
            if let Some(allowed) = r.random {
                assert!(allowed.contains(&raw.status()), "status {} not in {allowed:?}", raw.status());
            }
            seen(&raw, r.random.is_some())
        }
        Err(e) => format!("no answer: {e:#}"),
    }
}

/// Runs `example` in Envoy and in the host under test; what differs, if anything.
pub fn run(example: &Example) -> Result<(), String> {
    let upstream = Upstream::start().map_err(|e| e.to_string())?;
    let echo = Upstream::start_tcp_echo().map_err(|e| e.to_string())?;
    let original = example.config();
    let cwd = match example.sdk {
        Sdk::Go => thirdparty::built(Sdk::Go),
        Sdk::Rust | Sdk::Cpp(_) => sluice_integration::wasm::workspace_root(),
    };
    let mut answers = Vec::new();
    let mut logs = Vec::new();
    for which in [Which::Envoy, Which::under_test()] {
        let rewrite = || {
            thirdparty::rewrite_with(&original, example.sdk, upstream.port, &[("egress-router2", echo.port)])
                .map_err(|e| format!("{e:#}"))
        };
        // Listener ports are picked free before the proxy binds them; another server of the run may
        // take one in between. A start that fails is tried once more on fresh ports.
        let start = || rewrite().and_then(|c| Proxy::start(which.clone(), &c, &cwd).map_err(|e| format!("{e:#}")));
        let mut proxy = match start() {
            Ok(p) => p,
            Err(first) => start().map_err(|e| format!("{e}\n(and before, on other ports: {first})"))?,
        };
        let seen: Vec<String> = example.requests.iter().map(|r| play(&proxy, r)).collect();
        std::thread::sleep(example.settle);
        // Envoy writes a connection's access-log line some time after the client saw the end (and,
        // seen here, one of three half-closed connections now and then not within 5 s): wait for a
        // line, then compare which lines there are, not how many.
        if original.contains("access_log") {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while access_log_lines(&proxy.log()).is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if !proxy.running() {
            return Err(format!("{which:?} stopped while serving:\n{}", proxy.log_tail()));
        }
        logs.push((guest_messages(&proxy.log()), proxy.log()));
        answers.push(seen);
    }
    let mut problems = Vec::new();
    for (i, e) in answers[0].iter().enumerate() {
        if e.starts_with("no answer") {
            problems.push(format!("request {i}: Envoy gave no answer, so the example is not exercised: {e}"));
        }
    }
    for (i, (e, s)) in answers[0].iter().zip(&answers[1]).enumerate() {
        if e != s {
            problems.push(format!("request {i}:\n--- envoy ---\n{e}\n--- sluice ---\n{s}"));
        }
    }
    if logs[0].0 != logs[1].0 {
        let only_envoy: Vec<_> = logs[0].0.difference(&logs[1].0).collect();
        let only_sluice: Vec<_> = logs[1].0.difference(&logs[0].0).collect();
        problems.push(format!("guest logs differ:\nonly in envoy: {only_envoy:#?}\nonly in sluice: {only_sluice:#?}"));
    }
    let distinct = |log: &str| access_log_lines(log).into_iter().collect::<BTreeSet<_>>();
    let (access_envoy, access_sluice) = (distinct(&logs[0].1), distinct(&logs[1].1));
    if access_envoy != access_sluice {
        problems
            .push(format!("access logs differ:\n--- envoy ---\n{access_envoy:#?}\n--- sluice ---\n{access_sluice:#?}"));
    }
    for wanted in example.must_log {
        if !logs[0].0.iter().any(|m| m.contains(wanted)) {
            problems.push(format!("Envoy's guest log lacks {wanted:?}: the example did not run as meant"));
        }
    }
    if example.requests.is_empty() && logs[1].0.is_empty() && logs[0].0.is_empty() {
        problems.push("neither proxy logged a guest line: the module did not run".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n--- sluice log ---\n{}", problems.join("\n"), sluice_integration::last_lines(&logs[1].1, 30)))
    }
}
