//! The HTTP filter: one event per finished request, onto the service's queue.

use std::cell::Cell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sluice::prelude::*;
use sluice::queue::Queue;

fn default_queue() -> String {
    "events".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The service's VM id (default: this plugin's own).
    #[serde(default)]
    vm_id: Option<String>,
    /// The queue's name.
    #[serde(default = "default_queue")]
    queue: String,
}

/// What is sent for each request.
#[derive(Debug, Serialize)]
pub struct Event {
    pub method: String,
    pub path: String,
    pub status: i64,
    pub route: String,
}

pub struct Events {
    vm_id: String,
    queue_name: String,
    /// The queue, once the service has registered it.
    queue: Cell<Option<Queue>>,
    lost: Counter,
}

impl Events {
    fn queue(&self) -> Option<Queue> {
        if let Some(q) = self.queue.get() {
            return Some(q);
        }
        let q = Queue::resolve(&self.vm_id, &self.queue_name).ok().flatten()?;
        self.queue.set(Some(q));
        Some(q)
    }
}

impl Plugin for Events {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        let vm_id = match config.vm_id {
            Some(v) => v,
            None => sluice::properties::string(&["plugin_vm_id"])?.unwrap_or_default(),
        };
        Ok(Events { vm_id, queue_name: config.queue, queue: Cell::new(None), lost: Counter::new("collector.lost")? })
    }
}

impl HttpPlugin for Events {
    type Filter = EventFilter;

    fn new_filter(self: &Rc<Self>) -> EventFilter {
        EventFilter { plugin: self.clone() }
    }
}

pub struct EventFilter {
    plugin: Rc<Events>,
}

fn text(path: &[&str]) -> String {
    sluice::properties::string(path).ok().flatten().unwrap_or_default()
}

impl HttpFilter for EventFilter {
    fn on_log(&mut self, _stream: &HttpStream) {
        let event = Event {
            method: text(&["request", "method"]),
            path: text(&["request", "path"]),
            status: sluice::properties::int(&["response", "code"]).ok().flatten().unwrap_or(0),
            route: text(&["xds", "route_name"]),
        };
        let sent = self.plugin.queue().map(|q| q.push_json(&event));
        match sent {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.plugin.lost.inc();
                log::warn!("collector: cannot queue an event: {e}");
            }
            None => {
                self.plugin.lost.inc();
                log::warn!(
                    "collector: no queue `{}` in VM `{}`: is the collector service configured?",
                    self.plugin.queue_name,
                    self.plugin.vm_id
                );
            }
        }
    }
}
