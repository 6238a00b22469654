//! A compact JWS: its parts, the signature check, and the registered claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::keys::Key;

/// Why a token is refused; the text goes to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed(&'static str),
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing => write!(f, "Jwt is missing"),
            Refusal::Malformed(why) => write!(f, "Jwt is not well-formed: {why}"),
            Refusal::BadSignature => write!(f, "Jwt verification fails"),
            Refusal::Expired => write!(f, "Jwt is expired"),
            Refusal::NotYetValid => write!(f, "Jwt is not yet valid"),
            Refusal::WrongIssuer => write!(f, "Jwt issuer is not configured"),
            Refusal::WrongAudience => write!(f, "Audiences in Jwt are not allowed"),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Splits, decodes and verifies `token` with the first matching key; its claims.
pub fn verify(token: &str, keys: &[Key]) -> Result<Map<String, Value>, Refusal> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed("a JWT has three dot-separated parts"));
    };
    let decode = |part: &str, what: &'static str| URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Malformed(what));
    let header: Header = serde_json::from_slice(&decode(h, "the header is not base64url")?)
        .map_err(|_| Refusal::Malformed("the header is not a JSON object with `alg`"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&decode(p, "the payload is not base64url")?)
        .map_err(|_| Refusal::Malformed("the payload is not a JSON object"))?;
    let signature = decode(s, "the signature is not base64url")?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    // `alg` picks among the configured keys only: "none" or an algorithm swap can never pass.
    let candidates = keys.iter().filter(|k| k.verifier.alg() == header.alg).filter(|k| match (&header.kid, &k.kid) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    });
    let mut any = false;
    for k in candidates {
        any = true;
        if k.verifier.verify(signed, &signature) {
            return Ok(claims);
        }
    }
    if !any {
        log::debug!("jwt: no configured key for alg {} kid {:?}", header.alg, header.kid);
    }
    Err(Refusal::BadSignature)
}

/// Checks `exp`, `nbf`, `iss` and `aud` at `now` (seconds since the epoch).
pub fn check_claims(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
    issuer: Option<&str>,
    audiences: &[String],
) -> Result<(), Refusal> {
    let number = |name: &str| claims.get(name).map(|v| v.as_f64().ok_or(Refusal::Malformed("exp and nbf are numbers")));
    if let Some(exp) = number("exp").transpose()? {
        if (now as f64) >= exp + leeway as f64 {
            return Err(Refusal::Expired);
        }
    }
    if let Some(nbf) = number("nbf").transpose()? {
        if (now as f64) + (leeway as f64) < nbf {
            return Err(Refusal::NotYetValid);
        }
    }
    if let Some(want) = issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(want) {
            return Err(Refusal::WrongIssuer);
        }
    }
    if !audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.contains(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| audiences.iter().any(|w| w == a)),
            _ => false,
        };
        if !ok {
            return Err(Refusal::WrongAudience);
        }
    }
    Ok(())
}
