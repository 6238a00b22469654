//! Envoy's logging, as its command line sets it up: `-l LEVEL`, `--component-log-level
//! wasm:trace,http:debug`, `--log-format` in spdlog syntax (default
//! `[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v`) and `--log-path`. Lines never carry colour codes:
//! Envoy writes none, and log files and pipes must stay plain text.
//!
//! A log record's component is Envoy's name for the part of the proxy that wrote it (`wasm` for
//! guest logs and VM failures, `http`, `upstream`, `admin`, `config`, `main`), matched exactly, so
//! `wasm:trace` turns on guest logs and not the trace output of the `wasmtime` crate. Records of the
//! libraries sluice is built on (wasmtime, hyper, …) are component `misc`, at `warning` unless
//! `misc` is named.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::prelude::*;

use sluice_host::vm::LogLevelSetting;
use sluice_host::wire::status::LogLevel;

/// Envoy's default `--log-format`.
pub const DEFAULT_FORMAT: &str = "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v";

/// The component names Envoy 1.40 knows, in the order its admin `/logging` lists them.
const COMPONENTS: &[&str] = &[
    "a2a",
    "admin",
    "ai_protocol_manager",
    "alternate_protocols_cache",
    "aws",
    "assert",
    "backtrace",
    "basic_auth",
    "cache_filter",
    "client",
    "config",
    "connection",
    "conn_handler",
    "compression",
    "credential_injector",
    "decompression",
    "dns",
    "dubbo",
    "envoy_bug",
    "ext_authz",
    "ext_proc",
    "rocketmq",
    "file",
    "filter",
    "forward_proxy",
    "geolocation",
    "grpc",
    "happy_eyeballs",
    "hc",
    "health_checker",
    "http",
    "http2",
    "hystrix",
    "init",
    "io",
    "jwt",
    "json_rpc",
    "kafka",
    "key_value_store",
    "lua",
    "local_rate_limit",
    "main",
    "matcher",
    "mcp",
    "misc",
    "mongo",
    "multi_connection",
    "notification",
    "oauth2",
    "quic",
    "quic_stream",
    "pool",
    "rate_limit_quota",
    "rbac",
    "rds",
    "redis",
    "router",
    "runtime",
    "stats",
    "secret",
    "sse",
    "tap",
    "testing",
    "thrift",
    "tracing",
    "upstream",
    "udp",
    "wasm",
    "websocket",
    "golang",
    "stats_sinks",
    "dynamic_modules",
    "ip_tagging",
];

/// A level as Envoy names them; `Off` drops everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Threshold {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Critical,
    Off,
}

impl Threshold {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warning" | "warn" => Self::Warning,
            "error" => Self::Error,
            "critical" => Self::Critical,
            "off" => Self::Off,
            other => {
                bail!("invalid log level `{other}`: one of trace, debug, info, warning, warn, error, critical, off")
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Off => "off",
        }
    }

    /// The level a plugin reads for it (`None`: off).
    fn as_log_level(self) -> Option<LogLevel> {
        Some(match self {
            Self::Trace => LogLevel::Trace,
            Self::Debug => LogLevel::Debug,
            Self::Info => LogLevel::Info,
            Self::Warning => LogLevel::Warn,
            Self::Error => LogLevel::Error,
            Self::Critical => LogLevel::Critical,
            Self::Off => return None,
        })
    }

    /// Whether a record passes: a `critical` one (an `error` event with a `critical` field:
    /// `tracing` has no level above `error`) ranks above `error`.
    fn allows_event(self, m: &Metadata<'_>) -> bool {
        if is_critical(m) {
            self != Self::Off
        } else {
            self.allows(m.level())
        }
    }

    fn allows(self, level: &Level) -> bool {
        let rank = match *level {
            Level::TRACE => Self::Trace,
            Level::DEBUG => Self::Debug,
            Level::INFO => Self::Info,
            Level::WARN => Self::Warning,
            Level::ERROR => Self::Error,
        };
        self != Self::Off && rank >= self
    }
}

/// Which records pass: a level for all components, and some components set apart.
#[derive(Debug, Clone)]
struct Levels {
    all: Threshold,
    components: Vec<(String, Threshold)>,
}

impl Levels {
    fn of(&self, component: &str) -> Threshold {
        if let Some((_, t)) = self.components.iter().find(|(c, _)| c == component) {
            return *t;
        }
        if component == LIBRARIES {
            // The libraries' own records: `misc` if it was set, else at warning or above.
            return self
                .components
                .iter()
                .find(|(c, _)| c == "misc")
                .map_or(self.all.max(Threshold::Warning), |(_, t)| *t);
        }
        self.all
    }
}

