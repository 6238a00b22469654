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
    Serve(cli::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Serve(args) => cli::serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
