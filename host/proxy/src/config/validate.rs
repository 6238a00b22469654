//! Turns the parsed bootstrap into a [`Plan`], checking what Envoy checks and refusing what sluice
//! would silently get wrong.

use sluice_core::stream::Metadata;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;

use super::model::{
    AccessLog, AccessLoggerConfig, Address, Any, Bootstrap, Cluster, DataSource, HttpConnectionManager,
    HttpFilterConfig, NetworkFilter, NetworkFilterConfig, Other, PluginConfig, Route, WasmServiceConfig,
};
use super::plan::*;
use super::ConfigError;
use sluice_core::vm::{FailurePolicy, PluginInfo, VmOptions};

type R<T> = Result<T, ConfigError>;

/// Fields that do not change how traffic is handled: ignored with a warning.
const HARMLESS: &[&str] = &[
    "stats_config",
    "stats_sinks",
    "stats_flush_interval",
    "tracing",
    "layered_runtime",
    "overload_manager",
    "watchdog",
    "watchdogs",
    "access_log_path",
    "profile_path",
    "stat_prefix",
    "generate_request_id",
    "use_remote_address",
    "traffic_direction",
    "drain_type",
    "dns_lookup_family",
    "common_lb_config",
    "upstream_connection_options",
];

struct Ctx<'a> {
    base: &'a Path,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn other(&mut self, other: &Other, path: &str) -> R<()> {
        for key in other.keys() {
            if HARMLESS.contains(&key.as_str()) {
                self.warnings
                    .push(format!("{path}.{key}: ignored (sluice does not implement it; traffic is not affected)"));
            } else {
                return Err(ConfigError::new(
                    format!("{path}.{key}"),
                    "sluice does not support this field, and ignoring it would change how traffic is handled",
                ));
            }
        }
        Ok(())
    }

    fn data(&self, d: &DataSource, path: &str) -> R<Vec<u8>> {
        if let Some(key) = d.other.keys().next() {
            return Err(ConfigError::new(format!("{path}.{key}"), "unsupported data source"));
        }
        match (&d.filename, &d.inline_bytes, &d.inline_string) {
            (Some(f), None, None) => {
                let file = self.base.join(f);
                std::fs::read(&file).map_err(|e| {
                    ConfigError::new(format!("{path}.filename"), format!("cannot read {}: {e}", file.display()))
                })
            }
            (None, Some(b), None) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| ConfigError::new(format!("{path}.inline_bytes"), format!("not base64: {e}"))),
            (None, None, Some(s)) => Ok(s.as_bytes().to_vec()),
            _ => Err(ConfigError::new(path, "give exactly one of filename, inline_bytes, inline_string")),
        }
    }
}

/// `envoy.config.core.v3.Metadata` (already read against Envoy's schema), for the filters that
/// read it as `xds.*_metadata`.
fn metadata(m: Option<&serde_yaml_ng::Value>, path: &str) -> R<Metadata> {
    let Some(m) = m else { return Ok(Metadata::default()) };
    let proto = super::schema::metadata_proto(m)
        .map_err(|e| ConfigError::new(format!("{path}.metadata.{}", e.path), e.message))?;
    Ok(Metadata::new(proto, m.clone()))
}

