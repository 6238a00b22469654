//! The connection manager's file access logs, written by Envoy 1.40 and by `sluice serve` for the
//! same requests on the same bootstrap, line for line.

use std::time::Duration;

use sluice_integration::client;
use sluice_integration::proxy::{self, Proxy, Which};
use sluice_integration::proxy_log::guest_messages;
use sluice_integration::Upstream;

/// The connection manager's access log, in Envoy's default format and in a custom one, written by
/// Envoy and by sluice for the same requests (a direct response, a proxied POST with a body, a head
/// the codec refuses and one the connection manager refuses).
#[test]
fn http_access_logs_match_envoys() {
    let upstream = Upstream::start().unwrap();
    let dir = std::env::temp_dir().join(format!("sluice-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = Vec::new();
    for (n, which) in [Which::Envoy, Which::Sluice].into_iter().enumerate() {
        let (port, admin) = (sluice_integration::ports::free_port(), sluice_integration::ports::free_port());
        let (default_log, custom_log) = (dir.join(format!("default-{n}.log")), dir.join(format!("custom-{n}.log")));
        let yaml = format!(
            r#"static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {default}
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {custom}
              log_format:
                text_format_source:
                  inline_string: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %REQ(X-MISSING)% %REQ(USER-AGENT):4%\n"
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/direct" }}
                direct_response: {{ status: 202, body: {{ inline_string: "direct answer" }} }}
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {up} }} }} }} }}] }}]
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
"#,
            default = default_log.display(),
            custom = custom_log.display(),
            up = upstream.port,
        );
        let config =
            proxy::Rewritten { yaml, ports: [(port, port)].into_iter().collect(), admin_port: admin, has_admin: true };
        let proxy = Proxy::start(which.clone(), &config, &dir).unwrap();
        assert_eq!(client::send(port, "GET", "/direct", &[("user-agent", "curl/8.5")], b"").unwrap().status(), 202);
        assert_eq!(client::send(port, "POST", "/echo", &[], b"hello body").unwrap().status(), 200);
        // Two refusals: the codec's (no request in the line, flag DPE) and the connection
        // manager's (the request as it read it).
        for raw in [
            &b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            b"GET /a#x HTTP/1.1\r\nHost: x\r\nUser-Agent: frag/1.0\r\n\r\n",
        ] {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            std::io::Write::write_all(&mut s, raw).unwrap();
            let mut answer = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut answer);
            assert!(answer.starts_with("HTTP/1.1 400"), "{which:?}: {answer:?}");
        }
        std::thread::sleep(Duration::from_millis(600));
        drop(proxy);
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        lines.push((read(&default_log), read(&custom_log)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let masked = |t: &str| {
        let mut v: Vec<String> =
            t.lines().map(|l| guest_messages(&format!("wasm log: {l}")).into_iter().collect()).collect();
        v.sort();
        v
    };
    assert_eq!(lines[1].1, lines[0].1, "the custom format, unmasked");
    assert_eq!(masked(&lines[1].0), masked(&lines[0].0), "the default format, times and ids masked");
    assert_eq!(lines[0].1.lines().count(), 4, "{}", lines[0].1);
    assert!(lines[0].0.contains(" 400 DPE "), "Envoy flags the codec's refusal: {}", lines[0].0);
}
