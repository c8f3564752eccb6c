use census_client::cli_args;
use census_controller::agent::{self, config};
use census_controller::cli::{Cli, TopCommand, implicit_agent, run_client};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(cli_args::normalize(implicit_agent(std::env::args().collect())));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        TopCommand::Agent(agent_args) => {
            let files = config::read_config_files(&agent_args)?;
            let cfg = config::AgentConfig::resolve(&agent_args, &files)?;
            agent::logging::init(&cfg.log_level, cfg.log_file.as_deref())?;
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
