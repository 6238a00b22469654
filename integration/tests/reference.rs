//! Reference filters (official `proxy-wasm` 0.2.5) in the harness and in the real Envoy 1.40: what a
//! client sees must be the same.

use std::time::Duration;

use sluice_integration::{reference, Case, SideBySide};

fn side(name: &str, config: &str) -> SideBySide {
    SideBySide::start(reference(name, config), &[], |b| b).unwrap_or_else(|e| panic!("{e:#}"))
}

fn check(s: &mut SideBySide, case: Case) -> sluice_integration::Observed {
    s.check(&case).unwrap_or_else(|e| panic!("{e:#}"))
}

fn header<'a>(o: &'a sluice_integration::Observed, name: &str) -> Option<&'a str> {
    o.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn headers_are_added_replaced_and_removed_alike() {
    let mut s = side("headers", "");
    let o = check(
        &mut s,
        Case::get("/h")
            .header("x-echo-in", "hi")
            .header("x-replaced", "old")
            .header("x-remove-me", "1")
            .header("x-multi", "a")
            .header("x-multi", "b"),
    );
    assert_eq!(header(&o, "x-echo-out"), Some("hi"));
    assert!(o.body.contains("x-added: 1\nx-added: 2\n"), "{}", o.body);
    assert!(o.body.contains("x-multi-first: a\n"), "{}", o.body);
    assert!(!o.body.contains("x-remove-me"), "{}", o.body);
    assert_eq!(header(&o, "x-upstream-remove"), None);
    check(&mut s, Case::post("/p", "some body"));
}

#[test]
fn bodies_are_buffered_and_rewritten_alike() {
    let mut s = side("body", "");
    let o = check(&mut s, Case::post("/echo", "hello world"));
    // The response rewrite sees the echoed request body too.
    assert!(o.body.contains("body=[HOWDY world]"), "{}", o.body);
    assert!(o.body.starts_with("HOWDY from upstream"), "{}", o.body);
    assert!(o.body.ends_with('!'), "{}", o.body);
    check(&mut s, Case::get("/no-body"));
}

#[test]
fn local_replies_match() {
    let mut s = side("local-reply", "");
    let o = check(&mut s, Case::get("/deny"));
    assert_eq!((o.status, o.body.as_str()), (403, "denied by policy"));
    let o = check(&mut s, Case::get("/status/500"));
    assert_eq!((o.status, o.body.as_str()), (502, "upstream failed"));
    let o = check(&mut s, Case::get("/ok"));
    assert_eq!(header(&o, "x-saw-status"), Some("200"));
    // To a gRPC client the reply is trailers-only: HTTP 200, grpc-status from the HTTP code (403 → 7).
    let o = check(&mut s, Case::get("/deny").header("content-type", "application/grpc"));
    assert_eq!(
        (o.status, header(&o, "grpc-status"), header(&o, "grpc-message")),
        (200, Some("7"), Some("denied by policy"))
    );
}

#[test]
fn properties_match() {
    let mut s = side("properties", "");
    let o = check(&mut s, Case::get("/props/x?q=1&r=2").header("x-prop", "pv"));
    assert_eq!(header(&o, "x-prop-request-path"), Some("/props/x?q=1&r=2"));
    assert_eq!(header(&o, "x-prop-plugin_name"), Some("ref_properties"));
    assert_eq!(header(&o, "x-prop-my_key"), Some("my value"));
    assert_eq!(header(&o, "x-prop-late-request-path"), Some("false"));
    // The access-log pass sees the final request and response, in both hosts.
    let line = "access path=/props/x?q=1&r=2 status=200 code=Some(200) details=Some(\"via_upstream\") request.path=Some(\"/props/x?q=1&r=2\")";
    assert!(s.envoy.log().contains(line), "envoy log lacks: {line}");
    assert!(s.harness.logs().iter().any(|r| r.message == line), "harness logs: {:?}", s.harness.logs());
}

