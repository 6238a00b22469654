//! Bodies stream through a filter that does not buffer, in Envoy and in `sluice serve` alike: a
//! response's first chunk reaches the client while the upstream still holds the rest, and a
//! request's first chunk reaches the upstream while the client still holds the rest. A proxy that
//! buffered whole bodies would deadlock here (each side waits for the other) and fail on a read
//! timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use sluice_integration::envoy::{Envoy, EnvoyConfig};
use sluice_integration::reference;
use sluice_integration::sluice::SluiceServe;

/// Reads from `r` until `marker` has arrived; everything read.
fn read_until(r: &mut impl Read, marker: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(marker) {
        let n = r
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {marker:?}: {e}; got so far: {:?}", String::from_utf8_lossy(&got)));
        assert!(n > 0, "closed before {marker:?}; got: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// An upstream for one request that answers with a chunked body in two parts and sends the second
/// only when told to.
fn two_part_upstream() -> (u16, mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        w.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\npart-one\r\n").unwrap();
        rx.recv_timeout(Duration::from_secs(20)).expect("the client never saw part one");
        w.write_all(b"8\r\npart-two\r\n0\r\n\r\n").unwrap();
    });
    (port, tx, t)
}

/// Which proxy a test runs.
#[derive(Clone, Copy)]
enum Proxy {
    Envoy,
    Sluice,
}

/// Starts `which` on `config`: the running process (stopped when dropped) and its listener's port.
fn start(which: Proxy, config: &EnvoyConfig) -> (Box<dyn std::any::Any>, u16) {
    match which {
        Proxy::Envoy => {
            let e = Envoy::start(config).unwrap();
            let port = e.port;
            (Box::new(e), port)
        }
        Proxy::Sluice => {
            let s = SluiceServe::start(config).unwrap();
            let port = s.port;
            (Box::new(s), port)
        }
    }
}

fn response_streams(which: Proxy) {
    let (upstream, go_on, t) = two_part_upstream();
    let config = EnvoyConfig::http(reference("headers", "")).cluster("upstream", upstream);
    let (_proxy, port) = start(which, &config);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let first = read_until(&mut c, "part-one");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.to_ascii_lowercase().contains("x-response-added: yes"), "the filter ran: {first}");
    go_on.send(()).unwrap();
    read_until(&mut c, "part-two");
    t.join().unwrap();
}

#[test]
fn a_response_streams_through_envoy() {
    response_streams(Proxy::Envoy);
}

#[test]
fn a_response_streams_through_sluice_serve() {
    response_streams(Proxy::Sluice);
}

/// An upstream for one request that reports when the request's first chunk arrived, then reads the
/// rest and answers with how many body bytes it got.
fn upload_upstream() -> (u16, mpsc::Receiver<()>, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        read_until(&mut r, "chunk-one");
        tx.send(()).unwrap();
        let rest = read_until(&mut r, "\r\n0\r\n\r\n");
        let n = rest.matches("chunk-").count() + 1;
        let body = format!("got {n} chunks");
        w.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes()).unwrap();
    });
    (port, rx, t)
}

fn request_streams(which: Proxy) {
    let (upstream, arrived, t) = upload_upstream();
    let config = EnvoyConfig::http(reference("headers", "")).cluster("upstream", upstream);
    let (_proxy, port) = start(which, &config);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n9\r\nchunk-one\r\n")
        .unwrap();
    arrived.recv_timeout(Duration::from_secs(10)).expect("the first chunk did not reach the upstream on its own");
    c.write_all(b"9\r\nchunk-two\r\n0\r\n\r\n").unwrap();
    let answer = read_until(&mut c, "chunks");
    assert!(answer.ends_with("got 2 chunks"), "{answer}");
    t.join().unwrap();
}

#[test]
fn a_request_streams_through_envoy() {
    request_streams(Proxy::Envoy);
}

#[test]
fn a_request_streams_through_sluice_serve() {
    request_streams(Proxy::Sluice);
}

/// An upstream for one request that sends its headers and part of a chunked body, then stalls.
fn stalling_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 2 {
            line.clear();
        }
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\npart-one\r\n");
        std::thread::sleep(Duration::from_secs(5));
        let _ = w.write_all(b"8\r\npart-two\r\n0\r\n\r\n");
    });
    port
}

/// What the client got within 4 s: everything read, and whether the proxy ended the connection
/// (rather than the client giving up waiting).
fn stalled_response(which: Proxy) -> (String, bool) {
    let config =
        EnvoyConfig::http(reference("headers", "")).cluster("upstream", stalling_upstream()).route_timeout_ms(1000);
    let (_proxy, port) = start(which, &config);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    c.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let ended = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), ended)
}

#[test]
fn a_stalled_upstream_body_is_cut_at_the_route_timeout_alike() {
    let (envoy, envoy_ended) = stalled_response(Proxy::Envoy);
    let (sluice, sluice_ended) = stalled_response(Proxy::Sluice);
    // Headers and the first part went out before the timeout; then the proxy resets the stream.
    for (name, text, ended) in [("envoy", &envoy, envoy_ended), ("sluice serve", &sluice, sluice_ended)] {
        assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
        assert!(text.contains("part-one"), "{name}: {text}");
        assert!(!text.contains("part-two") && !text.ends_with("0\r\n\r\n"), "{name}: incomplete: {text}");
        assert!(ended, "{name}: the proxy ends the connection at the route timeout: {text}");
    }
}
