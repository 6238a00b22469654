//! `sluice check MODULE.wasm [--plugin-config F] [--vm-config F]`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use sluice_host::runtime::{ImportSupport, Runtime, RuntimeConfig};
use sluice_host::state::SharedState;
use sluice_host::vm::{LogCollector, NoQueues, PluginInfo, ProxyEnv, RealClock, Vm, VmOptions};

/// Arguments of `sluice check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The module to check.
    module: PathBuf,
    /// A file whose bytes are the plugin configuration (read in `proxy_on_configure`).
    #[arg(long, value_name = "FILE")]
    plugin_config: Option<PathBuf>,
    /// A file whose bytes are the VM configuration (read in `proxy_on_vm_start`).
    #[arg(long, value_name = "FILE")]
    vm_config: Option<PathBuf>,
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// Prints what the module declares, then starts and configures it. Fails with a one-line reason.
pub fn run(args: CheckArgs) -> Result<()> {
    let bytes = read(&args.module, "module")?;
    let plugin_config = args.plugin_config.as_ref().map(|p| read(p, "plugin configuration")).transpose()?;
    let vm_config = args.vm_config.as_ref().map(|p| read(p, "VM configuration")).transpose()?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let info = runtime.inspect(&bytes)?;
    println!("module     {} ({} bytes)", args.module.display(), bytes.len());
    println!("abi        proxy-wasm {}", info.abi);
    println!("allocator  {}", info.allocator);
    println!("start      {}", info.start.unwrap_or("(none)"));
    println!("imports    {}", info.imports.len());
    for i in &info.imports {
        let note = match i.support {
            ImportSupport::Provided => "ok",
            ImportSupport::Refused => "refused (returns ENOSYS, as in Envoy)",
            ImportSupport::Missing => "MISSING: the host does not provide it",
        };
        println!("  {:<48} {note}", format!("{}.{}", i.module, i.name));
    }
    println!("callbacks  {}", info.callbacks.len());
    for c in &info.callbacks {
        println!("  {c}");
    }
    let missing = info.missing_imports();
    if !missing.is_empty() {
        bail!("the module imports {} function(s) the host does not provide: {}", missing.len(), missing.join(", "));
    }
    let module = runtime.load(&bytes)?;
    let logs = Arc::new(LogCollector::default());
    let env = Arc::new(ProxyEnv::new(Arc::new(SharedState::default()), logs.clone(), RealClock::shared()));
    let options =
        VmOptions { vm_id: String::new(), configuration: vm_config.unwrap_or_default(), env_vars: Vec::new() };
    let result = Vm::new(&runtime, module, options, env, Arc::new(NoQueues)).and_then(|mut vm| {
        let plugin =
            PluginInfo { name: "check".into(), configuration: plugin_config.unwrap_or_default(), ..Default::default() };
        vm.start_plugin(plugin)
    });
    for r in logs.records() {
        println!("log        [{}] {}", r.level.name(), r.message);
    }
    if let Err(e) = result {
        // The guest's frames go in the report; the error stays one line.
        if let Some(fault) = e.guest_fault().filter(|f| !f.frames.is_empty()) {
            println!("backtrace  the guest's frames:{}", fault.backtrace());
        }
        return Err(e.into());
    }
    println!("vm start   ok");
    println!("configure  ok");
    Ok(())
}
