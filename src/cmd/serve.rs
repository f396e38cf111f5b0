//! `nora serve`: run the registry.

use clap::Args;

use crate::config::Config;

#[derive(Debug, Args, Default)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs, config: Config) -> Result<(), String> {
    crate::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime
        .block_on(crate::serve::run(config))
        .map_err(|e| e.to_string())
}
