//! nora: an artifact registry and its ops toolkit in one binary.

// Wired to the CLI commands next (issue 4); until then parts are unused.
#[allow(dead_code)]
mod client;
mod cmd;
mod config;
mod logging;
#[allow(dead_code)]
mod registry;
#[allow(dead_code)]
mod schedule;
mod serve;
#[allow(dead_code)]
mod storage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "nora",
    version,
    about = "An artifact registry and its ops toolkit in one binary"
)]
struct Cli {
    /// Configuration file (default: ./config.toml when present)
    #[arg(long, global = true, env = "NORA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry server (the default when no command is given)
    Serve(cmd::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nora: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve(Default::default())) {
        Command::Serve(args) => cmd::serve::run(args, config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nora: {e}");
            ExitCode::FAILURE
        }
    }
}
