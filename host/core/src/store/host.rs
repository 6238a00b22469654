//! The data a VM's wasmtime `Store` holds: its contexts, the running callback, deferred actions.

// Keys are small integers the host hands out: no need for SipHash's resistance to chosen keys.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Memory, TypedFunc};

use super::actions::HostAction;
use super::env::{LogRecord, ProxyEnv};
use super::ids::{CalloutToken, ContextId};
use super::limiter::Limits;
use super::plugin::PluginInfo;
use super::plugin::VmOptions;
use crate::state::{Metric, QueueNotifier};
use crate::stream::{HeaderMap, HttpStreamState, TcpStreamState};
use crate::wire::status::LogLevel;

/// What the running guest call is, which decides what hostcalls may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// `_initialize`/`_start`/`main`: only logging and WASI are allowed (V8 traps on the rest).
    #[default]
    Starting,
    /// `proxy_on_vm_start`: the VM configuration is readable.
    VmStart,
    /// `proxy_on_configure` / `proxy_validate_configuration`: the plugin configuration is readable.
    Configure,
    /// `proxy_on_http_call_response`: the callout's response is readable.
    HttpCallResponse,
    /// `proxy_on_grpc_receive*`: the gRPC message / metadata is readable.
    GrpcReceive,
    /// `proxy_on_foreign_function`: its arguments are readable.
    ForeignFunction,
    /// `proxy_on_log`: maps are read-only.
    Log,
    /// Any other callback.
    Other,
}

/// The kind-specific state of a context.
#[derive(Debug)]
pub enum ContextKind {
    /// A plugin's root context.
    Root(RootState),
    /// An HTTP stream.
    Http(Box<HttpStreamState>),
    /// A TCP connection.
    Tcp(Box<TcpStreamState>),
}

/// A root context's own state.
#[derive(Debug)]
pub struct RootState {
    /// The plugin it belongs to.
    pub plugin: Arc<PluginInfo>,
    /// `proxy_set_tick_period_milliseconds`; `None` when off.
    pub tick_period: Option<Duration>,
    /// `proxy_on_done` returned false and `proxy_done` has not been called yet.
    pub done_pending: bool,
    /// Last callout status for `proxy_get_status`.
    pub status: (u32, Vec<u8>),
}

/// One context inside the VM.
#[derive(Debug)]
pub struct Context {
    /// The root context this one belongs to (itself for roots).
    pub root_id: u32,
    /// Root, HTTP or TCP state.
    pub kind: ContextKind,
}

/// A pending HTTP callout made with `proxy_http_call`.
#[derive(Debug, Clone)]
pub struct HttpCallout {
    /// The token the guest got.
    pub token: CalloutToken,
    /// The context that made the call (SDKs route the answer to it).
    pub context_id: ContextId,
    /// The root context the answer is delivered to.
    pub root_id: ContextId,
    /// The target cluster.
    pub cluster: String,
    /// Request headers, pseudo-headers included.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `None` when the guest passed 0 (no timeout).
    pub timeout: Option<Duration>,
}

/// What a gRPC callout asked for.
#[derive(Debug, Clone)]
pub struct GrpcCallout {
    /// Token (≡1 mod 4 for calls, ≡2 mod 4 for streams).
    pub token: CalloutToken,
    /// The context that made the call.
    pub context_id: ContextId,
    /// The root context answers go to.
    pub root_id: ContextId,
    /// Cluster name (or the serialized `GrpcService`).
    pub cluster: Vec<u8>,
    /// Fully-qualified service name.
    pub service: String,
    /// Method name.
    pub method: String,
    /// Initial metadata.
    pub metadata: Vec<(Vec<u8>, Vec<u8>)>,
    /// Messages sent so far (one for a unary call).
    pub messages: Vec<Vec<u8>>,
    /// True for `proxy_grpc_stream`.
    pub streaming: bool,
    /// `None` when no timeout.
    pub timeout: Option<Duration>,
    /// The guest called `proxy_grpc_send` with end_of_stream, or `proxy_grpc_close`.
    pub half_closed: bool,
}

impl GrpcCallout {
    /// The cluster the call goes to, read from `cluster` as Envoy reads it.
    pub fn cluster_name(&self) -> String {
        crate::wire::grpc_service::cluster_name(&self.cluster)
    }
}

/// What the plugin did to its gRPC calls during a callback, in order, for the proxy to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcEvent {
    /// `proxy_grpc_call` or `proxy_grpc_stream` opened the call with this token.
    Open(CalloutToken),
    /// `proxy_grpc_send` on a stream (or `proxy_grpc_close`: no message, end of stream).
    Send {
        /// The stream's token.
        token: CalloutToken,
        /// The message, if one was sent.
        message: Option<Vec<u8>>,
        /// The plugin half-closed the stream.
        end_of_stream: bool,
    },
    /// `proxy_grpc_cancel`.
    Cancel(CalloutToken),
}

/// A response being delivered to `proxy_on_http_call_response` / gRPC callbacks.
#[derive(Debug, Clone, Default)]
pub struct CalloutData {
    /// Map type 6 (or gRPC initial metadata).
    pub headers: HeaderMap,
    /// Buffer type 4 (or gRPC message, type 5). `None` for a reset call (NOT_FOUND).
    pub body: Option<Vec<u8>>,
    /// Map type 7 (or gRPC trailing metadata).
    pub trailers: HeaderMap,
}

