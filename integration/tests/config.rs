//! Envoy bootstrap YAML: sluice reads the same files Envoy does, agrees with `envoy --mode validate`
//! on what is valid, and names the YAML path of what it refuses.

use std::path::Path;

use sluice_host::config::{self, ListenerKind, RouteAction};
use sluice_integration::envoy::{validate, EnvoyConfig};
use sluice_integration::reference;

fn yaml() -> String {
    EnvoyConfig::http(reference("headers", r#"{"k":"v"}"#)).cluster("upstream", 18081).cluster("auth", 18082).render()
}

#[test]
fn a_config_both_accept() {
    let y = yaml();
    let (ok, out) = validate(&y).unwrap();
    assert!(ok, "envoy --mode validate refused it:\n{out}");
    let plan = config::parse(&y, Path::new(".")).unwrap();
    assert_eq!(plan.clusters.len(), 2);
    let ListenerKind::Http(h) = &plan.listeners[0].kind else { panic!("an HTTP listener") };
    assert_eq!(h.filters.len(), 1);
    assert_eq!(h.filters[0].info.configuration, br#"{"k":"v"}"#);
    assert_eq!(h.filters[0].info.name, "ref_headers");
    assert!(!h.filters[0].code.is_empty(), "the module was read");
    let route = &h.virtual_hosts[0].routes[0];
    assert_eq!(route.name, "route0");
    assert!(matches!(&route.action, RouteAction::Cluster { cluster, .. } if cluster == "upstream"));
    assert_eq!(h.buffer_limit, 1 << 20);
}

#[test]
fn a_tcp_config_both_accept() {
    let y = EnvoyConfig::tcp(reference("tcp", "")).cluster("upstream", 18081).render();
    let (ok, out) = validate(&y).unwrap();
    assert!(ok, "{out}");
    let plan = config::parse(&y, Path::new(".")).unwrap();
    assert!(
        matches!(&plan.listeners[0].kind, ListenerKind::Tcp { filters, cluster, .. } if filters.len() == 1 && cluster == "upstream")
    );
}

#[test]
fn both_refuse_a_route_to_an_unknown_cluster() {
    let y = yaml().replace("route: { cluster: upstream }", "route: { cluster: nowhere }");
    let (ok, _) = validate(&y).unwrap();
    assert!(!ok, "Envoy refuses it");
    let err = config::parse(&y, Path::new(".")).unwrap_err();
    assert_eq!(
        err.path,
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster"
    );
    assert_eq!(err.message, "unknown cluster `nowhere`");
}

#[test]
fn both_refuse_fail_open_with_failure_policy() {
    let y = yaml().replace(
        "                vm_config:",
        "                fail_open: true\n                failure_policy: FAIL_OPEN\n                vm_config:",
    );
    let (ok, out) = validate(&y).unwrap();
    assert!(!ok, "Envoy refuses it: {out}");
    let err = config::parse(&y, Path::new(".")).unwrap_err();
    assert_eq!(err.message, "only one of fail_open or failure_policy can be set");
}

#[test]
fn refusals_name_the_yaml_path() {
    // A field sluice does not implement and that would change behaviour.
    let y = yaml().replace(
        "    filter_chains:",
        "    listener_filters: [{name: tls, typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}]\n    filter_chains:",
    );
    let err = config::parse(&y, Path::new(".")).unwrap_err();
    assert_eq!(err.path, "static_resources.listeners[0].listener_filters");
    // A wrong type.
    let y = yaml().replace("port_value: 18081", "port_value: lots");
    let err = config::parse(&y, Path::new(".")).unwrap_err();
    assert!(err.path.starts_with("static_resources.clusters[0].load_assignment"), "{err}");
    // A configuration Envoy hands over as protobuf bytes: a Struct {k: "v"}.
    let y: String = yaml()
        .lines()
        .map(|l| match l.split_once("configuration:") {
            Some((pad, _)) => format!(
                "{pad}configuration: {{ '@type': type.googleapis.com/google.protobuf.Struct, value: {{ k: v }} }}\n"
            ),
            None => format!("{l}\n"),
        })
        .collect();
    let plan = config::parse(&y, Path::new(".")).unwrap();
    let ListenerKind::Http(h) = &plan.listeners[0].kind else { panic!("an HTTP listener") };
    // fields{1: entry{key(1) "k", value(2) Value{string_value(3) "v"}}}
    assert_eq!(h.filters[0].info.configuration, b"\x0a\x08\x0a\x01k\x12\x03\x1a\x01v");
    // A missing module file.
    let y = yaml().replace("ref_headers.wasm", "missing.wasm");
    let err = config::parse(&y, Path::new(".")).unwrap_err();
    assert!(err.path.ends_with("vm_config.code.local.filename") && err.message.contains("cannot read"), "{err}");
}

#[test]
fn harmless_fields_are_warnings() {
    let y = format!("{}stats_flush_interval: 5s\n", yaml());
    let (ok, _) = validate(&y).unwrap();
    assert!(ok);
    let plan = config::parse(&y, Path::new(".")).unwrap();
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].starts_with("(top level).stats_flush_interval: ignored"), "{:?}", plan.warnings);
}

#[test]
fn the_demo_config_is_valid_for_both() {
    sluice_integration::wasm::sample_filter("headers"); // builds target/filters
    let root = sluice_integration::wasm::workspace_root();
    let y = std::fs::read_to_string(root.join("envoy-config/demo.yaml")).unwrap();
    let (ok, out) = validate(&y).unwrap();
    assert!(ok, "{out}");
    let plan = config::parse(&y, &root).unwrap();
    assert_eq!(plan.listeners[0].address.port(), 10000);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}
