use std::io::IsTerminal;

use census_client::cli_args;
use census_controller::agent::{self, config};
use census_controller::cli::{Cli, TopCommand, run_client};
use clap::Parser;

fn init_logging(level: &str, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).init();
        }
        None => builder.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(cli_args::normalize(std::env::args()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        TopCommand::Agent(agent_args) => {
            let files = config::read_config_files(&agent_args)?;
            let cfg = config::AgentConfig::resolve(&agent_args, &files)?;
            init_logging(&cfg.log_level, cfg.log_file.as_deref())?;
            runtime.block_on(agent::run(cfg))?;
            Ok(())
        }
        command => {
            let code = runtime.block_on(run_client(command)).unwrap_or_else(|e| {
                eprintln!("Error: {e}");
                1
            });
            std::process::exit(code);
        }
    }
}
