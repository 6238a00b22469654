//! Filters written with the `sluice` SDK, in the harness and in the real Envoy 1.40: typed config,
//! async callouts (ok, denied, timeout, unknown cluster, two in flight), whole-body buffering and
//! replacement, metrics, shared data, properties, panics, and a TCP filter.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sluice_host::abi::status::{LogLevel, PeerType};
use sluice_host::harness::Harness;
use sluice_host::state::MetricValue;
use sluice_host::Error;
use sluice_integration::envoy::{Envoy, EnvoyConfig, WasmFilter};
use sluice_integration::wasm::sdk_filter;
use sluice_integration::{Case, Observed, SideBySide, Upstream};

fn features(config: &str) -> WasmFilter {
    WasmFilter {
        wasm: sdk_filter("features"),
        name: "sdk_features".into(),
        root_id: "features".into(),
        vm_id: "sdk_vm".into(),
        configuration: config.into(),
        failure_policy: None,
        allow_on_headers_stop_iteration: false,
        vm_configuration: String::new(),
    }
}

const GOOD: &str = r#"{"auth_cluster": "auth", "timeout_ms": 300, "tag": "t1"}"#;

fn check(s: &mut SideBySide, case: Case) -> Observed {
    s.check(&case).unwrap_or_else(|e| panic!("{e:#}"))
}

fn header<'a>(o: &'a Observed, name: &str) -> Option<&'a str> {
    o.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn async_callouts_match_envoy() {
    let mut s = SideBySide::start(features(GOOD), &["auth"], |b| b).unwrap();
    let o = check(&mut s, Case::get("/in").header("x-user", "alice"));
    assert_eq!(o.status, 200);
    assert!(o.body.contains("x-auth-user: alice\n") && o.body.contains("x-tag: t1\n"), "{}", o.body);
    assert!(o.body.contains("x-route: route0\n"), "{}", o.body);
    assert_eq!(header(&o, "x-sdk"), Some("sluice"));
    let o = check(&mut s, Case::get("/in").header("x-user", "bob"));
    assert_eq!((o.status, o.body.as_str(), header(&o, "x-auth-status")), (403, "user bob is not allowed", Some("401")));
    let o = check(&mut s, Case::get("/in").header("x-user", "slow"));
    assert_eq!(
        (o.status, o.body.as_str(), header(&o, "x-auth-status")),
        (403, "upstream request timeout", Some("504"))
    );
    let o = check(&mut s, Case::get("/in").header("x-user", "alice").header("x-also", "bob"));
    assert!(o.body.contains("x-both: true false\n"), "two calls in flight: {}", o.body);
    // Counters and shared data went up the same in both.
    let o = check(&mut s, Case::get("/count"));
    assert!(o.body.contains("x-hits: 5\n"), "{}", o.body);
    assert_eq!(s.envoy.stat("wasmcustom.sdk_requests").as_deref(), Some("5"));
    assert_eq!(s.harness.metric("sdk_requests"), Some(MetricValue::Counter(5)));
    assert_eq!(s.envoy.stat("wasmcustom.sdk_denied").as_deref(), Some("2"));
    assert_eq!(s.harness.metric("sdk_denied"), Some(MetricValue::Counter(2)));
}

#[test]
fn callout_to_an_unknown_cluster_is_an_error_value() {
    let config = r#"{"auth_cluster": "nope", "timeout_ms": 300, "tag": "t"}"#;
    let mut s = SideBySide::start(features(config), &[], |b| b).unwrap();
    let o = check(&mut s, Case::get("/in").header("x-user", "alice"));
    assert_eq!((o.status, o.body.as_str()), (500, "auth failed: proxy_http_call failed: BadArgument"));
}

#[test]
fn whole_body_is_buffered_and_replaced_alike() {
    let mut s = SideBySide::start(features(GOOD), &[], |b| b).unwrap();
    let o = check(&mut s, Case::post("/rewrite", "hello body"));
    assert!(o.body.contains("body=<HELLO BODY>\n"), "{}", o.body);
    let big: &'static str = Box::leak("ab".repeat(100_000).into_boxed_str());
    let o = check(&mut s, Case::post("/rewrite", big));
    assert!(o.body.contains(&format!("body=<{}>", big.to_uppercase())), "a 200 KB body arrives whole and rewritten");
}

