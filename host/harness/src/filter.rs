//! One more filter of a harness's chain.

use std::path::PathBuf;

use sluice_core::vm::{FailurePolicy, PluginInfo, VmOptions};

/// Where a module comes from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
    /// A filter crate's directory, built when the harness is.
    Crate(PathBuf),
}

/// A filter that follows the ones before it in a harness's chain (see
/// [`HarnessBuilder::filter`](super::HarnessBuilder::filter)): its module, its plugin and VM
/// configuration. Requests pass the filters in the order they were given, responses in reverse;
/// filters with the same module, `vm_id` and VM configuration share one VM, as in Envoy.
///
/// ```no_run
/// use sluice_harness::{Filter, Harness, Request, Response};
///
/// let mut h = Harness::builder()
///     .module_file("auth.wasm")
///     .filter(Filter::module_file("headers.wasm").name("headers").plugin_config(r#"{"x-seen":"1"}"#))
///     .build()?;
/// let seen = h.exchange(Request::get("/"), |_| Response::new(200))?;
/// # let _ = seen;
/// # Ok::<(), sluice_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Filter {
    /// Always set by the public constructors; the builder's first filter gets it from
    /// `HarnessBuilder::module_*`.
    pub(super) source: Option<Source>,
    pub(super) plugin: PluginInfo,
    pub(super) vm: VmOptions,
}

impl Filter {
    fn new(source: Source) -> Self {
        Self { source: Some(source), ..Self::without_module() }
    }

    /// A filter whose module is still to come (the harness builder's first).
    pub(super) fn without_module() -> Self {
        Self {
            source: None,
            plugin: PluginInfo { name: "plugin".into(), ..Default::default() },
            vm: VmOptions::default(),
        }
    }

    /// A filter from the module's bytes (binary, or WebAssembly text).
    pub fn module_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(Source::Bytes(bytes.into()))
    }

    /// A filter from a `.wasm` file.
    pub fn module_file(path: impl Into<PathBuf>) -> Self {
        Self::new(Source::File(path.into()))
    }

    /// The module of the filter crate in `dir`, built for `wasm32-wasip1` when the harness is (see
    /// [`build_crate`](super::build_crate)).
    pub fn module_crate(dir: impl Into<PathBuf>) -> Self {
        Self::new(Source::Crate(dir.into()))
    }

    /// The plugin configuration (`PluginConfig.configuration`), read in `on_configure`.
    pub fn plugin_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.plugin.configuration = config.into();
        self
    }

    /// The VM configuration, read in `on_vm_start`.
    pub fn vm_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.vm.configuration = config.into();
        self
    }

    /// Plugin `name` (default `plugin`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.plugin.name = name.into();
        self
    }

    /// Plugin `root_id`.
    pub fn root_id(mut self, root_id: impl Into<String>) -> Self {
        self.plugin.root_id = root_id.into();
        self
    }

    /// `vm_id` (scopes shared data and queues).
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        let id = vm_id.into();
        self.plugin.vm_id = id.clone();
        self.vm.vm_id = id;
        self
    }

    /// An environment variable served to WASI `environ_get`.
    pub fn env_var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vm.env_vars.push((key.into(), value.into()));
        self
    }

    /// What happens after the VM fails.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.plugin.failure_policy = policy;
        self
    }

    /// `allow_on_headers_stop_iteration`.
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.plugin.allow_on_headers_stop_iteration = allow;
        self
    }
}
