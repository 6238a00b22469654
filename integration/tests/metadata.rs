//! Metadata on the listener, virtual host, route and cluster, and the node's identity and
//! metadata, as a filter reads them (`xds.*_metadata`, `xds.node.*`): in Envoy 1.40 and in sluice
//! started from the same bootstrap, the reference properties filter reports the same values and
//! the same bytes (serialized messages, pairs-encoded maps, doubles). Maps with more than one key
//! are compared by size only: Envoy's order is its hash maps'. A float in YAML is a string to
//! Envoy (`n: 2.5` reads back as `"2.5"`), an integer a number.

use sluice_integration::client;
use sluice_integration::proxy;
use sluice_integration::wasm::reference_filter;
use sluice_integration::Upstream;

fn bootstrap(module: &std::path::Path) -> String {
    format!(
        r#"node:
  id: node-7
  cluster: fleet-a
  metadata: {{ role: edge, weight: 3 }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 9901 }} }}
static_resources:
  listeners:
  - name: main
    metadata: {{ filter_metadata: {{ sluice.test: {{ who: listener }} }} }}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 10000 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: vh
              domains: ["*"]
              metadata: {{ filter_metadata: {{ sluice.test: {{ who: virtual-host }} }} }}
              routes:
              - name: r
                match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
                metadata: {{ filter_metadata: {{ sluice.test: {{ who: route }} }} }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: ref_properties
                vm_config: {{ runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: "{module}" }} }} }}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: upstream
    metadata: {{ filter_metadata: {{ sluice.test: {{ who: cluster, n: 2.5, i: 7 }} }} }}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 10.9.9.9, port_value: 80 }} }} }} }}] }}]
"#,
        module = module.display()
    )
}

#[test]
fn metadata_and_node_properties_are_envoys() {
    let upstream = Upstream::start().unwrap();
    let original = bootstrap(&reference_filter("properties"));
    let seen = proxy::in_both(&original, upstream.port, std::path::Path::new("."), |which, proxy| {
        let raw = client::get(proxy.ports[&10000], "/props").unwrap();
        assert_eq!(raw.status(), 200, "{which:?}");
        raw.headers
            .iter()
            .filter(|(k, _)| k.starts_with("x-prop-") && (k.contains("metadata") || k.contains("node")))
            .cloned()
            .collect::<Vec<(String, String)>>()
    });
    let (envoy, sluice) = (&seen[0], &seen[1]);
    let get = |props: &[(String, String)], name: &str| {
        props.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    // What Envoy says, so the comparison below compares something.
    assert_eq!(get(envoy, "x-prop-xds-route_metadata-filter_metadata-sluice-test-who"), "route");
    assert_eq!(get(envoy, "x-prop-xds-node-metadata-role"), "edge");
    assert_eq!(envoy, sluice, "\n envoy: {envoy:#?}\nsluice: {sluice:#?}");
}
