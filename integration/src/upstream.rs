//! An upstream for the tests: answers on 127.0.0.1 with a response computed by [`respond`], which the
//! harness side of a comparison calls too, so both proxies face the same upstream.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_host::harness::{Message, Response};

use crate::client::read_message;

/// What the upstream answers to a request. `/auth` plays an authorization service (`x-user: alice`
/// passes, `slow` answers after a second, anyone else gets 401); `/status/N` answers N; anything
/// else echoes what arrived: method, path, body and the `x-` headers a filter could have changed.
pub fn respond(method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Response {
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if path == "/auth" {
        return match header("x-user") {
            Some("alice") => Response::new(200).header("x-user", "alice").body(""),
            Some("slow") => Response::new(200).header("x-user", "slow").body(""),
            other => Response::new(401)
                .header("content-type", "text/plain")
                .body(format!("user {} is not allowed", other.unwrap_or("<none>"))),
        };
    }
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
        return Response::new(code).header("content-type", "text/plain").body("upstream says hello");
    }
    let mut text =
        format!("hello from upstream\nmethod={method}\npath={path}\nbody={}\n", String::from_utf8_lossy(body));
    let mut xs: Vec<&(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            k.starts_with("x-") && k != "x-request-id" && k != "x-forwarded-proto" && !k.starts_with("x-envoy")
        })
        .collect();
    xs.sort();
    for (k, v) in xs {
        text.push_str(&format!("{k}: {v}\n"));
    }
    Response::new(200).header("content-type", "text/plain").header("x-upstream-remove", "1").body(text)
}

/// What a collector service was sent: `POST /collect` adds each line of the body; `GET /collected`
/// answers every line received so far, sorted, so the answer does not depend on how lines were
/// batched. Each place a case runs in has its own.
#[derive(Debug, Clone, Default)]
pub struct Collected(Arc<std::sync::Mutex<Vec<String>>>);

impl Collected {
    /// [`respond`], plus the collector endpoints on this store.
    pub fn respond(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Response {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match (method, path) {
            ("POST", "/collect") => {
                let text = String::from_utf8_lossy(body);
                lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
                Response::new(202).header("content-type", "text/plain").body("")
            }
            ("GET", "/collected") => {
                lines.sort();
                let mut text = lines.join("\n");
                text.push('\n');
                Response::new(200).header("content-type", "text/plain").body(text)
            }
            _ => respond(method, path, headers, body),
        }
    }

    /// [`Collected::respond`] for a request that went through the harness.
    pub fn respond_to(&self, m: &Message) -> Response {
        let h = |n: &str| m.headers.get_str(n).unwrap_or_default().to_string();
        self.respond(&h(":method"), &h(":path"), &regular_headers(m.headers.iter()), &m.body)
    }
}

/// The regular (non-pseudo) headers of `pairs`, as text.
pub fn regular_headers<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .filter(|(k, _)| !k.starts_with(b":"))
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// [`respond`] for a request that went through the harness.
pub fn respond_to(m: &Message) -> Response {
    let h = |n: &str| m.headers.get_str(n).unwrap_or_default().to_string();
    respond(&h(":method"), &h(":path"), &regular_headers(m.headers.iter()), &m.body)
}

/// A running upstream server. Dropping it stops accepting.
pub struct Upstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What it collected (see [`Collected`]).
    pub collected: Collected,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// Starts a server that answers with [`respond`].
    pub fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0")
    }

    /// [`Upstream::start`] on a given address.
    pub fn start_on(addr: &str) -> std::io::Result<Self> {
        let collected = Collected::default();
        let store = collected.clone();
        let mut u = Self::listen(addr, move |s| serve(s, &store))?;
        u.collected = collected;
        Ok(u)
    }

    /// Accepts connections on `addr` and hands each to `handle` on its own thread.
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub fn listen(addr: &str, handle: impl Fn(TcpStream) + Clone + Send + 'static) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let handle = handle.clone();
                        std::thread::spawn(move || handle(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self { port, collected: Collected::default(), stop })
    }

    /// Starts a TCP server that echoes every byte back and closes when the client half-closes.
    pub fn start_tcp_echo() -> std::io::Result<Self> {
        Self::start_tcp_echo_on("127.0.0.1:0")
    }

    /// [`Upstream::start_tcp_echo`] on a given address.
    pub fn start_tcp_echo_on(addr: &str) -> std::io::Result<Self> {
        Self::listen(addr, |s| {
            if let Ok(mut w) = s.try_clone() {
                let mut r = s;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(std::net::Shutdown::Write);
            }
        })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(s: TcpStream, collected: &Collected) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    while let Ok(Some(req)) = read_message(&mut r, false) {
        let mut parts = req.start.split_whitespace();
        let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let resp = collected.respond(method, path, &req.headers, &req.body);
        if path == "/auth" && req.header("x-user") == Some("slow") {
            std::thread::sleep(Duration::from_secs(2));
        }
        let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
        for (k, v) in &resp.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&resp.body);
        if w.write_all(&bytes).is_err() {
            return;
        }
    }
}
