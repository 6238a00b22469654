//! A scenario: what the scripted filters do (their script), the request a client sends and how,
//! and how the upstream answers. Scenarios are data: generated from a seed, shrunk, and written to
//! case files.

use serde::{Deserialize, Serialize};

/// How a request's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// No body and no length.
    None,
    /// `content-length`.
    Length,
    /// `transfer-encoding: chunked`, each of [`Scenario::chunks`] a chunk.
    Chunked,
}

/// What the client does once its request is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Client {
    /// Reads the response (or what comes before the connection ends).
    Waits,
    /// Writes the head and the first chunk only, then closes the connection.
    Abandons,
}

/// One scenario of the differential engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The script steps (`A.rqh:add=x-a:1`), see `reference-filters/scripted`.
    pub script: Vec<String>,
    /// The request method.
    pub method: String,
    /// The path, which tells the scenario upstream how to answer (see
    /// [`super::upstream::Shape`]).
    pub path: String,
    /// How the body is framed.
    pub framing: Framing,
    /// The body, in the pieces the client writes (chunks when chunked).
    #[serde(default)]
    pub chunks: Vec<String>,
    /// Request trailers (chunked only).
    #[serde(default)]
    pub trailers: Vec<(String, String)>,
    /// What the client does.
    pub client: Client,
}

impl Scenario {
    /// The request's bytes as the client writes them, carrying `sid` (the scenario's id in one
    /// proxy's run) and the script.
    pub fn request(&self, sid: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\nx-sid: {sid}\r\n",
            self.method, self.path
        );
        if !self.script.is_empty() {
            head.push_str(&format!("x-script: {}\r\n", self.script.join(";")));
        }
        let body: String = self.chunks.concat();
        match self.framing {
            Framing::None => {}
            Framing::Length => head.push_str(&format!("content-length: {}\r\n", body.len())),
            Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        let pieces = match self.client {
            Client::Waits => self.chunks.len(),
            Client::Abandons => self.chunks.len().min(1),
        };
        for chunk in &self.chunks[..pieces] {
            match self.framing {
                Framing::None => {}
                Framing::Length => bytes.extend_from_slice(chunk.as_bytes()),
                Framing::Chunked => {
                    if !chunk.is_empty() {
                        bytes.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
                    }
                }
            }
        }
        if self.framing == Framing::Chunked && self.client == Client::Waits {
            bytes.extend_from_slice(b"0\r\n");
            for (k, v) in &self.trailers {
                bytes.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
        }
        bytes
    }

    /// Simpler scenarios than this one, each one change away, simplest changes first: the
    /// candidates a shrinker tries.
    pub fn simpler(&self) -> Vec<Scenario> {
        let mut out = Vec::new();
        for i in 0..self.script.len() {
            let mut s = self.clone();
            s.script.remove(i);
            out.push(s);
        }
        if self.client != Client::Waits {
            out.push(Scenario { client: Client::Waits, ..self.clone() });
        }
        if !self.trailers.is_empty() {
            out.push(Scenario { trailers: Vec::new(), ..self.clone() });
        }
        if self.chunks.len() > 1 {
            out.push(Scenario { chunks: vec![self.chunks.concat()], ..self.clone() });
        }
        if self.framing == Framing::Chunked {
            out.push(Scenario { framing: Framing::Length, trailers: Vec::new(), ..self.clone() });
        }
        if self.framing != Framing::None && self.method != "GET" {
            let mut s = self.clone();
            s.framing = Framing::None;
            s.chunks.clear();
            s.trailers.clear();
            s.method = "GET".into();
            out.push(s);
        }
        if self.path != SIMPLEST_PATH {
            out.push(Scenario { path: SIMPLEST_PATH.into(), ..self.clone() });
        }
        out
    }
}

/// The upstream's plainest answer: 200 with a `content-length`.
pub const SIMPLEST_PATH: &str = "/up/200/length";

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {:?}", self.method, self.path, self.framing)?;
        if !self.chunks.is_empty() {
            write!(f, " {:?}", self.chunks)?;
        }
        if !self.trailers.is_empty() {
            write!(f, " trailers {:?}", self.trailers)?;
        }
        if self.client != Client::Waits {
            write!(f, " client {:?}", self.client)?;
        }
        write!(f, " script [{}]", self.script.join("; "))
    }
}
