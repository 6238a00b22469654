//! Process-wide state shared by every VM: shared data, shared queues and the metrics registry.
//!
//! Envoy keys shared data and queues by the `vm_id` string alone, so plugins with the same vm_id share
//! them across worker threads, even when their code differs. Metrics live in the root stats scope.

mod metrics;
mod queues;
mod shared_data;

pub use metrics::{Metric, MetricValue, Metrics};
pub use queues::{QueueNotifier, Queues};
pub use shared_data::SharedData;

/// Everything the VMs of one process share. Cheap to clone handles to via `Arc`.
#[derive(Debug, Default)]
pub struct SharedState {
    /// Key/value store with compare-and-swap.
    pub shared_data: SharedData,
    /// Named FIFO queues.
    pub queues: Queues,
    /// Stats defined by plugins (`wasmcustom.*`).
    pub metrics: Metrics,
}