/// `access_log` entries: file, stdout and stderr loggers with text formats, and wasm loggers
/// (`envoy.access_loggers.wasm`; `wasm_allowed` where sluice runs them: the connection manager).
fn access_logs(
    ctx: &mut Ctx<'_>,
    logs: &[AccessLog],
    path: &str,
    wasm_allowed: bool,
) -> R<(Vec<AccessLogPlan>, Vec<PluginSpec>)> {
    let mut out = Vec::new();
    let mut plugins = Vec::new();
    for (i, l) in logs.iter().enumerate() {
        let lpath = format!("{path}.access_log[{i}]");
        ctx.other(&l.other, &lpath)?;
        let tpath = format!("{lpath}.typed_config");
        let (file, format, other) = match &l.typed_config {
            AccessLoggerConfig::File(f) => (f.path.clone(), f.log_format.as_ref(), &f.other),
            AccessLoggerConfig::Stdout(s) => ("/dev/stdout".to_string(), s.log_format.as_ref(), &s.other),
            AccessLoggerConfig::Stderr(s) => ("/dev/stderr".to_string(), s.log_format.as_ref(), &s.other),
            AccessLoggerConfig::Wasm(_) if !wasm_allowed => {
                return Err(ConfigError::new(
                    tpath,
                    "sluice runs wasm access loggers on the HTTP connection manager only",
                ));
            }
            AccessLoggerConfig::Wasm(w) => {
                ctx.other(&w.other, &tpath)?;
                plugins.push(plugin(ctx, &w.config, &format!("{tpath}.config"), false)?);
                continue;
            }
        };
        ctx.other(other, &tpath)?;
        let mut text = match &l.typed_config {
            AccessLoggerConfig::File(f) => f.format.clone(),
            _ => None,
        };
        if let Some(f) = format {
            let fpath = format!("{tpath}.log_format");
            ctx.other(&f.other, &fpath)?;
            text = match (&f.text_format, &f.text_format_source) {
                (Some(t), None) => Some(t.clone()),
                (None, Some(d)) => Some(
                    String::from_utf8(ctx.data(d, &format!("{fpath}.text_format_source"))?)
                        .map_err(|_| ConfigError::new(format!("{fpath}.text_format_source"), "not UTF-8"))?,
                ),
                (None, None) => None,
                _ => return Err(ConfigError::new(fpath, "give one of text_format, text_format_source")),
            };
        }
        let format = super::log_format::parse(text.as_deref().unwrap_or(super::log_format::DEFAULT))
            .map_err(|e| ConfigError::new(format!("{tpath}.log_format"), e))?;
        out.push(AccessLogPlan { path: file, format });
    }
    Ok((out, plugins))
}

/// A protobuf-JSON duration such as `1s`, `0.250s`.
fn duration(s: &str, path: &str) -> R<Duration> {
    let secs = s
        .strip_suffix('s')
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| ConfigError::new(path, format!("`{s}` is not a duration like `1s` or `0.25s`")))?;
    Ok(Duration::from_secs_f64(secs))
}

fn socket(a: &Address, path: &str) -> R<SocketAddr> {
    let sa = &a.socket_address;
    if let Some(p) = &sa.protocol {
        if p != "TCP" {
            return Err(ConfigError::new(format!("{path}.socket_address.protocol"), "only TCP is supported"));
        }
    }
    let ip: std::net::IpAddr = sa.address.parse().map_err(|_| {
        ConfigError::new(format!("{path}.socket_address.address"), format!("`{}` is not an IP address", sa.address))
    })?;
    Ok(SocketAddr::new(ip, sa.port_value))
}

/// `configuration`: StringValue and BytesValue are unwrapped, as Envoy does; other messages are
/// their protobuf bytes.
fn any(a: &Any, path: &str) -> R<Vec<u8>> {
    let value = a.value.as_ref();
    match a.type_url.as_str() {
        "type.googleapis.com/google.protobuf.StringValue" => match value {
            Some(serde_yaml_ng::Value::String(s)) => Ok(s.as_bytes().to_vec()),
            None => Ok(Vec::new()),
            Some(_) => Err(ConfigError::new(format!("{path}.value"), "a StringValue's value must be a string")),
        },
        "type.googleapis.com/google.protobuf.BytesValue" => match value {
            Some(serde_yaml_ng::Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| ConfigError::new(format!("{path}.value"), format!("not base64: {e}"))),
            None => Ok(Vec::new()),
            Some(_) => Err(ConfigError::new(format!("{path}.value"), "a BytesValue's value must be base64 text")),
        },
        // Envoy hands any other message to the plugin serialized, as its protobuf bytes.
        _ => {
            let mut m = serde_yaml_ng::Mapping::new();
            m.insert("@type".into(), a.type_url.clone().into());
            if let Some(v) = value {
                m.insert("value".into(), v.clone());
            }
            m.extend(a.other.iter().map(|(k, v)| (k.as_str().into(), v.clone())));
            super::schema::any_message_bytes(serde_yaml_ng::Value::Mapping(m))
                .map_err(|e| ConfigError::new(format!("{path}.{}", e.path), e.message))
        }
    }
}

