//! `auth`: asks an authorisation service about every request, through an async HTTP callout, and
//! lets the request through only when the service answers 200.
//!
//! - 200: the request goes on, with the headers the service named in `upstream_headers` copied onto
//!   it (the identity it established, e.g. `x-user`).
//! - another status below 500: the client gets the service's status and body (and its
//!   `content-type` and `www-authenticate`).
//! - the service cannot answer (timeout, connection failure, a 5xx, a cluster Envoy does not know):
//!   with `failure_mode_allow` the request goes on marked `x-auth-failure-mode-allowed: true`;
//!   otherwise the client gets `status_on_error` (403 by default, as Envoy's ext_authz).
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use sluice::prelude::*;

fn default_path() -> String {
    "/auth".into()
}
fn default_timeout_ms() -> u64 {
    500
}
fn default_status_on_error() -> u16 {
    403
}
fn default_request_headers() -> Vec<String> {
    vec!["authorization".into(), "cookie".into(), "x-user".into()]
}
fn default_client_headers() -> Vec<String> {
    vec!["content-type".into(), "www-authenticate".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The cluster of the authorisation service.
    cluster: String,
    /// The path asked on it.
    #[serde(default = "default_path")]
    path: String,
    /// How long to wait for its answer.
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    /// Request headers passed to the service (when present).
    #[serde(default = "default_request_headers")]
    request_headers: Vec<String>,
    /// Headers of an allowing answer copied onto the request before it goes upstream.
    #[serde(default)]
    upstream_headers: Vec<String>,
    /// Headers of a denying answer passed to the client.
    #[serde(default = "default_client_headers")]
    client_headers: Vec<String>,
    /// Let requests through when the service cannot answer.
    #[serde(default)]
    failure_mode_allow: bool,
    /// The status the client gets when the service cannot answer and requests are not let through.
    #[serde(default = "default_status_on_error")]
    status_on_error: u16,
}

struct Auth {
    config: Config,
    status_on_error: StatusCode,
    allowed: Counter,
    denied: Counter,
    errors: Counter,
}

impl Plugin for Auth {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        if config.cluster.is_empty() {
            return Err(Error::Config("`cluster` must name the authorisation service's cluster".into()));
        }
        if !config.path.starts_with('/') {
            return Err(Error::Config(format!("`path` must start with '/', not {:?}", config.path)));
        }
        let status_on_error = StatusCode::from_u16(config.status_on_error)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))
            .ok_or_else(|| {
                Error::Config(format!("`status_on_error` {} is not an HTTP status", config.status_on_error))
            })?;
        Ok(Auth {
            config,
            status_on_error,
            allowed: Counter::new("auth.allowed")?,
            denied: Counter::new("auth.denied")?,
            errors: Counter::new("auth.errors")?,
        })
    }
}

impl HttpPlugin for Auth {
    type Filter = AuthFilter;

    fn new_filter(self: &Rc<Self>) -> AuthFilter {
        AuthFilter { plugin: self.clone() }
    }
}

struct AuthFilter {
    plugin: Rc<Auth>,
}

impl AuthFilter {
    /// The service could not answer: let through or refuse, as configured.
    fn on_error(&self, req: &Request<'_>, why: &str) -> sluice::Result<Action> {
        self.plugin.errors.inc();
        if self.plugin.config.failure_mode_allow {
            log::warn!("auth: {why}; letting the request through (failure_mode_allow)");
            req.set_header("x-auth-failure-mode-allowed", "true")?;
            return Ok(Action::Continue);
        }
        log::warn!("auth: {why}; refusing the request");
        Ok(Reply::new(self.plugin.status_on_error).details("auth_service_unavailable").into())
    }
}

impl HttpFilter for AuthFilter {
    async fn on_request_headers(&mut self, req: Request<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
        let c = &self.plugin.config;
        let mut call = HttpCall::get(&c.cluster, &c.path).timeout(Duration::from_millis(c.timeout_ms));
        for name in &c.request_headers {
            if let Some(v) = req.header(name)? {
                call = call.header(name, v);
            }
        }
        call = call.header("x-original-method", req.header(":method")?.unwrap_or_default());
        call = call.header("x-original-path", req.path()?.unwrap_or_default());
        let answer = match call.send().await {
            Ok(a) => a,
            Err(e) => return self.on_error(&req, &format!("cannot call cluster `{}`: {e}", c.cluster)),
        };
        let Some(status) = answer.status() else {
            return self.on_error(&req, "the service answered without a status");
        };
        match status {
            StatusCode::OK => {
                self.plugin.allowed.inc();
                for name in &c.upstream_headers {
                    match answer.header(name) {
                        Some(v) => req.set_header(name, v)?,
                        // The client must not be able to claim an identity the service did not give.
                        None => req.remove_header(name)?,
                    }
                }
                Ok(Action::Continue)
            }
            s if s.is_server_error() => self.on_error(&req, &format!("the service answered {}", s.as_u16())),
            s => {
                self.plugin.denied.inc();
                let mut reply = Reply::new(s).body(answer.body().to_vec()).details("auth_denied");
                for name in &c.client_headers {
                    if let Some(v) = answer.header(name) {
                        reply = reply.header(name, v);
                    }
                }
                Ok(reply.into())
            }
        }
    }
}

sluice::http_filter!(Auth);
