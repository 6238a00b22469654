//! The subset of Envoy's v3 bootstrap that sluice reads, as serde types. Every struct keeps the
//! fields it does not model in `other`, so validation can tell harmless ones (a warning) from ones
//! that would change behaviour (an error naming the YAML path).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

/// Fields sluice does not model, by name.
pub type Other = BTreeMap<String, Value>;

/// The bootstrap.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Bootstrap {
    /// Listeners and clusters.
    #[serde(default)]
    pub static_resources: StaticResources,
    /// The admin listener.
    pub admin: Option<Admin>,
    /// Bootstrap extensions (`envoy.bootstrap.wasm` service plugins).
    #[serde(default)]
    pub bootstrap_extensions: Vec<BootstrapExtension>,
    /// The node identity.
    pub node: Option<Node>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `node`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Node {
    /// `id`.
    #[serde(default)]
    pub id: String,
    /// `cluster`.
    #[serde(default)]
    pub cluster: String,
    /// `metadata`: a `Struct` filters read as `xds.node.metadata`.
    pub metadata: Option<Value>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `static_resources`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct StaticResources {
    /// Listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Clusters.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `admin`.
#[derive(Debug, Clone, Deserialize)]
pub struct Admin {
    /// Where it listens.
    pub address: Address,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// An `address` (only `socket_address`).
#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    /// `socket_address`.
    pub socket_address: SocketAddress,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `socket_address`.
#[derive(Debug, Clone, Deserialize)]
pub struct SocketAddress {
    /// IP or host name.
    pub address: String,
    /// Port.
    #[serde(default)]
    pub port_value: u16,
    /// `TCP` (UDP is not supported).
    pub protocol: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A listener.
#[derive(Debug, Clone, Deserialize)]
pub struct Listener {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Where it listens.
    pub address: Address,
    /// Filter chains (sluice serves the first).
    #[serde(default)]
    pub filter_chains: Vec<FilterChain>,
    /// Buffer limit per connection (default 1 MiB).
    pub per_connection_buffer_limit_bytes: Option<u32>,
    /// `metadata` (`filter_metadata`, `typed_filter_metadata`), as written.
    pub metadata: Option<Value>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A filter chain.
#[derive(Debug, Clone, Deserialize)]
pub struct FilterChain {
    /// Network filters in order.
    #[serde(default)]
    pub filters: Vec<NetworkFilter>,
    /// Name.
    pub name: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A network filter.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkFilter {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Its typed configuration.
    pub typed_config: NetworkFilterConfig,
}

/// A network filter's configuration, by `@type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "@type")]
pub enum NetworkFilterConfig {
    /// HTTP connection manager.
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    )]
    HttpConnectionManager(Box<HttpConnectionManager>),
    /// TCP proxy.
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy")]
    TcpProxy(TcpProxy),
    /// A wasm network filter.
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm")]
    Wasm(Box<WasmFilter>),
}

/// `HttpConnectionManager`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpConnectionManager {
    /// Stats prefix.
    #[serde(default)]
    pub stat_prefix: String,
    /// `AUTO`, `HTTP1` or `HTTP2`.
    pub codec_type: Option<String>,
    /// Inline routes.
    pub route_config: RouteConfiguration,
    /// HTTP filters in order (the router last).
    #[serde(default)]
    pub http_filters: Vec<HttpFilter>,
    /// The `server` response header (default `envoy`).
    pub server_name: Option<String>,
    /// The most request header bytes, in KiB (default 60): more gets 431.
    pub max_request_headers_kb: Option<u32>,
    /// Access logs, written when a request completes.
    #[serde(default)]
    pub access_log: Vec<AccessLog>,
    /// HTTP/1 options: HTTP/1.0, `Content-Length` with chunked.
    pub http_protocol_options: Option<Http1ProtocolOptions>,
    /// Options of every HTTP version: the most headers.
    pub common_http_protocol_options: Option<HttpProtocolOptions>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `http_protocol_options` (`envoy.config.core.v3.Http1ProtocolOptions`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Http1ProtocolOptions {
    /// Serve HTTP/1.0 (default: refuse it with 426).
    #[serde(default)]
    pub accept_http_10: bool,
    /// The authority of an HTTP/1.0 request without `Host`.
    pub default_host_for_http_10: Option<String>,
    /// Serve `Content-Length` with `Transfer-Encoding: chunked` as chunked (default: refuse with 400).
    #[serde(default)]
    pub allow_chunked_length: bool,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `common_http_protocol_options` (`envoy.config.core.v3.HttpProtocolOptions`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpProtocolOptions {
    /// The most headers a request may have (default 100): more gets 431.
    pub max_headers_count: Option<u32>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `route_config`.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConfiguration {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Virtual hosts.
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHost>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A virtual host.
#[derive(Debug, Clone, Deserialize)]
pub struct VirtualHost {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Domains (`*`, exact, `*.suffix`, `prefix.*`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Routes in order.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// `metadata` (`xds.virtual_host_metadata`), as written.
    pub metadata: Option<Value>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A route.
#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    /// Name (the `xds.route_name` property).
    #[serde(default)]
    pub name: String,
    /// What it matches.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// Forward to a cluster.
    pub route: Option<RouteAction>,
    /// Answer directly.
    pub direct_response: Option<DirectResponse>,
    /// Redirect.
    pub redirect: Option<Redirect>,
    /// `metadata`, as written.
    pub metadata: Option<Value>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `match`.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteMatch {
    /// Path prefix.
    pub prefix: Option<String>,
    /// Exact path.
    pub path: Option<String>,
    /// Regex on the path.
    pub safe_regex: Option<SafeRegex>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatcher>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `safe_regex`.
#[derive(Debug, Clone, Deserialize)]
pub struct SafeRegex {
    /// The expression (RE2 syntax; Rust's `regex` accepts the same subset).
    pub regex: String,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A header condition.
#[derive(Debug, Clone, Deserialize)]
pub struct HeaderMatcher {
    /// Header name.
    pub name: String,
    /// Exact value (legacy field).
    pub exact_match: Option<String>,
    /// `string_match`.
    pub string_match: Option<StringMatch>,
    /// Only presence.
    pub present_match: Option<bool>,
    /// Negate.
    #[serde(default)]
    pub invert_match: bool,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `string_match`.
#[derive(Debug, Clone, Deserialize)]
pub struct StringMatch {
    /// Exact.
    pub exact: Option<String>,
    /// Prefix.
    pub prefix: Option<String>,
    /// Suffix.
    pub suffix: Option<String>,
    /// Contains.
    pub contains: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `route`.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteAction {
    /// Target cluster.
    pub cluster: String,
    /// Replaces the matched prefix.
    pub prefix_rewrite: Option<String>,
    /// Upstream timeout (default 15 s; `0s` = none).
    pub timeout: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `direct_response`.
#[derive(Debug, Clone, Deserialize)]
pub struct DirectResponse {
    /// Status.
    pub status: u16,
    /// Body.
    pub body: Option<DataSource>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `redirect`.
#[derive(Debug, Clone, Deserialize)]
pub struct Redirect {
    /// New path.
    pub path_redirect: Option<String>,
    /// New host.
    pub host_redirect: Option<String>,
    /// `MOVED_PERMANENTLY` (default), `FOUND`, `SEE_OTHER`, `TEMPORARY_REDIRECT`, `PERMANENT_REDIRECT`.
    pub response_code: Option<String>,
    /// Use https.
    #[serde(default)]
    pub https_redirect: bool,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// An HTTP filter.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpFilter {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Its typed configuration.
    pub typed_config: HttpFilterConfig,
}

/// An HTTP filter's configuration, by `@type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "@type")]
pub enum HttpFilterConfig {
    /// A wasm HTTP filter.
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")]
    Wasm(Box<WasmFilter>),
    /// The router.
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")]
    Router(Other),
}

/// `envoy.extensions.filters.{http,network}.wasm.v3.Wasm`.
#[derive(Debug, Clone, Deserialize)]
pub struct WasmFilter {
    /// The plugin.
    pub config: PluginConfig,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `envoy.extensions.wasm.v3.PluginConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct PluginConfig {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Root id.
    #[serde(default)]
    pub root_id: String,
    /// The VM.
    pub vm_config: VmConfig,
    /// Plugin configuration.
    pub configuration: Option<Any>,
    /// Deprecated fail-open flag.
    pub fail_open: Option<bool>,
    /// `FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`.
    pub failure_policy: Option<String>,
    /// A real StopIteration from headers.
    pub allow_on_headers_stop_iteration: Option<bool>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `VmConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct VmConfig {
    /// vm_id.
    #[serde(default)]
    pub vm_id: String,
    /// Any runtime name is accepted; sluice runs wasmtime.
    #[serde(default)]
    pub runtime: String,
    /// The module.
    pub code: Code,
    /// VM configuration.
    pub configuration: Option<Any>,
    /// Environment variables.
    pub environment_variables: Option<EnvironmentVariables>,
    /// Use a precompiled section if the module has one (sluice compiles with wasmtime and caches
    /// the result, so the flag changes nothing here).
    pub allow_precompiled: Option<bool>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `code` (only `local`).
#[derive(Debug, Clone, Deserialize)]
pub struct Code {
    /// A local source.
    pub local: Option<DataSource>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A `DataSource`.
#[derive(Debug, Clone, Deserialize)]
pub struct DataSource {
    /// A file.
    pub filename: Option<String>,
    /// Base64 bytes.
    pub inline_bytes: Option<String>,
    /// Text.
    pub inline_string: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `environment_variables`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct EnvironmentVariables {
    /// Copied from sluice's own environment.
    #[serde(default)]
    pub host_env_keys: Vec<String>,
    /// Set here.
    #[serde(default)]
    pub key_values: BTreeMap<String, String>,
}

/// A `google.protobuf.Any` (only StringValue and BytesValue).
#[derive(Debug, Clone, Deserialize)]
pub struct Any {
    /// The type URL.
    #[serde(rename = "@type")]
    pub type_url: String,
    /// The value.
    pub value: Option<Value>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `tcp_proxy`.
#[derive(Debug, Clone, Deserialize)]
pub struct TcpProxy {
    /// Stats prefix.
    #[serde(default)]
    pub stat_prefix: String,
    /// Target cluster.
    pub cluster: String,
    /// Access logs, written when the connection closes.
    #[serde(default)]
    pub access_log: Vec<AccessLog>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// A cluster.
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// `STATIC`, `STRICT_DNS`, `LOGICAL_DNS`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Connect timeout, e.g. `0.25s`.
    pub connect_timeout: Option<String>,
    /// Endpoints.
    pub load_assignment: Option<LoadAssignment>,
    /// HTTP/2 upstream (old style).
    pub http2_protocol_options: Option<Value>,
    /// HTTP/2 upstream (new style).
    pub typed_extension_protocol_options: Option<BTreeMap<String, Value>>,
    /// Only `ROUND_ROBIN`.
    pub lb_policy: Option<String>,
    /// `metadata`, as written.
    pub metadata: Option<Value>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `load_assignment`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadAssignment {
    /// Name.
    #[serde(default)]
    pub cluster_name: String,
    /// Locality groups.
    #[serde(default)]
    pub endpoints: Vec<LocalityEndpoints>,
}

/// One locality's endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct LocalityEndpoints {
    /// Endpoints.
    #[serde(default)]
    pub lb_endpoints: Vec<LbEndpoint>,
}

/// An endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct LbEndpoint {
    /// Its address.
    pub endpoint: Endpoint,
}

/// `endpoint`.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoint {
    /// Address.
    pub address: Address,
}

/// A bootstrap extension.
#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapExtension {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `WasmService`.
    pub typed_config: WasmServiceConfig,
}

/// `envoy.extensions.wasm.v3.WasmService`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "@type")]
pub enum WasmServiceConfig {
    /// A wasm service.
    #[serde(rename = "type.googleapis.com/envoy.extensions.wasm.v3.WasmService")]
    WasmService {
        /// The plugin.
        config: PluginConfig,
        /// One VM on the main thread.
        #[serde(default)]
        singleton: bool,
    },
}

/// An `access_log` entry (`envoy.config.accesslog.v3.AccessLog`).
#[derive(Debug, Clone, Deserialize)]
pub struct AccessLog {
    /// Name (`envoy.access_loggers.file`, …).
    #[serde(default)]
    pub name: String,
    /// The logger, by `@type`.
    pub typed_config: AccessLoggerConfig,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// The access loggers sluice writes, by `@type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "@type")]
pub enum AccessLoggerConfig {
    /// `envoy.access_loggers.file`.
    #[serde(rename = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog")]
    File(FileAccessLog),
    /// `envoy.access_loggers.stdout`.
    #[serde(rename = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog")]
    Stdout(StreamAccessLog),
    /// `envoy.access_loggers.stderr`.
    #[serde(rename = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog")]
    Stderr(StreamAccessLog),
    /// `envoy.access_loggers.wasm`: a plugin whose root context logs each request.
    #[serde(rename = "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog")]
    Wasm(Box<WasmFilter>),
}

/// `FileAccessLog`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileAccessLog {
    /// The file (`/dev/stdout` and `/dev/stderr` too).
    pub path: String,
    /// The line's format.
    pub log_format: Option<LogFormat>,
    /// The deprecated format string.
    pub format: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `StdoutAccessLog` / `StderrAccessLog`.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamAccessLog {
    /// The line's format.
    pub log_format: Option<LogFormat>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}

/// `SubstitutionFormatString` (text formats only).
#[derive(Debug, Clone, Deserialize)]
pub struct LogFormat {
    /// A format string.
    pub text_format: Option<String>,
    /// A format string as a data source.
    pub text_format_source: Option<DataSource>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub other: Other,
}
