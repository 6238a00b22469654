//! An upstream whose response breaks off after its headers (a body shorter than its
//! `Content-Length`, a chunked body without its last chunk), in Envoy 1.40 and in `sluice serve`:
//! the client never gets it as a whole response, and a plugin's HTTP callout sees a reset, not an
//! answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use sluice_integration::sluice::SluiceServe;
use sluice_integration::{reference, Envoy, EnvoyConfig};

/// An upstream that answers every request with the headers of a 100-byte body and 10 of its bytes
/// (`/chunked`: one chunk and no last one), then closes.
fn breaking_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut path = String::new();
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if path.is_empty() {
                        path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                let head = if path == "/chunked" {
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 100\r\nx-user: alice\r\n\r\n0123456789"
                };
                let mut conn = conn;
                let _ = conn.write_all(head.as_bytes());
                std::thread::sleep(Duration::from_millis(100));
                // Dropped: closed with the body unfinished.
            });
        }
    });
    port
}

/// Everything the proxy sent for a GET of `path` (read until it closes, or 5 s).
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nx-user: alice\r\n\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status line, the framing header and the body bytes of a (possibly broken) response (chunk
/// sizes in lower case: hyper writes `A`, Envoy `a`).
fn shape(answer: &str) -> (String, Option<String>, String) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    let framing = head
        .lines()
        .map(str::to_ascii_lowercase)
        .find(|l| l.starts_with("content-length:") || l.starts_with("transfer-encoding:"));
    (status, framing, body.to_ascii_lowercase())
}

#[test]
fn a_response_that_breaks_off_reaches_the_client_broken_alike() {
    let port = breaking_upstream();
    let config = EnvoyConfig::http_without_filter().cluster("upstream", port);
    let (envoy, sluice) = (Envoy::start_quiet(&config).unwrap(), SluiceServe::start(&config).unwrap());
    for path in ["/short", "/chunked"] {
        let e = shape(&get(envoy.port, path));
        let s = shape(&get(sluice.port, path));
        assert_eq!(e.0, "HTTP/1.1 200 OK", "{path}: Envoy {e:?}");
        assert_eq!(s, e, "{path}: the client sees the same broken response");
        // Neither ends the message: 10 of 100 bytes, or no last chunk.
        match path {
            "/short" => assert_eq!((e.1.as_deref(), e.2.as_str()), (Some("content-length: 100"), "0123456789")),
            _ => assert!(!e.2.contains("0\r\n\r\n") && e.2.contains("0123456789"), "{path}: {e:?}"),
        }
    }
}

#[test]
fn a_callout_whose_response_breaks_off_is_a_reset_for_the_plugin() {
    let port = breaking_upstream();
    // The reference callout filter answers 502 `callout reset: …` when the callout brings no headers.
    let config = EnvoyConfig::http(reference("callout", "auth 2000")).cluster("auth", port).cluster("upstream", port);
    let (envoy, sluice) = (Envoy::start_quiet(&config).unwrap(), SluiceServe::start(&config).unwrap());
    let e = shape(&get(envoy.port, "/"));
    let s = shape(&get(sluice.port, "/"));
    assert_eq!(e.0, "HTTP/1.1 502 Bad Gateway", "Envoy: {e:?}");
    assert!(e.2.starts_with("callout reset:"), "Envoy: {e:?}");
    assert_eq!(s, e, "the plugin saw the same reset");
}
