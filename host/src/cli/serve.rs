//! `sluice serve -c ENVOY.yaml [--concurrency N] [--validate]`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use sluice_host::config::{self, Plan};
use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_host::server::{self, ServeOptions};
use sluice_host::state::SharedState;
use sluice_host::vm::{LogLevelSetting, NoQueues, Vm};

use super::logging;

/// Arguments of `sluice serve`: Envoy 1.40's command line, flag for flag, plus `--validate` and
/// `--watch`. Flags that steer Envoy's hot restart, core dumps or stats tags mean nothing here and
/// are accepted and ignored, so tools that start Envoy can start sluice unchanged.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The Envoy bootstrap (v3 YAML or JSON).
    #[arg(short = 'c', long = "config-path", visible_alias = "config", value_name = "ENVOY.yaml")]
    config: Option<PathBuf>,
    /// Inline YAML, merged over the file given with -c (or the whole bootstrap without it).
    #[arg(long = "config-yaml", value_name = "YAML")]
    config_yaml: Option<String>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    concurrency: Option<usize>,
    /// `serve` (default), `validate` (check the configuration and start every plugin once, then
    /// exit) or `init_only` (also bind the listeners, then exit), as Envoy's --mode.
    #[arg(long, value_name = "MODE", default_value = "serve", value_parser = ["serve", "validate", "init_only"])]
    mode: String,
    /// The same as `--mode validate`.
    #[arg(long)]
    validate: bool,
    /// Reload a filter when its `.wasm` file changes (new streams use the new module; streams in
    /// flight finish on the old one).
    #[arg(long)]
    watch: bool,
    /// Log level: trace, debug, info, warning, error, critical, off.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// Levels of single components, e.g. `wasm:trace,http:debug` (Envoy's component names).
    #[arg(long = "component-log-level", value_name = "COMPONENT:LEVEL,...")]
    component_log_level: Option<String>,
    /// Log line format in spdlog syntax (default `[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v`).
    #[arg(long = "log-format", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Write logs to this file instead of stderr.
    #[arg(long = "log-path", value_name = "FILE")]
    log_path: Option<PathBuf>,
    /// `node.id` when the bootstrap has none.
    #[arg(long = "service-node")]
    service_node: Option<String>,
    /// `node.cluster` when the bootstrap has none.
    #[arg(long = "service-cluster")]
    service_cluster: Option<String>,
    /// `node.locality.zone` (accepted; sluice serves no property from it).
    #[arg(long = "service-zone")]
    service_zone: Option<String>,
    /// How long SIGTERM waits for requests in flight, in seconds (default 600, as Envoy).
    #[arg(long = "drain-time-s", value_name = "SECONDS")]
    drain_time_s: Option<u64>,
    /// Write the admin listener's address (`IP:PORT`, as Envoy writes it) to this file once it
    /// listens: how tools find an admin bound to port 0.
    #[arg(long = "admin-address-path", value_name = "FILE")]
    admin_address_path: Option<PathBuf>,
    /// Print the hot-restart protocol version and exit, as Envoy does: `disabled`, as Envoy says
    /// when hot restart is off (sluice has none).
    #[arg(long = "hot-restart-version")]
    hot_restart_version: bool,
    /// Envoy's hot-restart, core-dump and stats flags: accepted, no effect here.
    #[command(flatten)]
    envoy_only: EnvoyOnlyFlags,
}

/// Envoy flags that steer what sluice does not have (hot restart, mutex tracing, core dumps, stats
/// tags, field strictness): accepted so that Envoy's command lines run as they are, and ignored.
#[derive(clap::Args, Debug, Default)]
struct EnvoyOnlyFlags {
    #[arg(long = "base-id", hide = true)]
    base_id: Option<u32>,
    #[arg(long = "use-dynamic-base-id", hide = true)]
    use_dynamic_base_id: bool,
    #[arg(long = "base-id-path", hide = true)]
    base_id_path: Option<PathBuf>,
    #[arg(long = "restart-epoch", hide = true)]
    restart_epoch: Option<u32>,
    #[arg(long = "disable-hot-restart", hide = true)]
    disable_hot_restart: bool,
    #[arg(long = "skip-hot-restart-on-no-parent", hide = true)]
    skip_hot_restart_on_no_parent: bool,
    #[arg(long = "skip-hot-restart-parent-stats", hide = true)]
    skip_hot_restart_parent_stats: bool,
    #[arg(long = "parent-shutdown-time-s", hide = true)]
    parent_shutdown_time_s: Option<u32>,
    #[arg(long = "drain-strategy", hide = true)]
    drain_strategy: Option<String>,
    #[arg(long = "socket-path", hide = true)]
    socket_path: Option<String>,
    #[arg(long = "socket-mode", hide = true)]
    socket_mode: Option<String>,
    #[arg(long = "stats-tag", hide = true)]
    stats_tag: Vec<String>,
    #[arg(long = "enable-core-dump", hide = true)]
    enable_core_dump: bool,
    #[arg(long = "disable-extensions", hide = true)]
    disable_extensions: Option<String>,
    #[arg(long = "cpuset-threads", hide = true)]
    cpuset_threads: bool,
    #[arg(long = "enable-mutex-tracing", hide = true)]
    enable_mutex_tracing: bool,
    #[arg(long = "file-flush-min-size-kb", hide = true)]
    file_flush_min_size_kb: Option<u32>,
    #[arg(long = "file-flush-interval-msec", hide = true)]
    file_flush_interval_msec: Option<u32>,
    #[arg(long = "enable-fine-grain-logging", hide = true)]
    enable_fine_grain_logging: bool,
    #[arg(long = "log-format-escaped", hide = true)]
    log_format_escaped: bool,
    #[arg(long = "log-stacktrace-single-entry", hide = true)]
    log_stacktrace_single_entry: bool,
    #[arg(long = "local-address-ip-version", hide = true)]
    local_address_ip_version: Option<String>,
    #[arg(long = "skip-deprecated-logs", hide = true)]
    skip_deprecated_logs: bool,
    #[arg(long = "ignore-unknown-dynamic-fields", hide = true)]
    ignore_unknown_dynamic_fields: bool,
    #[arg(long = "reject-unknown-dynamic-fields", hide = true)]
    reject_unknown_dynamic_fields: bool,
    #[arg(long = "allow-unknown-static-fields", hide = true)]
    allow_unknown_static_fields: bool,
    #[arg(long = "allow-unknown-fields", hide = true)]
    allow_unknown_fields: bool,
}