/// Records of the libraries sluice is built on (wasmtime, hyper, …): shown as component `misc`,
/// and kept at warning unless `misc` is set.
const LIBRARIES: &str = "(libraries)";

/// Envoy's component for a record's target (its `%n`).
fn component(target: &str) -> &'static str {
    let Some(path) = target.strip_prefix("sluice_host::").or_else(|| target.strip_prefix("sluice::")) else {
        return if target == "wasm" { "wasm" } else { LIBRARIES };
    };
    let first = path.split("::").next().unwrap_or("");
    let second = path.split("::").nth(1).unwrap_or("");
    match (first, second) {
        ("server", "admin") => "admin",
        ("server", "http" | "body" | "route") => "http",
        ("server", "cluster" | "grpc_stream") => "upstream",
        ("server", "tcp") => "filter",
        ("config", _) => "config",
        ("vm" | "runtime" | "abi" | "harness", _) => "wasm",
        _ => "main",
    }
}

/// How `sluice serve` logs, from Envoy's flags.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// `-l`.
    pub level: String,
    /// `--component-log-level`.
    pub component_levels: Option<String>,
    /// `--log-format`.
    pub format: Option<String>,
    /// `--log-path`.
    pub path: Option<std::path::PathBuf>,
}

/// The levels in force, changed at run time through admin `/logging`; the `wasm` logger's also
/// where plugins read it (`proxy_get_log_level`).
pub struct Control(Arc<std::sync::RwLock<Levels>>, Arc<LogLevelSetting>);

impl Control {
    /// The `wasm` logger's level, as the plugins' environments share it.
    pub fn wasm_level(&self) -> Arc<LogLevelSetting> {
        self.1.clone()
    }
}

impl sluice_host::server::LogControl for Control {
    fn list(&self) -> String {
        let levels =
            self.0.read().map(|l| l.clone()).unwrap_or(Levels { all: Threshold::Info, components: Vec::new() });
        let mut out = String::from("active loggers:\n");
        for c in COMPONENTS {
            out.push_str(&format!("  {c}: {}\n", levels.of(c).name()));
        }
        out.push('\n');
        out
    }

    fn set(&self, pairs: &[(String, String)]) -> std::result::Result<(), String> {
        let mut next = self.0.read().map_err(|_| "log levels unavailable".to_string())?.clone();
        for (name, level) in pairs {
            let t = Threshold::parse(level).map_err(|e| e.to_string())?;
            if name == "level" {
                next = Levels { all: t, components: Vec::new() };
            } else if COMPONENTS.contains(&name.as_str()) {
                next.components.retain(|(c, _)| c != name);
                next.components.push((name.clone(), t));
            } else {
                return Err(format!("error: unknown logger name `{name}`"));
            }
        }
        self.1.set(next.of("wasm").as_log_level());
        *self.0.write().map_err(|_| "log levels unavailable".to_string())? = next;
        // Callsites cached their interest under the old levels.
        tracing::callsite::rebuild_interest_cache();
        Ok(())
    }
}

/// Installs the subscriber for the whole process; the handle admin `/logging` changes it through.
pub fn init(opts: &LogOptions) -> Result<Control> {
    let mut levels = Levels { all: Threshold::parse(&opts.level)?, components: Vec::new() };
    for part in opts.component_levels.iter().flat_map(|s| s.split(',')).filter(|p| !p.is_empty()) {
        let Some((name, level)) = part.split_once(':') else {
            bail!("--component-log-level: `{part}` is not COMPONENT:LEVEL");
        };
        if !COMPONENTS.contains(&name) {
            bail!("--component-log-level: invalid component `{name}`");
        }
        levels.components.push((name.to_string(), Threshold::parse(level)?));
    }
    let out: Box<dyn std::io::Write + Send> = match &opts.path {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open --log-path {}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let layer = EnvoyFormat {
        format: opts.format.clone().unwrap_or_else(|| DEFAULT_FORMAT.to_string()),
        out: Arc::new(Mutex::new(out)),
    };
    let wasm = Arc::new(LogLevelSetting::new(LogLevel::Info));
    wasm.set(levels.of("wasm").as_log_level());
    let levels = Arc::new(std::sync::RwLock::new(levels));
    let current = levels.clone();
    // No max-level hint: `/logging` may raise levels later. Each callsite's interest is cached, so a
    // disabled one costs an atomic load.
    let filter = tracing_subscriber::filter::filter_fn(move |m: &Metadata<'_>| {
        current.read().is_ok_and(|l| l.of(component(m.target())).allows_event(m))
    });
    // No bridge from the `log` crate: wasmtime's compiler logs through it at a rate that would
    // slow every module load, and none of it is Envoy's.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer.with_filter(filter)));
    Ok(Control(levels, wasm))
}