fn plugin(ctx: &mut Ctx<'_>, p: &PluginConfig, path: &str, singleton: bool) -> R<PluginSpec> {
    ctx.other(&p.other, path)?;
    let vm = &p.vm_config;
    let vpath = format!("{path}.vm_config");
    ctx.other(&vm.other, &vpath)?;
    ctx.other(&vm.code.other, &format!("{vpath}.code"))?;
    let local = vm.code.local.as_ref().ok_or_else(|| {
        ConfigError::new(
            format!("{vpath}.code"),
            "only `local` code (filename, inline_bytes, inline_string) is supported",
        )
    })?;
    let code = ctx.data(local, &format!("{vpath}.code.local"))?;
    let code_path = local.filename.as_ref().map(|f| ctx.base.join(f));
    let failure_policy = match (p.fail_open, p.failure_policy.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(path, "only one of fail_open or failure_policy can be set"));
        }
        (Some(true), None) => FailurePolicy::LegacyFailOpen,
        (_, None | Some("FAIL_CLOSED") | Some("UNSPECIFIED")) => FailurePolicy::FailClosed,
        (_, Some("FAIL_OPEN")) => FailurePolicy::FailOpen,
        (_, Some("FAIL_RELOAD")) => FailurePolicy::FailReload,
        (_, Some(other)) => {
            return Err(ConfigError::new(format!("{path}.failure_policy"), format!("unknown policy `{other}`")));
        }
    };
    let mut env_vars = Vec::new();
    if let Some(env) = &vm.environment_variables {
        for key in &env.host_env_keys {
            if let Ok(v) = std::env::var(key) {
                env_vars.push((key.clone(), v));
            }
        }
        for (k, v) in &env.key_values {
            if env_vars.iter().any(|(e, _)| e == k) {
                return Err(ConfigError::new(
                    format!("{vpath}.environment_variables"),
                    format!("`{k}` is set twice (host_env_keys and key_values)"),
                ));
            }
            env_vars.push((k.clone(), v.clone()));
        }
    }
    let configuration = p.configuration.as_ref().map(|a| any(a, &format!("{path}.configuration"))).transpose()?;
    let vm_configuration = vm.configuration.as_ref().map(|a| any(a, &format!("{vpath}.configuration"))).transpose()?;
    Ok(PluginSpec {
        info: PluginInfo {
            name: p.name.clone(),
            root_id: p.root_id.clone(),
            vm_id: vm.vm_id.clone(),
            configuration: configuration.unwrap_or_default(),
            failure_policy,
            allow_on_headers_stop_iteration: p.allow_on_headers_stop_iteration.unwrap_or(false),
        },
        vm: VmOptions { vm_id: vm.vm_id.clone(), configuration: vm_configuration.unwrap_or_default(), env_vars },
        runtime: vm.runtime.clone(),
        code,
        code_path,
        singleton,
    })
}

fn route(ctx: &mut Ctx<'_>, r: &Route, path: &str) -> R<RoutePlan> {
    ctx.other(&r.other, path)?;
    let route_metadata = metadata(r.metadata.as_ref(), path)?;
    let m = &r.matcher;
    let mpath = format!("{path}.match");
    ctx.other(&m.other, &mpath)?;
    let path_match =
        match (&m.prefix, &m.path, &m.safe_regex) {
            (Some(p), None, None) => PathMatch::Prefix(p.clone()),
            (None, Some(p), None) => PathMatch::Exact(p.clone()),
            (None, None, Some(re)) => {
                ctx.other(&re.other, &format!("{mpath}.safe_regex"))?;
                let anchored = format!("^(?:{})$", re.regex);
                PathMatch::Regex(regex::Regex::new(&anchored).map_err(|e| {
                    ConfigError::new(format!("{mpath}.safe_regex.regex"), format!("invalid regex: {e}"))
                })?)
            }
            _ => return Err(ConfigError::new(mpath, "give exactly one of prefix, path, safe_regex")),
        };
    let mut headers = Vec::new();
    for (i, h) in m.headers.iter().enumerate() {
        let hpath = format!("{mpath}.headers[{i}]");
        ctx.other(&h.other, &hpath)?;
        let test = match (&h.exact_match, &h.string_match, h.present_match) {
            (Some(v), None, None) => HeaderTest::Exact(v.clone()),
            (None, None, Some(true)) => HeaderTest::Present,
            (None, Some(s), None) => {
                ctx.other(&s.other, &format!("{hpath}.string_match"))?;
                match (&s.exact, &s.prefix, &s.suffix, &s.contains) {
                    (Some(v), None, None, None) => HeaderTest::Exact(v.clone()),
                    (None, Some(v), None, None) => HeaderTest::Prefix(v.clone()),
                    (None, None, Some(v), None) => HeaderTest::Suffix(v.clone()),
                    (None, None, None, Some(v)) => HeaderTest::Contains(v.clone()),
                    _ => return Err(ConfigError::new(format!("{hpath}.string_match"), "give exactly one test")),
                }
            }
            (None, None, None) => HeaderTest::Present,
            _ => return Err(ConfigError::new(hpath, "give one of exact_match, string_match, present_match")),
        };
        headers.push(HeaderCondition { name: h.name.to_ascii_lowercase(), test, invert: h.invert_match });
    }
    let action = match (&r.route, &r.direct_response, &r.redirect) {
        (Some(a), None, None) => {
            let apath = format!("{path}.route");
            ctx.other(&a.other, &apath)?;
            let timeout = match &a.timeout {
                None => Some(Duration::from_secs(15)),
                Some(t) => Some(duration(t, &format!("{apath}.timeout"))?).filter(|d| !d.is_zero()),
            };
            RouteAction::Cluster { cluster: a.cluster.clone(), prefix_rewrite: a.prefix_rewrite.clone(), timeout }
        }
        (None, Some(d), None) => {
            let dpath = format!("{path}.direct_response");
            ctx.other(&d.other, &dpath)?;
            let body = d.body.as_ref().map(|b| ctx.data(b, &format!("{dpath}.body"))).transpose()?.unwrap_or_default();
            RouteAction::Direct { status: d.status, body }
        }
        (None, None, Some(rd)) => {
            let rpath = format!("{path}.redirect");
            ctx.other(&rd.other, &rpath)?;
            let status = match rd.response_code.as_deref() {
                None | Some("MOVED_PERMANENTLY") => 301,
                Some("FOUND") => 302,
                Some("SEE_OTHER") => 303,
                Some("TEMPORARY_REDIRECT") => 307,
                Some("PERMANENT_REDIRECT") => 308,
                Some(o) => {
                    return Err(ConfigError::new(format!("{rpath}.response_code"), format!("unknown code `{o}`")))
                }
            };
            RouteAction::Redirect {
                status,
                path: rd.path_redirect.clone(),
                host: rd.host_redirect.clone(),
                https: rd.https_redirect,
            }
        }
        _ => return Err(ConfigError::new(path, "give exactly one of route, direct_response, redirect")),
    };
    Ok(RoutePlan { name: r.name.clone(), path: path_match, headers, action, metadata: route_metadata })
}

