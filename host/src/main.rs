//! `sluice`: check proxy-wasm modules (and, later, serve traffic through them).

mod cli;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cli::check::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
