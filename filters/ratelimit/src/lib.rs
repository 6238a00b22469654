//! `ratelimit`: a token bucket per key (a request header, or the client address), shared by every
//! worker through shared data with compare-and-swap. Over the limit: 429 with `retry-after`.
//! Counters `ratelimit.allowed` and `ratelimit.limited`.
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sluice::prelude::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The header whose value is the key; without it, the client address (`source.address`).
    key_header: Option<String>,
    /// Bucket size: requests allowed at once.
    capacity: f64,
    /// Tokens added per second.
    refill_per_second: f64,
}

/// A bucket as stored in shared data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Bucket {
    tokens: f64,
    /// Last refill, nanoseconds since the epoch.
    at: u64,
}

struct RateLimit {
    config: Config,
    allowed: Counter,
    limited: Counter,
}

impl Plugin for RateLimit {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        if config.capacity < 1.0 || config.refill_per_second < 0.0 {
            return Err(Error::Config("capacity must be at least 1 and refill_per_second not negative".into()));
        }
        Ok(RateLimit {
            config,
            allowed: Counter::new("ratelimit.allowed")?,
            limited: Counter::new("ratelimit.limited")?,
        })
    }
}

impl HttpPlugin for RateLimit {
    type Filter = Limiter;

    fn new_filter(self: &Rc<Self>) -> Limiter {
        Limiter { plugin: self.clone() }
    }
}

struct Limiter {
    plugin: Rc<RateLimit>,
}

fn now_nanos() -> u64 {
    sluice::properties::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl HttpFilter for Limiter {
    async fn on_request_headers(&mut self, req: Request<'_>, _end_of_stream: bool) -> sluice::Result<Action> {
        let c = &self.plugin.config;
        let key = match &c.key_header {
            Some(h) => req.header_str(h)?.unwrap_or_default(),
            None => sluice::properties::source_ip().ok().flatten().map(|ip| ip.to_string()).unwrap_or_default(),
        };
        let now = now_nanos();
        let mut allowed = false;
        let result = sluice::shared::update(&format!("ratelimit:{key}"), |b: Option<Bucket>| {
            let mut b = b.unwrap_or(Bucket { tokens: c.capacity, at: now });
            let elapsed = now.saturating_sub(b.at) as f64 / 1e9;
            b.tokens = (b.tokens + elapsed * c.refill_per_second).min(c.capacity);
            b.at = now;
            allowed = b.tokens >= 1.0;
            if allowed {
                b.tokens -= 1.0;
            }
            b
        });
        Ok(match result {
            Ok(bucket) if !allowed => {
                self.plugin.limited.inc();
                let wait = if c.refill_per_second > 0.0 {
                    ((1.0 - bucket.tokens) / c.refill_per_second).ceil().max(1.0) as u64
                } else {
                    3600
                };
                Reply::new(StatusCode::TOO_MANY_REQUESTS)
                    .header("retry-after", wait.to_string())
                    .body("rate limited\n")
                    .details("rate_limited")
                    .into()
            }
            Ok(_) => {
                self.plugin.allowed.inc();
                Action::Continue
            }
            Err(e) => {
                // Shared data failed: let the request through rather than block everyone.
                log::warn!("ratelimit: {e}; allowing the request");
                Action::Continue
            }
        })
    }
}

sluice::http_filter!(RateLimit);
