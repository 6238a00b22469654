//! What a client reads on the wire from Envoy and from `sluice serve` on the same config: the status
//! line's reason phrase (Envoy's own table, `Unknown` for codes it does not list) and the `server`
//! header the connection manager sets.

use sluice_integration::client;
use sluice_integration::sluice::SluiceServe;
use sluice_integration::{Envoy, EnvoyConfig};

#[test]
fn status_lines_and_server_header_are_envoys() {
    for status in [200, 404, 418, 425, 451, 509, 599] {
        let config = EnvoyConfig::http_without_filter().direct_response(status, "x");
        let envoy = Envoy::start_quiet(&config).unwrap();
        let sluice = SluiceServe::start(&config).unwrap();
        let e = client::get(envoy.port, "/").unwrap();
        let s = client::get(sluice.port, "/").unwrap();
        assert_eq!(s.start, e.start, "status line for {status}");
        assert_eq!(e.header("server"), Some("envoy"));
        assert_eq!(s.header("server"), e.header("server"), "server header for {status}");
    }
}
