//! A hostile or broken HTTP/1 client, in Envoy 1.40 and in `sluice serve` on the same config: the
//! codec's refusals (oversized headers, HTTP/1.0), direct responses that do not wait for a body that
//! never comes, and bodies that break off: the upstream never gets a truncated request as if it
//! were whole. Deliberate differences are pinned at the end.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use sluice_integration::sluice::SluiceServe;
use sluice_integration::{Envoy, EnvoyConfig, Upstream};

/// What came back for `raw` (read until the proxy closes, or 3 s), and how long the first byte took.
fn exchange(port: u16, raw: &[u8], half_close: bool) -> (String, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let start = Instant::now();
    s.write_all(raw).unwrap();
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut out = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                first.get_or_insert_with(|| start.elapsed());
                out.extend_from_slice(&buf[..n]);
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), first.unwrap_or_else(|| start.elapsed()))
}

/// The status line, and the headers a client acts on, of an answer.
fn shape(answer: &str) -> Vec<String> {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut lines = head.lines();
    let mut out = vec![lines.next().unwrap_or("").to_string()];
    let mut kept: Vec<String> = lines
        .filter(|l| {
            let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
            ["content-length", "content-type", "connection", "server"].contains(&name.as_str())
        })
        .map(|l| l.to_ascii_lowercase())
        .collect();
    kept.sort();
    out.extend(kept);
    out.push(format!("body={body:?}"));
    out
}

struct Both {
    envoy: Envoy,
    sluice: SluiceServe,
}

fn both(config: &EnvoyConfig) -> Both {
    Both { envoy: Envoy::start_quiet(config).unwrap(), sluice: SluiceServe::start(config).unwrap() }
}

#[test]
fn the_codecs_refusals_are_envoys() {
    let upstream = Upstream::start().unwrap();
    let p = both(&EnvoyConfig::http_without_filter().cluster("upstream", upstream.port));
    let big =
        |kib: usize| format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(kib * 1024)).into_bytes();
    let long_target = |kib: usize| format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(kib * 1024)).into_bytes();
    const TOO_LARGE: &str = "HTTP/1.1 431 Request Header Fields Too Large";
    // How much of the answer must be Envoy's.
    enum Same {
        /// Status line, framing headers and body.
        Shape,
        /// The status: a head larger than hyper's read buffer gets hyper's own 431, without a body.
        Status,
        /// All but the status line's version, which hyper writes in the request's (HTTP/1.0).
        ShapeButVersion,
    }
    let cases: Vec<(&str, Vec<u8>, &str, Same)> = vec![
        ("headers over max_request_headers_kb (60 KiB)", big(61), TOO_LARGE, Same::Shape),
        ("headers far over it", big(100), TOO_LARGE, Same::Status),
        ("headers just under it", big(59), "HTTP/1.1 200 OK", Same::Status),
        ("a request target over it", long_target(62), TOO_LARGE, Same::Shape),
        ("a request target over 64 KiB", long_target(65), TOO_LARGE, Same::Status),
        (
            "HTTP/1.0",
            b"GET / HTTP/1.0\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 426 Upgrade Required",
            Same::ShapeButVersion,
        ),
        (
            "HTTP/1.0 without Host",
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            "HTTP/1.1 426 Upgrade Required",
            Same::ShapeButVersion,
        ),
    ];
    let refused = cases.iter().filter(|c| !c.2.contains("200")).count();
    for (what, raw, status, same) in cases {
        let (e, _) = exchange(p.envoy.port, &raw, false);
        let (s, _) = exchange(p.sluice.port, &raw, false);
        assert!(e.starts_with(status), "{what}: Envoy says {:?}", shape(&e));
        match same {
            Same::Shape => assert_eq!(shape(&s), shape(&e), "{what}"),
            Same::Status => assert_eq!(shape(&s)[0], shape(&e)[0], "{what}"),
            Same::ShapeButVersion => {
                assert_eq!(shape(&s)[1..], shape(&e)[1..], "{what}");
                assert_eq!(shape(&s)[0], status.replace("HTTP/1.1", "HTTP/1.0"), "{what}");
            }
        }
    }
    // Each refusal is a connection ended for breaking the protocol, in both.
    std::thread::sleep(Duration::from_millis(200));
    let name = "http.ingress.downstream_cx_protocol_error";
    let s = sluice_integration::client::stat(p.sluice.admin_port, name).unwrap();
    let n = Some(refused.to_string());
    assert_eq!((p.envoy.stat(name), s), (n.clone(), n), "{name} (Envoy, sluice)");
}

#[test]
fn a_direct_response_does_not_wait_for_the_body() {
    let p = both(&EnvoyConfig::http_without_filter().direct_response(200, "hi"));
    // A body announced and never sent.
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
    let (e, e_took) = exchange(p.envoy.port, raw, false);
    let (s, s_took) = exchange(p.sluice.port, raw, false);
    assert!(e.starts_with("HTTP/1.1 200 OK") && e_took < Duration::from_secs(1), "Envoy: {e:?} after {e_took:?}");
    assert_eq!(shape(&s), shape(&e));
    assert!(s_took < Duration::from_secs(1), "sluice answered after {s_took:?}");
    assert!(shape(&s).contains(&"connection: close".to_string()), "the unread body ends the connection");
}

