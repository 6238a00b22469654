//! Asks the host which properties and foreign functions it serves, so that `docs/SUPPORT.md` can be
//! checked against Envoy, `sluice serve` and the harness alike.
//!
//! The request names what to ask: `x-probe-properties` (paths, `,`-separated, segments
//! `/`-separated) and `x-probe-foreign` (function names, `,`-separated). Each property is read in
//! `on_request_headers`, `on_response_headers` and `on_log`; the first two phases' answers come
//! back as the response headers `x-probe-request`, `x-probe-response` and `x-probe-foreign`, and
//! `on_log`'s as `x-probe-log` of the *next* probe's response (it is kept in shared data). Each
//! answer is `name=ok`, or the host's status (`NotFound`, `SerializationFailure`, …).
use std::rc::Rc;

use sluice::http::{Action, Headers, HttpFilter, HttpStream, Request, Response};
use sluice::{HttpPlugin, Plugin, Setup};

struct Probe;

impl Plugin for Probe {
    type Config = ();
    fn configure(_: (), _: &mut Setup) -> sluice::Result<Self> {
        Ok(Probe)
    }
}

impl HttpPlugin for Probe {
    type Filter = Stream;
    fn new_filter(self: &Rc<Self>) -> Stream {
        Stream::default()
    }
}

#[derive(Default)]
struct Stream {
    properties: Vec<String>,
    foreign: Vec<String>,
    in_request: String,
}

/// What the host answered for one property path.
fn ask(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let answer = match sluice::properties::bytes(&segments) {
        Ok(Some(_)) => "ok".to_string(),
        Ok(None) => "NotFound".to_string(),
        Err(e) => e.status().map_or_else(|| e.to_string(), |s| format!("{s:?}")),
    };
    format!("{path}={answer}")
}

fn ask_all(paths: &[String]) -> String {
    paths.iter().map(|p| ask(p)).collect::<Vec<_>>().join(",")
}

fn list(req: &Request<'_>, name: &str) -> sluice::Result<Vec<String>> {
    Ok(req.header_str(name)?.map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default())
}

impl HttpFilter for Stream {
    async fn on_request_headers(&mut self, req: Request<'_>, _eos: bool) -> sluice::Result<Action> {
        // The value `filter_state/wasm.probe_key` reads back.
        sluice::properties::set(&["probe_key"], b"v")?;
        self.properties = list(&req, "x-probe-properties")?;
        self.foreign = list(&req, "x-probe-foreign")?;
        self.in_request = ask_all(&self.properties);
        Ok(Action::Continue)
    }

    async fn on_response_headers(&mut self, resp: Response<'_>, _eos: bool) -> sluice::Result<Action> {
        if self.properties.is_empty() && self.foreign.is_empty() {
            return Ok(Action::Continue);
        }
        resp.set_header("x-probe-request", &self.in_request)?;
        resp.set_header("x-probe-response", ask_all(&self.properties))?;
        let foreign: Vec<String> = self
            .foreign
            .iter()
            .map(|name| {
                let answer = match sluice::call_foreign_function(name, b"\x00junk") {
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.status().map_or_else(|| e.to_string(), |s| format!("{s:?}")),
                };
                format!("{name}={answer}")
            })
            .collect();
        resp.set_header("x-probe-foreign", foreign.join(","))?;
        let last: Option<String> = sluice::shared::get("probe_log")?.map(|v| v.value);
        resp.set_header("x-probe-log", last.unwrap_or_default())?;
        Ok(Action::Continue)
    }

    fn on_log(&mut self, _stream: &HttpStream) {
        if !self.properties.is_empty() {
            if let Err(e) = sluice::shared::set("probe_log", &ask_all(&self.properties)) {
                log::error!("probe: cannot keep the on_log answers: {e}");
            }
        }
    }
}

sluice::http_filter!(Probe);
