//! Shared queues: FIFOs keyed by (vm_id, name); the last root context to register is notified.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Receives "queue ready" events for one VM; the driver delivers them to the guest after the
/// running callback returns.
pub trait QueueNotifier: Send + Sync + std::fmt::Debug {
    /// `root_context_id` of this VM should get `proxy_on_queue_ready(root_context_id, queue_id)`.
    fn notify(&self, root_context_id: u32, queue_id: u32);
}

#[derive(Debug)]
struct Queue {
    vm_id: String,
    name: String,
    items: VecDeque<Vec<u8>>,
    registrant: Option<(Arc<dyn QueueNotifier>, u32)>,
}

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    next_id: u32,
}

/// All shared queues of the process.
#[derive(Debug, Default)]
pub struct Queues {
    inner: Mutex<Inner>,
}

impl Queues {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or re-registers) `name` for `vm_id`; the caller becomes the one notified.
    pub fn register(&self, vm_id: &str, name: &str, notifier: Arc<dyn QueueNotifier>, root_context_id: u32) -> u32 {
        let mut inner = self.lock();
        let key = (vm_id.to_string(), name.to_string());
        let id = match inner.by_name.get(&key) {
            Some(id) => *id,
            None => {
                inner.next_id += 1;
                let id = inner.next_id;
                inner.by_name.insert(key, id);
                inner.queues.insert(
                    id,
                    Queue {
                        vm_id: vm_id.to_string(),
                        name: name.to_string(),
                        items: VecDeque::new(),
                        registrant: None,
                    },
                );
                id
            }
        };
        if let Some(q) = inner.queues.get_mut(&id) {
            q.registrant = Some((notifier, root_context_id));
        }
        id
    }

    /// The id of `name` in `vm_id`, if registered.
    pub fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.lock().by_name.get(&(vm_id.to_string(), name.to_string())).copied()
    }

    /// Appends an item and notifies the registrant. `false` if the queue does not exist.
    pub fn enqueue(&self, id: u32, item: &[u8]) -> bool {
        let notify = {
            let mut inner = self.lock();
            let Some(q) = inner.queues.get_mut(&id) else {
                return false;
            };
            q.items.push_back(item.to_vec());
            q.registrant.clone()
        };
        if let Some((notifier, root)) = notify {
            notifier.notify(root, id);
        }
        true
    }

    /// Takes the oldest item: `Err(false)` for an unknown queue, `Ok(None)` when empty.
    ///
    /// # Errors
    /// `false` when no queue has the id.
    pub fn dequeue(&self, id: u32) -> Result<Option<Vec<u8>>, bool> {
        let mut inner = self.lock();
        let q = inner.queues.get_mut(&id).ok_or(false)?;
        Ok(q.items.pop_front())
    }

    /// Items waiting in a queue (for inspection), by vm_id and name.
    pub fn len(&self, vm_id: &str, name: &str) -> Option<usize> {
        let inner = self.lock();
        let id = inner.by_name.get(&(vm_id.to_string(), name.to_string()))?;
        inner.queues.get(id).map(|q| q.items.len())
    }

    /// The names of every queue, as (vm_id, name).
    pub fn names(&self) -> Vec<(String, String)> {
        self.lock().queues.values().map(|q| (q.vm_id.clone(), q.name.clone())).collect()
    }
}
