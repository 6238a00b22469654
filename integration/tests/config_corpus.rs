//! A corpus of bootstraps in the shapes Envoy 1.40 reads (wrappers, one value for a list, enum case,
//! metadata, legacy names) and a few it refuses, each checked with `envoy --mode validate`: sluice
//! must accept what Envoy accepts and refuse what it refuses, naming the YAML path.

use std::path::Path;

use sluice_host::config;
use sluice_integration::envoy::validate;
use sluice_integration::wasm::{reference_filter, workspace_root};

/// A minimal bootstrap with one wasm HTTP filter, written as a user would.
fn base(module: &Path) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: main
    address:
      socket_address: {{ address: 127.0.0.1, port_value: 0 }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          codec_type: AUTO
          route_config:
            name: local_route
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: headers
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{module}" }} }}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    lb_policy: ROUND_ROBIN
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: 18081 }}
"#,
        module = module.display()
    )
}

fn typed_struct(y: &str, wrapper: &str) -> String {
    y.replace(
        r#"              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: headers
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code:"#,
        &format!(
            r#"              "@type": type.googleapis.com/{wrapper}
              type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              value:
                config:
                  name: headers
                  vm_config:
                    runtime: envoy.wasm.runtime.v8
                    code:"#
        ),
    )
}

/// (what it shows, the bootstrap).
fn corpus(module: &Path) -> Vec<(&'static str, String)> {
    let y = base(module);
    vec![
        ("the plain form", y.clone()),
        ("udpa.type.v1.TypedStruct around the wasm filter", typed_struct(&y, "udpa.type.v1.TypedStruct")),
        ("xds.type.v3.TypedStruct around the wasm filter", typed_struct(&y, "xds.type.v3.TypedStruct")),
        ("listeners as one mapping", y.replace("  listeners:\n  - name: main\n", "  listeners:\n    name: main\n")),
        (
            "enum values in lower case",
            y.replace("codec_type: AUTO", "codec_type: auto")
                .replace("type: STATIC", "type: static")
                .replace("lb_policy: ROUND_ROBIN", "lb_policy: round_robin"),
        ),
        (
            "metadata on a listener, a route and a cluster",
            y.replace("  - name: main\n", "  - name: main\n    metadata: { filter_metadata: { team: { owner: a } } }\n")
                .replace("route: { cluster: upstream }", "route: { cluster: upstream }\n                metadata: { filter_metadata: { r: { k: v } } }")
                .replace("  - name: upstream\n", "  - name: upstream\n    metadata: { filter_metadata: { envoy.lb: { canary: true } } }\n"),
        ),
        ("vm_config.allow_precompiled", y.replace("runtime: envoy.wasm.runtime.v8", "runtime: envoy.wasm.runtime.v8\n                  allow_precompiled: true")),
        (
            "legacy filter names",
            y.replace("name: envoy.filters.network.http_connection_manager", "name: envoy.http_connection_manager")
                .replace("name: envoy.filters.http.router", "name: envoy.router"),
        ),
        ("admin with access_log_path", format!("{y}admin:\n  access_log_path: /dev/null\n  address:\n    socket_address: {{ address: 127.0.0.1, port_value: 0 }}\n")),
        ("a route timeout as a duration string", y.replace("route: { cluster: upstream }", "route: { cluster: upstream, timeout: 1.5s }")),
        (
            "camelCase (JSON) field names",
            y.replace("stat_prefix:", "statPrefix:").replace("connect_timeout:", "connectTimeout:").replace("lb_policy:", "lbPolicy:").replace("http_filters:", "httpFilters:"),
        ),
        ("a number written as a string", y.replace("port_value: 18081", "port_value: \"18081\"")),
        ("a duration in nanoseconds", y.replace("connect_timeout: 0.25s", "connect_timeout: 0.000000250s")),
        (
            "a Struct plugin configuration",
            y.replace("                name: headers\n", "                name: headers\n                configuration: { \"@type\": type.googleapis.com/google.protobuf.Struct, value: { a: 1 } }\n"),
        ),
        ("node identity and metadata", format!("{y}node: {{ id: n1, cluster: c1, metadata: {{ k: v }} }}\n")),
    ]
}