#[test]
fn typed_config_good_and_bad() {
    let h = Harness::builder()
        .module_file(sdk_filter("features"))
        .plugin_config(GOOD)
        .vm_config(r#""fast""#)
        .build()
        .unwrap();
    assert!(h.logs_at(LogLevel::Info).contains(&"configured with cluster auth".to_string()));
    assert!(h.logs_at(LogLevel::Info).contains(&r#"vm config: Some("fast")"#.to_string()), "typed VM configuration");
    for (bad, why) in [
        (r#"{"auth_cluster": 5, "timeout_ms": 1, "tag": ""}"#, "invalid type: integer `5`, expected a string"),
        (r#"{"auth_cluster": "a", "timeout_ms": 1, "tag": "", "extra": 1}"#, "unknown field `extra`"),
        ("not json", "expected ident"),
        ("", "the configuration is empty"),
    ] {
        let err = Harness::builder().module_file(sdk_filter("features")).plugin_config(bad).build().unwrap_err();
        // Configure fails, and the reason the SDK logged comes with the error.
        match &err {
            Error::ConfigureFailed { logged: Some(m) } => assert!(m.contains(why), "{bad}: {m}"),
            other => panic!("{bad}: {other}"),
        }
    }
    // And the real Envoy refuses the same configuration, with the SDK's message in its log.
    let up = Upstream::start().unwrap();
    let bad = features(r#"{"auth_cluster": 5, "timeout_ms": 1, "tag": ""}"#);
    let err = match Envoy::start(&EnvoyConfig::http(bad).cluster("upstream", up.port)) {
        Ok(_) => panic!("Envoy accepted a configuration the plugin rejects"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("invalid configuration: invalid type: integer `5`, expected a string"), "{err}");
}

#[test]
fn a_panic_is_logged_with_its_message_and_location() {
    let mut h = Harness::builder().module_file(sdk_filter("features")).plugin_config(GOOD).build().unwrap();
    let ex =
        h.exchange(sluice_host::harness::Request::get("/panic"), sluice_integration::upstream::respond_to).unwrap();
    assert_eq!(ex.status(), Some(503));
    let critical = h.logs_at(LogLevel::Critical);
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert!(critical[0].contains("the features filter was asked to panic"), "{critical:?}");
    assert!(critical[0].contains("features/src/lib.rs"), "{critical:?}");
}

#[test]
fn tcp_filter_matches_envoy() {
    let upstream = Upstream::start_tcp_echo().unwrap();
    let filter = WasmFilter { wasm: sdk_filter("tcp"), name: "sdk_tcp".into(), ..Default::default() };
    let envoy = Envoy::start(&EnvoyConfig::tcp(filter.clone()).cluster("upstream", upstream.port)).unwrap();
    let mut h = Harness::builder().module_file(&filter.wasm).build().unwrap();
    for (input, expected) in [(&b"hello sdk"[..], &b"HELLO SDK"[..]), (b"DENY please", b"")] {
        let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(input).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut from_envoy = Vec::new();
        let _ = s.read_to_end(&mut from_envoy);
        let mut c = h.tcp_stream().unwrap();
        c.downstream_data(input, true).unwrap();
        let up = c.sent_upstream().to_vec();
        if c.closed().is_none() {
            c.upstream_data(&up, true).unwrap();
        }
        let from_harness = c.sent_downstream().to_vec();
        c.close(PeerType::Remote).unwrap();
        assert_eq!(from_envoy, expected);
        assert_eq!(from_harness, from_envoy);
    }
}

#[test]
fn hello_world_is_no_larger_than_with_the_official_sdk() {
    let ours = std::fs::metadata(sdk_filter("hello")).unwrap().len();
    let theirs = std::fs::metadata(sluice_integration::wasm::reference_filter("hello")).unwrap().len();
    assert!(ours <= theirs, "sluice hello world is {ours} bytes, proxy-wasm 0.2.5's is {theirs}");
    // And it works: the header is added.
    let mut h = Harness::builder().module_file(sdk_filter("hello")).build().unwrap();
    let ex = h.exchange(sluice_host::harness::Request::get("/"), |_| sluice_host::harness::Response::new(200)).unwrap();
    assert_eq!(ex.response.headers.get_str("x-hello"), Some("world"));
}

#[test]
fn grpc_calls_await_their_reply() {
    let mut h =
        Harness::builder().module_file(sdk_filter("features")).plugin_config(GOOD).cluster("grpc").build().unwrap();
    for (reply, expect_forwarded) in [(Ok(b"yes".to_vec()), true), (Err((7, "denied".to_string())), false)] {
        let mut s = h.http_stream();
        s.request_headers([(":method", "GET"), (":path", "/grpc"), (":authority", "x")], true).unwrap();
        let id = s.id();
        let call = h.grpc_callouts().last().cloned().unwrap();
        assert_eq!((call.service.as_str(), call.method.as_str()), ("pkg.Checker", "Check"));
        h.respond_grpc_call(call.token, reply).unwrap();
        let s = h.http(id);
        if expect_forwarded {
            assert_eq!(s.upstream_request().headers.get_str("x-grpc-reply"), Some("yes"));
        } else {
            let r = s.local_reply().unwrap();
            assert_eq!((r.status, r.body.as_slice()), (403, &b"gRPC status 7 (PERMISSION_DENIED): denied"[..]));
        }
    }
}

#[test]
fn a_service_plugin_collects_queue_events_and_flushes_them_from_a_timer() {
    let shared = std::sync::Arc::new(sluice_host::state::SharedState::default());
    let mut service = Harness::builder()
        .module_file(sdk_filter("service"))
        .plugin_config(r#"{"flush_ms": 1000}"#)
        .vm_id("sdk_vm")
        .cluster("collector")
        .shared_state(shared.clone())
        .build()
        .unwrap();
    assert_eq!(service.tick_period(), Some(Duration::from_secs(1)));
    let mut filter = Harness::builder()
        .module_file(sdk_filter("features"))
        .plugin_config(GOOD)
        .vm_id("sdk_vm")
        .shared_state(shared)
        .build()
        .unwrap();
    for path in ["/a", "/b"] {
        let ex = filter
            .exchange(sluice_host::harness::Request::get(path), sluice_integration::upstream::respond_to)
            .unwrap();
        assert_eq!(ex.status(), Some(200));
    }
    // The timer fires; a spawned task posts the batch and waits for the collector.
    service.advance_time(Duration::from_millis(1000)).unwrap();
    let calls = service.http_callouts();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].cluster.as_str(), calls[0].body.as_slice()), ("collector", &b"/a\n/b"[..]));
    service.respond_http_callout(calls[0].token, sluice_host::harness::CalloutReply::new(202)).unwrap();
    assert!(service.logs_at(LogLevel::Info).contains(&"flushed 2 events: 202".to_string()), "{:?}", service.logs());
    // Nothing new: the next tick sends nothing.
    service.advance_time(Duration::from_millis(1000)).unwrap();
    assert!(service.http_callouts().is_empty());
}

#[test]
fn the_rest_of_the_api_works_in_the_harness() {
    let mut h = Harness::builder().module_file(sdk_filter("features")).plugin_config(GOOD).build().unwrap();
    let mut s = h.http_stream();
    let headers: Vec<(&[u8], &[u8])> =
        vec![(b":method", b"GET"), (b":path", b"/api"), (b":authority", b"x"), (b"x-binary", b"\xff\xfe ok")];
    s.request_headers(headers, true).unwrap();
    let up = s.upstream_request().headers.clone();
    let api = |k: &str| up.get_str(format!("x-api-{k}")).map(str::to_string);
    assert_eq!(api("port").as_deref(), Some("Ok(true)"));
    assert_eq!(api("time").as_deref(), Some("Ok(true)"));
    assert_eq!(api("headers").as_deref(), Some("Ok(Some(true))"));
    assert_eq!(api("mtls").as_deref(), Some("Ok(Some(false))"));
    assert_eq!(api("missing").as_deref(), Some("Ok(None)"));
    assert_eq!(api("state").as_deref(), Some("Ok(Some(\"v1\"))"));
    assert_eq!(api("zlib").as_deref(), Some("aaaaaaaaaaaaaaaa"));
    assert_eq!(
        api("foreign").as_deref(),
        Some("Err(Host { call: \"proxy_call_foreign_function\", status: NotFound })")
    );
    assert_eq!(api("gauge").as_deref(), Some("Ok(3)"));
    assert_eq!(api("queue").as_deref(), Some("Ok(Some([1, 2, 3]))"));
    assert_eq!(api("queue-empty").as_deref(), Some("Ok(None)"));
    assert_eq!(api("shared").as_deref(), Some("Ok(Some(\"hello\"))"));
    assert_eq!(api("bad-utf8").as_deref(), Some("None"), "non-UTF-8 is None, not a panic");
    assert_eq!(api("raw").as_deref(), Some("Some([255, 254, 32, 111, 107])"));
    assert_eq!(api("map-bytes").as_deref(), Some("true"), "the header map's byte size");
    assert_eq!(api("method").as_deref(), Some("Some(GET)"));
    assert!(matches!(h.metric("sdk_hist"), Some(MetricValue::Histogram { count: 1, sum: 42, .. })));
    assert_eq!(h.metric("sdk_gauge"), Some(MetricValue::Gauge(3)));
}

#[test]
fn manual_resume_reset_and_grpc_replies_match_envoy() {
    let mut s = SideBySide::start(features(GOOD), &["auth"], |b| b).unwrap();
    // Paused by the handler, resumed by hand from a spawned task after its callout.
    let o = check(&mut s, Case::get("/manual"));
    assert!(o.body.contains("x-manual: true\n"), "{}", o.body);
    // A reply to a gRPC client, with an explicit grpc-status.
    let o = check(&mut s, Case::get("/grpc-deny").header("content-type", "application/grpc"));
    assert_eq!((o.status, header(&o, "grpc-status"), header(&o, "grpc-message")), (200, Some("16"), Some("no")));
    // Reset: Envoy closes the connection without an answer; the harness reports a reset.
    let envoy = sluice_integration::client::send(s.envoy.port, "GET", "/reset", &[], b"");
    assert!(envoy.is_err(), "Envoy answered a reset stream: {envoy:?}");
    let ex = s
        .harness
        .exchange(sluice_host::harness::Request::get("/reset"), sluice_integration::upstream::respond_to)
        .unwrap();
    assert!(ex.reset && ex.status().is_none());
}

#[test]
fn headers_held_by_the_handler_are_edited_from_the_body_alike() {
    // With `allow_on_headers_stop_iteration`, a Pause at the headers holds them while the body
    // arrives; the body handler reaches them through the stream and its Continue releases both.
    let filter = WasmFilter { allow_on_headers_stop_iteration: true, ..features(GOOD) };
    let mut s = SideBySide::start(filter, &[], |b| b).unwrap();
    let o = check(&mut s, Case::post("/hold", "twelve bytes"));
    assert_eq!(o.status, 200, "{} {:?}", o.body, s.harness.logs_at(LogLevel::Error));
    assert!(o.body.contains("x-held-body-size: 12\n") && o.body.contains("body=twelve bytes!\n"), "{}", o.body);
    // After an edit the body's length is right, as the SDK keeps it and as the host reports it.
    assert!(o.body.contains("x-body-len: 13 13\n"), "{}", o.body);
    assert!(o.body.contains("x-map-size: true\n"), "the header map's size is its names' and values' bytes: {}", o.body);
}

#[test]
fn a_hostcall_error_returned_with_a_question_mark_answers_500_alike() {
    // The handler writes response headers while the request is read: the host refuses, `?`
    // returns the error, and the SDK answers 500 and logs which handler failed.
    let mut s = SideBySide::start(features(GOOD), &[], |b| b).unwrap();
    let o = check(&mut s, Case::get("/fail"));
    assert_eq!(o.status, 500);
    assert!(!o.body.contains("x-too-early"), "the request did not reach the upstream: {}", o.body);
    let errors = s.harness.logs_at(LogLevel::Error);
    assert!(
        errors.iter().any(|l| l.starts_with("on_request_headers failed: proxy_replace_header_map_value failed")),
        "{errors:?}"
    );
    let log = s.envoy.log();
    assert!(log.contains("on_request_headers failed: proxy_replace_header_map_value failed"), "{log}");
}

#[test]
fn the_vm_start_hook_can_refuse_the_vm_and_foreign_functions_reach_the_plugin() {
    let mut h = Harness::builder()
        .module_file(sdk_filter("features"))
        .plugin_config(GOOD)
        .vm_config(r#""fast""#)
        .build()
        .unwrap();
    assert!(h.logs_at(LogLevel::Info).contains(&"vm start with 6 bytes of VM configuration".to_string()));
    h.on_foreign_function(7, "from the host").unwrap();
    assert!(h.logs_at(LogLevel::Info).contains(&"foreign function 7: from the host".to_string()));
    let err = Harness::builder()
        .module_file(sdk_filter("features"))
        .plugin_config(GOOD)
        .vm_config(r#""refuse""#)
        .build()
        .unwrap_err();
    match &err {
        Error::VmStartFailed { logged: Some(m) } => assert!(m.contains("the VM configuration says refuse"), "{m}"),
        other => panic!("{other}"),
    }
    // The real Envoy refuses the VM too, with the SDK's reason in its log.
    let up = Upstream::start().unwrap();
    let refused = WasmFilter { vm_configuration: r#""refuse""#.into(), ..features(GOOD) };
    let err = match Envoy::start(&EnvoyConfig::http(refused).cluster("upstream", up.port)) {
        Ok(_) => panic!("Envoy started a VM whose start hook refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("on_vm_start failed: invalid configuration: the VM configuration says refuse"), "{err}");
}