#[test]
fn a_body_that_breaks_off_never_reaches_the_upstream_as_whole() {
    let upstream = Upstream::start().unwrap();
    let p = both(&EnvoyConfig::http_without_filter().cluster("upstream", upstream.port));
    let collected = || {
        let raw = sluice_integration::client::get(upstream.port, "/collected").unwrap();
        String::from_utf8_lossy(&raw.body).into_owned()
    };
    let head = "POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = |text: String| format!("{:x}\r\n{text}\r\n", text.len());
    for (who, port) in [("envoy", p.envoy.port), ("sluice", p.sluice.port)] {
        // An invalid chunk size after a good chunk: 400, and the upstream request is reset.
        let raw = format!("{head}{}zz\r\n", chunk(format!("{who}-bad\n")));
        let (answer, _) = exchange(port, raw.as_bytes(), false);
        assert_eq!(shape(&answer)[0], "HTTP/1.1 400 Bad Request", "{who}: {answer:?}");
        // A client that half-closes after one chunk: the connection is closed, with no answer.
        let raw = format!("{head}{}", chunk(format!("{who}-half\n")));
        let (answer, _) = exchange(port, raw.as_bytes(), true);
        assert_eq!(answer, "", "{who}");
        // The same body, whole: it does reach the upstream (so the store works).
        let raw = format!("{head}{}0\r\n\r\n", chunk(format!("{who}-whole\n")));
        let (answer, _) = exchange(port, raw.as_bytes(), false);
        assert!(answer.starts_with("HTTP/1.1 202"), "{who}: {answer:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collected(), "envoy-whole\nsluice-whole\n", "only whole requests reached the upstream");
    // The bad chunk broke the protocol; the half-close did not.
    let name = "http.ingress.downstream_cx_protocol_error";
    let s = sluice_integration::client::stat(p.sluice.admin_port, name).unwrap();
    assert_eq!((p.envoy.stat(name), s), (Some("1".into()), Some("1".into())), "{name} (Envoy, sluice)");
}

/// Where sluice answers otherwise than Envoy, on purpose or because its HTTP/1 parser (hyper) does:
/// - `Content-Length` with `Transfer-Encoding: chunked`: Envoy refuses (400); hyper reads the body as
///   chunked (RFC 9112 §6.1) and drops the length, and sluice frames the upstream request itself, so
///   the upstream cannot read it two ways (no smuggling). Pinned here.
/// - A fragment in the request target (`/a#x`): Envoy refuses (400); hyper drops the fragment and
///   the request goes on as `/a`.
#[test]
fn content_length_with_chunked_is_read_as_chunked_and_reframed() {
    let upstream = Upstream::start().unwrap();
    let sluice = SluiceServe::start(&EnvoyConfig::http_without_filter().cluster("upstream", upstream.port)).unwrap();
    let raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let (answer, _) = exchange(sluice.port, raw, false);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
    assert!(answer.contains("body=hello\n"), "the whole chunked body went on: {answer:?}");
}

/// A filter that puts CR LF into a header (a local reply's or the response's): sluice leaves that
/// header out, with a warning, and keeps the filter's status. Envoy 1.40 sends the bytes as they
/// are, which lets the text inject headers; sluice's answer is the deliberate difference. Never is
/// a denial turned into a success.
#[test]
fn a_header_with_cr_lf_from_a_filter_is_left_out_and_the_status_kept() {
    let upstream = Upstream::start().unwrap();
    let filter = sluice_integration::reference("local-reply", "");
    let config = EnvoyConfig::http(filter).cluster("upstream", upstream.port);
    let sluice = SluiceServe::start(&config).unwrap();
    let (denied, _) = exchange(sluice.port, b"GET /deny-crlf HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert!(denied.starts_with("HTTP/1.1 403 Forbidden"), "{denied:?}\n{}", sluice.log());
    assert!(denied.ends_with("denied"), "{denied:?}");
    let (echoed, _) = exchange(sluice.port, b"GET /crlf-header HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert!(echoed.starts_with("HTTP/1.1 200 OK"), "{echoed:?}");
    assert!(echoed.contains("x-saw-status: 200"), "the filter's other headers stay: {echoed:?}");
    for answer in [&denied, &echoed] {
        assert!(!answer.to_ascii_lowercase().contains("set-cookie"), "no header was injected: {answer:?}");
    }
    assert!(sluice.log().contains("dropping the response header"), "a warning names the header");
}

/// Random damage to well-formed requests (bytes flipped, cut, repeated, control bytes inserted),
/// 400 of them from a fixed seed: sluice never stops serving, answers each or closes the
/// connection, and a clean request afterwards still gets its 200.
#[test]
fn mutated_requests_never_stop_the_server() {
    let upstream = Upstream::start().unwrap();
    let sluice = SluiceServe::start(&EnvoyConfig::http_without_filter().cluster("upstream", upstream.port)).unwrap();
    let seeds: [&[u8]; 3] = [
        b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-One: 1\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ];
    // SplitMix64: the same 400 inputs on every run.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for _ in 0..400 {
        let mut raw = seeds[(next() % 3) as usize].to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % raw.len();
            match next() % 5 {
                0 => raw[at] = next() as u8,
                1 => raw.truncate(at.max(1)),
                2 => raw.insert(at, [b'\0', b'\r', b'\n', b' ', b':', 0x7f][(next() % 6) as usize]),
                3 => {
                    let piece = raw[at..].to_vec();
                    raw.extend_from_slice(&piece);
                }
                _ => {
                    raw.remove(at);
                    if raw.is_empty() {
                        raw.push(b'G');
                    }
                }
            }
        }
        let mut s = TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let _ = s.write_all(&raw);
        let _ = s.shutdown(Shutdown::Write);
        let _ = s.read(&mut [0u8; 4096]);
    }
    let (answer, _) = exchange(sluice.port, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}\n{}", sluice.log());
}
