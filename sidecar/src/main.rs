use std::io::IsTerminal;

use census_client::cli_args;
use census_sidecar::cli::{Cli, run};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(cli_args::normalize(std::env::args()));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))?;
    Ok(())
}