/// Starts every plugin of the plan once, as Envoy's canary does: a plugin that fails to start or
/// rejects its configuration fails the whole configuration.
fn canary(plan: &Plan, runtime: &Runtime, state: &Arc<SharedState>, log_level: &Arc<LogLevelSetting>) -> Result<usize> {
    let mut started = 0;
    for (place, spec) in plan.plugins() {
        let name = &spec.info.name;
        let module = runtime.load(&spec.code).with_context(|| format!("plugin `{name}` ({place})"))?;
        let env = plan.proxy_env(state.clone(), log_level);
        Vm::new(runtime, module, spec.vm.clone(), Arc::new(env), Arc::new(NoQueues))
            .and_then(|mut vm| vm.start_plugin(spec.info.clone()))
            .with_context(|| format!("plugin `{name}` ({place}) failed to start"))?;
        started += 1;
    }
    Ok(started)
}

/// Reads the bootstrap from `-c` and `--config-yaml` (merged over it, as Envoy merges them).
fn load_plan(args: &ServeArgs) -> Result<Plan> {
    let file = match &args.config {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let name = args.config.as_ref().map_or_else(|| "--config-yaml".to_string(), |p| p.display().to_string());
    let text = match (file, &args.config_yaml) {
        (None, None) => anyhow::bail!("no configuration: give -c ENVOY.yaml or --config-yaml"),
        (Some(f), None) => f,
        (None, Some(y)) => y.clone(),
        (Some(f), Some(y)) => config::merge_yaml(&f, y).map_err(|e| anyhow::anyhow!("--config-yaml: {e}"))?,
    };
    // One decode of Envoy's schema for the whole of reading, let go once the plan is made.
    let _schema = config::hold_schema();
    let mut plan = config::parse(&text, std::path::Path::new(".")).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if plan.node.id.is_empty() {
        plan.node.id = args.service_node.clone().unwrap_or_default();
    }
    if plan.node.cluster.is_empty() {
        plan.node.cluster = args.service_cluster.clone().unwrap_or_default();
    }
    plan.node.proto = config::node_proto(&plan.node);
    Ok(plan)
}

/// Checks the configuration, then serves it until SIGTERM, Ctrl-C or `/quitquitquit`.
pub fn run(args: ServeArgs) -> Result<()> {
    if args.hot_restart_version {
        // Envoy's answer, on stderr without a newline, when hot restart is disabled.
        eprint!("disabled");
        return Ok(());
    }
    let log_control = logging::init(&logging::LogOptions {
        level: args.log_level.clone(),
        component_levels: args.component_log_level.clone(),
        format: args.log_format.clone(),
        path: args.log_path.clone(),
    })?;
    let plan = load_plan(&args)?;
    for w in &plan.warnings {
        tracing::warn!(target: "sluice_host::config", "{w}");
    }
    // One engine for the canary and the server: each module is compiled once.
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let state = Arc::new(SharedState::default());
    let wasm_log_level = log_control.wasm_level();
    let plugins = canary(&plan, &runtime, &state, &wasm_log_level)?;
    if args.mode == "validate" && !args.validate {
        // Envoy's own line, which tools read.
        let name = args.config.as_ref().map_or_else(|| "--config-yaml".to_string(), |p| p.display().to_string());
        println!("configuration '{name}' OK");
        return Ok(());
    }
    if args.validate {
        println!(
            "configuration OK: {} listener(s), {} cluster(s), {} plugin(s) started and configured",
            plan.listeners.len(),
            plan.clusters.len(),
            plugins
        );
        return Ok(());
    }
    let concurrency = args.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let drain = args.drain_time_s.map_or(server::DEFAULT_DRAIN, std::time::Duration::from_secs);
    let server = server::start(
        plan,
        ServeOptions {
            concurrency,
            watch: args.watch,
            drain,
            runtime,
            log_control: Some(Arc::new(log_control)),
            state,
            wasm_log_level,
        },
    )?;
    if args.mode == "init_only" {
        server.shutdown();
        server.wait();
        return Ok(());
    }
    for (name, addr) in &server.listeners {
        println!("listener {name} on {addr}");
    }
    if let (Some(path), Some(addr)) = (&args.admin_address_path, server.admin) {
        if let Err(e) = std::fs::write(path, addr.to_string()) {
            server.shutdown();
            server.wait();
            return Err(e).with_context(|| format!("--admin-address-path: cannot write {}", path.display()));
        }
    }
    if let Some(addr) = server.admin {
        println!("admin on {addr}");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let stopper = server.stopper();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        });
        stopper();
    });
    server.wait();
    Ok(())
}
