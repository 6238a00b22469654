//! The differential engine's upstream: answers as the request's path asks (`/up/STATUS/SHAPE`) and
//! keeps, per scenario (`x-sid`), what it received, so that two proxies' upstream sides compare.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{read_message, Raw};
use crate::Upstream;

/// How the upstream frames its answer: the last part of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A `content-length` body.
    Length,
    /// A chunked body in two chunks.
    Chunked,
    /// A chunked body with a trailer (`x-up-trailer`).
    Trailers,
    /// No length: the body ends with the connection.
    Close,
    /// No body at all (for 204).
    None,
    /// `content-length: 0`.
    Empty,
    /// A `content-length` body after 1.5 s (longer than a callout's timeout).
    Slow,
}

impl Shape {
    fn from_path(path: &str) -> (u16, Shape) {
        let mut parts = path.trim_start_matches("/up/").split('/');
        let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(200);
        let shape = match parts.next().unwrap_or("") {
            "chunked" => Shape::Chunked,
            "trailers" => Shape::Trailers,
            "close" => Shape::Close,
            "none" => Shape::None,
            "empty" => Shape::Empty,
            "slow" => Shape::Slow,
            _ => Shape::Length,
        };
        (status, shape)
    }
}

/// What the upstream received, per scenario id.
pub type Received = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A running scenario upstream.
pub struct ScenarioUpstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Received,
    _server: Upstream,
}

impl ScenarioUpstream {
    /// Starts one on an ephemeral port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub fn start() -> std::io::Result<Self> {
        let received = Received::default();
        let store = received.clone();
        let server = Upstream::listen("127.0.0.1:0", move |s| serve(s, &store))?;
        Ok(Self { port: server.port, received, _server: server })
    }

    /// What arrived for scenario `sid`, one summary per request, in arrival order.
    pub fn received(&self, sid: &str) -> Vec<String> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).get(sid).cloned().unwrap_or_default()
    }
}

/// A request as the upstream saw it, with what varies from run to run masked.
fn summary(req: &Raw) -> String {
    let mut text = format!("{}\n", req.start);
    for (k, v) in &req.headers {
        let v = if k == "x-request-id" { "*" } else { v.as_str() };
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!("body={}\n", String::from_utf8_lossy(&req.body)));
    for (k, v) in &req.trailers {
        text.push_str(&format!("trailer {k}: {v}\n"));
    }
    text
}

fn serve(s: TcpStream, received: &Received) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    if let Ok(Some(req)) = read_message(&mut r, false) {
        let path = req.start.split_whitespace().nth(1).unwrap_or_default().to_string();
        let text = summary(&req);
        if let Some(sid) = req.header("x-sid") {
            received.lock().unwrap_or_else(|e| e.into_inner()).entry(sid.to_string()).or_default().push(text.clone());
        }
        let (status, shape) = Shape::from_path(&path);
        if shape == Shape::Slow {
            std::thread::sleep(Duration::from_millis(1500));
        }
        let head_only = req.start.starts_with("HEAD ");
        let body = if head_only { String::new() } else { text.replace('\n', " | ") };
        // One request per connection: a proxy that sends more body than its `content-length`
        // says (Envoy, when a filter grows a body) would otherwise garble the next scenario's.
        let mut out =
            format!("HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\nx-up: {status}\r\nconnection: close\r\n");
        match shape {
            // The answer to a HEAD has no body, whatever its framing would have been.
            _ if head_only => out.push_str("content-length: 0\r\n\r\n"),
            Shape::Length | Shape::Slow => out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len())),
            Shape::Chunked | Shape::Trailers => {
                let (a, b) = body.split_at(body.len() / 2);
                out.push_str(&format!(
                    "transfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n",
                    a.len(),
                    b.len()
                ));
                if shape == Shape::Trailers {
                    out.push_str("x-up-trailer: t\r\n");
                }
                out.push_str("\r\n");
            }
            Shape::Close => out.push_str(&format!("\r\n{body}")),
            Shape::None => out.push_str("\r\n"),
            Shape::Empty => out.push_str("content-length: 0\r\n\r\n"),
        }
        let _ = w.write_all(out.as_bytes());
    }
}
