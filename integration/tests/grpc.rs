//! gRPC callouts from an official-SDK filter, answered through the harness.

use sluice_host::harness::{Harness, Request, Response};
use sluice_integration::wasm::reference_filter;

fn harness(with_cluster: bool) -> Harness {
    let b = Harness::builder().module_file(reference_filter("grpc"));
    let b = if with_cluster { b.cluster("grpc") } else { b };
    b.build().unwrap()
}

#[test]
fn a_unary_call_is_made_and_answered() {
    let mut h = harness(true);
    let mut s = h.http_stream();
    s.request_headers([(":method", "GET"), (":path", "/item"), (":authority", "x")], true).unwrap();
    let id = s.id();
    let calls = h.grpc_callouts().to_vec();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(
        (c.service.as_str(), c.method.as_str(), c.messages[0].as_slice()),
        ("pkg.Checker", "Check", &b"/item"[..])
    );
    assert_eq!(c.token.get() % 4, 1, "unary call tokens are 1 mod 4, as in Envoy");
    assert_eq!(c.metadata, vec![(b"x-md".to_vec(), b"1".to_vec())]);
    h.respond_grpc_call(c.token, Ok(b"allowed".to_vec())).unwrap();
    let s = h.http(id);
    assert_eq!(s.upstream_request().headers.get_str("x-grpc-reply"), Some("allowed"));
    assert!(h.grpc_callouts().is_empty());
}

#[test]
fn a_failed_call_reports_status_and_message() {
    let mut h = harness(true);
    let mut s = h.http_stream();
    s.request_headers([(":method", "GET"), (":path", "/item"), (":authority", "x")], true).unwrap();
    let id = s.id();
    let token = h.grpc_callouts()[0].token;
    h.respond_grpc_call(token, Err((7, "no entry".into()))).unwrap();
    let s = h.http(id);
    let reply = s.local_reply().unwrap();
    assert_eq!((reply.status, reply.body.as_slice()), (403, &b"grpc status 7: no entry"[..]));
}

#[test]
fn an_unknown_cluster_is_a_parse_failure() {
    let mut h = harness(false);
    let ex = h.exchange(Request::get("/"), |_| Response::new(200)).unwrap();
    assert_eq!(ex.status(), Some(500));
    assert_eq!(ex.response.body, b"grpc call failed: ParseFailure");
}
