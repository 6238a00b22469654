//! What a scenario did in one place, and how two places' outcomes differ.

use serde::{Deserialize, Serialize};

use crate::client::Raw;

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientView {
    /// A whole response: status, headers (those that vary from run to run left out or masked),
    /// framing, body and trailers, as text.
    Answered(String),
    /// The connection closed before any byte of a response.
    Closed,
    /// The connection ended inside a response.
    Broken(String),
    /// Nothing came within the client's patience.
    NoAnswer,
    /// The client went away (the scenario said so).
    Abandoned,
    /// The client could not even connect or write.
    Failed(String),
}

/// Response headers left out of the comparison: they vary from run to run (`date`), or with a race
/// Envoy itself has (`x-envoy-upstream-service-time` is only sent when the upstream answered after
/// the whole request went up).
const VARYING: &[&str] = &["date", "x-envoy-upstream-service-time"];

impl ClientView {
    /// The view of a whole response.
    pub fn answered(raw: &Raw) -> Self {
        let mut text = format!("{}\n", raw.start);
        for (k, v) in &raw.headers {
            if VARYING.contains(&k.as_str()) {
                continue;
            }
            let v = if k == "x-request-id" { "*" } else { v.as_str() };
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&format!("\n{}", String::from_utf8_lossy(&raw.body)));
        for (k, v) in &raw.trailers {
            text.push_str(&format!("\ntrailer {k}: {v}"));
        }
        ClientView::Answered(text)
    }
}

impl std::fmt::Display for ClientView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientView::Answered(text) => write!(f, "{text}"),
            ClientView::Closed => write!(f, "(closed without an answer)"),
            ClientView::Broken(why) => write!(f, "(the answer broke off: {why})"),
            ClientView::NoAnswer => write!(f, "(no answer in time)"),
            ClientView::Abandoned => write!(f, "(the client went away)"),
            ClientView::Failed(why) => write!(f, "(the client failed: {why})"),
        }
    }
}

/// What one scenario did in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the client saw.
    pub client: ClientView,
    /// What the upstream received, a summary per request.
    pub upstream: Vec<String>,
    /// The scripted filters' log lines, in order (`A rqh n=… …`).
    pub callbacks: Vec<String>,
}

/// Which parts of two outcomes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    /// What the client saw.
    pub client: bool,
    /// What the upstream received.
    pub upstream: bool,
    /// The callbacks and guest logs.
    pub callbacks: bool,
}

impl Parts {
    /// Whether anything differs.
    pub fn any(self) -> bool {
        self.client || self.upstream || self.callbacks
    }
}

impl Outcome {
    /// Which parts differ from `other`.
    pub fn differs(&self, other: &Outcome) -> Parts {
        Parts {
            client: self.client != other.client,
            upstream: self.upstream != other.upstream,
            callbacks: self.callbacks != other.callbacks,
        }
    }

    /// The callback sequence without arguments (`A rqh`, `B rsb`, …): what "distinct sequences
    /// seen" counts.
    pub fn shape(&self) -> String {
        let names: Vec<&str> = self
            .callbacks
            .iter()
            .filter_map(|l| {
                let mut w = l.splitn(3, ' ');
                let (tag, what) = (w.next()?, w.next()?);
                Some(if ["rqh", "rqb", "rqt", "rsh", "rsb", "rst", "log", "done", "answer", "tick"].contains(&what) {
                    &l[..tag.len() + 1 + what.len()]
                } else {
                    ""
                })
            })
            .filter(|s| !s.is_empty())
            .collect();
        names.join(",")
    }

    /// Both outcomes side by side, the parts that differ only.
    pub fn side_by_side(&self, other: &Outcome, left: &str, right: &str) -> String {
        let parts = self.differs(other);
        let mut out = String::new();
        if parts.client {
            out.push_str(&format!("client, {left}:\n{}\nclient, {right}:\n{}\n", self.client, other.client));
        }
        if parts.upstream {
            out.push_str(&format!(
                "upstream, {left}:\n{:#?}\nupstream, {right}:\n{:#?}\n",
                self.upstream, other.upstream
            ));
        }
        if parts.callbacks {
            out.push_str(&format!(
                "callbacks ({left} | {right}):\n{}",
                lines_side_by_side(&self.callbacks, &other.callbacks)
            ));
        }
        out
    }
}

/// Two lists of lines, a row each, marked where they differ.
fn lines_side_by_side(a: &[String], b: &[String]) -> String {
    let mut out = String::new();
    for i in 0..a.len().max(b.len()) {
        let (l, r) = (a.get(i).map_or("", String::as_str), b.get(i).map_or("", String::as_str));
        let mark = if l == r { ' ' } else { '≠' };
        out.push_str(&format!("{mark} {l}\n{mark} {r}\n"));
    }
    out
}
