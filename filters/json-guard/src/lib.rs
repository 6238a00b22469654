//! `json-guard`: holds the whole request body of the configured methods and refuses it with 400
//! when it is not JSON or lacks a required field (dotted paths into objects, e.g. `user.name`), or
//! with 413 when it is larger than `max_body_bytes`. Response bodies can be rewritten by string
//! replacement; the rewritten body is sent without the upstream's `content-length`, so its framing
//! is always right whatever the new length.
use std::rc::Rc;

use serde::Deserialize;
use serde_json::Value;
use sluice::prelude::*;

fn default_methods() -> Vec<String> {
    vec!["POST".into(), "PUT".into(), "PATCH".into()]
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replacement {
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Methods whose request body is checked.
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    /// The largest request body accepted.
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
    /// Fields the JSON object must have (`a.b` looks inside `a`).
    #[serde(default)]
    required_fields: Vec<String>,
    /// Replacements applied, in order, to every response body.
    #[serde(default)]
    response_replacements: Vec<Replacement>,
}

struct Guard {
    config: Config,
    rejected: Counter,
}

impl Plugin for Guard {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        if let Some(r) = config.response_replacements.iter().find(|r| r.from.is_empty()) {
            return Err(Error::Config(format!("a response replacement has an empty `from` (to {:?})", r.to)));
        }
        if config.max_body_bytes == 0 {
            return Err(Error::Config("`max_body_bytes` must be at least 1".into()));
        }
        Ok(Guard { config, rejected: Counter::new("json_guard.rejected")? })
    }
}

impl HttpPlugin for Guard {
    type Filter = GuardFilter;

    fn new_filter(self: &Rc<Self>) -> GuardFilter {
        GuardFilter { plugin: self.clone(), check: false }
    }
}

struct GuardFilter {
    plugin: Rc<Guard>,
    /// This request's method is one whose body is checked.
    check: bool,
}

/// The first required field `value` lacks.
fn missing_field<'a>(value: &Value, required: &'a [String]) -> Option<&'a str> {
    required
        .iter()
        .find(|path| {
            let mut v = value;
            for part in path.split('.') {
                match v.get(part) {
                    Some(next) => v = next,
                    None => return true,
                }
            }
            false
        })
        .map(String::as_str)
}

/// `haystack` with every `from` replaced by `to`; bytes, so a binary body is never mangled.
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

impl GuardFilter {
    fn reject(&self, status: StatusCode, why: String) -> sluice::Result<Action> {
        self.plugin.rejected.inc();
        Ok(Reply::new(status)
            .header("content-type", "text/plain")
            .body(why + "\n")
            .details("json_guard_rejected")
            .into())
    }
}

impl HttpFilter for GuardFilter {
    fn buffer_request_body(&self) -> bool {
        true
    }

    fn buffer_response_body(&self) -> bool {
        !self.plugin.config.response_replacements.is_empty()
    }

    async fn on_request_headers(&mut self, req: Request<'_>, end_of_stream: bool) -> sluice::Result<Action> {
        let method = req.method()?.map(|m| m.to_string()).unwrap_or_default();
        self.check = self.plugin.config.methods.iter().any(|m| m.eq_ignore_ascii_case(&method));
        if self.check && end_of_stream {
            return self.reject(StatusCode::BAD_REQUEST, format!("{method} needs a JSON body"));
        }
        Ok(Action::Continue)
    }

    async fn on_request_body(&mut self, body: Body<'_>, end_of_stream: bool) -> sluice::Result<Action> {
        if !self.check || !end_of_stream {
            return Ok(Action::Continue);
        }
        let c = &self.plugin.config;
        if body.len() > c.max_body_bytes {
            let why = format!("the body has {} bytes; at most {} are accepted", body.len(), c.max_body_bytes);
            return self.reject(StatusCode::PAYLOAD_TOO_LARGE, why);
        }
        let bytes = match body.read() {
            Ok(b) => b,
            Err(e) => return self.reject(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the body: {e}")),
        };
        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return self.reject(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
        };
        if !c.required_fields.is_empty() && !value.is_object() {
            return self.reject(StatusCode::BAD_REQUEST, "the body must be a JSON object".into());
        }
        if let Some(field) = missing_field(&value, &c.required_fields) {
            return self.reject(StatusCode::BAD_REQUEST, format!("the body lacks the field `{field}`"));
        }
        Ok(Action::Continue)
    }

    async fn on_response_body(&mut self, mut body: Body<'_>, end_of_stream: bool) -> sluice::Result<Action> {
        if !end_of_stream || body.is_empty() {
            return Ok(Action::Continue);
        }
        let Ok(bytes) = body.read() else { return Ok(Action::Continue) };
        let mut out = bytes.clone();
        for r in &self.plugin.config.response_replacements {
            out = replace_all(&out, r.from.as_bytes(), r.to.as_bytes());
        }
        if out != bytes {
            if let Err(e) = body.replace(&out) {
                log::error!("json-guard: cannot rewrite the response body: {e}");
            }
        }
        Ok(Action::Continue)
    }
}

sluice::http_filter!(Guard);