fn http_listener(ctx: &mut Ctx<'_>, hcm: &HttpConnectionManager, path: &str, limit: usize) -> R<HttpListener> {
    ctx.other(&hcm.other, path)?;
    let codec = match hcm.codec_type.as_deref().unwrap_or("AUTO") {
        "AUTO" => Codec::Auto,
        "HTTP1" => Codec::Http1,
        "HTTP2" => Codec::Http2,
        other => {
            return Err(ConfigError::new(
                format!("{path}.codec_type"),
                format!("`{other}` is not supported (AUTO, HTTP1, HTTP2)"),
            ))
        }
    };
    let rc = &hcm.route_config;
    ctx.other(&rc.other, &format!("{path}.route_config"))?;
    let mut virtual_hosts = Vec::new();
    for (i, vh) in rc.virtual_hosts.iter().enumerate() {
        let vpath = format!("{path}.route_config.virtual_hosts[{i}]");
        ctx.other(&vh.other, &vpath)?;
        let routes = vh
            .routes
            .iter()
            .enumerate()
            .map(|(j, r)| route(ctx, r, &format!("{vpath}.routes[{j}]")))
            .collect::<R<Vec<_>>>()?;
        virtual_hosts.push(VirtualHostPlan {
            name: vh.name.clone(),
            domains: vh.domains.clone(),
            routes,
            metadata: metadata(vh.metadata.as_ref(), &vpath)?,
        });
    }
    let mut filters = Vec::new();
    let n = hcm.http_filters.len();
    for (i, f) in hcm.http_filters.iter().enumerate() {
        let fpath = format!("{path}.http_filters[{i}]");
        match &f.typed_config {
            HttpFilterConfig::Wasm(w) => {
                ctx.other(&w.other, &format!("{fpath}.typed_config"))?;
                filters.push(plugin(ctx, &w.config, &format!("{fpath}.typed_config.config"), false)?);
            }
            HttpFilterConfig::Router(other) => {
                if i + 1 != n {
                    return Err(ConfigError::new(fpath, "the router must be the last HTTP filter"));
                }
                ctx.other(other, &format!("{fpath}.typed_config"))?;
            }
        }
    }
    if !matches!(hcm.http_filters.last().map(|f| &f.typed_config), Some(HttpFilterConfig::Router(_))) {
        return Err(ConfigError::new(
            format!("{path}.http_filters"),
            "the last HTTP filter must be envoy.filters.http.router",
        ));
    }
    let server_name = hcm.server_name.clone().unwrap_or_else(|| "envoy".to_string());
    let (access_logs, access_loggers) = access_logs(ctx, &hcm.access_log, path, true)?;
    let mut http1 = crate::config::plan::Http1Options::default();
    if let Some(o) = &hcm.http_protocol_options {
        ctx.other(&o.other, &format!("{path}.http_protocol_options"))?;
        http1.accept_http_10 = o.accept_http_10;
        http1.default_host_for_http_10 = o.default_host_for_http_10.clone().filter(|h| !h.is_empty());
        http1.allow_chunked_length = o.allow_chunked_length;
    }
    if let Some(o) = &hcm.common_http_protocol_options {
        let at = format!("{path}.common_http_protocol_options");
        ctx.other(&o.other, &at)?;
        match o.max_headers_count {
            // Envoy's schema: at least 1.
            Some(0) => return Err(ConfigError::new(format!("{at}.max_headers_count"), "must be at least 1")),
            Some(n) => http1.max_headers = n as usize,
            None => {}
        }
    }
    Ok(HttpListener {
        filters,
        virtual_hosts,
        buffer_limit: limit,
        codec,
        server_name,
        max_request_headers_bytes: hcm.max_request_headers_kb.unwrap_or(60) as usize * 1024,
        http1,
        stat_prefix: hcm.stat_prefix.clone(),
        access_logs,
        access_loggers,
    })
}

