//! A minimal HTTP/1.1 client and message reader over std sockets, so what is sent and read is
//! exactly what the test says (no hidden headers).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A parsed HTTP/1.1 message head and body.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    /// Request line or status line.
    pub start: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Trailers of a chunked body, in order, names lower-cased.
    pub trailers: Vec<(String, String)>,
}

impl Raw {
    /// The status code of a response.
    pub fn status(&self) -> u16 {
        self.start.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// A header's first value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads one message; `Ok(None)` on a clean EOF before any byte. `until_eof` reads a body without
/// length to the end of the connection (responses only).
pub fn read_message(r: &mut impl BufRead, until_eof: bool) -> Result<Option<Raw>> {
    read_message_with(r, until_eof, false)
}

/// [`read_message`], or only the head when `head_only` (the answer to a HEAD request, whose
/// `content-length` describes a body that is not sent).
pub fn read_message_with(r: &mut impl BufRead, until_eof: bool, head_only: bool) -> Result<Option<Raw>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut msg = Raw { start: start.trim_end().to_string(), ..Default::default() };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            bail!("connection closed inside the headers");
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').context("malformed header line")?;
        msg.headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    if head_only {
        return Ok(Some(msg));
    }
    let chunked = msg.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).context("chunk size")?;
            if n == 0 {
                // Trailers (if any) up to the blank line.
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        msg.trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            msg.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = msg.header("content-length") {
        let mut body = vec![0; len.parse().context("content-length")?];
        r.read_exact(&mut body)?;
        msg.body = body;
    } else if until_eof {
        r.read_to_end(&mut msg.body)?;
    }
    Ok(Some(msg))
}

/// Sends one request on a new connection (`connection: close`) and reads the response.
pub fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Raw> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    read_message_with(&mut r, true, method == "HEAD")?.context("the server closed the connection without a response")
}

/// A GET with no headers.
pub fn get(port: u16, path: &str) -> Result<Raw> {
    send(port, "GET", path, &[], b"")
}

/// A stat's value as an Envoy-style admin endpoint at `admin_port` lists it in `/stats` (e.g.
/// `http.ingress.downstream_rq_2xx`), `None` when it is not listed; an error when the admin does not
/// answer.
pub fn stat(admin_port: u16, name: &str) -> Result<Option<String>> {
    let r = get(admin_port, &format!("/stats?filter=^{name}$"))?;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    Ok(text.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(|v| v.trim().to_string())))
}
