//! nora: an artifact registry and its ops toolkit in one binary.

mod client;
mod cmd;
mod config;
mod logging;
mod registry;
mod schedule;
mod serve;
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