fn cluster(ctx: &mut Ctx<'_>, c: &Cluster, path: &str) -> R<ClusterPlan> {
    ctx.other(&c.other, path)?;
    let cluster_metadata = metadata(c.metadata.as_ref(), path)?;
    let dns = match c.kind.as_deref() {
        None | Some("STATIC") => false,
        Some("STRICT_DNS") | Some("LOGICAL_DNS") => true,
        Some(o) => {
            return Err(ConfigError::new(
                format!("{path}.type"),
                format!("`{o}` clusters are not supported (STATIC, STRICT_DNS, LOGICAL_DNS)"),
            ));
        }
    };
    match c.lb_policy.as_deref() {
        None | Some("ROUND_ROBIN") => {}
        Some(p @ ("LEAST_REQUEST" | "RANDOM")) => {
            ctx.warnings.push(format!("{path}.lb_policy: {p} is served round-robin"));
        }
        Some(o) => return Err(ConfigError::new(format!("{path}.lb_policy"), format!("`{o}` is not supported"))),
    }
    let connect_timeout =
        c.connect_timeout.as_deref().map(|t| duration(t, &format!("{path}.connect_timeout"))).transpose()?;
    let mut endpoints = Vec::new();
    if let Some(la) = &c.load_assignment {
        for (i, group) in la.endpoints.iter().enumerate() {
            for (j, e) in group.lb_endpoints.iter().enumerate() {
                let epath = format!("{path}.load_assignment.endpoints[{i}].lb_endpoints[{j}].endpoint.address");
                let sa = &e.endpoint.address.socket_address;
                if !dns && sa.address.parse::<std::net::IpAddr>().is_err() {
                    return Err(ConfigError::new(
                        format!("{epath}.socket_address.address"),
                        format!("`{}` is not an IP address; use type STRICT_DNS for host names", sa.address),
                    ));
                }
                endpoints.push((sa.address.clone(), sa.port_value));
            }
        }
    }
    if endpoints.is_empty() {
        return Err(ConfigError::new(format!("{path}.load_assignment"), "the cluster has no endpoints"));
    }
    let http2 = c.http2_protocol_options.is_some()
        || c.typed_extension_protocol_options.as_ref().is_some_and(|m| {
            m.values().any(|v| serde_yaml_ng::to_string(v).is_ok_and(|s| s.contains("http2_protocol_options")))
        });
    Ok(ClusterPlan {
        name: c.name.clone(),
        endpoints,
        dns,
        connect_timeout: connect_timeout.unwrap_or(Duration::from_secs(5)),
        http2,
        metadata: cluster_metadata,
    })
}

