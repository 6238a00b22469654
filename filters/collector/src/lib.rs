//! `collector`: one module, two plugins that share a VM id.
//!
//! - root_id `collector` — a singleton service (an `envoy.bootstrap.wasm` extension): registers the
//!   queue, takes the events the filters put there, and every `flush_ms` posts what it holds, one
//!   JSON object per line, to `path` on `cluster`. When the collector does not take a batch (an
//!   answer other than 2xx, or no answer), the events stay for the next flush, up to `max_pending`;
//!   beyond that the oldest are dropped.
//! - root_id `collector_events` — an HTTP filter: when a request is done (`on_log`) it queues
//!   `{"method","path","status","route"}` for the service.
mod events;
mod service;

sluice::plugins! {
    "collector" => service(service::Collector),
    "collector_events" => http(events::Events),
}
