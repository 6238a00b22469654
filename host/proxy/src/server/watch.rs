//! `--watch`: when a filter's `.wasm` file changes, new streams get a fresh instance of the new
//! module; streams in flight keep the instance they started with until they finish.
//!
//! The directories of the modules are watched with `notify` (inotify on Linux): nothing runs
//! until a file changes. Directories, not files, because build tools and editors replace a file
//! by renaming a new one over it, which ends a watch on the file itself.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::instance::{Filter, Instance};
use super::{filter_instance, Listener, Shared};
use crate::config::Plan;
use sluice_core::plugin_vm::PluginId;

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Starts watching the directories of `paths`; each change event wakes the returned receiver.
fn watcher(
    paths: &[&std::path::Path],
) -> notify::Result<(notify::RecommendedWatcher, tokio::sync::mpsc::UnboundedReceiver<()>)> {
    use notify::Watcher;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut w = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })?;
    let mut dirs: Vec<&std::path::Path> = paths
        .iter()
        .map(|p| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        w.watch(d, notify::RecursiveMode::NonRecursive)?;
    }
    Ok((w, rx))
}

/// Waits for the filters' files to change and swaps instances whose module changed.
pub(super) async fn run(
    shared: Arc<Shared>,
    plan: Arc<Plan>,
    listeners: Vec<Listener>,
    instances: Rc<RefCell<Vec<Rc<Instance>>>>,
) {
    let specs: Vec<Vec<_>> = plan.listeners.iter().map(|l| l.kind.filters().to_vec()).collect();
    let mut stamps: Vec<Vec<Option<(SystemTime, u64)>>> =
        specs.iter().map(|fs| fs.iter().map(|f| f.code_path.as_deref().and_then(stamp)).collect()).collect();
    let paths: Vec<&std::path::Path> = specs.iter().flatten().filter_map(|f| f.code_path.as_deref()).collect();
    let (_watcher, mut changes) = match watcher(&paths) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("--watch: cannot watch the modules' directories: {e}");
            return;
        }
    };
    loop {
        if changes.recv().await.is_none() {
            return;
        }
        // A build writes a file in several steps: let it settle, then look once.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while changes.try_recv().is_ok() {}
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
                let fresh = match filter_instance(&shared, &plan, &spec) {
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
