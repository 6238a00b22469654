//! A VM (one wasmtime store and instance) and its contexts, driven in Envoy's order.
//!
//! A [`Vm`] knows nothing about sockets: drivers (the harness, the server) call its callbacks, then
//! apply the [`HostAction`]s and callouts the guest asked for.

use std::sync::Arc;

use wasmtime::{Store, TypedFunc, WasmParams, WasmResults};

// What the VM's store holds and the host keeps beside it, as the VM's users name it.
pub use crate::store::{
    CalloutData, CalloutToken, Clock, Context, ContextId, ContextKind, FailurePolicy, GrpcCallout, GrpcEvent, Host,
    HostAction, HttpCallout, LogCollector, LogLevelSetting, LogRecord, LogSink, NodeInfo, Phase, PluginInfo, ProxyEnv,
    RealClock, RootState, TracingLogSink, VmOptions, VmStats, MONOTONIC_ORIGIN,
};
// A reply is stream state; the VM hands it over as a `HostAction`.
pub use crate::stream::LocalReply;

use crate::abi::callbacks::Callbacks;
use crate::error::{Error, Fault, GuestFault, Result};
use crate::runtime::{CompiledModule, Runtime};
use crate::state::QueueNotifier;
use crate::stream::{HttpStreamState, TcpStreamState};

/// The callback `$f` of this instance, resolved on first use.
macro_rules! cb {
    ($vm:ident, $f:ident) => {
        $vm.cb.$f.get($vm.module.exports.$f.as_ref(), &$vm.instance, &mut $vm.store)
    };
}

/// A queue notifier that drops events: for VMs that register no queues.
#[derive(Debug, Default)]
pub struct NoQueues;

impl QueueNotifier for NoQueues {
    fn notify(&self, _root: u32, _queue: u32) {}
}

/// One instance of a module with its contexts.
pub struct Vm {
    store: Store<Host>,
    instance: wasmtime::Instance,
    cb: Callbacks,
    module: Arc<CompiledModule>,
    failed: Option<Arc<GuestFault>>,
    deadline_ticks: u64,
    /// Keeps the epoch (and so the deadline) moving while this VM's guest code runs.
    ticker: Arc<crate::runtime::EpochTicker>,
    deadline_ms: u128,
    memory_limit: usize,
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.store.data().env.vm_stats.active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("host", self.store.data()).field("failed", &self.failed).finish()
    }
}

impl Vm {
    /// Instantiates `module` and runs its start function (`_initialize` + `main`, or `_start`).
    pub fn new(
        runtime: &Runtime,
        module: Arc<CompiledModule>,
        options: VmOptions,
        env: Arc<ProxyEnv>,
        notifier: Arc<dyn QueueNotifier>,
    ) -> Result<Self> {
        let memory_limit = runtime.config().memory_limit;
        let host = Host::new(env, options, notifier, memory_limit);
        let mut store = Store::new(runtime.engine(), host);
        store.limiter(|h| &mut h.limits);
        store.set_epoch_deadline(runtime.deadline_ticks());
        store.epoch_deadline_trap();
        let instance =
            module.pre.instantiate(&mut store).map_err(|e| Error::host("cannot instantiate the module", e))?;
        let memory = instance.get_memory(&mut store, "memory").ok_or(Error::NoMemory)?;
        let allocator = module
            .allocator
            .as_ref()
            .and_then(|e| instance.get_module_export(&mut store, e))
            .and_then(|e| e.into_func())
            .and_then(|f| f.typed::<i32, i32>(&store).ok())
            .ok_or(Error::NoAllocator)?;
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(allocator);
        let cb = Callbacks::default();
        let mut vm = Self {
            store,
            instance,
            cb,
            module,
            failed: None,
            deadline_ticks: runtime.deadline_ticks(),
            ticker: runtime.ticker().clone(),
            deadline_ms: runtime.config().callback_deadline.as_millis(),
            memory_limit,
        };
        let stats = &vm.store.data().env.vm_stats;
        stats.created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vm.run_start()?;
        Ok(vm)
    }

