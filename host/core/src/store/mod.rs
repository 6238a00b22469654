//! What a VM's store holds for the guest and what the host keeps beside it: the store data
//! ([`Host`]: contexts, their stream state, callouts, deferred actions), the environment every VM
//! of a proxy shares ([`ProxyEnv`]: clock, log sink, clusters, node), the ids guest and host share,
//! the plugin and VM settings, the memory cap. The hostcalls (`abi`) read and write it; the
//! runtime links them over it; the [`Vm`](crate::vm::Vm) runs guest code on it.

mod actions;
mod env;
mod host;
mod ids;
mod limiter;
mod plugin;

pub use actions::HostAction;
pub use env::{
    Clock, LogCollector, LogLevelSetting, LogRecord, LogSink, NodeInfo, ProxyEnv, RealClock, TracingLogSink, VmStats,
    MONOTONIC_ORIGIN,
};
pub use host::{CalloutData, Context, ContextKind, GrpcCallout, GrpcEvent, Host, HttpCallout, Phase, RootState};
pub use ids::{CalloutToken, ContextId};
pub use plugin::{FailurePolicy, PluginInfo, VmOptions};
