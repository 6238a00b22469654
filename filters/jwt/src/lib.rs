//! `jwt`: verifies the bearer token of every request (HS256 or RS256), checks `exp`, `nbf`, `iss`
//! and `aud` against the proxy's clock, forwards chosen claims as request headers, and answers 401
//! with a `www-authenticate` challenge (RFC 6750) otherwise.
mod keys;
mod token;

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;
use serde_json::Value;
use sluice::prelude::*;

use keys::{Key, KeyConfig};
use token::Refusal;

fn default_header() -> String {
    "authorization".into()
}
fn default_realm() -> String {
    "sluice".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Required `iss`.
    #[serde(default)]
    issuer: Option<String>,
    /// Accepted `aud` values (any one suffices); empty: `aud` is not checked.
    #[serde(default)]
    audiences: Vec<String>,
    /// Verification keys.
    keys: Vec<KeyConfig>,
    /// The header that carries `Bearer <token>`.
    #[serde(default = "default_header")]
    header: String,
    /// Claims copied into request headers (claim → header).
    #[serde(default)]
    claims_to_headers: BTreeMap<String, String>,
    /// Keep the token on the request going upstream.
    #[serde(default)]
    forward_token: bool,
    /// Seconds of clock skew allowed for `exp` and `nbf`.
    #[serde(default)]
    leeway_seconds: u64,
    /// The realm in the challenge.
    #[serde(default = "default_realm")]
    realm: String,
}

struct Jwt {
    config: Config,
    keys: Vec<Key>,
    allowed: Counter,
    denied: Counter,
}

impl Plugin for Jwt {
    type Config = Config;

    fn configure(mut config: Config, _: &mut Setup) -> sluice::Result<Self> {
        if config.keys.is_empty() {
            return Err(Error::Config("`keys` is empty: no token could ever be verified".into()));
        }
        let keys = std::mem::take(&mut config.keys)
            .into_iter()
            .map(Key::from_config)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Config)?;
        Ok(Jwt { config, keys, allowed: Counter::new("jwt.allowed")?, denied: Counter::new("jwt.denied")? })
    }
}

impl HttpPlugin for Jwt {
    type Filter = JwtFilter;

    fn new_filter(self: &Rc<Self>) -> JwtFilter {
        JwtFilter { plugin: self.clone() }
    }
}

struct JwtFilter {
    plugin: Rc<Jwt>,
}

/// A claim as a header value: strings as they are, lists joined by spaces, anything else as JSON.
fn header_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

impl JwtFilter {
    fn refuse(&self, why: Refusal) -> sluice::Result<Action> {
        self.plugin.denied.inc();
        let realm = &self.plugin.config.realm;
        let challenge = match &why {
            Refusal::Missing => format!("Bearer realm=\"{realm}\""),
            other => format!("Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{other}\""),
        };
        Ok(Reply::new(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", challenge)
            .body(why.to_string())
            .details("jwt_authn_failed")
            .into())
    }
}

impl HttpFilter for JwtFilter {
    async fn on_request_headers(&mut self, req: Request<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
        let p = &self.plugin;
        let c = &p.config;
        // Claim headers come only from a verified token, never from the client.
        for h in c.claims_to_headers.values() {
            req.remove_header(h)?;
        }
        let raw = req.header_str(&c.header)?.unwrap_or_default();
        let token = match raw.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
            _ if raw.is_empty() => return self.refuse(Refusal::Missing),
            _ => return self.refuse(Refusal::Malformed("expected `Bearer <token>`")),
        };
        let claims = match token::verify(token, &p.keys) {
            Ok(c) => c,
            Err(why) => return self.refuse(why),
        };
        let now =
            sluice::properties::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        if let Err(why) = token::check_claims(&claims, now, c.leeway_seconds, c.issuer.as_deref(), &c.audiences) {
            return self.refuse(why);
        }
        for (claim, header) in &c.claims_to_headers {
            if let Some(v) = claims.get(claim) {
                req.set_header(header, header_value(v))?;
            }
        }
        if !c.forward_token {
            req.remove_header(&c.header)?;
        }
        p.allowed.inc();
        Ok(Action::Continue)
    }
}

sluice::http_filter!(Jwt);
