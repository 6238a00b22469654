//! `envoy.access_loggers.wasm`, the fourth place Envoy runs proxy-wasm: a plugin whose root context
//! gets `proxy_on_log` once each request is complete, with the request's and response's headers and
//! the stream's properties readable. Envoy 1.40 and sluice on the same bootstrap log the same lines.

use std::time::Duration;

use sluice_integration::client;
use sluice_integration::proxy::{self, Proxy};
use sluice_integration::proxy_log::guest_messages;
use sluice_integration::wasm::reference_filter;
use sluice_integration::Upstream;

fn bootstrap(module: &std::path::Path) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 10000 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          access_log:
          - name: envoy.access_loggers.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog
              config:
                name: the_logger
                vm_config: {{ runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: "{module}" }} }} }}
          route_config:
            virtual_hosts:
            - name: vh
              domains: ["*"]
              routes:
              - name: direct
                match: {{ prefix: "/direct" }}
                direct_response: {{ status: 418, body: {{ inline_string: teapot }} }}
              - name: proxied
                match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: upstream
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
fn a_wasm_access_logger_logs_each_request_as_in_envoy() {
    let upstream = Upstream::start().unwrap();
    let original = bootstrap(&reference_filter("access-logger"));
    let seen = proxy::in_both(&original, upstream.port, std::path::Path::new("."), |which, proxy| {
        let port = proxy.ports[&10000];
        assert_eq!(client::get(port, "/direct").unwrap().status(), 418);
        assert_eq!(client::get(port, "/status/503").unwrap().status(), 503);
        let raw = client::send(port, "POST", "/up", &[("user-agent", "probe/1")], b"hello").unwrap();
        assert_eq!(raw.status(), 200);
        // Envoy writes access logs after the response is out.
        let logged = |p: &Proxy| {
            let mut lines: Vec<String> =
                p.log().lines().filter_map(|l| l.find("logged ").map(|i| l[i..].to_string())).collect();
            lines.sort();
            lines
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while logged(proxy).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The line shape is the guest logger's: `wasm log the_logger ...: logged ...` in both.
        assert!(!guest_messages(&proxy.log()).is_empty(), "{which:?} logged no guest line");
        logged(proxy)
    });
    let (envoy, sluice) = (&seen[0], &seen[1]);
    assert_eq!(envoy.len(), 3, "Envoy logged: {envoy:#?}");
    assert!(envoy.iter().any(|l| l.contains("logged GET /direct status=418 code=418")), "{envoy:#?}");
    assert_eq!(envoy, sluice);
}
