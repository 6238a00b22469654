//! A plugin's identity and settings, as Envoy's `PluginConfig` gives them.

/// What happens to streams once the VM has failed (a trap, a deadline, memory exhausted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// 503 with details `wasm_fail_stream`, for this and every later stream (Envoy's default).
    #[default]
    FailClosed,
    /// Later streams skip the filter; the stream that trapped still gets 503 (as Envoy 1.40 does).
    FailOpen,
    /// 503, then a fresh VM for new streams after a backoff.
    FailReload,
    /// The deprecated `fail_open: true`: even the trapping stream continues.
    LegacyFailOpen,
}

/// A plugin: one root context in a VM, with its configuration.
#[derive(Debug, Clone, Default)]
pub struct PluginInfo {
    /// `name` (the `plugin_name` property; part of log lines).
    pub name: String,
    /// `root_id` (the `plugin_root_id` property).
    pub root_id: String,
    /// `vm_config.vm_id`.
    pub vm_id: String,
    /// `configuration`, as bytes (StringValue/BytesValue unwrapped).
    pub configuration: Vec<u8>,
    /// `failure_policy` / `fail_open`.
    pub failure_policy: FailurePolicy,
    /// `allow_on_headers_stop_iteration`: a headers Pause is a real StopIteration.
    pub allow_on_headers_stop_iteration: bool,
}

/// Settings of one VM (Envoy's `VmConfig`).
#[derive(Debug, Clone, Default)]
pub struct VmOptions {
    /// `vm_id`: scopes shared data and queues.
    pub vm_id: String,
    /// `configuration`, read in `proxy_on_vm_start`.
    pub configuration: Vec<u8>,
    /// `environment_variables`, served by WASI `environ_get`.
    pub env_vars: Vec<(String, String)>,
}
