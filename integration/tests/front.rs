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

/// Admin `/logging` as Envoy answers it: POST only, the same loggers listed in the same order,
/// levels changed one component or all at once, unknown names and levels refused.
#[test]
fn admin_logging_lists_and_changes_levels_as_envoy() {
    let config = EnvoyConfig::http_without_filter().direct_response(200, "x");
    let envoy = Envoy::start_quiet(&config).unwrap();
    let sluice = SluiceServe::start(&config).unwrap();
    let post = |port: u16, q: &str| {
        let r = client::send(port, "POST", &format!("/logging{q}"), &[], b"").unwrap();
        (r.status(), String::from_utf8_lossy(&r.body).into_owned())
    };
    let (e, s) = (envoy.admin_port, sluice.admin_port);
    assert_eq!(client::get(s, "/logging").unwrap().status(), client::get(e, "/logging").unwrap().status());
    for q in ["?level=info", "", "?wasm=trace", "?paths=http:debug,wasm:error", "?level=warning"] {
        assert_eq!(post(s, q), post(e, q), "POST /logging{q}");
    }
    for q in ["?bogus=trace", "?wasm=loud", "?http=debug&wasm=error"] {
        assert_eq!(post(s, q).0, post(e, q).0, "POST /logging{q}");
    }
    // Endpoints that change the server want POST.
    for path in ["/healthcheck/fail", "/healthcheck/ok", "/quitquitquit"] {
        let (ge, gs) = (client::get(e, path).unwrap(), client::get(s, path).unwrap());
        assert_eq!((gs.status(), gs.body), (ge.status(), ge.body), "GET {path}");
    }
}
