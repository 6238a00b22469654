//! A plugin-only (service) root: collects events from a shared queue and, on a timer, posts them in
//! one batch to the `collector` cluster from a spawned async task.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use sluice::call::HttpCall;
use sluice::queue::Queue;
use sluice::{Plugin, Setup};

#[derive(serde::Deserialize)]
struct Config {
    flush_ms: u64,
}

struct Collector {
    pending: RefCell<Vec<String>>,
}

impl Plugin for Collector {
    type Config = Config;

    fn configure(config: Config, setup: &mut Setup) -> sluice::Result<Self> {
        Queue::register("events")?;
        setup.tick_every(Duration::from_millis(config.flush_ms))?;
        Ok(Collector { pending: RefCell::new(Vec::new()) })
    }

    fn on_queue_ready(self: &Rc<Self>, queue: Queue) {
        while let Ok(Some(item)) = queue.pop() {
            self.pending.borrow_mut().push(String::from_utf8_lossy(&item).into_owned());
        }
    }

    fn on_tick(self: &Rc<Self>) {
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.is_empty() {
            return;
        }
        sluice::spawn(async move {
            let n = batch.len();
            let result = HttpCall::post("collector", "/events", batch.join("\n")).send().await;
            match result {
                Ok(r) => log::info!("flushed {n} events: {}", r.status().map_or(0, |s| s.as_u16())),
                Err(e) => log::error!("flushing {n} events failed: {e}"),
            }
        });
    }
}

sluice::service!(Collector);
