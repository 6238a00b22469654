//! The checked configuration: what the server builds listeners, routes, clusters and plugins from.

use sluice_core::stream::Metadata;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use sluice_core::state::SharedState;
use sluice_core::vm::{LogLevelSetting, PluginInfo, ProxyEnv, RealClock, TracingLogSink, VmOptions};

/// Everything `sluice serve` needs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Listeners.
    pub listeners: Vec<ListenerPlan>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, ClusterPlan>,
    /// The admin listener.
    pub admin: Option<SocketAddr>,
    /// `envoy.bootstrap.wasm` service plugins.
    pub services: Vec<PluginSpec>,
    /// `node`: identity and metadata.
    pub node: sluice_core::vm::NodeInfo,
    /// One line per harmless field sluice ignores.
    pub warnings: Vec<String>,
    /// The whole bootstrap as read, in canonical form (proto field names, defaults left out), for
    /// `/config_dump`.
    pub bootstrap: serde_yaml_ng::Value,
}

/// A wasm plugin: identity, configuration and code.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Name, root id, vm id, configuration, failure policy.
    pub info: PluginInfo,
    /// The VM's id, configuration and environment.
    pub vm: VmOptions,
    /// `vm_config.runtime` as written (`envoy.wasm.runtime.v8`): sluice runs wasmtime whatever it
    /// says, and names the `wasm.<runtime>.*` stats after it, as Envoy does.
    pub runtime: String,
    /// The module's bytes.
    pub code: Vec<u8>,
    /// The module's file, when it came from `local.filename` (for `--watch`).
    pub code_path: Option<std::path::PathBuf>,
    /// `singleton` (bootstrap services only).
    pub singleton: bool,
}

/// A listener.
#[derive(Debug, Clone)]
pub struct ListenerPlan {
    /// Name.
    pub name: String,
    /// Where to listen.
    pub address: SocketAddr,
    /// HTTP or TCP.
    pub kind: ListenerKind,
    /// `metadata` (`xds.listener_metadata`).
    pub metadata: Metadata,
}

/// What a listener serves.
#[derive(Debug, Clone)]
pub enum ListenerKind {
    /// An HTTP connection manager.
    Http(HttpListener),
    /// Network filters, then a TCP proxy to `cluster`.
    Tcp {
        /// Wasm network filters in order.
        filters: Vec<PluginSpec>,
        /// The upstream cluster.
        cluster: String,
        /// Access logs written when a connection closes.
        access_logs: Vec<AccessLogPlan>,
    },
}

impl ListenerKind {
    /// The wasm filters each stream (HTTP) or connection (TCP) passes, in order.
    pub fn filters(&self) -> &[PluginSpec] {
        match self {
            ListenerKind::Http(h) => &h.filters,
            ListenerKind::Tcp { filters, .. } => filters,
        }
    }

    /// The wasm access loggers (`envoy.access_loggers.wasm`; HTTP listeners only).
    pub fn access_loggers(&self) -> &[PluginSpec] {
        match self {
            ListenerKind::Http(h) => &h.access_loggers,
            ListenerKind::Tcp { .. } => &[],
        }
    }

    /// The access logs written when a request or connection is done.
    pub fn access_logs(&self) -> &[AccessLogPlan] {
        match self {
            ListenerKind::Http(h) => &h.access_logs,
            ListenerKind::Tcp { access_logs, .. } => access_logs,
        }
    }
}

/// Where a plugin sits in a plan, as a user names it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginPlace<'a> {
    /// A filter of the listener with this name.
    Filter(&'a str),
    /// An access logger of the listener with this name.
    AccessLogger(&'a str),
    /// A bootstrap extension (`envoy.bootstrap.wasm`).
    Service,
}

impl std::fmt::Display for PluginPlace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginPlace::Filter(l) => write!(f, "listener `{l}`"),
            PluginPlace::AccessLogger(l) => write!(f, "access logger of listener `{l}`"),
            PluginPlace::Service => f.write_str("bootstrap extension"),
        }
    }
}

impl Plan {
    /// Every plugin of the plan with where it sits: each listener's filters and access loggers in
    /// order, then the bootstrap services.
    pub fn plugins(&self) -> impl Iterator<Item = (PluginPlace<'_>, &PluginSpec)> {
        let listeners = self.listeners.iter().flat_map(|l| {
            let filters = l.kind.filters().iter().map(|f| (PluginPlace::Filter(&l.name), f));
            filters.chain(l.kind.access_loggers().iter().map(|f| (PluginPlace::AccessLogger(&l.name), f)))
        });
        listeners.chain(self.services.iter().map(|s| (PluginPlace::Service, s)))
    }

    /// What a plugin of this plan sees of the proxy: its node and clusters, the real clock, the
    /// shared data and queues in `state`, logs through `tracing` (Envoy's `wasm` logger) and the
    /// `wasm` logger's level as `log_level` says (the process's one setting, which changes with
    /// admin `/logging`).
    pub fn proxy_env(&self, state: Arc<SharedState>, log_level: &Arc<LogLevelSetting>) -> ProxyEnv {
        let mut env = ProxyEnv::new(state, Arc::new(TracingLogSink), RealClock::shared());
        env.node = self.node.clone();
        env.share_log_level(log_level.clone());
        for c in self.clusters.keys() {
            env.add_cluster(c.clone());
        }
        env
    }
}