pub(super) fn plan(b: &Bootstrap, base: &Path) -> R<Plan> {
    let mut ctx = Ctx { base, warnings: Vec::new() };
    ctx.other(&b.other, "(top level)")?;
    ctx.other(&b.static_resources.other, "static_resources")?;
    let mut clusters = BTreeMap::new();
    for (i, c) in b.static_resources.clusters.iter().enumerate() {
        let path = format!("static_resources.clusters[{i}]");
        let plan = cluster(&mut ctx, c, &path)?;
        if clusters.insert(plan.name.clone(), plan).is_some() {
            return Err(ConfigError::new(format!("{path}.name"), format!("duplicate cluster name `{}`", c.name)));
        }
    }
    let mut listeners = Vec::new();
    for (i, l) in b.static_resources.listeners.iter().enumerate() {
        let path = format!("static_resources.listeners[{i}]");
        ctx.other(&l.other, &path)?;
        let listener_metadata = metadata(l.metadata.as_ref(), &path)?;
        let address = socket(&l.address, &format!("{path}.address"))?;
        ctx.other(&l.address.other, &format!("{path}.address"))?;
        let limit = l.per_connection_buffer_limit_bytes.map(|v| v as usize).unwrap_or(1 << 20);
        let [chain] = l.filter_chains.as_slice() else {
            return Err(ConfigError::new(format!("{path}.filter_chains"), "exactly one filter chain is supported"));
        };
        let cpath = format!("{path}.filter_chains[0]");
        ctx.other(&chain.other, &cpath)?;
        let kind = match chain.filters.as_slice() {
            [NetworkFilter { typed_config: NetworkFilterConfig::HttpConnectionManager(hcm), .. }] => {
                ListenerKind::Http(http_listener(&mut ctx, hcm, &format!("{cpath}.filters[0].typed_config"), limit)?)
            }
            [wasm @ .., NetworkFilter { typed_config: NetworkFilterConfig::TcpProxy(tp), .. }] => {
                ctx.other(&tp.other, &format!("{cpath}.filters[{}].typed_config", wasm.len()))?;
                let mut filters = Vec::new();
                for (j, f) in wasm.iter().enumerate() {
                    let fpath = format!("{cpath}.filters[{j}].typed_config");
                    let NetworkFilterConfig::Wasm(w) = &f.typed_config else {
                        return Err(ConfigError::new(fpath, "only wasm network filters may come before tcp_proxy"));
                    };
                    ctx.other(&w.other, &fpath)?;
                    filters.push(plugin(&mut ctx, &w.config, &format!("{fpath}.config"), false)?);
                }
                if !clusters.contains_key(&tp.cluster) {
                    return Err(ConfigError::new(
                        format!("{cpath}.filters[{}].typed_config.cluster", wasm.len()),
                        format!("unknown cluster `{}`", tp.cluster),
                    ));
                }
                let (access_logs, _) = access_logs(
                    &mut ctx,
                    &tp.access_log,
                    &format!("{cpath}.filters[{}].typed_config", wasm.len()),
                    false,
                )?;
                ListenerKind::Tcp { filters, cluster: tp.cluster.clone(), access_logs }
            }
            _ => {
                return Err(ConfigError::new(
                    format!("{cpath}.filters"),
                    "expected one http_connection_manager, or wasm network filters followed by tcp_proxy",
                ));
            }
        };
        if let ListenerKind::Http(h) = &kind {
            for (v, vh) in h.virtual_hosts.iter().enumerate() {
                for (r, rt) in vh.routes.iter().enumerate() {
                    if let RouteAction::Cluster { cluster, .. } = &rt.action {
                        if !clusters.contains_key(cluster) {
                            return Err(ConfigError::new(
                                format!("{cpath}.filters[0].typed_config.route_config.virtual_hosts[{v}].routes[{r}].route.cluster"),
                                format!("unknown cluster `{cluster}`"),
                            ));
                        }
                    }
                }
            }
        }
        listeners.push(ListenerPlan { name: l.name.clone(), address, kind, metadata: listener_metadata });
    }
    let admin = match &b.admin {
        Some(a) => {
            ctx.other(&a.other, "admin")?;
            Some(socket(&a.address, "admin.address")?)
        }
        None => None,
    };
    let mut services = Vec::new();
    for (i, e) in b.bootstrap_extensions.iter().enumerate() {
        let WasmServiceConfig::WasmService { config, singleton } = &e.typed_config;
        services.push(plugin(&mut ctx, config, &format!("bootstrap_extensions[{i}].typed_config.config"), *singleton)?);
    }
    let mut node = sluice_core::vm::NodeInfo::default();
    if let Some(n) = &b.node {
        ctx.other(&n.other, "node")?;
        node.id = n.id.clone();
        node.cluster = n.cluster.clone();
        node.metadata = n.metadata.clone().unwrap_or_default();
    }
    Ok(Plan { listeners, clusters, admin, services, node, warnings: ctx.warnings, bootstrap: Default::default() })
}
