//! `headers`: add, set, remove and rename request and response headers from configuration.
//!
//! ```json
//! { "request":  { "add": {"x-via": "sluice"}, "set": {"x-env": "prod"}, "remove": ["x-debug"], "rename": {"x-old": "x-new"} },
//!   "response": { "set": {"cache-control": "no-store"}, "remove": ["server"] } }
//! ```
//! Order per side: rename, remove, set, add. Renaming keeps every value of the header.
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;
use sluice::prelude::*;

/// Edits for one side (request or response).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Edits {
    /// Appended, keeping existing values.
    add: BTreeMap<String, String>,
    /// Set, replacing existing values.
    set: BTreeMap<String, String>,
    /// Removed.
    remove: Vec<String>,
    /// Renamed (old → new), values kept.
    rename: BTreeMap<String, String>,
}

impl Edits {
    fn apply(&self, h: &impl Headers) -> sluice::Result<()> {
        let pairs = if self.rename.is_empty() { Vec::new() } else { h.pairs()? };
        for (old, new) in &self.rename {
            let values: Vec<&Vec<u8>> =
                pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(old.as_bytes())).map(|(_, v)| v).collect();
            if values.is_empty() {
                continue;
            }
            h.remove_header(old)?;
            for v in values {
                h.add_header(new, v)?;
            }
        }
        for name in &self.remove {
            h.remove_header(name)?;
        }
        for (k, v) in &self.set {
            h.set_header(k, v)?;
        }
        for (k, v) in &self.add {
            h.add_header(k, v)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    request: Edits,
    response: Edits,
}

struct HeadersPlugin {
    config: Config,
}

impl Plugin for HeadersPlugin {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        Ok(HeadersPlugin { config })
    }
}

impl HttpPlugin for HeadersPlugin {
    type Filter = HeadersFilter;

    fn new_filter(self: &Rc<Self>) -> HeadersFilter {
        HeadersFilter { plugin: self.clone() }
    }
}

struct HeadersFilter {
    plugin: Rc<HeadersPlugin>,
}

impl HttpFilter for HeadersFilter {
    async fn on_request_headers(&mut self, req: Request<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
        self.plugin.config.request.apply(&req)?;
        Ok(Action::Continue)
    }

    async fn on_response_headers(&mut self, resp: Response<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
        self.plugin.config.response.apply(&resp)?;
        Ok(Action::Continue)
    }
}

sluice::http_filter!(HeadersPlugin);