/// An HTTP connection manager's plan.
#[derive(Debug, Clone)]
pub struct HttpListener {
    /// Wasm HTTP filters in order (the router is implied last).
    pub filters: Vec<PluginSpec>,
    /// Virtual hosts in order.
    pub virtual_hosts: Vec<VirtualHostPlan>,
    /// Buffer limit (`per_connection_buffer_limit_bytes`, default 1 MiB).
    pub buffer_limit: usize,
    /// `codec_type`: the protocols a downstream connection may speak.
    pub codec: Codec,
    /// What the `server` response header says (`server_name`, default `envoy`).
    pub server_name: String,
    /// `max_request_headers_kb` in bytes (default 60 KiB): a request with more header bytes gets
    /// 431, as in Envoy.
    pub max_request_headers_bytes: usize,
    /// The HTTP/1 codec's options (`http_protocol_options`, `common_http_protocol_options`).
    pub http1: Http1Options,
    /// `stat_prefix`: the connection manager's stats are `http.<stat_prefix>.*`.
    pub stat_prefix: String,
    /// Access logs written when a request completes.
    pub access_logs: Vec<AccessLogPlan>,
    /// `envoy.access_loggers.wasm` plugins: each request, once complete, is handed to their root
    /// context's `proxy_on_log`.
    pub access_loggers: Vec<PluginSpec>,
}

/// A virtual host.
#[derive(Debug, Clone)]
pub struct VirtualHostPlan {
    /// Name.
    pub name: String,
    /// Domains.
    pub domains: Vec<String>,
    /// Routes in order.
    pub routes: Vec<RoutePlan>,
    /// `metadata` (`xds.virtual_host_metadata`).
    pub metadata: Metadata,
}

/// A route.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// Name.
    pub name: String,
    /// Path condition.
    pub path: PathMatch,
    /// Header conditions (all must hold).
    pub headers: Vec<HeaderCondition>,
    /// What to do.
    pub action: RouteAction,
    /// `metadata` (`xds.route_metadata`).
    pub metadata: Metadata,
}

/// How a route matches the path (without the query).
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// Starts with.
    Prefix(String),
    /// Equals.
    Exact(String),
    /// Matches the whole path.
    Regex(regex::Regex),
}

/// A header condition.
#[derive(Debug, Clone)]
pub struct HeaderCondition {
    /// Name, lower-case.
    pub name: String,
    /// The test.
    pub test: HeaderTest,
    /// Negated.
    pub invert: bool,
}

/// A header test.
#[derive(Debug, Clone)]
pub enum HeaderTest {
    /// Present at all.
    Present,
    /// Equals.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Contains.
    Contains(String),
}

/// A route's action.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Forward to a cluster.
    Cluster {
        /// The cluster.
        cluster: String,
        /// Replaces the matched prefix.
        prefix_rewrite: Option<String>,
        /// Upstream timeout; `None` for no timeout.
        timeout: Option<Duration>,
    },
    /// Answer directly.
    Direct {
        /// Status.
        status: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// Redirect.
    Redirect {
        /// Status (301 by default).
        status: u16,
        /// New path, if any.
        path: Option<String>,
        /// New host, if any.
        host: Option<String>,
        /// To https.
        https: bool,
    },
}

/// A cluster.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// Name.
    pub name: String,
    /// Endpoints (host or IP, port), used round-robin.
    pub endpoints: Vec<(String, u16)>,
    /// Resolve names with DNS (`STRICT_DNS`, `LOGICAL_DNS`).
    pub dns: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Speak HTTP/2 (h2c) to it.
    pub http2: bool,
    /// `metadata` (`xds.cluster_metadata`).
    pub metadata: Metadata,
}

/// An access log: where lines go and their format (Envoy's command operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogPlan {
    /// `/dev/stdout`, `/dev/stderr` or a file appended to.
    pub path: String,
    /// The line's format (Envoy's default when the config gives none).
    pub format: Vec<super::log_format::Piece>,
}

/// What Envoy's HTTP/1 codec takes beyond its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http1Options {
    /// `accept_http_10`: serve HTTP/1.0 rather than answer 426.
    pub accept_http_10: bool,
    /// `default_host_for_http_10`: the authority of an HTTP/1.0 request without `Host`.
    pub default_host_for_http_10: Option<String>,
    /// `allow_chunked_length`: serve `Content-Length` with chunked as chunked rather than 400.
    pub allow_chunked_length: bool,
    /// `max_headers_count` (default 100): a request with more headers gets 431.
    pub max_headers: usize,
}

impl Default for Http1Options {
    fn default() -> Self {
        Self { accept_http_10: false, default_host_for_http_10: None, allow_chunked_length: false, max_headers: 100 }
    }
}

/// The connection manager's `codec_type`: which protocol its downstream connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// HTTP/2 when a connection starts with the HTTP/2 preface, HTTP/1 otherwise.
    #[default]
    Auto,
    /// HTTP/1 only: the HTTP/2 preface is a bad HTTP/1 request (400, `http1.codec_error`).
    Http1,
    /// HTTP/2 (prior knowledge) only: a connection that does not start with the preface is closed
    /// without an answer.
    Http2,
}
