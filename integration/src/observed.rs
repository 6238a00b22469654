//! What a client observed, normalized so Envoy's and the harness's answers compare: headers that only
//! a real proxy adds (date, server, x-envoy-*, hop-by-hop) are left out and the rest sorted.

use sluice_host::harness::Exchange;

use crate::client::Raw;

/// Headers that say nothing about the filter.
const IGNORED: &[&str] = &["date", "server", "connection", "transfer-encoding", "keep-alive"];

/// Status, headers and body as the client saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// HTTP status (0 when there was no response).
    pub status: u16,
    /// Headers, lower-case names, sorted, without proxy-only ones.
    pub headers: Vec<(String, String)>,
    /// Body, as text.
    pub body: String,
}

fn normalize(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.retain(|(k, _)| !k.starts_with(':') && !k.starts_with("x-envoy") && !IGNORED.contains(&k.as_str()));
    headers.sort();
    headers
}

impl From<&Raw> for Observed {
    fn from(r: &Raw) -> Self {
        Self {
            status: r.status(),
            headers: normalize(r.headers.clone()),
            body: String::from_utf8_lossy(&r.body).into(),
        }
    }
}

impl From<&Exchange> for Observed {
    fn from(e: &Exchange) -> Self {
        let headers = e
            .response
            .headers
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        Self {
            status: e.status().unwrap_or(0),
            headers: normalize(headers),
            body: String::from_utf8_lossy(&e.response.body).into(),
        }
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "status {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        // Long bodies are cut so a failure stays readable.
        let body: String = self.body.chars().take(2000).collect();
        write!(f, "\n{body}")?;
        if self.body.len() > body.len() {
            write!(f, "... ({} bytes in all)", self.body.len())?;
        }
        Ok(())
    }
}
