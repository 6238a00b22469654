//! Envoy's filter-manager rules in the harness: body buffering with cumulative sizes, headers Pause
//! as StopAllIterationAndWatermark (or real StopIteration when allowed), the 1 MiB buffer limit.

use sluice_host::harness::Harness;
use sluice_host::stream::FilterStatus;
use sluice_integration::wasm::reference_filter;
use sluice_integration::{reference, Case, SideBySide};

const POST: [(&str, &str); 3] = [(":method", "POST"), (":path", "/up"), (":authority", "x")];

#[test]
fn body_pause_buffers_and_the_filter_sees_everything_so_far() {
    let mut h = Harness::builder().module_file(reference_filter("body")).build().unwrap();
    let mut s = h.http_stream();
    assert_eq!(s.request_headers(POST, false).unwrap(), FilterStatus::Continue);
    assert_eq!(s.request_body("aaa", false).unwrap(), FilterStatus::StopIterationAndBuffer);
    assert_eq!(s.buffered_request_body(), Some(&b"aaa"[..]));
    assert_eq!(s.request_body("bbb", false).unwrap(), FilterStatus::StopIterationAndBuffer);
    assert_eq!(s.buffered_request_body(), Some(&b"aaabbb"[..]), "cumulative, as Envoy's StopIterationAndBuffer");
    assert_eq!(s.request_body("ccc", true).unwrap(), FilterStatus::Continue);
    assert_eq!(s.upstream_request().body, b"[aaabbbccc]");
    assert!(s.upstream_request().end_of_stream);
    assert!(s.upstream_request().headers.get("content-length").is_none(), "the filter dropped it");
}

/// Pauses in request headers and continues from the body callback.
const STOP_THEN_BODY_CONTINUES: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0)))"#;

#[test]
fn headers_pause_stops_all_iteration_by_default() {
    let mut h = Harness::builder().module_bytes(STOP_THEN_BODY_CONTINUES).build().unwrap();
    let mut s = h.http_stream();
    assert_eq!(s.request_headers(POST, false).unwrap(), FilterStatus::StopAllIterationAndWatermark);
    assert_eq!(s.request_body("data", true).unwrap(), FilterStatus::Buffered, "no body callback while stopped");
    assert!(!s.upstream_request().headers_forwarded);
}

#[test]
fn allow_on_headers_stop_iteration_lets_body_callbacks_release_the_headers() {
    let mut h = Harness::builder()
        .module_bytes(STOP_THEN_BODY_CONTINUES)
        .allow_on_headers_stop_iteration(true)
        .build()
        .unwrap();
    let mut s = h.http_stream();
    assert_eq!(s.request_headers(POST, false).unwrap(), FilterStatus::StopIteration);
    assert!(!s.upstream_request().headers_forwarded);
    assert_eq!(s.request_body("data", true).unwrap(), FilterStatus::Continue);
    assert!(s.upstream_request().headers_forwarded, "a body Continue releases the held headers");
    assert_eq!(s.upstream_request().body, b"data");
}

#[test]
fn a_body_over_the_buffer_limit_is_refused_with_413_like_envoy() {
    let mut s = SideBySide::start(reference("body", ""), &[], |b| b).unwrap();
    let big: &'static str = Box::leak("x".repeat(1_200_000).into_boxed_str());
    let o = s.check(&Case::post("/big", big)).unwrap_or_else(|e| panic!("{e:#}"));
    // The 413 passes back through the filter's own response callbacks, which append "!".
    assert_eq!((o.status, o.body.as_str()), (413, "Payload Too Large!"));
}

#[test]
fn a_paused_request_holds_a_body_over_the_limit_with_watermarks_not_413() {
    // The filter pauses in request headers until its callout answers; meanwhile the body is larger
    // than the 1 MiB buffer limit. StopAllIterationAndWatermark throttles the client instead of
    // answering 413.
    let upstream = sluice_integration::Upstream::start().unwrap();
    let config = sluice_integration::EnvoyConfig::http(reference("callout", "auth 3000"))
        .cluster("upstream", upstream.port)
        .cluster("auth", upstream.port);
    let envoy = sluice_integration::Envoy::start(&config).unwrap();
    let sluice = sluice_integration::sluice::SluiceServe::start(&config).unwrap();
    let body = "y".repeat(3_000_000);
    for (name, port) in [("envoy", envoy.port), ("sluice serve", sluice.port)] {
        let r = sluice_integration::client::send(port, "POST", "/up", &[("x-user", "slow")], body.as_bytes()).unwrap();
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status(), 200, "{name}: {}", &text[..text.len().min(300)]);
        assert!(text.contains(&format!("body={body}")), "{name}: the whole body reached the upstream");
    }
}

#[test]
fn the_listeners_buffer_limit_decides_the_413_in_envoy_sluice_serve_and_the_harness() {
    // The reference `body` filter buffers the whole request (StopIterationAndBuffer). With
    // `per_connection_buffer_limit_bytes: 4096`, Envoy answers 10 000 bytes with 413 and lets
    // 3 000 through; sluice must read the limit from the listener, not assume 1 MiB.
    let upstream = sluice_integration::Upstream::start().unwrap();
    let config = sluice_integration::EnvoyConfig::http(reference("body", ""))
        .cluster("upstream", upstream.port)
        .buffer_limit(4096);
    let envoy = sluice_integration::Envoy::start(&config).unwrap();
    let sluice = sluice_integration::sluice::SluiceServe::start(&config).unwrap();
    let (small, big) = ("s".repeat(3_000), "b".repeat(10_000));
    for (name, port) in [("envoy", envoy.port), ("sluice serve", sluice.port)] {
        let r = sluice_integration::client::send(port, "POST", "/up", &[], big.as_bytes()).unwrap();
        assert_eq!((r.status(), String::from_utf8_lossy(&r.body).as_ref()), (413, "Payload Too Large!"), "{name}");
        let r = sluice_integration::client::send(port, "POST", "/up", &[], small.as_bytes()).unwrap();
        assert_eq!(r.status(), 200, "{name}: 3 000 bytes fit in 4 KiB");
    }
    let mut h = Harness::builder().module_file(reference_filter("body")).buffer_limit(4096).build().unwrap();
    let mut s = h.http_stream();
    s.request_headers(POST, false).unwrap();
    // As the proxies read it: the body, then its end.
    s.request_body(&big, false).unwrap();
    s.request_body("", true).unwrap();
    assert_eq!(s.local_reply().map(|r| r.status), Some(413), "harness");
    assert_eq!(s.downstream_response().body, b"Payload Too Large!");
}