    fn run_start(&mut self) -> Result<()> {
        if let Some(init) = cb!(self, initialize) {
            self.call("_initialize", Some(init), 0, Phase::Starting, ())?;
            let (main, main_void) = self.module.mains;
            let func = |e: Option<wasmtime::ModuleExport>, s: &mut Self| {
                e.and_then(|e| s.instance.get_module_export(&mut s.store, &e)).and_then(|e| e.into_func())
            };
            if let Some(main) = func(main, self).and_then(|f| f.typed::<(i32, i32), i32>(&self.store).ok()) {
                self.call("main", Some(&main), 0, Phase::Starting, (0, 0))?;
            } else if let Some(main) = func(main_void, self).and_then(|f| f.typed::<(), i32>(&self.store).ok()) {
                self.call("__main_void", Some(&main), 0, Phase::Starting, ())?;
            }
        } else if let Some(start) = cb!(self, start) {
            self.call("_start", Some(start), 0, Phase::Starting, ())?;
        }
        Ok(())
    }

    /// The module this VM runs.
    pub fn module(&self) -> &Arc<CompiledModule> {
        &self.module
    }

    /// The host state: contexts, streams, pending callouts.
    pub fn host(&self) -> &Host {
        self.store.data()
    }

    /// Mutable host state, for drivers that set up stream state before a callback.
    pub fn host_mut(&mut self) -> &mut Host {
        self.store.data_mut()
    }

    /// Why the VM failed, if it did. A failed VM runs no more callbacks.
    pub fn failure(&self) -> Option<&GuestFault> {
        self.failed.as_deref()
    }