#[test]
fn shared_data_and_queues_match() {
    let mut s = side("shared", "");
    for n in 1..=3 {
        let o = check(&mut s, Case::get("/count"));
        assert_eq!(header(&o, "x-hits"), Some(n.to_string().as_str()));
        assert_eq!(header(&o, "x-dequeued"), Some((n - 1).to_string().as_str()));
        // Let Envoy's main thread deliver queue events between requests.
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_match() {
    let mut s = side("metrics", "");
    check(&mut s, Case::post("/m", "12345"));
    let o = check(&mut s, Case::get("/m"));
    assert_eq!(header(&o, "x-requests"), Some("2"));
    let envoy = s.envoy.stat("wasmcustom.ref_requests");
    let harness = s.harness.metric("ref_requests");
    assert_eq!(envoy.as_deref(), Some("2"));
    assert_eq!(harness, Some(sluice_host::state::MetricValue::Counter(2)));
    assert_eq!(s.envoy.stat("wasmcustom.ref_inflight").as_deref(), Some("0"));
    assert_eq!(s.harness.metric("ref_inflight"), Some(sluice_host::state::MetricValue::Gauge(0)));
}

#[test]
fn timers_tick_alike() {
    let mut s = side("timers", "200");
    // Virtual time has not moved: no tick yet. (Envoy's real clock may already have ticked.)
    let o = s.harness(&Case::get("/t")).unwrap();
    assert_eq!(header(&o, "x-ticked"), Some("false"));
    assert_eq!(s.harness.tick_period(), Some(Duration::from_millis(200)));
    s.sleep(Duration::from_millis(500)).unwrap();
    let o = check(&mut s, Case::get("/t"));
    assert_eq!(header(&o, "x-ticked"), Some("true"));
}

#[test]
fn http_callouts_match() {
    let mut s = SideBySide::start(reference("callout", "auth 300"), &["auth"], |b| b).unwrap();
    let o = check(&mut s, Case::get("/in").header("x-user", "alice"));
    assert!(o.body.contains("x-auth-user: alice"), "{}", o.body);
    let o = check(&mut s, Case::get("/in").header("x-user", "bob"));
    assert_eq!((o.status, o.body.as_str()), (403, "user bob is not allowed"));
    assert_eq!(header(&o, "x-auth-status"), Some("401"));
    let o = check(&mut s, Case::get("/in").header("x-user", "slow"));
    assert_eq!(
        (o.status, o.body.as_str(), header(&o, "x-auth-status")),
        (403, "upstream request timeout", Some("504"))
    );
}

#[test]
fn callout_to_unknown_cluster_matches() {
    let mut s = side("callout", "nope 300");
    let o = check(&mut s, Case::get("/in").header("x-user", "alice"));
    assert_eq!((o.status, o.body.as_str()), (500, "callout failed: BadArgument"));
}

#[test]
fn a_panic_fails_closed_alike() {
    let mut s = side("trap", "");
    let o = check(&mut s, Case::get("/ok"));
    assert!(o.body.contains("x-trap-ok: yes"), "{}", o.body);
    let o = check(&mut s, Case::get("/boom").header("x-fault", "panic"));
    assert_eq!((o.status, o.body.as_str()), (503, ""));
    // The VM stays failed: every later request is refused too.
    let o = check(&mut s, Case::get("/ok"));
    assert_eq!(o.status, 503);
}

#[test]
fn body_sizes_match() {
    let mut s = side("properties", "");
    let o = check(&mut s, Case::post("/props", "hello world"));
    // `request.size` and `response.size` in the access-log pass: the body bytes each way.
    let line = format!("sizes request.size=Some(11) response.size=Some({})", o.body.len());
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.envoy.log().contains(&line), "envoy log lacks: {line}\n{}", s.envoy.log_tail());
    assert!(s.harness.logs().iter().any(|r| r.message == line), "harness logs: {:?}", s.harness.logs());
}
