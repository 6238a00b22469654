//! The HTTP/1 front under random bytes: a running `sluice serve` with a wasm filter in front of a
//! recording upstream. One input is one client connection: the bytes are written and the answers
//! read (as many as the input holds whole requests, or until the server closes or goes quiet; the
//! write side stays open, as Envoy and sluice drop a request whose client half-closed). The check fails (panics) when `sluice serve` has
//! exited, or when the upstream received a request the client never sent whole: more complete
//! requests than the inputs so far held, or a body that is not one of a recent input's whole
//! request bodies. (A request can reach the upstream after the next input began, when the proxy
//! was slow to forward it: so requests are counted over the whole run, and a body is looked for
//! in the last few inputs, not in the current one only.)
//!
//! Shared by the cargo-fuzz target `front` and by `cargo test`'s replay of the kept inputs, like
//! `checks.rs`. The proxy is started by [`Front::start`] and killed when dropped (and, through
//! `PR_SET_PDEATHSIG`, when the process that started it dies).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the upstream received: the body of every request that arrived whole.
#[derive(Default)]
struct Received {
    bodies: Vec<Vec<u8>>,
}

/// A `sluice serve` and its recording upstream.
pub struct Front {
    child: Child,
    port: u16,
    received: Arc<Mutex<Received>>,
    /// How many whole requests all inputs so far held.
    allowed: usize,
    /// How many received requests were checked already.
    checked: usize,
    /// The whole request bodies of the last few inputs, newest last.
    recent: std::collections::VecDeque<Vec<Vec<u8>>>,
}

/// How many inputs back a late request's body is looked for.
const RECENT_INPUTS: usize = 8;

impl Front {
    /// Starts `binary serve` with `module` as the listener's wasm filter, in `dir`.
    pub fn start(binary: &Path, module: &Path, dir: &Path) -> Front {
        let upstream = TcpListener::bind("127.0.0.1:0").expect("an upstream port");
        let upstream_port = upstream.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Received::default()));
        let rec = received.clone();
        std::thread::spawn(move || {
            for conn in upstream.incoming().flatten() {
                let rec = rec.clone();
                std::thread::spawn(move || serve_upstream(conn, &rec));
            }
        });
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let admin = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let yaml = format!(
            "static_resources:
  listeners:
  - name: front
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config: {{ virtual_hosts: [ {{ name: vh, domains: ['*'], routes: [ {{ match: {{ prefix: '/' }}, route: {{ cluster: upstream, timeout: 2s }} }} ] }} ] }}
          http_filters:
          - {{ name: envoy.filters.http.wasm, typed_config: {{ '@type': type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm, config: {{ name: front, vm_config: {{ runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: '{}' }} }} }} }} }} }}
          - {{ name: envoy.filters.http.router, typed_config: {{ '@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }} }}
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment: {{ cluster_name: upstream, endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream_port} }} }} }} }} ] }} ] }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
",
            module.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("front.yaml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.join("front.log")).unwrap();
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--concurrency", "1", "-l", "warn", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child with us.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut front = Front { child, port, received, allowed: 0, checked: 0, recent: Default::default() };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sluice serve did not listen within 60 s");
            assert!(front.child.try_wait().unwrap().is_none(), "sluice serve exited at start");
            std::thread::sleep(Duration::from_millis(50));
        }
        front
    }

    /// How many requests reached the upstream whole so far.
    pub fn received(&self) -> usize {
        self.received.lock().unwrap().bodies.len()
    }

    /// One client connection with `data` as everything it sends.
    pub fn check(&mut self, data: &[u8]) {
        let whole = whole_requests(data);
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) {
            // No half-close: Envoy (and sluice) drop a request whose client closed its side.
            let _ = c.write_all(data);
            read_answers(&mut c, whole.len());
        }
        assert!(self.child.try_wait().unwrap().is_none(), "sluice serve exited on this input");
        self.allowed += whole.len();
        if self.recent.len() == RECENT_INPUTS {
            self.recent.pop_front();
        }
        self.recent.push_back(whole);
        let received = self.received.lock().unwrap();
        assert!(
            received.bodies.len() <= self.allowed,
            "the upstream got {} complete requests; the inputs so far held {} whole",
            received.bodies.len(),
            self.allowed
        );
        for body in &received.bodies[self.checked..] {
            assert!(
                self.recent.iter().any(|w| w.contains(body)),
                "the upstream got a body no recent input sent whole: {body:?}"
            );
        }
        self.checked = received.bodies.len();
    }
}

/// Reads until `expected` whole responses came (then a moment more, for any answer beyond
/// them), the server closed, or a second passed.
fn read_answers(c: &mut TcpStream, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut idle = Duration::from_millis(if expected == 0 { 100 } else { 300 });
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let _ = c.set_read_timeout(Some(idle.min(left)));
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
        if responses(&got) >= expected {
            idle = Duration::from_millis(20);
        }
    }
}

/// How many whole responses `data` holds (framed by `Content-Length` or chunked).
fn responses(mut data: &[u8]) -> usize {
    let mut n = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = resp.parse(data) else { return n };
        let chunked = resp.headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
        let length = resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
        let rest = &data[head..];
        let used = if chunked {
            match dechunk(rest) {
                Some((used, _)) => used,
                None => return n,
            }
        } else {
            let len = length.and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok()).unwrap_or(0);
            if rest.len() < len {
                return n;
            }
            len
        };
        n += 1;
        data = &rest[used..];
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bodies of the requests at the start of `data` that are complete (head, and all of the
/// body its framing announces) and that Envoy's codec takes: the first it refuses ends the
/// connection, so nothing after it can reach the upstream either.
fn whole_requests(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((used, body)) = one_request(data) {
        out.push(body);
        data = &data[used..];
    }
    out
}

/// One request: bytes used and its body, if it is whole and none of Envoy's refusals (a length
/// with a coding, two lengths, a coding other than one `chunked`, a fragment) applies.
fn one_request(data: &[u8]) -> Option<(usize, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let named = |name: &'static str| req.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name));
    let (lengths, codings) = (named("content-length").count(), named("transfer-encoding").count());
    let chunked =
        codings == 1 && named("transfer-encoding").all(|h| h.value.trim_ascii().eq_ignore_ascii_case(b"chunked"));
    if (lengths > 0 && codings > 0) || lengths > 1 || (codings > 0 && !chunked) || req.path?.contains('#') {
        return None;
    }
    let rest = &data[head..];
    if chunked {
        let (used, body) = dechunk(rest)?;
        return Some((head + used, body));
    }
    let n: usize = match named("content-length").next() {
        Some(h) => std::str::from_utf8(h.value).ok()?.trim().parse().ok()?,
        None => 0,
    };
    (rest.len() >= n).then(|| (head + n, rest[..n].to_vec()))
}

/// A chunked body, whole (through the last chunk and the trailers' end): bytes used and the body.
fn dechunk(mut data: &[u8]) -> Option<(usize, Vec<u8>)> {
    let start = data.len();
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let end = data.windows(2).position(|w| w == b"\r\n")?;
                data = &data[end + 2..];
                if end == 0 {
                    return Some((start - data.len(), body));
                }
            }
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The upstream: reads requests off one connection and answers each that arrives whole with a 200;
/// a connection that ends mid-request records nothing for it.
fn serve_upstream(mut conn: TcpStream, received: &Mutex<Received>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some((used, body)) = one_request(&buf) {
            received.lock().unwrap().bodies.push(body);
            buf.drain(..used);
            if conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                return;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
