//! The connection manager's `codec_type` in Envoy 1.40 and in `sluice serve` on the same config:
//! which protocols a downstream connection may speak (`AUTO`: either, told apart by the HTTP/2
//! preface; `HTTP1`: the preface is a bad request; `HTTP2`: anything but the preface is closed
//! without a word), what each client gets back, and how each counts its connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_integration::h2_frames::{frame, frames, MAGIC};
use sluice_integration::sluice::SluiceServe;
use sluice_integration::{Envoy, EnvoyConfig};

/// The clients: an HTTP/1.1 request, an HTTP/1.0 one, and an HTTP/2 one with prior knowledge
/// (the preface, SETTINGS, and `GET /` on stream 1 in HPACK's static table: `:method GET`,
/// `:scheme http`, `:path /`, `:authority x`).
fn clients() -> Vec<(&'static str, Vec<u8>)> {
    let get = [0x82, 0x86, 0x84, 0x41, 0x01, b'x'];
    let h2 = [MAGIC, &frame(0x4, 0, 0, b""), &frame(0x1, 0x5, 1, &get)].concat();
    vec![
        ("HTTP/1.1", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("HTTP/1.0", b"GET / HTTP/1.0\r\nHost: x\r\n\r\n".to_vec()),
        ("HTTP/2 prior knowledge", h2),
    ]
}

/// What the server sent for `raw`: everything until it closes, or until nothing more came for
/// 300 ms after the first byte (a kept-alive connection), or 3 s.
fn answer(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(raw).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let wait = if out.is_empty() { Duration::from_secs(3) } else { Duration::from_millis(300) };
        s.set_read_timeout(Some(wait.saturating_sub(start.elapsed()).max(Duration::from_millis(1)))).unwrap();
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if start.elapsed() > Duration::from_secs(3) {
            return out;
        }
    }
}

/// The answer in words: an HTTP/1 status line, the HTTP/2 frames by type (the server's SETTINGS
/// and a HEADERS frame on stream 1 for an answered request), or nothing.
fn kind(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "closed without a byte".into();
    }
    if bytes.starts_with(b"HTTP/1.") {
        let line = String::from_utf8_lossy(bytes).lines().next().unwrap_or_default().to_string();
        return format!("HTTP/1 {}", line.split_whitespace().nth(1).unwrap_or("?"));
    }
    let frames = frames(bytes);
    let first = frames.first().map(|f| f.0);
    let answered = frames.iter().any(|f| f.0 == 0x1 && f.2 == 1);
    match (first, answered) {
        (Some(0x4), true) => "HTTP/2 SETTINGS, then the response's HEADERS".into(),
        (Some(0x4), false) => "HTTP/2 SETTINGS, no response".into(),
        _ => format!("{} bytes of something else", bytes.len()),
    }
}

const COUNTED: [&str; 4] = [
    "http.ingress.downstream_cx_http1_total",
    "http.ingress.downstream_cx_http2_total",
    "http.ingress.downstream_cx_protocol_error",
    "http.ingress.downstream_rq_total",
];

#[test]
fn codec_type_decides_which_protocols_a_connection_may_speak() {
    // Envoy's answers, asked of it: (codec, client) → what came back.
    let expected: &[(&str, [&str; 3])] = &[
        ("AUTO", ["HTTP/1 200", "HTTP/1 426", "HTTP/2 SETTINGS, then the response's HEADERS"]),
        ("HTTP1", ["HTTP/1 200", "HTTP/1 426", "HTTP/1 400"]),
        ("HTTP2", ["closed without a byte", "closed without a byte", "HTTP/2 SETTINGS, then the response's HEADERS"]),
    ];
    for (codec, answers) in expected {
        let config = EnvoyConfig::http_without_filter()
            .direct_response(200, "hi")
            .connection_manager_option(&format!("codec_type: {codec}"));
        let envoy = Envoy::start_quiet(&config).unwrap();
        let sluice = SluiceServe::start(&config).unwrap();
        for ((client, raw), want) in clients().iter().zip(answers) {
            let e = kind(&answer(envoy.port, raw));
            let s = kind(&answer(sluice.port, raw));
            assert_eq!(e, *want, "codec_type {codec}, {client}: Envoy");
            assert_eq!(s, e, "codec_type {codec}, {client}: sluice (Envoy: {e})");
        }
        // Both count each connection under its codec's protocol, and the refused ones as protocol
        // errors (read once the proxies have seen every connection end).
        let read = |stat: &dyn Fn(&str) -> Option<String>| -> Vec<String> {
            COUNTED.iter().map(|n| stat(n).unwrap_or_else(|| "0".into())).collect()
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        let (mut e, mut s);
        loop {
            e = read(&|n| envoy.stat(n));
            s = read(&|n| sluice_integration::client::stat(sluice.admin_port, n).unwrap());
            if e == s || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(s, e, "codec_type {codec}: {COUNTED:?} in sluice, in Envoy");
    }
}

/// The `lifecycle` reference filter's request-body lines (`A: request body size=N eos=B`) in a
/// proxy's log, once `n` of them are there (or after 10 s, as they are).
fn body_lines(log: impl Fn() -> String, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> =
            log().lines().filter_map(|l| Some(l.split_once("A: request body ")?.1.to_string())).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP/2 request body ends with the DATA frame that carries END_STREAM: Envoy hands the filter
/// that frame with `end_of_stream`, and an empty end only when the client sent an empty last frame
/// (or ended with trailers). HTTP/1 bodies end in an empty chunk (the codec's message end).
#[test]
fn an_http2_body_ends_with_the_frame_that_ends_the_stream() {
    let mut filter = sluice_integration::compare::reference("lifecycle", "A");
    filter.name = "lifecycle_A".into();
    let upstream = sluice_integration::Upstream::start().unwrap();
    let config = EnvoyConfig::http(filter).cluster("upstream", upstream.port);
    let envoy = Envoy::start(&config).unwrap();
    let sluice = SluiceServe::start(&config).unwrap();
    // POST / on stream 1: `:method POST`, `:scheme http`, `:path /`, `:authority x`; END_HEADERS.
    let post = frame(0x1, 0x4, 1, &[0x83, 0x86, 0x84, 0x41, 0x01, b'x']);
    let start = [MAGIC, &frame(0x4, 0, 0, b""), &post].concat();
    let clients: Vec<(&str, Vec<u8>)> = vec![
        ("one DATA frame ending the stream", [start.clone(), frame(0x0, 0x1, 1, b"hello")].concat()),
        (
            "two DATA frames, the second ending",
            [start.clone(), frame(0x0, 0, 1, b"hel"), frame(0x0, 0x1, 1, b"lo")].concat(),
        ),
        (
            "DATA, then an empty DATA ending",
            [start.clone(), frame(0x0, 0, 1, b"hello"), frame(0x0, 0x1, 1, b"")].concat(),
        ),
    ];
    let mut expected = 0;
    for (what, raw) in &clients {
        let before = (body_lines(|| envoy.log(), 0).len(), body_lines(|| sluice.log(), 0).len());
        let answered = (kind(&answer(envoy.port, raw)), kind(&answer(sluice.port, raw)));
        assert_eq!(answered.1, answered.0, "{what}: the answer, sluice and Envoy");
        let e = body_lines(|| envoy.log(), before.0 + 1)[before.0..].to_vec();
        expected = e.len();
        let s = body_lines(|| sluice.log(), before.1 + expected)[before.1..].to_vec();
        assert_eq!(s, e, "{what}: the body callbacks, sluice and Envoy");
    }
    assert!(expected > 0, "Envoy called the filter's body callback");
}
