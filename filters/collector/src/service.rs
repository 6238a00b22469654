//! The singleton service: drains the queue, and flushes on a timer.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use sluice::prelude::*;
use sluice::queue::Queue;

fn default_queue() -> String {
    "events".into()
}
fn default_path() -> String {
    "/collect".into()
}
fn default_flush_ms() -> u64 {
    1000
}
fn default_max_pending() -> usize {
    10_000
}
fn default_timeout_ms() -> u64 {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The collector's cluster.
    cluster: String,
    /// The path events are posted to.
    #[serde(default = "default_path")]
    path: String,
    /// The queue's name.
    #[serde(default = "default_queue")]
    queue: String,
    /// How often to flush.
    #[serde(default = "default_flush_ms")]
    flush_ms: u64,
    /// Events held at most while the collector does not take them.
    #[serde(default = "default_max_pending")]
    max_pending: usize,
    /// How long a flush may take.
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

pub struct Collector {
    config: Config,
    pending: RefCell<VecDeque<Vec<u8>>>,
    /// A flush is in flight: the next tick waits for it.
    flushing: Cell<bool>,
    sent: Counter,
    dropped: Counter,
    held: Gauge,
}

impl Collector {
    fn hold(&self, event: Vec<u8>) {
        let mut p = self.pending.borrow_mut();
        if p.len() >= self.config.max_pending {
            p.pop_front();
            self.dropped.inc();
        }
        p.push_back(event);
        self.held.set(p.len() as u64);
    }
}

impl Plugin for Collector {
    type Config = Config;

    fn configure(config: Config, setup: &mut Setup) -> sluice::Result<Self> {
        if config.flush_ms == 0 || config.max_pending == 0 {
            return Err(Error::Config("`flush_ms` and `max_pending` must be at least 1".into()));
        }
        Queue::register(&config.queue)?;
        setup.tick_every(Duration::from_millis(config.flush_ms))?;
        Ok(Collector {
            config,
            pending: RefCell::new(VecDeque::new()),
            flushing: Cell::new(false),
            sent: Counter::new("collector.sent")?,
            dropped: Counter::new("collector.dropped")?,
            held: Gauge::new("collector.pending")?,
        })
    }

    fn on_queue_ready(self: &Rc<Self>, queue: Queue) {
        while let Ok(Some(item)) = queue.pop() {
            self.hold(item);
        }
    }

    fn on_tick(self: &Rc<Self>) {
        if self.flushing.get() || self.pending.borrow().is_empty() {
            return;
        }
        let batch: Vec<Vec<u8>> = self.pending.borrow_mut().drain(..).collect();
        self.held.set(0);
        self.flushing.set(true);
        let this = self.clone();
        sluice::spawn(async move {
            let body = batch.join(&b'\n');
            let c = &this.config;
            let call = HttpCall::post(&c.cluster, &c.path, body)
                .header("content-type", "application/x-ndjson")
                .timeout(Duration::from_millis(c.timeout_ms));
            let outcome = match call.send().await {
                Ok(r) if r.status().is_some_and(|s| s.is_success()) => Ok(()),
                Ok(r) => Err(format!("the collector answered {}", r.status().map_or(0, |s| s.as_u16()))),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => this.sent.add(batch.len() as u64),
                Err(why) => {
                    log::warn!("collector: {why}; keeping {} events for the next flush", batch.len());
                    // Older events go back in front of what arrived meanwhile.
                    let newer: Vec<Vec<u8>> = this.pending.borrow_mut().drain(..).collect();
                    for e in batch.into_iter().chain(newer) {
                        this.hold(e);
                    }
                }
            }
            this.flushing.set(false);
        });
    }
}