    /// Calls one export with the host set up for `context_id` in `phase`.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &'static str,
        func: Option<impl std::ops::Deref<Target = TypedFunc<P, R>>>,
        context_id: u32,
        phase: Phase,
        params: P,
    ) -> Result<Option<R>> {
        if let Some(cause) = &self.failed {
            return Err(Error::VmFailed { cause: cause.clone() });
        }
        let Some(func) = func else { return Ok(None) };
        {
            let h = self.store.data_mut();
            h.phase = phase;
            h.current_context = context_id;
            h.effective_context = context_id;
            h.limits.hit = false;
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = {
            let _running = self.ticker.enter();
            func.call(&mut self.store, params)
        };
        let h = self.store.data_mut();
        h.phase = Phase::Other;
        h.callout_data = None;
        h.foreign_args = None;
        match result {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                let fault = self.classify(name, e);
                self.failed = Some(Arc::new(fault.clone()));
                Err(fault.into())
            }
        }
    }

    fn classify(&self, function: &str, e: wasmtime::Error) -> GuestFault {
        let fault = if self.store.data().limits.hit {
            Fault::MemoryLimit { limit_mib: self.memory_limit >> 20 }
        } else {
            match e.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => Fault::Deadline { deadline_ms: self.deadline_ms },
                code => Fault::Trap {
                    code: code.copied(),
                    message: e.root_cause().to_string(),
                    logged: self.store.data().last_error_log.clone(),
                },
            }
        };
        let fault = GuestFault::new(function, fault);
        match e.downcast_ref::<wasmtime::WasmBacktrace>() {
            Some(bt) if matches!(fault.fault, Fault::Trap { .. }) => fault.with_backtrace(bt),
            _ => fault,
        }
    }

    fn new_context_id(&mut self) -> u32 {
        let h = self.store.data_mut();
        loop {
            h.next_context_id = h.next_context_id.wrapping_add(1).max(1);
            if !h.contexts.contains_key(&h.next_context_id) {
                return h.next_context_id;
            }
        }
    }

    /// Creates a plugin's root context and runs `on_context_create`, `on_vm_start`, `on_configure`.
    /// Returns the root context id.
    ///
    /// # Errors
    /// [`Error::VmStartFailed`] or
    /// [`Error::ConfigureFailed`] when the plugin refuses its configuration;
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    pub fn start_plugin(&mut self, plugin: PluginInfo) -> Result<u32> {
        let id = self.new_context_id();
        let vm_config_len = self.store.data().vm_config.len() as i32;
        let config_len = plugin.configuration.len() as i32;
        let root =
            RootState { plugin: Arc::new(plugin), tick_period: None, done_pending: false, status: (0, Vec::new()) };
        self.store.data_mut().contexts.insert(id, Context { root_id: id, kind: ContextKind::Root(root) });
        let f = cb!(self, on_context_create);
        self.call("proxy_on_context_create", f, id, Phase::Other, (id as i32, 0))?;
        let f = cb!(self, on_vm_start);
        if self.call("proxy_on_vm_start", f, id, Phase::VmStart, (id as i32, vm_config_len))? == Some(0) {
            return Err(Error::VmStartFailed { logged: self.store.data().last_error_log.clone() });
        }
        let f = cb!(self, on_configure);
        if self.call("proxy_on_configure", f, id, Phase::Configure, (id as i32, config_len))? == Some(0) {
            return Err(Error::ConfigureFailed { logged: self.store.data().last_error_log.clone() });
        }
        Ok(id)
    }

    /// The plugin of a root context.
    pub fn plugin(&self, root_id: u32) -> Option<&Arc<PluginInfo>> {
        match &self.store.data().contexts.get(&root_id)?.kind {
            ContextKind::Root(r) => Some(&r.plugin),
            _ => None,
        }
    }

    fn create_stream(&mut self, root_id: u32, kind: ContextKind) -> Result<u32> {
        if self.plugin(root_id).is_none() {
            return Err(Error::Usage(format!("context {root_id} is not a root context of this VM")));
        }
        let id = self.new_context_id();
        self.store.data_mut().contexts.insert(id, Context { root_id, kind });
        let f = cb!(self, on_context_create);
        self.call("proxy_on_context_create", f, id, Phase::Other, (id as i32, root_id as i32))?;
        Ok(id)
    }

    /// Creates an HTTP stream context under `root_id` (`on_context_create(id, root)`).
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn create_http_context(&mut self, root_id: u32, state: HttpStreamState) -> Result<u32> {
        self.create_stream(root_id, ContextKind::Http(Box::new(state)))
    }

    /// Creates a TCP connection context under `root_id`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn create_tcp_context(&mut self, root_id: u32, state: TcpStreamState) -> Result<u32> {
        self.create_stream(root_id, ContextKind::Tcp(Box::new(state)))
    }

    /// The HTTP state of a stream context.
    pub fn http_state(&self, id: u32) -> Option<&HttpStreamState> {
        match &self.store.data().contexts.get(&id)?.kind {
            ContextKind::Http(s) => Some(s),
            _ => None,
        }
    }

    /// The HTTP state of a stream context, to change before a callback.
    pub fn http_state_mut(&mut self, id: u32) -> Option<&mut HttpStreamState> {
        match &mut self.store.data_mut().contexts.get_mut(&id)?.kind {
            ContextKind::Http(s) => Some(s),
            _ => None,
        }
    }

    /// The TCP state of a connection context.
    pub fn tcp_state(&self, id: u32) -> Option<&TcpStreamState> {
        match &self.store.data().contexts.get(&id)?.kind {
            ContextKind::Tcp(s) => Some(s),
            _ => None,
        }
    }

    /// The TCP state of a connection context, to change before a callback.
    pub fn tcp_state_mut(&mut self, id: u32) -> Option<&mut TcpStreamState> {
        match &mut self.store.data_mut().contexts.get_mut(&id)?.kind {
            ContextKind::Tcp(s) => Some(s),
            _ => None,
        }
    }

    /// Actions the guest asked for since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<HostAction> {
        std::mem::take(&mut self.store.data_mut().actions)
    }

    /// HTTP callouts made since the last call.
    pub fn take_http_callouts(&mut self) -> Vec<HttpCallout> {
        std::mem::take(&mut self.store.data_mut().http_callouts)
    }

    /// What the plugin did to its gRPC calls since the last call, in order.
    pub fn take_grpc_events(&mut self) -> Vec<GrpcEvent> {
        std::mem::take(&mut self.store.data_mut().grpc_events)
    }

    /// A gRPC call or stream the plugin has open, as it stands.
    pub fn grpc_call(&self, token: CalloutToken) -> Option<&GrpcCallout> {
        self.store.data().grpc_callouts.get(&token)
    }

    /// The tick period of a root context.
    pub fn tick_period(&self, root_id: u32) -> Option<std::time::Duration> {
        match &self.store.data().contexts.get(&root_id)?.kind {
            ContextKind::Root(r) => r.tick_period,
            _ => None,
        }
    }

    /// Calls any export by name with the host set up for `context_id`, as if Envoy had called a
    /// callback on it. For tools and tests that exercise hostcalls directly; the usual callbacks have
    /// typed methods below.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] when the module exports no such function.
    pub fn invoke(
        &mut self,
        name: &str,
        context_id: ContextId,
        params: &[wasmtime::Val],
    ) -> Result<Vec<wasmtime::Val>> {
        if let Some(cause) = &self.failed {
            return Err(Error::VmFailed { cause: cause.clone() });
        }
        let instance_func =
            self.exports_func(name).ok_or_else(|| Error::Usage(format!("the module exports no function `{name}`")))?;
        let ty = instance_func.ty(&self.store);
        let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
        {
            let h = self.store.data_mut();
            h.phase = Phase::Other;
            h.current_context = context_id.0;
            h.effective_context = context_id.0;
            h.limits.hit = false;
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        let r = {
            let _running = self.ticker.enter();
            instance_func.call(&mut self.store, params, &mut results)
        };
        self.store.data_mut().phase = Phase::Other;
        match r {
            Ok(()) => Ok(results),
            Err(e) => {
                let fault = self.classify(name, e);
                self.failed = Some(Arc::new(fault.clone()));
                Err(fault.into())
            }
        }
    }

    fn exports_func(&mut self, name: &str) -> Option<wasmtime::Func> {
        self.instance.get_func(&mut self.store, name)
    }

    /// The guest's linear memory, for tools and tests that place arguments for [`Vm::invoke`].
    pub fn guest_memory(&mut self) -> &mut [u8] {
        match self.store.data().memory {
            Some(m) => m.data_mut(&mut self.store),
            None => &mut [],
        }
    }

    // ---- callbacks -------------------------------------------------------------------------

    /// `proxy_on_request_headers(ctx, n, eos)`; the raw return value.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_request_headers(&mut self, ctx: u32, n: usize, eos: bool) -> Result<i32> {
        const NAME: &str = "proxy_on_request_headers";
        let r = if let Some(f) = cb!(self, on_request_headers) {
            self.call(NAME, Some(f), ctx, Phase::Other, (ctx as i32, n as i32, eos as i32))?
        } else {
            let f = cb!(self, on_request_headers_v1);
            self.call(NAME, f, ctx, Phase::Other, (ctx as i32, n as i32))?
        };
        Ok(r.unwrap_or(0))
    }

    /// `proxy_on_response_headers(ctx, n, eos)`; the raw return value.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_response_headers(&mut self, ctx: u32, n: usize, eos: bool) -> Result<i32> {
        const NAME: &str = "proxy_on_response_headers";
        let r = if let Some(f) = cb!(self, on_response_headers) {
            self.call(NAME, Some(f), ctx, Phase::Other, (ctx as i32, n as i32, eos as i32))?
        } else {
            let f = cb!(self, on_response_headers_v1);
            self.call(NAME, f, ctx, Phase::Other, (ctx as i32, n as i32))?
        };
        Ok(r.unwrap_or(0))
    }

    /// `proxy_on_request_body(ctx, size, eos)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_request_body(&mut self, ctx: u32, size: usize, eos: bool) -> Result<i32> {
        let f = cb!(self, on_request_body);
        Ok(self
            .call("proxy_on_request_body", f, ctx, Phase::Other, (ctx as i32, size as i32, eos as i32))?
            .unwrap_or(0))
    }

    /// `proxy_on_response_body(ctx, size, eos)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_response_body(&mut self, ctx: u32, size: usize, eos: bool) -> Result<i32> {
        let f = cb!(self, on_response_body);
        Ok(self
            .call("proxy_on_response_body", f, ctx, Phase::Other, (ctx as i32, size as i32, eos as i32))?
            .unwrap_or(0))
    }

    /// `proxy_on_request_trailers(ctx, n)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_request_trailers(&mut self, ctx: u32, n: usize) -> Result<i32> {
        let f = cb!(self, on_request_trailers);
        Ok(self.call("proxy_on_request_trailers", f, ctx, Phase::Other, (ctx as i32, n as i32))?.unwrap_or(0))
    }

    /// `proxy_on_response_trailers(ctx, n)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_response_trailers(&mut self, ctx: u32, n: usize) -> Result<i32> {
        let f = cb!(self, on_response_trailers);
        Ok(self.call("proxy_on_response_trailers", f, ctx, Phase::Other, (ctx as i32, n as i32))?.unwrap_or(0))
    }

    /// `proxy_on_new_connection(ctx)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_new_connection(&mut self, ctx: u32) -> Result<i32> {
        let f = cb!(self, on_new_connection);
        Ok(self.call("proxy_on_new_connection", f, ctx, Phase::Other, (ctx as i32,))?.unwrap_or(0))
    }

    /// `proxy_on_downstream_data(ctx, size, eos)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_downstream_data(&mut self, ctx: u32, size: usize, eos: bool) -> Result<i32> {
        let f = cb!(self, on_downstream_data);
        Ok(self
            .call("proxy_on_downstream_data", f, ctx, Phase::Other, (ctx as i32, size as i32, eos as i32))?
            .unwrap_or(0))
    }

    /// `proxy_on_upstream_data(ctx, size, eos)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_upstream_data(&mut self, ctx: u32, size: usize, eos: bool) -> Result<i32> {
        let f = cb!(self, on_upstream_data);
        Ok(self
            .call("proxy_on_upstream_data", f, ctx, Phase::Other, (ctx as i32, size as i32, eos as i32))?
            .unwrap_or(0))
    }

    /// `proxy_on_downstream_connection_close(ctx, peer)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_downstream_close(&mut self, ctx: u32, peer: crate::wire::status::PeerType) -> Result<()> {
        let f = cb!(self, on_downstream_connection_close);
        self.call("proxy_on_downstream_connection_close", f, ctx, Phase::Other, (ctx as i32, peer as i32))?;
        Ok(())
    }

    /// `proxy_on_upstream_connection_close(ctx, peer)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_upstream_close(&mut self, ctx: u32, peer: crate::wire::status::PeerType) -> Result<()> {
        let f = cb!(self, on_upstream_connection_close);
        self.call("proxy_on_upstream_connection_close", f, ctx, Phase::Other, (ctx as i32, peer as i32))?;
        Ok(())
    }

    /// `proxy_on_log(ctx)`, with every map read-only.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_log(&mut self, ctx: u32) -> Result<()> {
        let f = cb!(self, on_log);
        self.call("proxy_on_log", f, ctx, Phase::Log, (ctx as i32,))?;
        Ok(())
    }

    /// Envoy's wasm access logger: `proxy_on_log(root_id)` on the **root** context, with the
    /// finished stream's headers, trailers and facts readable (not writable) through it, as
    /// `envoy.access_loggers.wasm` calls it.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn log_on_root(&mut self, root_id: u32, mut stream: HttpStreamState) -> Result<()> {
        if self.plugin(root_id).is_none() {
            return Err(Error::Usage(format!("context {root_id} is not a root context of this VM")));
        }
        for slot in [
            &mut stream.request_headers,
            &mut stream.request_trailers,
            &mut stream.response_headers,
            &mut stream.response_trailers,
        ] {
            slot.access = crate::stream::Access::Read;
        }
        // An id no context of the guest's can have (ids count up from 1).
        const VIEW: u32 = u32::MAX;
        let host = self.store.data_mut();
        host.contexts.insert(VIEW, Context { root_id, kind: ContextKind::Http(Box::new(stream)) });
        host.log_view = Some((root_id, VIEW));
        let r = self.on_log(root_id);
        let host = self.store.data_mut();
        host.log_view = None;
        host.contexts.remove(&VIEW);
        r
    }

    /// `proxy_on_done(ctx)`; true when the context is done now.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_done(&mut self, ctx: u32) -> Result<bool> {
        let f = cb!(self, on_done);
        let done = self.call("proxy_on_done", f, ctx, Phase::Other, (ctx as i32,))?.map(|r| r != 0).unwrap_or(true);
        if !done {
            if let Some(Context { kind: ContextKind::Root(r), .. }) = self.store.data_mut().contexts.get_mut(&ctx) {
                r.done_pending = true;
            }
        }
        Ok(done)
    }

    /// `proxy_on_delete(ctx)`, then forgets the context.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_delete(&mut self, ctx: u32) -> Result<()> {
        let f = cb!(self, on_delete);
        let r = self.call("proxy_on_delete", f, ctx, Phase::Other, (ctx as i32,));
        self.store.data_mut().contexts.remove(&ctx);
        r.map(|_| ())
    }

    /// Forgets a context without calling the guest (after a failure).
    pub fn drop_context(&mut self, ctx: u32) {
        self.store.data_mut().contexts.remove(&ctx);
    }

    /// `proxy_on_tick(root)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_tick(&mut self, root_id: u32) -> Result<()> {
        let f = cb!(self, on_tick);
        self.call("proxy_on_tick", f, root_id, Phase::Other, (root_id as i32,))?;
        Ok(())
    }

    /// `proxy_on_queue_ready(root, queue)`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_queue_ready(&mut self, root_id: u32, queue_id: u32) -> Result<()> {
        let f = cb!(self, on_queue_ready);
        self.call("proxy_on_queue_ready", f, root_id, Phase::Other, (root_id as i32, queue_id as i32))?;
        Ok(())
    }

    /// Delivers an HTTP callout's answer to `proxy_on_http_call_response` on the issuing root.
    /// `None` is a reset: (0, 0, 0) with status 11 "reset" from `proxy_get_status`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn deliver_http_response(&mut self, callout: &HttpCallout, response: Option<CalloutData>) -> Result<()> {
        let root = callout.root_id.0;
        let (status, nh, nb, nt) = match &response {
            Some(d) => ((0, Vec::new()), d.headers.len(), d.body.as_ref().map(Vec::len).unwrap_or(0), d.trailers.len()),
            None => ((11, b"reset".to_vec()), 0, 0, 0),
        };
        let h = self.store.data_mut();
        match h.contexts.get_mut(&root).map(|c| &mut c.kind) {
            Some(ContextKind::Root(r)) => r.status = status,
            // The root is gone: the answer has nowhere to go (Envoy cancels such callouts).
            _ => return Ok(()),
        }
        h.callout_data = Some(response.unwrap_or_default());
        let f = cb!(self, on_http_call_response);
        self.call(
            "proxy_on_http_call_response",
            f,
            root,
            Phase::HttpCallResponse,
            (root as i32, callout.token.0 as i32, nh as i32, nb as i32, nt as i32),
        )?;
        Ok(())
    }

    /// Delivers gRPC initial metadata for `token`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn deliver_grpc_initial_metadata(
        &mut self,
        token: CalloutToken,
        metadata: crate::stream::HeaderMap,
    ) -> Result<()> {
        let Some(root) = self.grpc_root(token) else {
            return Ok(());
        };
        let n = metadata.len();
        self.store.data_mut().callout_data = Some(CalloutData { headers: metadata, ..Default::default() });
        let f = cb!(self, on_grpc_receive_initial_metadata);
        self.call(
            "proxy_on_grpc_receive_initial_metadata",
            f,
            root,
            Phase::GrpcReceive,
            (root as i32, token.0 as i32, n as i32),
        )?;
        Ok(())
    }

    /// Delivers one gRPC message for `token`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn deliver_grpc_message(&mut self, token: CalloutToken, message: Vec<u8>) -> Result<()> {
        let Some(root) = self.grpc_root(token) else {
            return Ok(());
        };
        let n = message.len();
        self.store.data_mut().callout_data = Some(CalloutData { body: Some(message), ..Default::default() });
        let f = cb!(self, on_grpc_receive);
        self.call("proxy_on_grpc_receive", f, root, Phase::GrpcReceive, (root as i32, token.0 as i32, n as i32))?;
        Ok(())
    }

    /// Delivers gRPC trailing metadata for `token`.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn deliver_grpc_trailing_metadata(
        &mut self,
        token: CalloutToken,
        metadata: crate::stream::HeaderMap,
    ) -> Result<()> {
        let Some(root) = self.grpc_root(token) else {
            return Ok(());
        };
        let n = metadata.len();
        self.store.data_mut().callout_data = Some(CalloutData { trailers: metadata, ..Default::default() });
        let f = cb!(self, on_grpc_receive_trailing_metadata);
        self.call(
            "proxy_on_grpc_receive_trailing_metadata",
            f,
            root,
            Phase::GrpcReceive,
            (root as i32, token.0 as i32, n as i32),
        )?;
        Ok(())
    }

    /// Closes a gRPC call or stream with `status` and `message` (read with `proxy_get_status`).
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn deliver_grpc_close(&mut self, token: CalloutToken, status: u32, message: &[u8]) -> Result<()> {
        let Some(root) = self.grpc_root(token) else {
            return Ok(());
        };
        let h = self.store.data_mut();
        h.grpc_callouts.remove(&token);
        if let Some(ContextKind::Root(r)) = h.contexts.get_mut(&root).map(|c| &mut c.kind) {
            r.status = (status, message.to_vec());
        }
        let f = cb!(self, on_grpc_close);
        self.call("proxy_on_grpc_close", f, root, Phase::Other, (root as i32, token.0 as i32, status as i32))?;
        Ok(())
    }

    /// Forgets a finished gRPC call (a unary call ends with its one message).
    pub fn forget_grpc(&mut self, token: CalloutToken) {
        self.store.data_mut().grpc_callouts.remove(&token);
    }

    fn grpc_root(&self, token: CalloutToken) -> Option<u32> {
        self.store.data().grpc_callouts.get(&token).map(|c| c.root_id.0)
    }

    /// Calls `proxy_on_foreign_function(root, function_id, args)` with the arguments readable.
    ///
    /// # Errors
    /// [`Error::Guest`] when the guest faults (the VM is failed from then on);
    /// [`Error::VmFailed`] when it failed earlier.
    /// [`Error::Usage`] for a context this VM does not have.
    pub fn on_foreign_function(&mut self, root_id: u32, function_id: u32, args: Vec<u8>) -> Result<()> {
        let n = args.len();
        self.store.data_mut().foreign_args = Some(args);
        let f = cb!(self, on_foreign_function);
        self.call(
            "proxy_on_foreign_function",
            f,
            root_id,
            Phase::ForeignFunction,
            (root_id as i32, function_id as i32, n as i32),
        )?;
        Ok(())
    }
}
