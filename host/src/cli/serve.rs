//! `sluice serve -c ENVOY.yaml [--concurrency N] [--validate]`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use sluice_host::config::{self, ListenerKind, Plan, PluginSpec};
use sluice_host::harness::LogCollector;
use sluice_host::runtime::{Runtime, RuntimeConfig};
use sluice_host::server::{self, ServeOptions};
use sluice_host::state::SharedState;
use sluice_host::vm::{Clock, NoQueues, ProxyEnv, Vm};

/// Arguments of `sluice serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The Envoy bootstrap (v3 YAML).
    #[arg(short = 'c', long = "config", value_name = "ENVOY.yaml")]
    config: PathBuf,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Check the configuration (and start and configure every plugin once), then exit, like
    /// `envoy --mode validate`.
    #[arg(long)]
    validate: bool,
    /// Reload a filter when its `.wasm` file changes (new streams use the new module; streams in
    /// flight finish on the old one).
    #[arg(long)]
    watch: bool,
    /// Log level: trace, debug, info, warn, error (guest logs use the `wasm` target).
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
}

/// Starts every plugin of the plan once, as Envoy's canary does: a plugin that fails to start or
/// rejects its configuration fails the whole configuration.
fn canary(plan: &Plan) -> Result<usize> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let mut plugins: Vec<(String, &PluginSpec)> = Vec::new();
    for l in &plan.listeners {
        let filters = match &l.kind {
            ListenerKind::Http(h) => &h.filters,
            ListenerKind::Tcp { filters, .. } => filters,
        };
        plugins.extend(filters.iter().map(|f| (format!("listener `{}`", l.name), f)));
    }
    plugins.extend(plan.services.iter().map(|s| ("bootstrap extension".to_string(), s)));
    for (place, spec) in &plugins {
        let name = &spec.info.name;
        let module = runtime.load(&spec.code).with_context(|| format!("plugin `{name}` ({place})"))?;
        let logs = Arc::new(LogCollector::default());
        let mut env = ProxyEnv::new(Arc::new(SharedState::default()), logs.clone(), Clock::real());
        env.node.id = plan.node.0.clone();
        env.node.cluster = plan.node.1.clone();
        for c in plan.clusters.keys() {
            env.add_cluster(c.clone());
        }
        Vm::new(&runtime, module, spec.vm.clone(), Arc::new(env), Arc::new(NoQueues))
            .and_then(|mut vm| vm.start_plugin(spec.info.clone()))
            .with_context(|| format!("plugin `{name}` ({place}) failed to start"))?;
    }
    Ok(plugins.len())
}

/// Checks the configuration, then serves it until SIGTERM, Ctrl-C or `/quitquitquit`.
pub fn run(args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid --log-level `{}`", args.log_level))?;
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let plan = config::load(&args.config).map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let plugins = canary(&plan)?;
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
    let server = server::start(plan, ServeOptions { concurrency, watch: args.watch })?;
    for (name, addr) in &server.listeners {
        println!("listener {name} on {addr}");
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
