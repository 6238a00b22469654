//! A network filter (official SDK) in the harness and in the real Envoy, in front of an echo server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sluice_host::abi::status::PeerType;
use sluice_host::harness::Harness;
use sluice_integration::envoy::{Envoy, EnvoyConfig};
use sluice_integration::{reference, Upstream};

/// Sends `data` through Envoy, half-closes, and reads everything that comes back.
fn through_envoy(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The same exchange in the harness: what reaches the echo upstream comes back.
fn through_harness(h: &mut Harness, data: &[u8]) -> (Vec<u8>, Option<PeerType>) {
    let mut c = h.tcp_stream().unwrap();
    c.downstream_data(data, true).unwrap();
    let echoed = c.sent_upstream().to_vec();
    if c.closed().is_none() {
        c.upstream_data(&echoed, true).unwrap();
    }
    let (out, closed) = (c.sent_downstream().to_vec(), c.closed());
    c.close(closed.unwrap_or(PeerType::Remote)).unwrap();
    (out, closed)
}

#[test]
fn network_filter_matches_envoy() {
    let upstream = Upstream::start_tcp_echo().unwrap();
    let filter = reference("tcp", "");
    let envoy = Envoy::start(&EnvoyConfig::tcp(filter.clone()).cluster("upstream", upstream.port)).unwrap();
    let mut h = Harness::builder().module_file(&filter.wasm).vm_id(&filter.vm_id).build().unwrap();

    let envoy_out = through_envoy(envoy.port, b"hello tcp");
    let (harness_out, closed) = through_harness(&mut h, b"hello tcp");
    assert_eq!(envoy_out, b"HELLO TCP");
    assert_eq!(harness_out, envoy_out);
    assert_eq!(closed, None);

    let envoy_out = through_envoy(envoy.port, b"DENY me");
    let (harness_out, closed) = through_harness(&mut h, b"DENY me");
    assert_eq!(envoy_out, b"", "Envoy closed the connection");
    assert_eq!(harness_out, envoy_out);
    assert_eq!(closed, Some(PeerType::Local), "closed by the filter");
    assert!(h.logs_at(sluice_host::abi::status::LogLevel::Warn).contains(&"denied connection".to_string()));
    assert_eq!(h.shared_data("down_bytes").unwrap().0, b"16");
}

#[test]
fn a_chain_of_network_filters_is_served_like_envoy() {
    // Client data passes the filters in order: the reference filter upper-cases it, then the
    // `tcp-guard` sample counts it; a denied first chunk is closed by the first filter.
    let upstream = Upstream::start_tcp_echo().unwrap();
    let guard = tcp_guard(r#"{"deny_prefixes": ["hello"]}"#);
    let config = EnvoyConfig::tcp(reference("tcp", "")).and_filter(guard).cluster("upstream", upstream.port);
    let envoy = Envoy::start(&config).unwrap();
    let sluice = sluice_integration::sluice::SluiceServe::start(&config).unwrap();
    let mut connections = Vec::new();
    for (name, port, admin) in
        [("envoy", envoy.port, envoy.admin_port), ("sluice serve", sluice.port, sluice.admin_port)]
    {
        let stat = |n: &str| admin_stat(admin, n);
        // "hello" is denied by tcp-guard only before the first filter upper-cases it: it passes.
        assert_eq!(through_envoy(port, b"hello tcp"), b"HELLO TCP", "{name}");
        assert_eq!(through_envoy(port, b"DENY me"), b"", "{name}: the first filter closed it");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            stat("wasmcustom.tcp_guard.bytes_in").as_deref(),
            Some("9"),
            "{name}: only the first connection reached the second filter"
        );
        assert_eq!(stat("wasmcustom.tcp_guard.bytes_out").as_deref(), Some("9"), "{name}");
        // The tcp_proxy's upstream connections count in its cluster's stats.
        connections.push(stat("cluster.upstream.upstream_cx_total"));
    }
    assert!(connections[0].as_deref().is_some_and(|n| n != "0"), "Envoy counted: {connections:?}");
    assert_eq!(connections[1], connections[0], "cluster.upstream.upstream_cx_total: sluice, Envoy");
}

/// The `tcp-guard` sample with `configuration`.
fn tcp_guard(configuration: &str) -> sluice_integration::envoy::WasmFilter {
    sluice_integration::envoy::WasmFilter {
        wasm: sluice_integration::wasm::sample_filter("tcp-guard"),
        name: "tcp-guard".into(),
        root_id: "tcp-guard".into(),
        vm_id: "tcp-guard".into(),
        configuration: configuration.into(),
        failure_policy: None,
        allow_on_headers_stop_iteration: false,
        vm_configuration: String::new(),
    }
}

fn admin_stat(port: u16, name: &str) -> Option<String> {
    sluice_integration::client::stat(port, name).unwrap()
}

/// Sends `data` on an open connection and reads what comes back (nothing once it is closed).
fn round_trip(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(data).is_err() {
        return Vec::new();
    }
    let mut buf = vec![0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => buf[..n].to_vec(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn each_tcp_client_is_told_apart_by_its_own_address_like_envoy() {
    // `tcp-guard` allows one open connection per client IP (`source.address`). A second
    // connection from 127.0.0.2 is closed, one from 127.0.0.3 is served: the host must report each
    // connection's real peer, never one address for everyone.
    let upstream = Upstream::start_tcp_echo().unwrap();
    let guard = tcp_guard(r#"{"max_connections_per_client": 1}"#);
    let config = EnvoyConfig::tcp(guard).cluster("upstream", upstream.port);
    let envoy = Envoy::start(&config).unwrap();
    let sluice = sluice_integration::sluice::SluiceServe::start(&config).unwrap();
    for (name, port, admin) in
        [("envoy", envoy.port, envoy.admin_port), ("sluice serve", sluice.port, sluice.admin_port)]
    {
        let connect = |ip: &str| sluice_integration::proxy::connect_from(ip, port).unwrap();
        let mut first = connect("127.0.0.2");
        assert_eq!(round_trip(&mut first, b"one"), b"one", "{name}");
        let mut other = connect("127.0.0.3");
        assert_eq!(round_trip(&mut other, b"two"), b"two", "{name}: another client has its own count");
        let mut again = connect("127.0.0.2");
        assert_eq!(round_trip(&mut again, b"three"), b"", "{name}: a second connection from 127.0.0.2 is closed");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(admin_stat(admin, "wasmcustom.tcp_guard.limited").as_deref(), Some("1"), "{name}");
        drop((first, other, again));
    }
}
