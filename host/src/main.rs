//! `sluice`: check proxy-wasm modules and Envoy configurations that use them.

mod cli;

/// A proxy allocates and frees small buffers on every request; mimalloc does that faster than the
/// system allocator (Envoy uses tcmalloc for the same reason).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A proxy-wasm host that behaves like Envoy.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a module, list its ABI version, imports and callbacks, then start it and configure it.
    Check(cli::check::CheckArgs),
    /// Read an Envoy bootstrap YAML; with --validate, check it and start every plugin once.
    Serve(Box<cli::serve::ServeArgs>),
    /// Make a filter crate (HTTP, TCP or service) that builds, tests itself and loads in Envoy.
    New(cli::new::NewArgs),
    /// Package a module as an OCI image layout (or archive), as Istio and Envoy Gateway pull it.
    Package(cli::package::PackageArgs),
}

/// Invoked as `envoy` (a link named so on `PATH`), sluice is `sluice serve` with Envoy's argv.
#[derive(Parser)]
#[command(name = "envoy", disable_version_flag = true, about = "sluice serve, under Envoy's name and command line")]
struct AsEnvoy {
    #[command(flatten)]
    serve: cli::serve::ServeArgs,
    /// Print the version and exit.
    #[arg(long)]
    version: bool,
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().map(std::path::PathBuf::from);
    let as_envoy = argv0.as_ref().and_then(|p| p.file_name()).is_some_and(|n| n == "envoy");
    let command = if as_envoy {
        let args = AsEnvoy::parse();
        if args.version {
            // Envoy's shape (`envoy  version: SHA/VERSION/STATUS/BUILD/SSL`): tools read the number.
            println!(
                "envoy  version: 0000000000000000000000000000000000000000/1.40.0/Clean/RELEASE/sluice-{}",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Command::Serve(Box::new(args.serve))
    } else {
        Cli::parse().command
    };
    let result = match command {
        Command::Check(args) => cli::check::run(args),
        Command::Serve(args) => cli::serve::run(*args),
        Command::New(args) => cli::new::run(args),
        Command::Package(args) => cli::package::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