/// A VM's store data: everything hostcalls can see.
pub struct Host {
    pub(crate) memory: Option<Memory>,
    pub(crate) allocator: Option<TypedFunc<i32, i32>>,
    pub(crate) limits: Limits,
    pub(crate) env: Arc<ProxyEnv>,
    pub(crate) vm_id: String,
    pub(crate) vm_config: Arc<[u8]>,
    pub(crate) env_vars: Arc<Vec<(String, String)>>,
    pub(crate) notifier: Arc<dyn QueueNotifier>,
    pub(crate) phase: Phase,
    pub(crate) contexts: HashMap<u32, Context>,
    pub(crate) next_context_id: u32,
    /// The context the host called into (reset on every host→guest call).
    pub(crate) current_context: u32,
    /// The context hostcalls act on (`proxy_set_effective_context`).
    pub(crate) effective_context: u32,
    /// While a root context logs a finished stream (a wasm access logger): `(root, view)`, the
    /// stream's state kept under the context id `view`, which hostcalls on the root read.
    pub(crate) log_view: Option<(u32, u32)>,
    pub(crate) actions: Vec<HostAction>,
    pub(crate) next_http_token: u32,
    pub(crate) next_grpc_call_token: u32,
    pub(crate) next_grpc_stream_token: u32,
    pub(crate) http_callouts: Vec<HttpCallout>,
    pub(crate) grpc_callouts: HashMap<CalloutToken, GrpcCallout>,
    pub(crate) grpc_events: Vec<GrpcEvent>,
    pub(crate) callout_data: Option<CalloutData>,
    pub(crate) foreign_args: Option<Vec<u8>>,
    pub(crate) metrics: HashMap<u32, Arc<Metric>>,
    pub(crate) next_metric_id: u32,
    pub(crate) declared_properties: std::collections::HashSet<String>,
    pub(crate) last_error_log: Option<String>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("vm_id", &self.vm_id).field("contexts", &self.contexts.len()).finish()
    }
}

impl Host {
    pub(crate) fn new(
        env: Arc<ProxyEnv>,
        options: VmOptions,
        notifier: Arc<dyn QueueNotifier>,
        memory_limit: usize,
    ) -> Self {
        Self {
            memory: None,
            allocator: None,
            limits: Limits { memory_limit, hit: false },
            env,
            vm_id: options.vm_id,
            vm_config: options.configuration.into(),
            env_vars: Arc::new(options.env_vars),
            notifier,
            phase: Phase::Starting,
            contexts: HashMap::default(),
            next_context_id: 0,
            current_context: 0,
            effective_context: 0,
            log_view: None,
            actions: Vec::new(),
            next_http_token: 0,
            next_grpc_call_token: 1,
            next_grpc_stream_token: 2,
            http_callouts: Vec::new(),
            grpc_callouts: HashMap::default(),
            grpc_events: Vec::new(),
            callout_data: None,
            foreign_args: None,
            metrics: HashMap::default(),
            next_metric_id: 0,
            declared_properties: Default::default(),
            last_error_log: None,
        }
    }

    /// The vm_id this VM was created with.
    pub fn vm_id(&self) -> &str {
        &self.vm_id
    }

    /// The environment (shared state, clock, clusters).
    pub fn env(&self) -> &Arc<ProxyEnv> {
        &self.env
    }

    /// The context hostcalls act on.
    pub(crate) fn effective(&self) -> Option<&Context> {
        self.contexts.get(&self.effective_id())
    }

    pub(crate) fn effective_mut(&mut self) -> Option<&mut Context> {
        let id = self.effective_id();
        self.contexts.get_mut(&id)
    }

    /// The context whose state hostcalls use: the effective one, or the logged stream's while its
    /// root logs it.
    fn effective_id(&self) -> u32 {
        match self.log_view {
            Some((root, view)) if root == self.effective_context => view,
            _ => self.effective_context,
        }
    }

    /// The root context of the effective context.
    pub(crate) fn effective_root(&self) -> Option<&RootState> {
        let root = self.effective()?.root_id;
        match &self.contexts.get(&root)?.kind {
            ContextKind::Root(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn effective_root_mut(&mut self) -> Option<&mut RootState> {
        let root = self.effective()?.root_id;
        match &mut self.contexts.get_mut(&root)?.kind {
            ContextKind::Root(r) => Some(r),
            _ => None,
        }
    }

    /// The effective context's root id (0 when there is none: VM start).
    pub(crate) fn effective_root_id(&self) -> u32 {
        self.effective().map(|c| c.root_id).unwrap_or(0)
    }

    /// Records a guest log line with the effective context's plugin identity.
    /// What Envoy's host reports with its context's `error` (WASI calls it only pretends to
    /// serve): a trace line of the `wasm` component, not a guest log line, kept as the last error
    /// so that a trap right after it names it.
    pub(crate) fn host_error(&mut self, message: &str) {
        tracing::trace!(target: "wasm", "{message}");
        self.last_error_log = Some(message.to_string());
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        if level >= LogLevel::Error {
            self.last_error_log = Some(message.clone());
        }
        let (plugin, root_id) = match self.effective_root() {
            Some(r) => (r.plugin.name.clone(), r.plugin.root_id.clone()),
            None => (String::new(), String::new()),
        };
        let from_root = self.effective().is_some_and(|c| matches!(c.kind, ContextKind::Root(_)));
        self.env.log_sink.log(LogRecord {
            level,
            message,
            plugin,
            root_id,
            from_root,
            vm_id: self.vm_id.clone(),
            context_id: ContextId(self.effective_context),
        });
    }
}
