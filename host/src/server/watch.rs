//! `--watch`: when a filter's `.wasm` file changes, new streams get a fresh instance of the new
//! module; streams in flight keep the instance they started with until they finish.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::instance::{Filter, Instance};
use super::{filter_instance, Listener, Shared};
use crate::config::{ListenerKind, Plan};
use crate::manager::PluginId;

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls the filters' files and swaps instances whose module changed.
pub(super) async fn run(
    shared: Arc<Shared>,
    plan: Arc<Plan>,
    listeners: Vec<Listener>,
    instances: Rc<RefCell<Vec<Rc<Instance>>>>,
) {
    let clusters: Vec<String> = plan.clusters.keys().cloned().collect();
    let specs: Vec<Vec<_>> = plan
        .listeners
        .iter()
        .map(|l| match &l.kind {
            ListenerKind::Http(h) => h.filters.clone(),
            ListenerKind::Tcp { filters, .. } => filters.clone(),
        })
        .collect();
    let mut stamps: Vec<Vec<Option<(SystemTime, u64)>>> =
        specs.iter().map(|fs| fs.iter().map(|f| f.code_path.as_deref().and_then(stamp)).collect()).collect();
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    loop {
        interval.tick().await;
        for (li, filters) in specs.iter().enumerate() {
            for (fi, spec) in filters.iter().enumerate() {
                let Some(path) = &spec.code_path else { continue };
                let now = stamp(path);
                if now.is_none() || now == stamps[li][fi] {
                    continue;
                }
                stamps[li][fi] = now;
                let mut spec = spec.clone();
                match std::fs::read(path) {
                    Ok(code) => spec.code = code,
                    Err(e) => {
                        tracing::error!("--watch: cannot read {}: {e}", path.display());
                        continue;
                    }
                }
                let fresh = match filter_instance(&shared, &spec, &clusters) {
                    Ok(p) => {
                        let fresh = Instance::new(p, shared.clone());
                        fresh.start();
                        Filter { instance: fresh, plugin: PluginId::FIRST }
                    }
                    Err(e) => {
                        // A broken module does not take the old one down.
                        tracing::error!(
                            "--watch: {} changed but does not start ({e}); keeping the old module",
                            path.display()
                        );
                        continue;
                    }
                };
                let old = match &listeners[li] {
                    Listener::Http(state) => std::mem::replace(&mut state.filters.borrow_mut()[fi], fresh.clone()),
                    Listener::Tcp(state) => std::mem::replace(&mut state.filters.borrow_mut()[fi], fresh.clone()),
                };
                let mut all = instances.borrow_mut();
                // The old VM stays while other plugins share it or a stream still uses it.
                let still_used = listeners.iter().any(|l| l.uses(&old.instance));
                if !still_used {
                    all.retain(|i| !Rc::ptr_eq(i, &old.instance));
                }
                all.push(fresh.instance);
                tracing::info!("--watch: reloaded {} for new streams", path.display());
            }
        }
    }
}