/// (what it shows, the bootstrap): shapes Envoy refuses.
fn refused_corpus(module: &Path) -> Vec<(&'static str, String)> {
    let y = base(module);
    vec![
        ("an empty cluster name (min_len)", y.replace("  - name: upstream\n", "  - name: \"\"\n")),
        ("a port above 65535", y.replace("port_value: 18081", "port_value: 70000")),
        ("a negative port", y.replace("port_value: 18081", "port_value: -1")),
        ("a zero connect timeout (gt 0)", y.replace("connect_timeout: 0.25s", "connect_timeout: 0s")),
        ("a duration beyond protobuf's range", y.replace("route: { cluster: upstream }", "route: { cluster: upstream, timeout: 100000000000000000000s }")),
        ("an empty stat_prefix", y.replace("stat_prefix: ingress_http", "stat_prefix: \"\"")),
        (
            "a connection manager without routes (required oneof)",
            y.replace("          route_config:\n            name: local_route\n", "          unused_route_config:\n            name: local_route\n")
                .replace("          unused_route_config:", "          x_route:"),
        ),
        (
            "two members of one oneof",
            y.replace("route: { cluster: upstream }", "route: { cluster: upstream }\n                direct_response: { status: 200 }"),
        ),
        ("an unknown @type", y.replace("envoy.extensions.filters.http.router.v3.Router", "envoy.extensions.filters.http.router.v3.Routerx")),
        (
            "an unknown field inside a TypedStruct",
            typed_struct(&y, "udpa.type.v1.TypedStruct").replace("                  name: headers\n", "                  name: headers\n                  nmae: typo\n"),
        ),
        (
            "a header name with a line break (HTTP_HEADER_NAME)",
            y.replace("- match: { prefix: \"/\" }", "- match: { prefix: \"/\", headers: [{ name: \"bad\\nname\", present_match: true }] }"),
        ),
        ("an unknown enum value", y.replace("codec_type: AUTO", "codec_type: bogus")),
        ("an unknown top-level field", format!("{y}static_resourcez: {{}}\n")),
        ("an unknown field in metadata", y.replace("  - name: upstream\n", "  - name: upstream\n    metadata: { filter_metadataz: {} }\n")),
        ("an unknown cluster type", y.replace("type: STATIC", "type: strict_dnsx")),
        ("a duplicate cluster", y.replacen("  clusters:\n", "  clusters:\n  - name: upstream\n    connect_timeout: 1s\n    load_assignment: { cluster_name: upstream, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } }] }] }\n", 1)),
    ]
}

#[test]
fn sluice_accepts_and_refuses_what_envoy_does() {
    let module = reference_filter("headers");
    let mut disagree = Vec::new();
    let mut refused = 0;
    let plain = base(&module);
    let accepted = corpus(&module).into_iter().map(|(w, y)| (w, y, true));
    let refusals = refused_corpus(&module);
    let expected_refusals = refusals.len();
    for (what, yaml, envoy_should) in accepted.chain(refusals.into_iter().map(|(w, y)| (w, y, false))) {
        assert!(what == "the plain form" || yaml != plain, "{what}: the variant did not change the bootstrap");
        let (envoy_ok, envoy_says) = validate(&yaml).unwrap();
        if envoy_ok != envoy_should {
            disagree.push(format!(
                "{what}: the corpus expects Envoy to {} it\n  envoy: {}",
                if envoy_should { "accept" } else { "refuse" },
                last(&envoy_says)
            ));
        }
        let sluice = config::parse(&yaml, &workspace_root());
        match (&sluice, envoy_ok) {
            (Ok(_), true) => {}
            (Err(e), false) => {
                refused += 1;
                assert!(!e.path.is_empty(), "{what}: the refusal names no path: {e}");
            }
            (Ok(_), false) => {
                disagree.push(format!("{what}: Envoy refuses it, sluice accepts it\n  envoy: {}", last(&envoy_says)))
            }
            (Err(e), true) => disagree.push(format!("{what}: Envoy accepts it, sluice refuses it: {e}")),
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    assert_eq!(refused, expected_refusals, "the refused shapes are refused by both");
}

fn last(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Every bootstrap shipped in `envoy-config/` is valid for both.
#[test]
fn the_shipped_configs_are_valid_for_both() {
    sluice_integration::wasm::sample_filter("headers"); // builds target/filters
    let root = workspace_root();
    for entry in std::fs::read_dir(root.join("envoy-config")).unwrap() {
        let path = entry.unwrap().path();
        let yaml = std::fs::read_to_string(&path).unwrap();
        // The compose configs name modules under /etc/envoy/filters/: point them at the build.
        let yaml = yaml.replace(
            "/etc/envoy/filters/",
            &format!("{}/", root.join("target/filters/wasm32-wasip1/release").display()),
        );
        let (ok, says) = validate(&yaml).unwrap();
        assert!(ok, "{}: Envoy refuses it: {}", path.display(), last(&says));
        if let Err(e) = config::parse(&yaml, &root) {
            panic!("{}: sluice refuses it: {e}", path.display());
        }
    }
}