/// Writes each record as one line in an spdlog pattern.
struct EnvoyFormat {
    format: String,
    out: Arc<Mutex<Box<dyn std::io::Write + Send>>>,
}

#[derive(Default)]
struct Message {
    text: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "critical" {
            // The level, shown as such (`level_name`), not as a field.
        } else if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}

thread_local! {
    static THREAD_ID: i64 = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()))
        .unwrap_or(0);
}

impl<S: Subscriber> Layer<S> for EnvoyFormat {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut msg = Message::default();
        event.record(&mut msg);
        let m = event.metadata();
        let mut line = String::with_capacity(self.format.len() + msg.text.len() + 32);
        render(&self.format, m, &msg.text, &mut line);
        line.push('\n');
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Whether a record is `critical` (an `error` event marked with a `critical` field).
fn is_critical(m: &Metadata<'_>) -> bool {
    *m.level() == Level::ERROR && m.fields().field("critical").is_some()
}

/// Envoy's level names.
fn level_name(m: &Metadata<'_>) -> (&'static str, &'static str) {
    if is_critical(m) {
        return ("critical", "C");
    }
    match *m.level() {
        Level::TRACE => ("trace", "T"),
        Level::DEBUG => ("debug", "D"),
        Level::INFO => ("info", "I"),
        Level::WARN => ("warning", "W"),
        Level::ERROR => ("error", "E"),
    }
}

/// Expands the spdlog flags Envoy's formats use; others are written as they are.
fn render(format: &str, m: &Metadata<'_>, text: &str, out: &mut String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = sluice_host::calendar::UtcTime::since_epoch(now);
    let (y, mo, d, h, mi, s, secs) = (t.year, t.month, t.day, t.hour, t.minute, t.second, t.epoch_seconds);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{y:04}"),
            Some('m') => write!(out, "{mo:02}"),
            Some('d') => write!(out, "{d:02}"),
            Some('H') => write!(out, "{h:02}"),
            Some('M') => write!(out, "{mi:02}"),
            Some('S') => write!(out, "{s:02}"),
            Some('T') => write!(out, "{h:02}:{mi:02}:{s:02}"),
            Some('e') => write!(out, "{:03}", now.subsec_millis()),
            Some('f') => write!(out, "{:06}", now.subsec_micros()),
            Some('F') => write!(out, "{:09}", now.subsec_nanos()),
            Some('E') => write!(out, "{secs}"),
            Some('t') => write!(out, "{}", THREAD_ID.with(|t| *t)),
            Some('P') => write!(out, "{}", std::process::id()),
            Some('l') => write!(out, "{}", level_name(m).0),
            Some('L') => write!(out, "{}", level_name(m).1),
            Some('n') => write!(out, "{}", Some(component(m.target())).filter(|c| *c != LIBRARIES).unwrap_or("misc")),
            Some('g') => write!(out, "{}", m.file().unwrap_or("")),
            Some('s') => write!(out, "{}", m.file().and_then(|f| f.rsplit('/').next()).unwrap_or("")),
            Some('#') => write!(out, "{}", m.line().unwrap_or(0)),
            Some('@') => write!(out, "{}:{}", m.file().unwrap_or(""), m.line().unwrap_or(0)),
            Some('v') => write!(out, "{text}"),
            Some('j') => write!(out, "{}", text.escape_default()),
            Some('_') => write!(out, "{text}"),
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_match_exactly() {
        assert_eq!(component("wasm"), "wasm");
        assert_eq!(component("wasmtime::runtime"), LIBRARIES);
        assert_eq!(component("wasmtime_cranelift"), LIBRARIES);
        assert_eq!(component("sluice_host::server::admin"), "admin");
        assert_eq!(component("sluice_host::vm::host"), "wasm");
        let levels = Levels { all: Threshold::Info, components: vec![("wasm".into(), Threshold::Trace)] };
        assert!(levels.of("wasm").allows(&Level::TRACE));
        assert!(!levels.of(LIBRARIES).allows(&Level::INFO));
        assert!(levels.of("misc").allows(&Level::INFO));
        assert!(!levels.of("http").allows(&Level::DEBUG));
    }
}
